"""Forms of the administration area.

Fields carry the raw input only: the services in helpdesk.services.admin and accounts own the rules
(unique slugs, two catalog levels, tenant roles need a tenant ...) and name the field they refuse,
so select fields do not check their choices here (validate_choice=False).
"""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import Length, Optional

from helpdesk.labels import PRIORITY_LABELS, ROLE_LABELS
from helpdesk.models.outbox import OUTBOX_STATUSES
from helpdesk.models.tickets import PRIORITIES
from helpdesk.models.users import ROLES

OUTBOX_STATUS_LABELS = {"pending": _l("wartet auf Versand"), "sent": _l("versendet"), "failed": _l("fehlgeschlagen")}
ANY = C("", _l("alle"))


def _select(label, **kwargs) -> SelectField:
    return SelectField(label, validate_choice=False, coerce=str, **kwargs)


def _priority_choices(empty_label):
    return [C("", empty_label)] + [C(str(p), PRIORITY_LABELS[p]) for p in PRIORITIES]


class ConfirmForm(FlaskForm):
    """A button that changes something (delete, retry): only the CSRF token."""


class TenantForm(FlaskForm):
    """A member authority."""

    slug = StringField(_l("Kürzel"), validators=[Length(max=40, message=_l("Höchstens 40 Zeichen."))])
    name = StringField(_l("Name"), validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    active = BooleanField(_l("Aktiv"), default=True)
    mail_domains = TextAreaField(_l("Mail-Domains"), validators=[Length(max=5000, message=_l("Höchstens 5000 Zeichen."))])
    mail_unknown_senders = _select(_l("E-Mails unbekannter Absender dieser Domains"), default="create", choices=[
        C("create", _l("Konto als anfragende Person anlegen und Ticket erstellen")),
        C("hold", _l("Zur Prüfung zurückhalten (Posteingang prüfen)")),
    ])


class UserFilterForm(FlaskForm):
    """The filter bar of the user list (a GET form: no CSRF, nothing changes)."""

    class Meta:
        csrf = False

    text = StringField(_l("Suche (Name oder E-Mail)"), validators=[Optional(), Length(max=200)])
    role = _select(_l("Rolle"))
    tenant = _select(_l("Mandant"))

    def fill_choices(self, tenants) -> None:
        """Offer the roles and tenants to filter by."""
        self.role.choices = [ANY] + [C(r, ROLE_LABELS[r]) for r in ROLES]
        self.tenant.choices = [ANY, C("ksm", _l("KSM (kein Mandant)"))] + [C(str(t.id), t.name) for t in tenants]


class UserForm(FlaskForm):
    """An account of a tenant employee or of KSM staff."""

    name = StringField(_l("Name"), validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    email = StringField(_l("E-Mail-Adresse"), validators=[Length(max=254, message=_l("Höchstens 254 Zeichen."))])
    phone = StringField(_l("Telefon"), validators=[Length(max=50, message=_l("Höchstens 50 Zeichen."))])
    role = _select(_l("Rolle"))
    tenant = _select(_l("Mandant"))
    teams = SelectMultipleField(_l("Teams"), validate_choice=False, coerce=str)
    password = PasswordField(_l("Passwort"))
    active = BooleanField(_l("Aktiv (darf sich anmelden)"), default=True)

    def fill_choices(self, tenants, teams) -> None:
        """Offer the roles, the tenants and the teams."""
        self.role.choices = [C(r, ROLE_LABELS[r]) for r in ROLES]
        self.tenant.choices = [C("", _l("– kein Mandant (KSM) –"))] + [C(str(t.id), t.name) for t in tenants]
        self.teams.choices = [C(str(t.id), t.name) for t in teams]


class TeamForm(FlaskForm):
    """A KSM support team."""

    slug = StringField(_l("Kürzel"), validators=[Length(max=40, message=_l("Höchstens 40 Zeichen."))])
    name = StringField(_l("Name"), validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    email = StringField(_l("E-Mail-Adresse des Teams (optional)"),
                        validators=[Length(max=254, message=_l("Höchstens 254 Zeichen."))])
    lead = _select(_l("Teamleitung"))
    is_fallback = BooleanField(_l("Standardteam (Service Desk)"))
    active = BooleanField(_l("Aktiv"), default=True)

    def fill_choices(self, staff) -> None:
        """Offer the KSM staff as team lead."""
        self.lead.choices = [C("", _l("– keine –"))] + [C(str(u.id), u.name) for u in staff]


class CategoryForm(FlaskForm):
    """An entry of the two-level service catalog."""

    name = StringField(_l("Name"), validators=[Length(max=120, message=_l("Höchstens 120 Zeichen."))])
    parent = _select(_l("Oberkategorie"))
    description = TextAreaField(_l("Beschreibung (für Antragstellende sichtbar)"),
                                validators=[Length(max=500, message=_l("Höchstens 500 Zeichen."))])
    position = StringField(_l("Reihenfolge"), default="0")
    active = BooleanField(_l("Aktiv (im Servicekatalog wählbar)"), default=True)

    def fill_choices(self, top_level) -> None:
        """Offer the top-level categories as parent."""
        self.parent.choices = [C("", _l("– keine (oberste Ebene) –"))] + [C(str(c.id), c.name) for c in top_level]


class RuleForm(FlaskForm):
    """A routing rule: which tickets go to which team."""

    name = StringField(_l("Name der Regel"), validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    position = StringField(_l("Reihenfolge"))
    tenant = _select(_l("Mandant"))
    category = _select(_l("Kategorie"))
    priority = _select(_l("Priorität"))
    team = _select(_l("Team"))
    active = BooleanField(_l("Aktiv"), default=True)

    def fill_choices(self, tenants, categories, teams) -> None:
        """Offer tenants, catalog entries, priorities and teams."""
        self.tenant.choices = [C("", _l("alle Mandanten"))] + [C(str(t.id), t.name) for t in tenants]
        self.category.choices = [C("", _l("alle Kategorien"))] + [C(str(c.id), c.full_name) for c in categories]
        self.priority.choices = _priority_choices(_l("alle Prioritäten"))
        self.team.choices = [C("", _l("– bitte wählen –"))] + [C(str(t.id), t.name) for t in teams]


class RouteTestForm(FlaskForm):
    """Try the routing with a tenant, a category and a priority (a GET form)."""

    class Meta:
        csrf = False

    tenant = _select(_l("Mandant"))
    category = _select(_l("Kategorie"))
    priority = _select(_l("Priorität"))

    def fill_choices(self, tenants, categories) -> None:
        """Offer tenants, catalog entries and priorities."""
        self.tenant.choices = [C("", _l("– bitte wählen –"))] + [C(str(t.id), t.name) for t in tenants]
        self.category.choices = [C("", _l("– bitte wählen –"))] + [C(str(c.id), c.full_name) for c in categories]
        self.priority.choices = _priority_choices(_l("– bitte wählen –"))


class OutboxFilterForm(FlaskForm):
    """The status filter of the outbox list (a GET form)."""

    class Meta:
        csrf = False

    status = SelectField(
        _l("Status"), validate_choice=False,
        choices=[ANY] + [C(s, OUTBOX_STATUS_LABELS[s]) for s in OUTBOX_STATUSES],
    )
