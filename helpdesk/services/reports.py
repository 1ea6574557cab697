"""Service level reports per tenant and period: plain grouped queries over the stored SLA facts.

Definitions (shared with the monthly email and the contract what-if, see issue 4):
- A clock (SlaClock row) counts in the period in which its result became final:
  coalesce(decided_at, breached_at) in [start, end). It is BREACHED when breached_at is set (a
  breach is final even if the clock still runs or was decided later), else MET when its outcome
  is "met". Cancelled clocks and running clocks without a breach do not count. Its priority is
  SlaClock.priority (the priority at decision), its tenant SlaClock.tenant_id.
- Business time used: SlaClock.used_seconds of clocks decided (met or breached) in the period.
  Percentiles use the nearest rank: the p-th percentile of n sorted values is the value at rank
  ceil(p / 100 * n); so the median of an even count is the lower of the two middle values.
- Team leads see only clocks and tickets whose ticket.team_id is in their teams (team_ids).
- Per category and team, "met" / "breached" add up the clocks of all three targets, so the
  breached column sums to the number of rows in the list of breaches.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select, union, union_all
from sqlalchemy.orm import aliased

from helpdesk.extensions import db
from helpdesk.models import Category, ReportMonthRollup, SlaClock, SlaPolicy, Team, Tenant, Ticket, User
from helpdesk.models.sla import TARGETS
from helpdesk.models.tickets import OPEN_STATUSES, PRIORITIES
from helpdesk.services.errors import DomainError, Forbidden, NotFound
from helpdesk.services.reporting.rollups import month_of, rebuild

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
PERIOD_KINDS = ("month", "quarter", "year", "custom")
REPORT_ROLES = ("tenant_manager", "team_lead", "service_manager", "admin")
DONE_STATUSES = ("resolved", "closed")  # resolved_at is set exactly in these statuses
MONTH_NAMES = (
    _l("Januar"), _l("Februar"), _l("März"), _l("April"), _l("Mai"), _l("Juni"),
    _l("Juli"), _l("August"), _l("September"), _l("Oktober"), _l("November"), _l("Dezember"),
)
MONTH_ABBREVIATIONS = (
    _l("Jan"), _l("Feb"), _l("Mär"), _l("Apr"), _l("Mai"), _l("Jun"),
    _l("Jul"), _l("Aug"), _l("Sep"), _l("Okt"), _l("Nov"), _l("Dez"),
)
MAX_CUSTOM_DAYS = 3 * 366
OVERVIEW_SORTS = ("name", "opened", "resolved", "backlog", "first_response", "resolution", "breaches")


@dataclass(frozen=True)
class Compliance:
    """Clocks met and breached; the rate is met / (met + breached) in percent."""

    met: int = 0
    breached: int = 0

    @property
    def total(self) -> int:
        """Return the clocks that count: met + breached."""
        return self.met + self.breached

    @property
    def rate(self) -> float | None:
        """Return met / total * 100, None when no clock counts."""
        return self.met / self.total * 100 if self.total else None

    def __add__(self, other: "Compliance") -> "Compliance":
        return Compliance(self.met + other.met, self.breached + other.breached)


@dataclass(frozen=True)
class ServiceLevelReport:
    """The numbers of one tenant (optionally some teams) in one period [start, end)."""

    tenant_id: int
    tenant_name: str
    start: datetime
    end: datetime
    label: str
    goal: float | None
    opened: int
    resolved: int
    backlog: int
    compliance: dict[str, Compliance]
    compliance_by_priority: dict[str, dict[int, Compliance]]
    first_response_median: timedelta | None
    first_response_p90: timedelta | None
    resolution_median: timedelta | None
    resolution_p90: timedelta | None
    by_category: list[dict]
    by_team: list[dict]
    breaches: list[dict]
    trend: list[dict]
    team_ids: tuple[int, ...] | None = None
    tenant_slug: str = ""
    breaches_by_priority: dict[int, int] = field(default_factory=dict)
    breach_total: int | None = None  # all breaches when `breaches` holds only the first ones

    @property
    def breaches_cut(self) -> bool:
        """Tell whether `breaches` holds only the first of the period's breaches."""
        return self.breach_count > len(self.breaches)

    @property
    def last_moment(self) -> datetime:
        """Return the last moment inside the period (for showing the inclusive end date)."""
        return self.end - timedelta(microseconds=1)

    @property
    def breach_count(self) -> int:
        """Return the number of clocks breached in the period."""
        return self.breach_total if self.breach_total is not None else len(self.breaches)


# --- periods ---------------------------------------------------------------------------------

def _local_midnight(day: date) -> datetime:
    """Return Berlin midnight of a calendar day as an aware UTC moment."""
    return datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(UTC)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def month_label(year: int, month: int) -> str:
    """Return "März 2026"."""
    return f"{MONTH_NAMES[month - 1]} {year}"


def period_bounds(kind: str, year: int, number: int | None = None, start: date | None = None,
                  end: date | None = None) -> tuple[datetime, datetime, str]:
    """Return [start, end) in UTC and a label for a month, quarter, year or custom range of Berlin dates.

    kind "month" takes number 1..12, "quarter" 1..4, "year" nothing, "custom" inclusive local dates.
    """
    if kind not in PERIOD_KINDS:
        raise DomainError(_("Bitte wählen Sie die Art des Zeitraums."), field="kind")
    if kind == "custom":
        if start is None or end is None:
            raise DomainError(_("Bitte geben Sie Beginn und Ende des Zeitraums an."),
                              field="start" if start is None else "end")
        for value, field in ((start, "start"), (end, "end")):
            if not date(2000, 1, 1) <= value <= date(2100, 12, 31):
                raise DomainError(_("Bitte wählen Sie ein Datum zwischen 2000 und 2100."), field=field)
        if end < start:
            raise DomainError(_("Das Ende darf nicht vor dem Beginn liegen."), field="end")
        if (end - start).days >= MAX_CUSTOM_DAYS:
            raise DomainError(_("Der Zeitraum darf höchstens drei Jahre umfassen."), field="end")
        label = f"{start:%d.%m.%Y}–{end:%d.%m.%Y}"
        return _local_midnight(start), _local_midnight(end + timedelta(days=1)), label
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise DomainError(_("Bitte geben Sie ein gültiges Jahr an."), field="year")
    if kind == "year":
        return _local_midnight(date(year, 1, 1)), _local_midnight(date(year + 1, 1, 1)), str(year)
    if kind == "quarter":
        if number not in (1, 2, 3, 4):
            raise DomainError(_("Bitte wählen Sie ein Quartal (1 bis 4)."), field="number")
        first = date(year, 3 * number - 2, 1)
        next_year, next_month = _add_months(year, 3 * number - 2, 3)
        return _local_midnight(first), _local_midnight(date(next_year, next_month, 1)), f"Q{number} {year}"
    if number not in range(1, 13):
        raise DomainError(_("Bitte wählen Sie einen Monat (1 bis 12)."), field="number")
    next_year, next_month = _add_months(year, number, 1)
    return (_local_midnight(date(year, number, 1)), _local_midnight(date(next_year, next_month, 1)),
            month_label(year, number))


def previous_month(now: datetime) -> tuple[datetime, datetime, str]:
    """Return the bounds and label of the calendar month (Berlin) before the one containing `now`."""
    local = now.astimezone(BERLIN)
    year, month = _add_months(local.year, local.month, -1)
    return period_bounds("month", year, month)


def trend_months(end: datetime) -> list[tuple[int, int]]:
    """Return the 12 (year, month) pairs ending with the Berlin month that contains end - 1 µs."""
    last = (end - timedelta(microseconds=1)).astimezone(BERLIN)
    return [_add_months(last.year, last.month, offset) for offset in range(-11, 1)]


# --- who sees what ---------------------------------------------------------------------------

def team_ids_of(user: User) -> list[int]:
    """Return the teams a team lead reports on: those they belong to and those they lead."""
    led = db.session.scalars(select(Team.id).where(Team.lead_id == user.id))
    return sorted({team.id for team in user.teams} | set(led))


def report_scope(user: User, tenant: Tenant | None) -> list[int] | None:
    """Decide whether `user` may see reports of `tenant` (None: all tenants side by side).

    Returns None for the full numbers or the team ids a team lead is restricted to; raises
    Forbidden for roles without reports and NotFound for a tenant outside the user's view.
    """
    _require_report_role(user)
    if user.role == "tenant_manager":
        if tenant is None or tenant.id != user.tenant_id:
            raise NotFound(_("Bericht nicht gefunden."))
        return None
    if user.role == "team_lead":
        return team_ids_of(user)
    return None


def _require_report_role(user: User) -> None:
    if user is None or not user.is_authenticated or not user.active or user.role not in REPORT_ROLES:
        raise Forbidden(_("Dafür fehlt Ihnen die Berechtigung."))


def report_tenant(user: User, slug: str) -> tuple[Tenant, list[int] | None]:
    """Return the tenant with this slug and the user's team restriction, or raise like report_scope."""
    _require_report_role(user)  # 403 for requesters and agents before any lookup
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(_("Bericht nicht gefunden."))
    return tenant, report_scope(user, tenant)


# --- query building blocks -------------------------------------------------------------------

def _final_in(start: datetime, end: datetime):
    """SQL: coalesce(decided_at, breached_at) in [start, end), written so indexes on decided_at apply."""
    return or_(
        and_(SlaClock.decided_at >= start, SlaClock.decided_at < end),
        and_(SlaClock.decided_at.is_(None), SlaClock.breached_at >= start, SlaClock.breached_at < end),
    )


def _final_branches(start: datetime, end: datetime):
    """SQL: the two disjoint halves of _final_in, each one range of ix_sla_clock_tenant_decided_report.

    PostgreSQL cannot scan an index once for an OR of two ranges; a UNION ALL of the halves
    reads each range index-only instead of filtering every clock of the tenant.
    """
    return (and_(SlaClock.decided_at >= start, SlaClock.decided_at < end),
            and_(SlaClock.decided_at.is_(None), SlaClock.breached_at >= start, SlaClock.breached_at < end))


def _clock_union(query, tenant_ids, start, end, team_ids):
    """Return `query` filtered like _clock_filter as a UNION ALL of the two halves (rows of both, to be added)."""
    return union_all(*[_clock_filter(query, tenant_ids, start, end, team_ids, final=branch)
                       for branch in _final_branches(start, end)])


def _counted():
    """SQL: the clock has a result that counts (breached, or met)."""
    return or_(SlaClock.breached_at.is_not(None), SlaClock.outcome == "met")


def _clock_filter(query, tenant_ids, start, end, team_ids, final=None):
    query = query.where(SlaClock.target.in_(TARGETS), _final_in(start, end) if final is None else final, _counted())
    if tenant_ids is not None:
        query = query.where(SlaClock.tenant_id.in_(tenant_ids))
    if team_ids is not None:
        query = query.where(Ticket.team_id.in_(team_ids))
    return query


def _ticket_filter(query, tenant_ids, team_ids):
    if tenant_ids is not None:
        query = query.where(Ticket.tenant_id.in_(tenant_ids))
    if team_ids is not None:
        query = query.where(Ticket.team_id.in_(team_ids))
    return query


def _backlog_condition(end: datetime):
    """SQL: created before `end` and not resolved at `end` (resolved_at null or >= end).

    resolved_at is set exactly while the status is resolved or closed, so the two branches
    each use an index: (tenant, status, created_at) and (status, resolved_at).
    """
    return and_(
        Ticket.created_at < end,
        or_(Ticket.status.in_(OPEN_STATUSES), and_(Ticket.status.in_(DONE_STATUSES), Ticket.resolved_at >= end)),
    )


def _resolved_in(start: datetime, end: datetime):
    return and_(Ticket.status.in_(DONE_STATUSES), Ticket.resolved_at >= start, Ticket.resolved_at < end)


def _month_bucket(column, bounds: list[datetime]):
    """SQL: the index 0..11 of the month in `bounds` (13 ascending moments) that `column` falls in."""
    return case(*[(column < bound, index) for index, bound in enumerate(bounds[1:-1])], else_=len(bounds) - 2)


def rollup_months(start: datetime, end: datetime) -> tuple[date, date] | None:
    """Return the first Berlin month of [start, end) and the month after it when both ends are month starts.

    Such periods (months, quarters, years, and custom ranges that happen to be whole months) read their
    counts from the per-month rollups (helpdesk.models.rollups) instead of grouping the raw rows.
    """
    first, after = month_of(start), month_of(end)
    if after <= first or _local_midnight(first) != start or _local_midnight(after) != end:
        return None
    return first, after


def _rollup_sums(months: tuple[date, date], tenant_ids, team_ids, *group):
    """Return rows of `group` columns + sums of opened, resolved, met, breached over the months (one query)."""
    R = ReportMonthRollup
    query = (select(*group, func.sum(R.opened), func.sum(R.resolved), func.sum(R.met), func.sum(R.breached))
             .where(R.month >= months[0], R.month < months[1]))
    if tenant_ids is not None:
        query = query.where(R.tenant_id.in_(tenant_ids))
    if team_ids is not None:
        query = query.where(R.team_id.in_(team_ids))
    return db.session.execute(query.group_by(*group)).all()


def _rollup_backlog(before: date, tenant_ids, team_ids, *group):
    """Return rows of `group` + the backlog at the start of month `before` from the rollups (one query).

    Each ticket adds +1 in the month it was opened and -1 in the month it left the backlog, so the
    sum over all earlier months is exactly _backlog_condition at that moment.
    """
    R = ReportMonthRollup
    query = select(*group, func.sum(R.backlog_change)).where(R.month < before, R.target == "")
    if tenant_ids is not None:
        query = query.where(R.tenant_id.in_(tenant_ids))
    if team_ids is not None:
        query = query.where(R.team_id.in_(team_ids))
    return db.session.execute(query.group_by(*group) if group else query).all()


def _durations(tenant_id: int, start: datetime, end: datetime, team_ids: list[int] | None) -> dict:
    """Return {target: (median, p90)} of the business seconds used by clocks decided in the period.

    PostgreSQL computes the nearest-rank percentiles itself (percentile_disc is exactly the
    nearest rank) from an index-only scan of the report index, so a yearly report does not ship
    100,000 values to Python; SQLite (the small embedded default) sorts the column in Python.
    """
    where = [SlaClock.tenant_id == tenant_id, SlaClock.target.in_(("first_response", "resolution")),
             SlaClock.decided_at >= start, SlaClock.decided_at < end, SlaClock.outcome.in_(("met", "breached"))]
    join = team_ids is not None
    if db.session.get_bind().dialect.name == "postgresql":
        query = select(SlaClock.target,
                       func.percentile_disc(0.5).within_group(SlaClock.used_seconds),
                       func.percentile_disc(0.9).within_group(SlaClock.used_seconds)).where(*where)
        if join:
            query = query.join(Ticket, Ticket.id == SlaClock.ticket_id).where(Ticket.team_id.in_(team_ids))
        found = {target: (median, p90) for target, median, p90 in db.session.execute(query.group_by(SlaClock.target))}
        return {target: found.get(target, (None, None)) for target in ("first_response", "resolution")}
    values: dict[str, list[int]] = {"first_response": [], "resolution": []}
    query = select(SlaClock.target, SlaClock.used_seconds).where(*where)
    if join:
        query = query.join(Ticket, Ticket.id == SlaClock.ticket_id).where(Ticket.team_id.in_(team_ids))
    for target, used in db.session.execute(query):
        values[target].append(used)
    return {target: (percentile(v, 50), percentile(v, 90)) for target, v in values.items()}


def percentile(values: list[int], p: float) -> int | None:
    """Return the nearest-rank p-th percentile of values (None when empty); p=50 gives the lower middle."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _rate_row(name: str, opened: int, resolved: int, compliance: Compliance) -> dict:
    return {"name": name, "opened": opened, "resolved": resolved, "met": compliance.met,
            "breached": compliance.breached, "rate": compliance.rate}


def _goal(tenant_id: int) -> float | None:
    goal = db.session.scalar(select(SlaPolicy.compliance_goal).where(SlaPolicy.tenant_id == tenant_id))
    return float(goal) if goal is not None else None


def _category_tops() -> dict[int, tuple[int, str]]:
    """Return category id -> (top-level id, top-level name) for the whole (small) catalog."""
    rows = db.session.execute(select(Category.id, Category.parent_id, Category.name)).all()
    names = {row.id: row.name for row in rows}
    return {row.id: ((row.parent_id, names[row.parent_id]) if row.parent_id else (row.id, row.name)) for row in rows}


# --- the report ------------------------------------------------------------------------------

def service_level_report(tenant: Tenant, start: datetime, end: datetime, *, team_ids: list[int] | None = None,
                         label: str = "", with_trend: bool = True,
                         breach_limit: int | None = None, use_rollups: bool = True) -> ServiceLevelReport:
    """Compute the service level report of a tenant for [start, end), restricted to teams if given.

    With `breach_limit` only the first breaches are listed (a page shows 500 of a year's 10,000);
    breach_count still tells all of them. Whole months read the counts from the rollups (one query
    instead of three); `use_rollups=False` counts the raw rows (the same figures: tests compare them).
    """
    tenant_ids = [tenant.id]
    team_ids = list(team_ids) if team_ids is not None else None
    months = rollup_months(start, end) if use_rollups else None
    if months is not None:
        opened_rows, resolved_rows, clock_rows = [], [], []
        for team_id, category_id, target, priority, opened, resolved, met, breached in _rollup_sums(
                months, tenant_ids, team_ids, ReportMonthRollup.team_id, ReportMonthRollup.category_id,
                ReportMonthRollup.target, ReportMonthRollup.priority):
            # Rows whose figures cancelled out (a ticket moved away) name nothing, as in the raw counts.
            category_id = category_id or None
            if target == "":
                if opened:
                    opened_rows.append((team_id, category_id, int(opened)))
                if resolved:
                    resolved_rows.append((team_id, category_id, int(resolved)))
            elif met or breached:
                clock_rows.append((target, priority, team_id, category_id, int(met + breached), int(breached)))
        backlog = int(_rollup_backlog(months[1], tenant_ids, team_ids)[0][0] or 0)
    else:
        opened_rows, resolved_rows, clock_rows = _raw_counts(tenant, start, end, tenant_ids, team_ids)
        backlog = db.session.scalar(_ticket_filter(
            select(func.count()).select_from(Ticket).where(_backlog_condition(end)), tenant_ids, team_ids)) or 0
    return _assemble(tenant, start, end, label, team_ids, opened_rows, resolved_rows, clock_rows, backlog,
                     with_trend=with_trend, breach_limit=breach_limit, use_rollups=use_rollups)


def _raw_counts(tenant: Tenant, start: datetime, end: datetime, tenant_ids, team_ids) -> tuple[list, list, list]:
    """Return the opened, resolved and clock rows of the report grouped from the raw rows (three queries)."""
    # Tickets opened and resolved, grouped by team and catalog entry (two grouped queries).
    opened_rows = db.session.execute(_ticket_filter(
        select(Ticket.team_id, Ticket.category_id, func.count())
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .group_by(Ticket.team_id, Ticket.category_id), tenant_ids, team_ids)).all()
    resolved_rows = db.session.execute(_ticket_filter(
        select(Ticket.team_id, Ticket.category_id, func.count())
        .where(_resolved_in(start, end))
        .group_by(Ticket.team_id, Ticket.category_id), tenant_ids, team_ids)).all()

    # Clocks that became final in the period: one grouped query for every compliance figure.
    # (A group can come once from each half of the union; the loop below adds them up.)
    clock_rows = db.session.execute(_clock_union(
        select(SlaClock.target, SlaClock.priority, Ticket.team_id, Ticket.category_id,
               func.count(), func.count(SlaClock.breached_at))
        # A clock has its ticket's tenant (tickets never change tenant): naming it lets the join
        # read only this tenant's tickets from ix_ticket_tenant_created_report, not all of them.
        .join(Ticket, and_(Ticket.id == SlaClock.ticket_id, Ticket.tenant_id == tenant.id))
        .group_by(SlaClock.target, SlaClock.priority, Ticket.team_id, Ticket.category_id),
        tenant_ids, start, end, team_ids)).all()
    return opened_rows, resolved_rows, clock_rows


def _assemble(tenant: Tenant, start: datetime, end: datetime, label: str, team_ids, opened_rows, resolved_rows,
              clock_rows, backlog: int, *, with_trend: bool, breach_limit: int | None,
              use_rollups: bool) -> ServiceLevelReport:
    """Return the report from its grouped counts, with durations, breaches and the trend."""
    compliance = {target: Compliance() for target in TARGETS}
    by_priority = {target: {p: Compliance() for p in PRIORITIES} for target in TARGETS}
    per_team: dict[int, list] = defaultdict(lambda: [0, 0, Compliance()])
    per_category: dict[int | None, list] = defaultdict(lambda: [0, 0, Compliance()])
    tops = _category_tops()

    def top(category_id):
        return tops[category_id][0] if category_id in tops else None

    for team_id, category_id, count in opened_rows:
        per_team[team_id][0] += count
        per_category[top(category_id)][0] += count
    for team_id, category_id, count in resolved_rows:
        per_team[team_id][1] += count
        per_category[top(category_id)][1] += count
    breaches_by_priority = dict.fromkeys(PRIORITIES, 0)
    for target, priority, team_id, category_id, count, breached in clock_rows:
        part = Compliance(count - breached, breached)
        compliance[target] += part
        by_priority[target][priority] = by_priority[target].get(priority, Compliance()) + part
        per_team[team_id][2] += part
        per_category[top(category_id)][2] += part
        breaches_by_priority[priority] = breaches_by_priority.get(priority, 0) + breached

    team_names = dict(db.session.execute(
        select(Team.id, Team.name).where(Team.id.in_([t for t in per_team if t is not None]))).all()) \
        if per_team else {}
    top_names = {top_id: name for top_id, name in tops.values()}
    by_team = sorted(
        (_rate_row(team_names.get(team_id, "?"), *values) for team_id, values in per_team.items()),
        key=lambda row: (-row["opened"], -row["breached"], row["name"]))
    by_category = sorted(
        (_rate_row(top_names.get(category_id) if category_id else _("Ohne Kategorie"), *values)
         for category_id, values in per_category.items()),
        key=lambda row: (-row["opened"], -row["breached"], row["name"]))

    # Business time used by the decided clocks: nearest-rank median and 90th percentile per target.
    durations = _durations(tenant.id, start, end, team_ids)
    breach_total = sum(breaches_by_priority.values())

    return ServiceLevelReport(
        tenant_id=tenant.id, tenant_name=tenant.name, tenant_slug=tenant.slug, start=start, end=end,
        label=label, goal=_goal(tenant.id),
        opened=sum(row[2] for row in opened_rows), resolved=sum(row[2] for row in resolved_rows), backlog=backlog,
        compliance=compliance, compliance_by_priority=by_priority,
        first_response_median=_seconds(durations["first_response"][0]),
        first_response_p90=_seconds(durations["first_response"][1]),
        resolution_median=_seconds(durations["resolution"][0]),
        resolution_p90=_seconds(durations["resolution"][1]),
        by_category=by_category, by_team=by_team,
        breaches=breach_list(tenant.id, start, end, team_ids, limit=breach_limit) if breach_total else [],
        breach_total=breach_total,
        trend=trend(tenant.id, end, team_ids, use_rollups=use_rollups) if with_trend else [],
        team_ids=tuple(team_ids) if team_ids is not None else None,
        breaches_by_priority=breaches_by_priority,
    )


def compliance_of(tenant_id: int, start: datetime, end: datetime) -> tuple[dict, dict]:
    """Return (compliance[target], compliance[target][priority]) of a tenant in [start, end) in one query.

    The same figures as service_level_report's, for callers that need nothing else (the what-if).
    """
    rows = db.session.execute(_clock_union(
        select(SlaClock.target, SlaClock.priority, func.count(), func.count(SlaClock.breached_at))
        .group_by(SlaClock.target, SlaClock.priority), [tenant_id], start, end, None)).all()
    compliance = {target: Compliance() for target in TARGETS}
    by_priority = {target: {p: Compliance() for p in PRIORITIES} for target in TARGETS}
    for target, priority, count, breached in rows:
        part = Compliance(count - breached, breached)
        compliance[target] += part
        by_priority[target][priority] = by_priority[target].get(priority, Compliance()) + part
    return compliance, by_priority


def breach_list(tenant_id: int, start: datetime, end: datetime, team_ids: list[int] | None = None,
                limit: int | None = None) -> list[dict]:
    """Return one row per clock breached in the period, earliest breach first (one query; the first `limit`)."""
    Assignee = aliased(User)
    query = _clock_filter(
        select(Ticket.number, Ticket.subject, SlaClock.priority, SlaClock.target, SlaClock.due_at,
               SlaClock.breached_at, Team.name.label("team"), Assignee.name.label("assignee"))
        .join(Ticket, and_(Ticket.id == SlaClock.ticket_id, Ticket.tenant_id == tenant_id))
        .join(Team, Team.id == Ticket.team_id)
        .outerjoin(Assignee, Assignee.id == Ticket.assignee_id)
        .where(SlaClock.breached_at.is_not(None))
        .order_by(SlaClock.breached_at, Ticket.number, SlaClock.target),
        [tenant_id], start, end, team_ids)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row._mapping) for row in db.session.execute(query)]


def trend(tenant_id: int | None, end: datetime, team_ids: list[int] | None = None, *,
          use_rollups: bool = True) -> list[dict]:
    """Return the 12 calendar months ending with the month of `end`: volumes, rates, breaches.

    Each row: label, start, end, opened, resolved, first_response_rate, resolution_rate (also
    under "first_response" / "resolution"), first_response_compliance, resolution_compliance, breaches.
    One query over the per-month rollups; `use_rollups=False` groups the raw rows (3 queries).
    """
    months = trend_months(end)
    bounds = [_local_midnight(date(y, m, 1)) for y, m in months]
    after_year, after_month = _add_months(*months[-1], 1)
    bounds.append(_local_midnight(date(after_year, after_month, 1)))
    tenant_ids = [tenant_id] if tenant_id is not None else None
    if use_rollups:
        opened, resolved, clocks = _trend_from_rollups(months, tenant_ids, team_ids)
    else:
        opened, resolved, clocks = _trend_from_rows(bounds, tenant_ids, team_ids)
    rows = [{"label": f"{MONTH_ABBREVIATIONS[m - 1]} {y % 100:02d}", "long_label": month_label(y, m),
             "start": bounds[i], "end": bounds[i + 1], "opened": 0, "resolved": 0, "breaches": 0,
             "first_response_compliance": Compliance(), "next_update_compliance": Compliance(),
             "resolution_compliance": Compliance()} for i, (y, m) in enumerate(months)]
    for month, count in opened:
        rows[month]["opened"] += count
    for month, count in resolved:
        rows[month]["resolved"] += count
    for month, target, met, count in clocks:
        part = Compliance(count, 0) if met else Compliance(0, count)
        rows[month][f"{target}_compliance"] += part
        rows[month]["breaches"] += part.breached
    for row in rows:
        for target in ("first_response", "resolution"):
            row[f"{target}_rate"] = row[target] = row[f"{target}_compliance"].rate
    return rows


def _trend_from_rollups(months: list[tuple[int, int]], tenant_ids, team_ids) -> tuple[list, list, list]:
    """Return (month index, count) rows of opened and resolved and (index, target, met?, count) of clocks."""
    index = {date(y, m, 1): i for i, (y, m) in enumerate(months)}
    after = date(*_add_months(*months[-1], 1), 1)
    opened, resolved, clocks = [], [], []
    R = ReportMonthRollup
    for month, target, n_opened, n_resolved, met, breached in _rollup_sums(
            (min(index), after), tenant_ids, team_ids, R.month, R.target):
        i = index[month]
        if target == "":
            opened.append((i, int(n_opened)))
            resolved.append((i, int(n_resolved)))
        else:
            clocks += [(i, target, True, int(met)), (i, target, False, int(breached))]
    return opened, resolved, clocks


def _trend_from_rows(bounds: list[datetime], tenant_ids, team_ids) -> tuple[list, list, list]:
    """The trend's three grouped queries over the raw ticket and clock rows."""

    def grouped(inner) -> list:
        # Group in an outer query: PostgreSQL cannot match a CASE with bound parameters in GROUP BY.
        sub = inner.subquery()
        return db.session.execute(select(*sub.c, func.count()).group_by(*sub.c)).all()

    opened = grouped(_ticket_filter(
        select(_month_bucket(Ticket.created_at, bounds).label("month"))
        .where(Ticket.created_at >= bounds[0], Ticket.created_at < bounds[-1]), tenant_ids, team_ids))
    resolved = grouped(_ticket_filter(
        select(_month_bucket(Ticket.resolved_at, bounds).label("month"))
        .where(_resolved_in(bounds[0], bounds[-1])), tenant_ids, team_ids))
    final = func.coalesce(SlaClock.decided_at, SlaClock.breached_at)
    clock_query = select(_month_bucket(final, bounds).label("month"), SlaClock.target,
                         SlaClock.breached_at.is_(None).label("met"))
    if team_ids is not None:
        clock_query = clock_query.join(Ticket, Ticket.id == SlaClock.ticket_id)
    clocks = grouped(_clock_union(clock_query, tenant_ids, bounds[0], bounds[-1], team_ids))
    return opened, resolved, clocks


def rebuild_rollups(connection) -> None:
    """Recompute the per-month rollups from the raw rows (after bulk loads that bypass the ORM)."""
    rebuild(connection)


# --- all tenants side by side ----------------------------------------------------------------

def tenant_overview(start: datetime, end: datetime, *, team_ids: list[int] | None = None,
                    sort: str = "name", use_rollups: bool = True) -> list[dict]:
    """Return every tenant's volumes, compliance and breaches in [start, end), sorted server side.

    `sort` is one of OVERVIEW_SORTS, optionally with a leading "-" for descending; rows without
    a rate go last either way. Whole months read the volumes and clocks from the rollups (one query);
    other ranges group the raw rows (four queries, the clocks as the two index ranges of _clock_union).
    """
    months = rollup_months(start, end) if use_rollups else None
    opened: dict[int, int] = defaultdict(int)
    resolved: dict[int, int] = defaultdict(int)
    compliance: dict[int, dict[str, Compliance]] = defaultdict(lambda: {t: Compliance() for t in TARGETS})
    if months is not None:
        R = ReportMonthRollup
        for tenant_id, target, n_opened, n_resolved, met, breached in _rollup_sums(
                months, None, team_ids, R.tenant_id, R.target):
            if target == "":
                if n_opened:
                    opened[tenant_id] += int(n_opened)
                if n_resolved:
                    resolved[tenant_id] += int(n_resolved)
            elif met or breached:
                compliance[tenant_id][target] += Compliance(int(met), int(breached))
        backlog = {tenant_id: int(count) for tenant_id, count in _rollup_backlog(
            months[1], None, team_ids, ReportMonthRollup.tenant_id) if count}
    else:
        opened.update(db.session.execute(_ticket_filter(
            select(Ticket.tenant_id, func.count()).where(Ticket.created_at >= start, Ticket.created_at < end)
            .group_by(Ticket.tenant_id), None, team_ids)).all())
        resolved.update(db.session.execute(_ticket_filter(
            select(Ticket.tenant_id, func.count()).where(_resolved_in(start, end))
            .group_by(Ticket.tenant_id), None, team_ids)).all())
        clock_query = select(SlaClock.tenant_id, SlaClock.target, func.count(), func.count(SlaClock.breached_at))
        if team_ids is not None:
            clock_query = clock_query.join(Ticket, Ticket.id == SlaClock.ticket_id)
        # Each half of the union is one index range; a tenant and target can come from both halves.
        union = _clock_union(clock_query.group_by(SlaClock.tenant_id, SlaClock.target), None, start, end,
                             team_ids)
        for tenant_id, target, count, breached in db.session.execute(union).all():
            compliance[tenant_id][target] += Compliance(count - breached, breached)
        backlog = dict(db.session.execute(_ticket_filter(
            select(Ticket.tenant_id, func.count()).where(_backlog_condition(end))
            .group_by(Ticket.tenant_id), None, team_ids)).all())
    goals = {tenant_id: float(goal) for tenant_id, goal in db.session.execute(
        select(SlaPolicy.tenant_id, SlaPolicy.compliance_goal)).all()}
    involved = set(opened) | set(resolved) | set(backlog) | set(compliance)
    tenants = db.session.scalars(
        select(Tenant).where(or_(Tenant.active.is_(True), Tenant.id.in_(involved))).order_by(Tenant.name)).all()
    rows = []
    for tenant in tenants:
        figures = compliance[tenant.id] if tenant.id in compliance else {t: Compliance() for t in TARGETS}
        rows.append({
            "tenant_id": tenant.id, "slug": tenant.slug, "name": tenant.name, "goal": goals.get(tenant.id),
            "opened": opened.get(tenant.id, 0), "resolved": resolved.get(tenant.id, 0),
            "backlog": backlog.get(tenant.id, 0),
            "first_response": figures["first_response"], "next_update": figures["next_update"],
            "resolution": figures["resolution"],
            "first_response_rate": figures["first_response"].rate, "resolution_rate": figures["resolution"].rate,
            "breaches": sum(c.breached for c in figures.values()),
        })
    return sort_overview(rows, sort)


def sort_overview(rows: list[dict], sort: str) -> list[dict]:
    """Sort overview rows by a whitelisted column ("-" prefix: descending); unknown keys sort by name."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in OVERVIEW_SORTS:
        key, descending = "name", False
    if key == "name":
        return sorted(rows, key=lambda r: r["name"].casefold(), reverse=descending)
    value_key = f"{key}_rate" if key in ("first_response", "resolution") else key
    known = [r for r in rows if r[value_key] is not None]
    unknown = [r for r in rows if r[value_key] is None]
    known.sort(key=lambda r: r["name"].casefold())
    known.sort(key=lambda r: r[value_key], reverse=descending)
    return known + sorted(unknown, key=lambda r: r["name"].casefold())


# --- exports ---------------------------------------------------------------------------------

def _number(value: float | None, digits: int = 1) -> str:
    """Format a number for German Excel: decimal comma, empty for None."""
    return "" if value is None else f"{value:.{digits}f}".replace(".", ",")


def _minutes(value: timedelta | int | None) -> str:
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    return _number(seconds / 60)


def _berlin(moment: datetime | None) -> str:
    if not moment:
        return ""
    local = moment.astimezone(BERLIN)  # formatted by hand: strftime costs a tenth of a yearly export
    return f"{local.day:02d}.{local.month:02d}.{local.year:04d} {local.hour:02d}:{local.minute:02d}"


def csv_safe(value):
    """Neutralise a cell a spreadsheet would run as a formula (text from requesters, e.g. subjects)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_text(rows: list[list]) -> str:
    """Return rows as CSV for German Excel: ';' separated, UTF-8 with a byte order mark.

    The file format is the same for every reader (decimal comma too), unlike the pages, which
    follow the reader's language: how a spreadsheet splits and reads a CSV depends on the regional
    settings of the computer it is opened on, not on the language chosen in the helpdesk, and
    the member authorities' computers are set to German. One format also keeps the columns
    stable for whatever reads the exports automatically. Only the labels are translated.
    """
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerows([[csv_safe(cell) for cell in row] for row in rows])
    return buffer.getvalue()


def report_csv(report: ServiceLevelReport, generated_at: datetime) -> str:
    """Return the report's summary numbers as CSV (sections separated by empty lines)."""
    from helpdesk.labels import PRIORITY_LABELS, TARGET_LABELS

    rows: list[list] = [
        [_("Mandant"), report.tenant_name],
        [_("Zeitraum"), report.label, _berlin(report.start), _berlin(report.end)],
        [_("Erstellt"), _berlin(generated_at)],
        [_("Vertragsziel (%)"), _number(report.goal)],
        [],
        [_("Kennzahl"), _("Wert")],
        [_("Eröffnet"), report.opened],
        [_("Gelöst"), report.resolved],
        [_("Offen am Periodenende"), report.backlog],
        [_("Verletzungen"), report.breach_count],
        [_("Erstreaktion Median (Minuten Geschäftszeit)"), _minutes(report.first_response_median)],
        [_("Erstreaktion 90. Perzentil (Minuten Geschäftszeit)"), _minutes(report.first_response_p90)],
        [_("Lösung Median (Minuten Geschäftszeit)"), _minutes(report.resolution_median)],
        [_("Lösung 90. Perzentil (Minuten Geschäftszeit)"), _minutes(report.resolution_p90)],
        [],
        [_("Ziel"), _("Priorität"), _("Eingehalten"), _("Verletzt"), _("Quote (%)")],
    ]
    for target in TARGETS:
        overall = report.compliance[target]
        rows.append([str(TARGET_LABELS[target]), _("alle"), overall.met, overall.breached, _number(overall.rate)])
        for priority, part in sorted(report.compliance_by_priority[target].items()):
            rows.append([str(TARGET_LABELS[target]), str(PRIORITY_LABELS.get(priority, priority)), part.met,
                         part.breached, _number(part.rate)])
    for title, breakdown in ((_("Kategorie"), report.by_category), (_("Team"), report.by_team)):
        rows += [[], [title, _("Eröffnet"), _("Gelöst"), _("Eingehalten"), _("Verletzt"), _("Quote (%)")]]
        rows += [[r["name"], r["opened"], r["resolved"], r["met"], r["breached"], _number(r["rate"])]
                 for r in breakdown]
    if report.trend:
        rows += [[], [_("Monat"), _("Eröffnet"), _("Gelöst"), _("Erstreaktion (%)"), _("Lösung (%)"),
                      _("Verletzungen")]]
        rows += [[str(r["long_label"]), r["opened"], r["resolved"], _number(r["first_response_rate"]),
                  _number(r["resolution_rate"]), r["breaches"]] for r in report.trend]
    return _csv_text(rows)


def _outcome(row_breached_at, outcome, labels: dict | None = None) -> str:
    labels = labels or _outcome_labels()
    if row_breached_at is not None:
        return labels["breached"]
    return labels.get(outcome) or labels["running"]


def _outcome_labels() -> dict[str, str]:
    """Return the outcome words in the reader's language (looked up once per export, not per row)."""
    return {"breached": _("verletzt"), "met": _("eingehalten"), "cancelled": _("entfallen"), "running": _("läuft")}


def ticket_rows(tenant: Tenant, start: datetime, end: datetime, team_ids: list[int] | None = None) -> list[dict]:
    """Return the tickets behind a report: opened, resolved or with a clock final in the period (one query).

    Each row carries the first-response and resolution clock (first cycle) with outcome and
    business seconds used.
    """
    first = aliased(SlaClock)
    resolution = aliased(SlaClock)
    query = (
        select(Ticket.number, Ticket.created_at, Ticket.resolved_at, Ticket.priority, Ticket.category_id,
               Team.name.label("team"),
               first.id.label("fr_id"), first.outcome.label("fr_outcome"), first.breached_at.label("fr_breached_at"),
               first.used_seconds.label("fr_used"), first.decided_at.label("fr_decided_at"),
               resolution.id.label("res_id"), resolution.outcome.label("res_outcome"), resolution.breached_at.label("res_breached_at"),
               resolution.used_seconds.label("res_used"), resolution.decided_at.label("res_decided_at"))
        .join(Team, Team.id == Ticket.team_id)
        .outerjoin(first, and_(first.ticket_id == Ticket.id, first.target == "first_response", first.cycle == 1))
        .outerjoin(resolution, and_(resolution.ticket_id == Ticket.id, resolution.target == "resolution",
                                    resolution.cycle == 1))
        .where(Ticket.tenant_id == tenant.id)
        .order_by(Ticket.created_at, Ticket.number)
    )
    opened = and_(Ticket.created_at >= start, Ticket.created_at < end)
    if db.session.get_bind().dialect.name == "postgresql":
        # The tickets of the period as four index ranges (created, resolved, the two halves of a clock's final
        # moment) joined once, instead of one OR that PostgreSQL answers by filtering all the tenant's tickets.
        in_period = union(
            select(Ticket.id).where(Ticket.tenant_id == tenant.id, opened),
            select(Ticket.id).where(Ticket.tenant_id == tenant.id, _resolved_in(start, end)),
            *_clock_union(select(SlaClock.ticket_id.label("id")), [tenant.id], start, end, None).selects,
        ).subquery("in_period")
        query = query.join(in_period, in_period.c.id == Ticket.id)
    else:
        # SQLite answers the OR itself as a union of index lookups ("multi-index OR").
        with_clock = _clock_filter(select(SlaClock.ticket_id), [tenant.id], start, end, None)
        query = query.where(or_(opened, _resolved_in(start, end), Ticket.id.in_(with_clock)))
    if team_ids is not None:
        query = query.where(Ticket.team_id.in_(team_ids))
    tops = _category_tops()
    labels = _outcome_labels()
    rows = []
    for row in db.session.execute(query):
        rows.append({
            "number": row.number, "created_at": row.created_at, "resolved_at": row.resolved_at,
            "priority": row.priority,
            "category": tops[row.category_id][1] if row.category_id in tops else "",
            "team": row.team,
            "first_response": _outcome(row.fr_breached_at, row.fr_outcome, labels) if row.fr_id else "",
            "first_response_used": row.fr_used if row.fr_decided_at else None,
            "resolution": _outcome(row.res_breached_at, row.res_outcome, labels) if row.res_id else "",
            "resolution_used": row.res_used if row.res_decided_at else None,
        })
    return rows


def tickets_csv(tenant: Tenant, start: datetime, end: datetime, team_ids: list[int] | None = None) -> str:
    """Return the ticket-level rows behind a report as CSV for German Excel (times in Berlin)."""
    header = [_("Nummer"), _("Erstellt"), _("Gelöst"), _("Priorität"), _("Kategorie"), _("Team"),
              _("Erstreaktion"), _("Erstreaktion genutzt (Minuten)"), _("Lösung"), _("Lösung genutzt (Minuten)")]
    rows = [[r["number"], _berlin(r["created_at"]), _berlin(r["resolved_at"]), f"P{r['priority']}", r["category"],
             r["team"], r["first_response"], _minutes(r["first_response_used"]), r["resolution"],
             _minutes(r["resolution_used"])] for r in ticket_rows(tenant, start, end, team_ids)]
    return _csv_text([header] + rows)
