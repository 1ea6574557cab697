"""Administration of business calendars and SLA contracts.

Access: the manage blueprint's before_request hook (helpdesk.manage.routes.require_admin) sends
anonymous visitors to the login page and refuses every role but admin with 403, for these URLs too.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from helpdesk import clock
from helpdesk.extensions import db
from helpdesk.durations import format_minutes
from helpdesk.formatting import BERLIN
from helpdesk.manage import bp
from helpdesk.manage.sla_forms import (
    LEVEL_ROWS, OTHER_REGION, RECIPIENT_LABELS, REGION_LABELS, CalendarForm, ContractForm,
)
from helpdesk.models import Calendar, CalendarClosure, SlaPolicy, Tenant, User
from helpdesk.models.sla import TARGETS
from helpdesk.models.tickets import PRIORITIES
from helpdesk.services import sla_admin
from helpdesk.services.errors import DomainError
from helpdesk.services.sla import DEFAULT_HOURS, DEFAULT_LEVELS
from helpdesk.services.ids import as_id, page_number


def _page(query):
    """Paginate a select with the configured page size."""
    return db.paginate(query, page=page_number(request.args.get("page")),
                       per_page=current_app.config["PAGE_SIZE"], error_out=False)


def _add_error(form, field_name: str | None, message: str) -> None:
    """Put a message at a form field, or above the form when there is no such field."""
    field = getattr(form, field_name, None) if field_name else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)


def percent_text(value) -> str:
    """Show a stored percentage the German way: 95, 99,5."""
    return "" if value is None else f"{float(value):g}".replace(".", ",")


# --- calendars -------------------------------------------------------------------------------

@bp.route("/calendars")
def calendars():
    """List the business calendars with hours, holiday region and number of closure days."""
    page = _page(select(Calendar).order_by(Calendar.name, Calendar.id))
    ids = [c.id for c in page.items]
    closures = dict(db.session.execute(
        select(CalendarClosure.calendar_id, func.count()).where(CalendarClosure.calendar_id.in_(ids))
        .group_by(CalendarClosure.calendar_id)
    ).all()) if ids else {}
    contracts = dict(db.session.execute(
        select(SlaPolicy.calendar_id, func.count()).where(SlaPolicy.calendar_id.in_(ids))
        .group_by(SlaPolicy.calendar_id)
    ).all()) if ids else {}
    return render_template(
        "manage/sla_calendars.html", page=page, closures=closures, contracts=contracts,
        summary=sla_admin.hours_summary, region_labels=REGION_LABELS,
    )


def _calendar_data(calendar: Calendar | None) -> dict:
    """Return what the calendar form shows before anything is posted."""
    hours = calendar.hours if calendar else DEFAULT_HOURS
    region = calendar.holiday_region if calendar else "DE-MV"
    data = {f"day{weekday}": sla_admin.format_intervals(hours.get(str(weekday))) for weekday in range(7)}
    data.update(
        name=calendar.name if calendar else "",
        timezone=calendar.timezone if calendar else "Europe/Berlin",
        closures=sla_admin.format_closures(calendar.closures) if calendar else "",
    )
    if region and region not in REGION_LABELS:
        data.update(holiday_region=OTHER_REGION, holiday_region_code=region)
    else:
        data.update(holiday_region=region or "")
    return data


def _render_calendar(form: CalendarForm, calendar: Calendar | None, status: int):
    year = clock.utcnow().astimezone(BERLIN).year
    region = calendar.holiday_region if calendar else form.region()
    return render_template(
        "manage/sla_calendar_form.html", form=form, calendar=calendar, region=region,
        region_labels=REGION_LABELS, years=(year, year + 1), weekdays=sla_admin.WEEKDAYS,
        holidays=sla_admin.public_holidays(region, (year, year + 1)),
    ), status


def _calendar_form(calendar: Calendar | None):
    form = CalendarForm(data=_calendar_data(calendar))
    if not form.validate_on_submit():
        return _render_calendar(form, calendar, 422 if form.is_submitted() else 200)
    # Check every weekday and the closure list, so the admin sees all mistakes at once.
    hours, refused = {}, False
    for weekday, field in enumerate(form.day_fields()):
        try:
            hours[weekday] = sla_admin.parse_intervals(field.data, weekday)
        except DomainError as exc:
            _add_error(form, exc.field, exc.message)
            refused = True
    try:
        closures = sla_admin.parse_closures(form.closures.data)
    except DomainError as exc:
        _add_error(form, exc.field, exc.message)
        refused = True
    if refused:
        return _render_calendar(form, calendar, 422)
    try:
        saved = sla_admin.save_calendar(
            calendar, name=form.name.data, timezone=(form.timezone.data or "").strip(), hours=hours,
            holiday_region=form.region(), closures=closures, now=clock.utcnow(),
        )
    except DomainError as exc:
        field = exc.field
        if field == "holiday_region" and form.holiday_region.data == OTHER_REGION:
            field = "holiday_region_code"
        _add_error(form, field, exc.message)
        return _render_calendar(form, calendar, 422)
    flash(_("Kalender „%(name)s“ gespeichert.", name=saved.name), "success")
    return redirect(url_for("manage.calendar_edit", calendar_id=saved.id))


@bp.route("/calendars/new", methods=["GET", "POST"])
def calendar_new():
    """Create a business calendar."""
    return _calendar_form(None)


@bp.route("/calendars/<int(max=2147483647):calendar_id>", methods=["GET", "POST"])
def calendar_edit(calendar_id: int):
    """Edit a business calendar and show the public holidays of its region."""
    return _calendar_form(db.get_or_404(Calendar, calendar_id))


# --- contracts -------------------------------------------------------------------------------

@bp.route("/contracts")
def contracts():
    """List the tenants with their SLA contract, its calendar and current version."""
    page = _page(select(Tenant).order_by(Tenant.name, Tenant.id))
    ids = [t.id for t in page.items]
    policies = {
        p.tenant_id: p for p in db.session.scalars(
            select(SlaPolicy).where(SlaPolicy.tenant_id.in_(ids))
            .options(joinedload(SlaPolicy.calendar), joinedload(SlaPolicy.current_version))
        )
    } if ids else {}
    return render_template("manage/sla_contracts.html", page=page, policies=policies)


def _render_contract(form: ContractForm, tenant: Tenant, policy: SlaPolicy | None, status: int,
                     level_errors=()):
    versions = list(policy.versions) if policy else []
    creator_ids = {v.created_by_id for v in versions if v.created_by_id}
    creators = {
        u.id: u for u in db.session.scalars(select(User).where(User.id.in_(creator_ids)))
    } if creator_ids else {}
    return render_template(
        "manage/sla_contract_form.html", form=form, tenant=tenant, policy=policy, versions=versions,
        creators=creators, priorities=PRIORITIES, targets=TARGETS, level_rows=LEVEL_ROWS,
        recipient_labels=RECIPIENT_LABELS, level_errors=list(level_errors),
        has_calendars=len(form.calendar.choices) > 1, hours_minutes=format_minutes,
    ), status


@bp.route("/contracts/<int(max=2147483647):tenant_id>", methods=["GET", "POST"])
def contract_edit(tenant_id: int):
    """Set a tenant's SLA contract; changed targets or levels become a new version."""
    tenant = db.get_or_404(Tenant, tenant_id)
    policy = db.session.scalar(
        select(SlaPolicy).where(SlaPolicy.tenant_id == tenant.id)
        .options(joinedload(SlaPolicy.current_version), selectinload(SlaPolicy.versions))
    )
    calendars_offered = list(db.session.scalars(select(Calendar).order_by(Calendar.name)))
    if policy:
        data = {"name": policy.name, "calendar": str(policy.calendar_id),
                "compliance_goal": percent_text(policy.compliance_goal)}
    else:
        data = {"name": _("Servicevertrag %(tenant)s", tenant=tenant.name), "compliance_goal": "95",
                "calendar": str(calendars_offered[0].id) if len(calendars_offered) == 1 else ""}
    form = ContractForm(data=data)
    form.fill_choices(calendars_offered)
    if not form.is_submitted():
        current = policy.current_version if policy else None
        form.load(current.targets if current else {}, current.levels if current else DEFAULT_LEVELS)
    if not form.validate_on_submit():
        return _render_contract(form, tenant, policy, 422 if form.is_submitted() else 200)
    targets = form.targets()  # hours and minutes as typed -> minutes; unreadable ones marked at their field
    if targets is None:
        return _render_contract(form, tenant, policy, 422)
    calendar_id = form.calendar.data or ""
    calendar = db.session.get(Calendar, as_id(calendar_id)) if as_id(calendar_id) else None
    previous_id = policy.current_version_id if policy else None
    try:
        version = sla_admin.save_policy(
            tenant, name=form.name.data, calendar=calendar, compliance_goal=form.compliance_goal.data,
            targets=targets, levels=form.levels(), actor=current_user._get_current_object(),
            now=clock.utcnow(),
        )
    except DomainError as exc:
        if exc.field == "levels":
            return _render_contract(form, tenant, policy, 422, level_errors=[exc.message])
        _add_error(form, exc.field, exc.message)
        return _render_contract(form, tenant, policy, 422)
    if version.id == previous_id:
        flash(_("Vertrag für %(tenant)s gespeichert. Ziele und Eskalationsstufen sind unverändert; "
                "es gilt weiter Version %(v)d.", tenant=tenant.name, v=version.version), "success")
    else:
        flash(_("Vertrag für %(tenant)s gespeichert: Version %(v)d gilt ab jetzt für neue Tickets.",
                tenant=tenant.name, v=version.version), "success")
    return redirect(url_for("manage.contracts"))

