"""The service level report of a tenant and period as JSON (/api/v1/tenants/<slug>/report)."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask.views import MethodView

from helpdesk import clock
from helpdesk.api import bp
from helpdesk.api.auth import api_user
from helpdesk.api.routes import errors
from helpdesk.api.schemas import ReportQuerySchema, ServiceLevelReportSchema
from helpdesk.models.sla import TARGETS
from helpdesk.services import reports


def _period(args: dict) -> tuple[datetime, datetime, str]:
    """Return [start, end) and label of the requested period (default: the previous Berlin month)."""
    if "kind" not in args:
        return reports.previous_month(clock.utcnow())
    return reports.period_bounds(args["kind"], args.get("year"), args.get("number"), args.get("start"),
                                 args.get("end"))


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def report_document(report: reports.ServiceLevelReport, slug: str) -> dict:
    """Return the report as the plain structure ServiceLevelReportSchema dumps."""
    return {
        "tenant": {"id": report.tenant_id, "slug": slug, "name": report.tenant_name},
        "period": {"start": report.start, "end": report.end, "label": report.label},
        "team_ids": list(report.team_ids) if report.team_ids is not None else None,
        "goal": report.goal,
        "opened": report.opened,
        "resolved": report.resolved,
        "backlog": report.backlog,
        "compliance": dict(report.compliance),
        "compliance_by_priority": {
            target: {f"p{priority}": compliance for priority, compliance in by_priority.items()}
            for target, by_priority in report.compliance_by_priority.items()
        },
        "first_response": {"median_seconds": _seconds(report.first_response_median),
                           "p90_seconds": _seconds(report.first_response_p90)},
        "resolution": {"median_seconds": _seconds(report.resolution_median),
                       "p90_seconds": _seconds(report.resolution_p90)},
        "by_category": report.by_category,
        "by_team": report.by_team,
        "breaches": report.breaches,
        "trend": [
            {**row, "compliance": {target: row[f"{target}_compliance"] for target in TARGETS}}
            for row in report.trend
        ],
    }


@bp.route("/tenants/<slug>/report", endpoint="tenant_report")
class TenantReport(MethodView):
    """The service level report of one tenant."""

    @bp.arguments(ReportQuerySchema, location="query")
    @bp.response(200, ServiceLevelReportSchema)
    @errors(401, 403, 404)
    def get(self, args, slug):
        """Return the service level report of a tenant and period (default: the previous calendar month).

        Tenant managers see only their own tenant (another slug: 404), team leads only their teams'
        tickets, service managers and admins everything; requesters and agents get 403.
        Periods follow the Berlin calendar: kind=month&year=2026&number=3, kind=quarter&year=2026&number=1,
        kind=year&year=2026 or kind=custom&start=2026-03-01&end=2026-03-15 (inclusive, at most three years).
        """
        tenant, team_ids = reports.report_tenant(api_user(), slug)
        start, end, label = _period(args)
        report = reports.service_level_report(tenant, start, end, team_ids=team_ids, label=label)
        return report_document(report, tenant.slug)
