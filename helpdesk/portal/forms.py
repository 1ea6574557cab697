"""Forms of the portal blueprint.

The fields carry no validators beyond CSRF: the ticket services own the rules (required fields,
lengths, active category, upload limits) and say why an input is refused, in one wording for the
portal, the agent workspace and the API.
"""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import MultipleFileField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from helpdesk.labels import IMPACT_HELP, URGENCY_HELP
from helpdesk.models.tickets import LEVELS


def _levels(help_texts) -> list[SelectChoice]:
    return [SelectChoice(str(level), help_texts[level]) for level in LEVELS]


def category_choices(categories) -> list[SelectChoice]:
    """Group catalog entries under their top level (<optgroup>); top levels without children go last."""
    choices = [SelectChoice("", _l("– bitte wählen –"))]
    parents_with_children = {c.parent_id for c in categories if c.parent_id is not None}
    standalone = []
    for category in categories:
        if category.parent is not None:
            choices.append(SelectChoice(str(category.id), category.name, optgroup=category.parent.name))
        elif category.id not in parents_with_children:
            standalone.append(SelectChoice(str(category.id), category.name, optgroup=str(_l("Weitere Anliegen"))))
    return choices + standalone


class NewTicketForm(FlaskForm):
    """What a requester reports: catalog entry, impact, urgency, subject, description, files."""

    category = SelectField(_l("Kategorie"), validate_choice=False)
    impact = RadioField(_l("Auswirkung: Wer ist betroffen?"), choices=_levels(IMPACT_HELP), validate_choice=False,
                        default="3")
    urgency = RadioField(_l("Dringlichkeit: Wie stark ist die Arbeit behindert?"), choices=_levels(URGENCY_HELP),
                         validate_choice=False, default="2")
    subject = StringField(_l("Betreff"), render_kw={"maxlength": 200})
    description = TextAreaField(_l("Beschreibung"), render_kw={"rows": 8})
    attachments = MultipleFileField(_l("Dateien (z. B. Bildschirmfotos, Fehlermeldungen)"))

    def fill_choices(self, categories) -> None:
        """Offer the active catalog entries, grouped by their top level."""
        self.category.choices = category_choices(categories)


class ReplyForm(FlaskForm):
    """A public message of the requester, with files."""

    body = TextAreaField(_l("Ihre Nachricht"), render_kw={"rows": 5})
    attachments = MultipleFileField(_l("Dateien anhängen"))


class ReopenForm(FlaskForm):
    """Reopen a resolved ticket, optionally saying why."""

    reason = TextAreaField(_l("Was funktioniert noch nicht? (optional)"), render_kw={"rows": 3})


class ConfirmForm(FlaskForm):
    """Confirm the solution (only the CSRF token)."""


class WatcherForm(FlaskForm):
    """Find a colleague of the authority ("Person suchen") and add them as a watcher."""

    q = StringField(_l("Kollegin oder Kollegen suchen"), render_kw={"maxlength": 200})
    user_id = StringField()


class WatcherRemoveForm(FlaskForm):
    """Stop a person watching the ticket (the id of the watcher)."""

    user_id = StringField()
