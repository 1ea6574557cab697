"""Forms of the agent blueprint.

Select fields do not validate their choices here (validate_choice=False): the ticket services own
the rules (which status change is allowed, which team is active) and say why a value is refused.
"""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import MultipleFileField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.labels import CHANNEL_LABELS, IMPACT_HELP, PRIORITY_LABELS, STATUS_LABELS, URGENCY_HELP
from helpdesk.models.tickets import LEVELS, PRIORITIES, STATUSES


def _select(label, **kwargs) -> SelectField:
    return SelectField(label, validate_choice=False, coerce=str, **kwargs)


class QueueFilterForm(FlaskForm):
    """The filter bar of the queue (a GET form: no CSRF, nothing changes)."""

    class Meta:
        csrf = False

    status = _select(_l("Status"))
    priority = _select(_l("Priorität"))
    tenant = _select(_l("Mandant"))
    category = _select(_l("Kategorie"))
    team = _select(_l("Team"))
    text = StringField(_l("Suche (Nummer, Text, Person, Behörde)"), validators=[Optional(), Length(max=200)])

    def fill_choices(self, tenants, categories, teams) -> None:
        """Offer the tenants, catalog entries and teams to filter by."""
        anything = [C("", _l("alle"))]
        self.status.choices = anything + [C(s, STATUS_LABELS[s]) for s in STATUSES]
        self.priority.choices = anything + [C(str(p), PRIORITY_LABELS[p]) for p in PRIORITIES]
        self.tenant.choices = anything + [C(str(t.id), t.name) for t in tenants]
        self.category.choices = anything + [C(str(c.id), c.full_name) for c in categories]
        self.team.choices = anything + [C(str(t.id), t.name) for t in teams]


class ReplyForm(FlaskForm):
    """A public answer or an internal note, with files and an optional status change."""

    body = TextAreaField(_l("Nachricht"))
    visibility = RadioField(
        _l("Art"),
        choices=[C("public", _l("Öffentliche Antwort")), C("internal", _l("Interne Notiz"))],
        default="public",
        validate_choice=False,
    )
    new_status = _select(_l("Status setzen auf"))
    attachments = MultipleFileField(_l("Dateien"))

    def fill_choices(self, ticket, transitions) -> None:
        """Offer the status changes allowed from the ticket's status."""
        self.new_status.choices = [C("", _l("– unverändert –"))] + [
            C(s, STATUS_LABELS[s]) for s in STATUSES if s in transitions
        ]


class AssignForm(FlaskForm):
    """Give the ticket to a member of its team (or to nobody)."""

    assignee_id = _select(_l("Zuweisen an"))

    def fill_choices(self, members) -> None:
        """Offer the active members of the ticket's team."""
        self.assignee_id.choices = [C("", _l("– niemand –"))] + [C(str(u.id), u.name) for u in members]


class TakeForm(FlaskForm):
    """Assign the ticket to oneself (only the CSRF token)."""


class StatusForm(FlaskForm):
    """Set the status by hand."""

    status = _select(_l("Neuer Status"))

    def fill_choices(self, transitions) -> None:
        """Offer the status changes allowed from the ticket's status."""
        # A neutral first entry: one careless click must not pause the SLA clock.
        self.status.choices = [C("", _l("– bitte wählen –"))] + [
            C(s, STATUS_LABELS[s]) for s in STATUSES if s in transitions
        ]


class PriorityForm(FlaskForm):
    """Override the derived priority, with a reason for the history."""

    priority = _select(_l("Priorität"), choices=[C(str(p), PRIORITY_LABELS[p]) for p in PRIORITIES])
    reason = StringField(
        _l("Begründung"),
        validators=[DataRequired(_l("Bitte begründen Sie die Änderung der Priorität.")), Length(max=400)],
    )


class CategoryForm(FlaskForm):
    """Move the ticket to another catalog entry."""

    category_id = _select(_l("Kategorie"))

    def fill_choices(self, categories) -> None:
        """Offer the active catalog entries."""
        self.category_id.choices = [C(str(c.id), c.full_name) for c in categories]


class TransferForm(FlaskForm):
    """Hand the ticket to another team, with an optional note."""

    team_id = _select(_l("An Team übergeben"))
    note = StringField(_l("Notiz zur Übergabe"), validators=[Optional(), Length(max=400)])

    def fill_choices(self, teams) -> None:
        """Offer the active teams."""
        self.team_id.choices = [C(str(t.id), t.name) for t in teams]


class NewTicketForm(FlaskForm):
    """File a ticket for a requester who phoned or wrote an email.

    The requester is found with a search (a step of this form without JavaScript, type-ahead with it) or
    added on the spot as a new caller; only the chosen id travels, never a list of everyone.
    """

    q = StringField(_l("Person suchen"), validators=[Optional(), Length(max=200)])
    tenant = _select(_l("Behörde"))
    requester_id = RadioField(_l("Anfragende Person"), choices=[], validate_choice=False, coerce=str)
    new_name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    new_email = StringField(_l("E-Mail-Adresse"), validators=[Optional(), Length(max=254)])
    new_tenant_id = _select(_l("Behörde"))
    channel = _select(_l("Eingangskanal"), choices=[C("phone", CHANNEL_LABELS["phone"]), C("email", CHANNEL_LABELS["email"])],
                      default="phone")
    subject = StringField(_l("Betreff"))
    description = TextAreaField(_l("Beschreibung"))
    category_id = _select(_l("Kategorie"))
    impact = _select(_l("Auswirkung"), choices=[C(str(n), IMPACT_HELP[n]) for n in LEVELS], default="3")
    urgency = _select(_l("Dringlichkeit"), choices=[C(str(n), URGENCY_HELP[n]) for n in LEVELS], default="3")
    attachments = MultipleFileField(_l("Dateien"))

    def fill_choices(self, tenants, categories) -> None:
        """Offer the active authorities (search filter, new caller) and the active catalog entries."""
        authorities = [C(str(t.id), t.name) for t in tenants]
        self.tenant.choices = [C("", _l("alle Behörden"))] + authorities
        self.new_tenant_id.choices = [C("", _l("– bitte wählen –"))] + authorities
        self.category_id.choices = [C("", _l("– bitte wählen –"))] + [C(str(c.id), c.full_name) for c in categories]
