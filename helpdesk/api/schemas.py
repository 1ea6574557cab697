"""Request and response schemas of the JSON API (marshmallow; flask-smorest turns them into OpenAPI)."""
from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from helpdesk.models.tickets import LEVELS, PRIORITIES, STATUSES
from helpdesk.services.ids import MAX_ID

SLA_TARGETS = ("first_response", "next_update", "resolution")


class ProblemSchema(Schema):
    """An error as RFC 9457 problem details (application/problem+json)."""

    type = fields.String(metadata={"description": "URI identifying the kind of problem"})
    title = fields.String(required=True, metadata={"description": "Short summary of the kind of problem"})
    status = fields.Integer(required=True, metadata={"description": "HTTP status code"})
    detail = fields.String(metadata={"description": "What went wrong with this request"})
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "Messages per request field (validation errors)"},
    )


class RefSchema(Schema):
    """A related object by id and name."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)


class TenantRefSchema(RefSchema):
    """The tenant of a ticket."""

    slug = fields.String(required=True)


class PersonSchema(RefSchema):
    """A user as seen on a ticket."""

    email = fields.String(required=True)


class CategorySchema(Schema):
    """An entry of the service catalog."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    full_name = fields.String(required=True, metadata={"description": 'e.g. "Hardware > Drucker"'})
    parent_id = fields.Integer(allow_none=True)
    description = fields.String(allow_none=True)


class TeamSchema(Schema):
    """A KSM support team."""

    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    name = fields.String(required=True)


class TicketSchema(Schema):
    """A ticket as the caller may see it."""

    number = fields.String(required=True, metadata={"example": "KSM-2026-000123"})
    subject = fields.String(required=True)
    description = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    priority = fields.Integer(required=True, metadata={"description": "1 critical … 4 low"})
    priority_overridden = fields.Boolean(required=True)
    impact = fields.Integer(required=True)
    urgency = fields.Integer(required=True)
    channel = fields.String(required=True)
    tenant = fields.Nested(TenantRefSchema, required=True)
    requester = fields.Nested(PersonSchema, required=True)
    category = fields.Nested(CategorySchema, allow_none=True)
    team = fields.Nested(TeamSchema, required=True)
    assignee = fields.Nested(PersonSchema, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    first_responded_at = fields.AwareDateTime(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    first_response_due_at = fields.AwareDateTime(allow_none=True)
    next_update_due_at = fields.AwareDateTime(allow_none=True)
    resolution_due_at = fields.AwareDateTime(allow_none=True)
    sla_breached = fields.Boolean(required=True)


class TicketPageSchema(Schema):
    """One page of tickets; pass `next_cursor` as `cursor` to get the next page (null: last page)."""

    items = fields.List(fields.Nested(TicketSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class TicketQuerySchema(Schema):
    """Filters and keyset pagination of the ticket list."""

    status = fields.String(validate=validate.OneOf(STATUSES))
    priority = fields.Integer(validate=validate.OneOf(PRIORITIES))
    team = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "team id"})
    tenant = fields.String(validate=validate.Length(min=1, max=40), metadata={"description": "tenant slug or id"})
    category = fields.Integer(validate=validate.Range(min=1, max=MAX_ID),
                              metadata={"description": "category id (a top level also finds its subcategories)"})
    updated_since = fields.AwareDateTime(metadata={"description": "ISO 8601 with offset, e.g. 2026-03-05T09:00:00Z"})
    sort = fields.String(load_default="-updated", validate=validate.OneOf(("-updated", "updated")),
                         metadata={"description": "-updated: most recently changed first; updated: oldest change first"})
    cursor = fields.String(validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))


class TicketCreateSchema(Schema):
    """A new ticket. KSM staff file on behalf of a requester (requester_email or requester_id)."""

    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    category_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    impact = fields.Integer(load_default=2, validate=validate.OneOf(LEVELS), metadata={"description": "1 high … 3 low"})
    urgency = fields.Integer(load_default=2, validate=validate.OneOf(LEVELS), metadata={"description": "1 high … 3 low"})
    requester_email = fields.Email(metadata={"description": "staff only: the requesting person"})
    requester_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "staff only"})


class TicketUpdateSchema(Schema):
    """Changes to a ticket (KSM staff only); fields are applied in this order: category, team, assignee, priority, status."""

    category_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    team_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    assignee_id = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "null unassigns"})
    priority = fields.Integer(validate=validate.OneOf(PRIORITIES))
    reason = fields.String(validate=validate.Length(max=500), metadata={"description": "why the priority was changed"})
    status = fields.String(validate=validate.OneOf(STATUSES))


class CommentSchema(Schema):
    """A public reply or (staff only) an internal note."""

    id = fields.Integer(required=True)
    body = fields.String(required=True)
    internal = fields.Boolean(required=True, attribute="is_internal")
    author = fields.Nested(RefSchema, required=True)
    created_at = fields.AwareDateTime(required=True)


class CommentCreateSchema(Schema):
    """A new comment; internal notes only for KSM staff."""

    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    internal = fields.Boolean(load_default=False)


class AttachmentSchema(Schema):
    """A file of a ticket; download it from content_url."""

    id = fields.Integer(required=True)
    filename = fields.String(required=True)
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    internal = fields.Boolean(required=True)
    comment_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    content_url = fields.String(required=True)


class AttachmentFormSchema(Schema):
    """The non-file part of an attachment upload (multipart/form-data)."""

    internal = fields.Boolean(load_default=False)


class SlaTargetSchema(Schema):
    """One target clock of a ticket."""

    target = fields.String(required=True, validate=validate.OneOf(SLA_TARGETS))
    cycle = fields.Integer(required=True)
    priority = fields.Integer(required=True)
    policy_version = fields.Integer(required=True)
    target_seconds = fields.Integer(required=True, metadata={"description": "allowed business time"})
    used_seconds = fields.Integer(required=True, metadata={"description": "business time used so far"})
    paused_seconds = fields.Integer(required=True, metadata={"description": "business time spent paused"})
    paused = fields.Boolean(required=True)
    running = fields.Boolean(required=True)
    started_at = fields.AwareDateTime(required=True)
    due_at = fields.AwareDateTime(allow_none=True)
    breached = fields.Boolean(required=True)
    breached_at = fields.AwareDateTime(allow_none=True)
    outcome = fields.String(allow_none=True, metadata={"description": "met, breached or cancelled once decided"})
    decided_at = fields.AwareDateTime(allow_none=True)


class SlaDueSchema(Schema):
    """The due moments of the running targets."""

    first_response = fields.AwareDateTime(allow_none=True)
    next_update = fields.AwareDateTime(allow_none=True)
    resolution = fields.AwareDateTime(allow_none=True)


class SlaStateSchema(Schema):
    """A ticket's SLA state: contract version, overall state, due times and each target clock."""

    number = fields.String(required=True)
    policy_version = fields.Integer(allow_none=True, metadata={"description": "null: the tenant has no contract"})
    state = fields.String(required=True, metadata={"description": "ok, warning, breached, paused, met or none"})
    breached = fields.Boolean(required=True)
    paused = fields.Boolean(required=True)
    due = fields.Nested(SlaDueSchema, required=True)
    targets = fields.List(fields.Nested(SlaTargetSchema), required=True)


# --- service level report (helpdesk/api/reports.py) -----------------------------------------------

REPORT_PERIOD_KINDS = ("month", "quarter", "year", "custom")


class ReportQuerySchema(Schema):
    """The period of a service level report; without `kind` the previous calendar month (Europe/Berlin)."""

    kind = fields.String(validate=validate.OneOf(REPORT_PERIOD_KINDS),
                         metadata={"description": "month, quarter, year or custom (start and end)"})
    year = fields.Integer(validate=validate.Range(min=2000, max=2100),
                          metadata={"description": "for month, quarter and year"})
    number = fields.Integer(validate=validate.Range(min=1, max=12),
                            metadata={"description": "month 1..12 or quarter 1..4"})
    start = fields.Date(validate=validate.Range(min=date(2000, 1, 1), max=date(2100, 12, 31)),
                        metadata={"description": "custom: first day (Berlin calendar date, inclusive), YYYY-MM-DD"})
    end = fields.Date(validate=validate.Range(min=date(2000, 1, 1), max=date(2100, 12, 31)),
                      metadata={"description": "custom: last day (inclusive), YYYY-MM-DD; at most three years"})

    @validates_schema
    def _kind_names_the_period(self, data, **kwargs):
        if "kind" not in data and any(name in data for name in ("year", "number", "start", "end")):
            raise ValidationError(_("Bitte wählen Sie die Art des Zeitraums (kind)."), field_name="kind")


class ComplianceSchema(Schema):
    """Clocks met and breached; rate = met / (met + breached) in percent, null when no clock counts."""

    met = fields.Integer(required=True)
    breached = fields.Integer(required=True)
    rate = fields.Float(required=True, allow_none=True)


class ComplianceByTargetSchema(Schema):
    """Compliance per SLA target."""

    first_response = fields.Nested(ComplianceSchema, required=True)
    next_update = fields.Nested(ComplianceSchema, required=True)
    resolution = fields.Nested(ComplianceSchema, required=True)


class ComplianceByPrioritySchema(Schema):
    """Compliance per priority (1 critical … 4 low), keyed by the priority as a string."""

    p1 = fields.Nested(ComplianceSchema, required=True, data_key="1")
    p2 = fields.Nested(ComplianceSchema, required=True, data_key="2")
    p3 = fields.Nested(ComplianceSchema, required=True, data_key="3")
    p4 = fields.Nested(ComplianceSchema, required=True, data_key="4")


class ComplianceByTargetAndPrioritySchema(Schema):
    """Compliance per SLA target and priority."""

    first_response = fields.Nested(ComplianceByPrioritySchema, required=True)
    next_update = fields.Nested(ComplianceByPrioritySchema, required=True)
    resolution = fields.Nested(ComplianceByPrioritySchema, required=True)


class ReportPeriodSchema(Schema):
    """The period [start, end) in UTC, from Berlin calendar dates."""

    start = fields.AwareDateTime(required=True, metadata={"description": "first moment (inclusive)"})
    end = fields.AwareDateTime(required=True, metadata={"description": "end (exclusive)"})
    label = fields.String(required=True, metadata={"example": "März 2026"})


class ReportDurationsSchema(Schema):
    """Business time used by the clocks decided in the period (nearest-rank percentiles; null: none)."""

    median_seconds = fields.Integer(required=True, allow_none=True)
    p90_seconds = fields.Integer(required=True, allow_none=True)


class ReportRowSchema(Schema):
    """Volumes and compliance of one team or top-level category (met/breached sum all three targets)."""

    name = fields.String(required=True)
    opened = fields.Integer(required=True)
    resolved = fields.Integer(required=True)
    met = fields.Integer(required=True)
    breached = fields.Integer(required=True)
    rate = fields.Float(required=True, allow_none=True)


class ReportBreachSchema(Schema):
    """One clock breached in the period."""

    number = fields.String(required=True)
    subject = fields.String(required=True)
    priority = fields.Integer(required=True)
    target = fields.String(required=True, validate=validate.OneOf(SLA_TARGETS))
    due_at = fields.AwareDateTime(required=True, allow_none=True)
    breached_at = fields.AwareDateTime(required=True)
    team = fields.String(required=True)
    assignee = fields.String(required=True, allow_none=True)


class ReportTrendSchema(Schema):
    """One calendar month of the 12-month trend ending with the period's last month."""

    label = fields.String(required=True, metadata={"example": "Mär 26"})
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    opened = fields.Integer(required=True)
    resolved = fields.Integer(required=True)
    breaches = fields.Integer(required=True)
    first_response_rate = fields.Float(required=True, allow_none=True)
    resolution_rate = fields.Float(required=True, allow_none=True)
    compliance = fields.Nested(ComplianceByTargetSchema, required=True)


class ServiceLevelReportSchema(Schema):
    """The service level report of a tenant and period (team leads: only their teams' tickets)."""

    tenant = fields.Nested(TenantRefSchema, required=True)
    period = fields.Nested(ReportPeriodSchema, required=True)
    team_ids = fields.List(fields.Integer(), required=True, allow_none=True,
                           metadata={"description": "null: all teams; else the report counts only these teams"})
    goal = fields.Float(required=True, allow_none=True,
                        metadata={"description": "the contract's compliance goal in percent; null without contract"})
    opened = fields.Integer(required=True, metadata={"description": "tickets created in the period"})
    resolved = fields.Integer(required=True, metadata={"description": "tickets resolved in the period"})
    backlog = fields.Integer(required=True, metadata={"description": "tickets open at the end of the period"})
    compliance = fields.Nested(ComplianceByTargetSchema, required=True)
    compliance_by_priority = fields.Nested(ComplianceByTargetAndPrioritySchema, required=True)
    first_response = fields.Nested(ReportDurationsSchema, required=True)
    resolution = fields.Nested(ReportDurationsSchema, required=True)
    by_category = fields.List(fields.Nested(ReportRowSchema), required=True)
    by_team = fields.List(fields.Nested(ReportRowSchema), required=True)
    breaches = fields.List(fields.Nested(ReportBreachSchema), required=True)
    trend = fields.List(fields.Nested(ReportTrendSchema), required=True)
