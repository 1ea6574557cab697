"""Contract what-if: a service manager compares a tenant's real compliance with a proposed contract."""
from __future__ import annotations

from datetime import date

from flask import abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, DateField, HiddenField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import Length, NumberRange, Optional

from helpdesk import clock
from helpdesk.extensions import db
from helpdesk.formatting import BERLIN
from helpdesk.manage.sla_forms import read_targets, show_targets, target_field_label
from helpdesk.models import Calendar, Tenant
from helpdesk.models.sla import TARGETS
from helpdesk.models.tickets import PRIORITIES
from helpdesk.reports import bp
from helpdesk.services import whatif
from helpdesk.services.errors import DomainError
from helpdesk.services.ids import as_id
from helpdesk.services.reports import MONTH_NAMES, period_bounds

WHATIF_ROLES = ("service_manager", "admin")
WEEKDAY_NAMES = (_l("Montag"), _l("Dienstag"), _l("Mittwoch"), _l("Donnerstag"), _l("Freitag"), _l("Samstag"),
                 _l("Sonntag"))


class WhatIfForm(FlaskForm):
    """Tenant, past period and proposed contract (a GET form: nothing changes, no CSRF)."""

    class Meta:
        csrf = False

    tenant = SelectField(_l("Mandant"), validate_choice=False, coerce=str)
    kind = SelectField(_l("Zeitraum"), coerce=str, default="month", choices=[
        C("month", _l("Monat")), C("quarter", _l("Quartal")), C("custom", _l("eigener Zeitraum"))])
    year = IntegerField(_l("Jahr"), validators=[
        Optional(), NumberRange(2000, 2100, _l("Bitte ein Jahr zwischen 2000 und 2100."))])
    month = SelectField(_l("Monat"), coerce=str, default="1",
                        choices=[C(str(n), MONTH_NAMES[n - 1]) for n in range(1, 13)])
    quarter = SelectField(_l("Quartal"), coerce=str, default="1",
                          choices=[C(str(n), f"Q{n}") for n in range(1, 5)])
    start = DateField(_l("Von"), validators=[Optional()])
    end = DateField(_l("Bis"), validators=[Optional()])
    calendar = SelectField(_l("Geschäftszeiten"), validate_choice=False, coerce=str)
    own_hours = BooleanField(
        _l("Servicezeiten abweichend festlegen (Feiertage und Schließtage bleiben die des Kalenders)"))
    # The tenant whose contract the proposal fields were filled from: another tenant starts afresh.
    basis = HiddenField()

    def fill_choices(self, tenants, calendars) -> None:
        """Offer the tenants and calendars (and the around-the-clock option)."""
        self.tenant.choices = [C("", _l("– bitte wählen –"))] + [C(str(t.id), t.name) for t in tenants]
        self.calendar.choices = [C(str(c.id), c.name) for c in calendars] + [
            C(whatif.AROUND_THE_CLOCK, _l("rund um die Uhr (24/7, ohne Feiertage)"))]

    def target_field(self, priority: int, target: str):
        """Return the duration field of one priority and target."""
        return self[f"p{priority}_{target}"]

    def day_fields(self) -> list:
        """Return the seven weekday fields, Monday first."""
        return [self[f"day{weekday}"] for weekday in range(7)]

    def targets(self) -> dict | None:
        """Return the proposed targets in minutes (None after marking unreadable entries at their fields)."""
        return read_targets(self)

    def starts_afresh(self, tenant: Tenant) -> bool:
        """Tell whether the proposal must be filled from the tenant's contract instead of taken as sent.

        It is when the fields were filled for another tenant, or when no target was sent at all (the
        first look at a tenant, or a link with only the tenant).
        """
        if self.basis.data:
            return self.basis.data != str(tenant.id)
        return not any((self.target_field(p, t).data or "").strip() for p in PRIORITIES for t in TARGETS)

    def period(self) -> tuple:
        """Return [start, end) and the label of the chosen period; raise DomainError if incomplete."""
        kind = self.kind.data
        if kind == "custom":
            return period_bounds("custom", 0, start=self.start.data, end=self.end.data)
        if self.year.data is None:
            raise DomainError(_("Bitte geben Sie ein Jahr an."), field="year")
        number = int(self.month.data if kind == "month" else self.quarter.data)
        return period_bounds(kind, self.year.data, number)


for _priority in PRIORITIES:
    for _target in TARGETS:
        setattr(WhatIfForm, f"p{_priority}_{_target}",
                StringField(target_field_label(_priority, _target),
                            validators=[Length(max=40, message=_l("Höchstens 40 Zeichen."))]))
for _day in range(7):
    setattr(WhatIfForm, f"day{_day}", StringField(WEEKDAY_NAMES[_day],
                                                  validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))]))


def _add_error(form: WhatIfForm, field_name: str | None, message: str) -> None:
    field = getattr(form, field_name, None) if field_name else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)


def _previous_month(today: date) -> tuple[int, int]:
    return (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)


@bp.route("/whatif", endpoint="whatif")
@login_required
def whatif_view():
    """Show the what-if form and, once a tenant is chosen, real and proposed compliance side by side."""
    if current_user.role not in WHATIF_ROLES:
        abort(403)
    now = clock.utcnow()
    tenants = db.session.scalars(select(Tenant).order_by(Tenant.name)).all()
    calendars = db.session.scalars(select(Calendar).order_by(Calendar.name)).all()
    submitted = bool(request.args.get("tenant"))
    form = WhatIfForm(request.args if submitted else None)
    form.fill_choices(tenants, calendars)
    tenant = None
    if as_id(form.tenant.data):
        tenant = db.session.get(Tenant, as_id(form.tenant.data))
    if not submitted or tenant is None:
        year, month = _previous_month(now.astimezone(BERLIN).date())
        form.year.data, form.month.data = year, str(month)
        if submitted:
            _add_error(form, "tenant", _("Bitte wählen Sie einen Mandanten."))
        return render_template("reports/whatif.html", form=form, result=None, priorities=PRIORITIES,
                               targets=TARGETS), 422 if submitted else 200
    if "year" not in request.args:
        form.year.data, month = _previous_month(now.astimezone(BERLIN).date())
        form.month.data = str(month)
    starting = whatif.contract_start(tenant) if form.starts_afresh(tenant) else None
    if starting is not None:
        # Start from the tenant's own contract, so submitting it unchanged shows the real figures.
        show_targets(form, starting["targets"])
        form.calendar.data = starting["calendar"]
        for weekday, field in enumerate(form.day_fields()):
            field.data = starting["hours"][weekday]
        form.own_hours.data = False
    form.basis.data = str(tenant.id)
    context = {"form": form, "tenant": tenant, "starting": starting, "priorities": PRIORITIES, "targets": TARGETS}
    if starting is not None and not starting["has_contract"]:
        return render_template("reports/whatif.html", result=None, **context), 200
    result = None
    status = 200
    valid = form.validate()  # first: validate() resets the fields' errors
    targets = form.targets()
    if valid and targets is not None:
        try:
            start, end, label = form.period()
            proposal = whatif.make_proposal(
                targets, form.calendar.data,
                {d: f.data or "" for d, f in enumerate(form.day_fields())} if form.own_hours.data else None,
            )
            result = whatif.what_if(tenant, start, end, proposal, now=now, label=label)
        except DomainError as exc:
            _add_error(form, exc.field, exc.message)
            status = 422
    else:
        status = 422
    return render_template("reports/whatif.html", result=result, **context), status

