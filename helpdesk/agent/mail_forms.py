"""Forms of the review queue "Posteingang prüfen" (held incoming mail)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import Length, Optional

from helpdesk.labels import IMPACT_HELP, URGENCY_HELP
from helpdesk.models.tickets import LEVELS


def _select(label, **kwargs) -> SelectField:
    return SelectField(label, validate_choice=False, coerce=str, **kwargs)


class MailDecisionForm(FlaskForm):
    """Take a held mail over: as a comment of a chosen person on a ticket, or as a new ticket for them.

    The person is found with the people lookup (type-ahead, or "Person suchen" without JavaScript);
    the services check the choice (an active person of a tenant, who may see the ticket).
    """

    q = StringField(_l("Person suchen"), validators=[Optional(), Length(max=200)])
    tenant = _select(_l("Behörde"))
    requester_id = RadioField(_l("Person"), choices=[], validate_choice=False, coerce=str)
    number = StringField(_l("Ticketnummer"), validators=[Optional(), Length(max=30)])
    category_id = _select(_l("Kategorie"))
    impact = _select(_l("Auswirkung"), choices=[C(str(n), IMPACT_HELP[n]) for n in LEVELS], default="2")
    urgency = _select(_l("Dringlichkeit"), choices=[C(str(n), URGENCY_HELP[n]) for n in LEVELS], default="2")

    def fill_choices(self, tenants, categories) -> None:
        """Offer the active authorities (search filter) and the active catalog entries."""
        self.tenant.choices = [C("", _l("alle Behörden"))] + [C(str(t.id), t.name) for t in tenants]
        self.category_id.choices = [C("", _l("– bitte wählen –"))] + [C(str(c.id), c.full_name) for c in categories]


class DiscardForm(FlaskForm):
    """Discard a held mail; the reason is required and recorded."""

    note = TextAreaField(_l("Begründung"), validators=[Length(max=500, message=_l("Höchstens 500 Zeichen."))])
