"""Service level reports: per tenant and period, all tenants side by side, exports and the manager dashboard.

Who sees what is decided in one place, helpdesk.services.reports.report_scope: tenant managers
their own tenant (any other slug is 404), team leads every tenant restricted to their teams'
tickets, service managers and admins everything; requesters and agents get 403.
"""
from __future__ import annotations

from datetime import datetime

from flask import Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from helpdesk import clock
from helpdesk.reports import bp
from helpdesk.services import charts, reports
from helpdesk.services.errors import DomainError
from helpdesk.services.sla_views import sla_situation
from helpdesk.services.ids import as_id

KIND_LABELS = {"month": _l("Monat"), "quarter": _l("Quartal"), "year": _l("Jahr"), "custom": _l("Zeitraum")}
NEIGHBOUR_LABELS = {
    "month": (_l("vorheriger Monat"), _l("nächster Monat")),
    "quarter": (_l("vorheriges Quartal"), _l("nächstes Quartal")),
    "year": (_l("vorheriges Jahr"), _l("nächstes Jahr")),
}
OVERVIEW_COLUMNS = {
    "name": _l("Mandant"), "opened": _l("Eröffnet"), "resolved": _l("Gelöst"), "backlog": _l("Offen am Ende"),
    "first_response": _l("Erstreaktion"), "resolution": _l("Lösung"), "breaches": _l("Verletzungen"),
}


def _int_or_none(value):
    return as_id(value)


class PeriodForm(FlaskForm):
    """The period of a report (a GET form: no CSRF, nothing changes)."""

    class Meta:
        csrf = False

    kind = SelectField(_l("Art"), choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()], default="month")
    year = IntegerField(_l("Jahr"), validators=[Optional(), NumberRange(2000, 2100)])
    number = SelectField(_l("Monat / Quartal"), coerce=_int_or_none, validate_choice=False)
    start = DateField(_l("Von"), validators=[Optional()])
    end = DateField(_l("Bis (einschließlich)"), validators=[Optional()])

    def fill_choices(self) -> None:
        """Offer months, or quarters when the kind is a quarter."""
        if self.kind.data == "quarter":
            self.number.choices = [SelectChoice(q, f"Q{q}") for q in range(1, 5)]
        else:
            self.number.choices = [SelectChoice(m, reports.MONTH_NAMES[m - 1]) for m in range(1, 13)]


def _period() -> tuple[PeriodForm, tuple[datetime, datetime, str] | None]:
    """Read the period from the query string (default: the previous month); None with errors on the form."""
    if request.args.get("kind"):
        form = PeriodForm(formdata=request.args)
    else:
        start, _end, _label = reports.previous_month(clock.utcnow())
        local = start.astimezone(reports.BERLIN)
        form = PeriodForm(formdata=None, kind="month", year=local.year, number=local.month)
    form.fill_choices()
    if not form.validate():
        return form, None
    try:
        return form, reports.period_bounds(form.kind.data, form.year.data, form.number.data,
                                           form.start.data, form.end.data)
    except DomainError as exc:
        getattr(form, exc.field or "kind").errors.append(exc.message)
        return form, None


def _period_args(form: PeriodForm) -> dict:
    """Return the query arguments that select the form's period (for links to exports and print)."""
    if form.kind.data == "custom":
        return {"kind": "custom", "start": form.start.data.isoformat(), "end": form.end.data.isoformat()}
    args = {"kind": form.kind.data, "year": form.year.data}
    if form.kind.data in ("month", "quarter"):
        args["number"] = form.number.data
    return args


def _neighbours(args: dict) -> tuple[dict | None, dict | None]:
    """Return the query arguments of the previous and the next period of the same kind."""
    kind, year, number = args["kind"], args.get("year"), args.get("number")
    if kind == "year":
        return {**args, "year": year - 1}, {**args, "year": year + 1}
    if kind in ("month", "quarter"):
        last = 12 if kind == "month" else 4
        before = {**args, "year": year - 1, "number": last} if number == 1 else {**args, "number": number - 1}
        after = {**args, "year": year + 1, "number": 1} if number == last else {**args, "number": number + 1}
        return before, after
    return None, None


def _csv_response(text: str, filename: str) -> Response:
    return Response(text.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Content-Type": "text/csv; charset=utf-8"})


def _file_stem(slug: str, start: datetime, kind: str) -> str:
    return f"servicebericht-{slug}-{kind}-{start.astimezone(reports.BERLIN):%Y-%m-%d}"


@bp.route("/")
@login_required
def overview():
    """Show all tenants side by side for a period (team leads: their teams' tickets), sortable."""
    if current_user.role == "tenant_manager":
        return redirect(url_for("reports.report", tenant_slug=current_user.tenant.slug, **request.args.to_dict()))
    team_ids = reports.report_scope(current_user, None)
    form, period = _period()
    sort = request.args.get("sort", "name")
    sort = sort if sort.lstrip("-") in reports.OVERVIEW_SORTS else "name"
    if period is None:
        return render_template("reports/overview.html", form=form, rows=None, sort=sort, columns=OVERVIEW_COLUMNS,
                               team_ids=team_ids), 422
    start, end, label = period
    rows = reports.tenant_overview(start, end, team_ids=team_ids, sort=sort)
    return render_template("reports/overview.html", form=form, rows=rows, sort=sort, columns=OVERVIEW_COLUMNS,
                           label=label, period_args=_period_args(form), team_ids=team_ids)


def _report_page(tenant_slug: str, template: str):
    tenant, team_ids = reports.report_tenant(current_user, tenant_slug)
    form, period = _period()
    if period is None:
        if template != "reports/report.html":
            raise DomainError(_("Der Zeitraum ist ungültig."))
        return render_template(template, form=form, report=None, tenant=tenant), 422
    start, end, label = period
    # The page lists the first 500 breaches (report_body.html); all of them are in the ticket CSV.
    report = reports.service_level_report(tenant, start, end, team_ids=team_ids, label=label, breach_limit=500)
    args = _period_args(form)
    before, after = _neighbours(args)
    return render_template(
        template, form=form, report=report, tenant=tenant, period_args=args, before=before, after=after,
        charts=charts.report_charts(report), generated_at=clock.utcnow(),
        neighbour_labels=NEIGHBOUR_LABELS.get(form.kind.data, ("", "")),
    )


@bp.route("/<tenant_slug>")
@login_required
def report(tenant_slug: str):
    """Show the service level report of one tenant and period with charts and the breached tickets."""
    return _report_page(tenant_slug, "reports/report.html")


@bp.route("/<tenant_slug>/print")
@login_required
def report_print(tenant_slug: str):
    """Show the report as a printable page (the browser prints it or saves it as PDF)."""
    return _report_page(tenant_slug, "reports/report_print.html")


@bp.route("/<tenant_slug>/report.csv")
@login_required
def report_csv(tenant_slug: str):
    """Download the report's summary numbers as CSV for German Excel."""
    tenant, team_ids = reports.report_tenant(current_user, tenant_slug)
    form, period = _period()
    if period is None:
        raise DomainError(_("Der Zeitraum ist ungültig."))
    start, end, label = period
    report = reports.service_level_report(tenant, start, end, team_ids=team_ids, label=label)
    return _csv_response(reports.report_csv(report, clock.utcnow()),
                         _file_stem(tenant.slug, start, form.kind.data) + ".csv")


@bp.route("/<tenant_slug>/tickets.csv")
@login_required
def tickets_csv(tenant_slug: str):
    """Download the tickets behind the report (one row each) as CSV for German Excel."""
    tenant, team_ids = reports.report_tenant(current_user, tenant_slug)
    form, period = _period()
    if period is None:
        raise DomainError(_("Der Zeitraum ist ungültig."))
    start, end, _label = period
    return _csv_response(reports.tickets_csv(tenant, start, end, team_ids),
                         _file_stem(tenant.slug, start, form.kind.data) + "-tickets.csv")


@bp.route("/dashboard")
@login_required
def dashboard():
    """Show a manager what is at risk now and how last month went."""
    own_tenant = current_user.tenant if current_user.role == "tenant_manager" else None
    team_ids = reports.report_scope(current_user, own_tenant)
    now = clock.utcnow()
    situation = sla_situation(current_user, now)
    start, end, label = reports.previous_month(now)
    local = start.astimezone(reports.BERLIN)
    last_month_args = {"kind": "month", "year": local.year, "number": local.month}
    if own_tenant is not None:
        last_month = reports.service_level_report(own_tenant, start, end, label=label, with_trend=False)
        rows = None
    else:
        last_month = None
        rows = reports.tenant_overview(start, end, team_ids=team_ids, sort="-breaches")
    return render_template("reports/dashboard.html", situation=situation, now=now, label=label,
                           last_month=last_month, rows=rows, tenant=own_tenant, team_ids=team_ids,
                           last_month_args=last_month_args)
