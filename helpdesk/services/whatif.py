"""Contract what-if: replay a tenant's stored ticket histories under a proposed contract.

The stored history (ticket creation, public replies, requester messages, status and priority
changes) is mapped to pure `sla.HistoryEvent`s and replayed by `sla.replay`, which follows the
live bookkeeping's rules. The replayed clocks are counted with the definitions of the service
level report (helpdesk.services.reports): a clock counts in the period of
coalesce(decided_at, breached_at), breached if it was breached at all, else met if met.

Every ticket of the tenant whose clocks can become final in the period is replayed under the
proposal, also tickets that really ran under an older contract version or without a contract;
the result tells how many there were, because their real figures used other terms.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import ARRAY, DateTime, Integer, and_, any_, bindparam, case, or_, select, type_coerce

import sla
from sla.replay import CREATED, PRIORITY, PUBLIC_RESPONSE, REQUESTER_MESSAGE, STATUS
from helpdesk.durations import DurationError, parse_minutes
from helpdesk.extensions import db
from helpdesk.models import Calendar, SlaPolicy, Tenant, Ticket, TicketEvent, User
from helpdesk.models.sla import TARGETS
from helpdesk.models.tickets import PRIORITIES
from helpdesk.models.users import STAFF_ROLES
from helpdesk.services import sla_admin
from helpdesk.services.errors import DomainError
from helpdesk.services.reports import Compliance, compliance_of
from helpdesk.services.sla import DEFAULT_HOURS, business_calendar
from helpdesk.services.ids import as_id

AROUND_THE_CLOCK = "24/7"
AROUND_THE_CLOCK_HOURS = {str(day): [["00:00", "24:00"]] for day in range(7)}


@dataclass(frozen=True)
class Proposal:
    """A contract to try: minutes per priority and target, and the business calendar to count in."""

    targets: dict[int, dict[str, int | None]]
    calendar: sla.BusinessCalendar
    calendar_label: str

    def target_times(self) -> dict[int, dict[str, timedelta | None]]:
        """Return the targets as business time per priority, for sla.replay."""
        return {p: {t: timedelta(minutes=m) if m else None for t, m in row.items()} for p, row in self.targets.items()}


@dataclass(frozen=True)
class WhatIfRow:
    """One line of the comparison: a target overall (priority None) or at one priority."""

    target: str
    priority: int | None
    real: Compliance
    proposed: Compliance
    tickets: int  # distinct tickets with a counted clock under the proposal

    @property
    def delta(self) -> float | None:
        """Return proposed minus real compliance in percentage points (None if one is unknown)."""
        if self.real.rate is None or self.proposed.rate is None:
            return None
        return self.proposed.rate - self.real.rate


@dataclass(frozen=True)
class WhatIfResult:
    """Real and proposed compliance of a tenant in a period, side by side."""

    tenant_id: int
    tenant_name: str
    start: datetime
    end: datetime
    label: str
    goal: float | None
    calendar_label: str
    rows: list[WhatIfRow]
    tickets_replayed: int
    tickets_other_terms: int  # replayed tickets that really ran without the current contract version

    def row(self, target: str, priority: int | None = None) -> WhatIfRow:
        """Return the row of a target (overall, or at a priority)."""
        return next(r for r in self.rows if r.target == target and r.priority == priority)


# --- the proposal ------------------------------------------------------------------------------

def contract_start(tenant: Tenant) -> dict:
    """Return what the proposal starts from: the tenant's current targets (minutes), calendar and hours.

    Keys: targets (shaped like SlaPolicyVersion.targets; {} without a contract), calendar (the
    form's choice), hours (text per weekday, Monday first), has_contract, version (number or None).
    """
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.tenant_id == tenant.id))
    version = policy.current_version if policy else None
    hours = policy.calendar.hours if policy else DEFAULT_HOURS
    return {
        "targets": dict(version.targets) if version else {},
        "calendar": str(policy.calendar_id) if policy else AROUND_THE_CLOCK,
        "hours": [sla_admin.format_intervals(hours.get(str(d))) for d in range(7)],
        "has_contract": version is not None,
        "version": version.version if version else None,
    }


def current_proposal(tenant: Tenant) -> Proposal | None:
    """Return the tenant's own current contract as a proposal (None without a contract)."""
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.tenant_id == tenant.id))
    if policy is None or policy.current_version is None:
        return None
    targets = {p: {t: policy.current_version.target_minutes(p, t) for t in TARGETS} for p in PRIORITIES}
    return Proposal(targets, business_calendar(policy.calendar), policy.calendar.name)


def make_proposal(targets: dict, calendar_choice: str, hours_text: dict[int, str] | None = None) -> Proposal:
    """Check a proposed contract and build it; raise DomainError naming the refused field.

    targets: {"1": {"first_response": 30, ...}, ...} in business minutes, or as typed ("4 h", "1:30";
    helpdesk.durations), next update optional;
    calendar_choice: a calendar id or "24/7"; hours_text: weekday -> "07:00-16:00" to replace the
    calendar's weekly hours (its holidays and closure days stay).
    """
    clean = sla_admin.validate_targets(_minutes(targets))
    minutes = {int(p): row for p, row in clean.items()}
    if calendar_choice == AROUND_THE_CLOCK:
        stored, hours, region, closed, label = None, AROUND_THE_CLOCK_HOURS, None, [], _("rund um die Uhr (24/7)")
    else:
        stored = db.session.get(Calendar, as_id(calendar_choice)) if as_id(calendar_choice) else None
        if stored is None:
            raise DomainError(_("Bitte wählen Sie einen Kalender."), field="calendar")
        hours, region, label = stored.hours, stored.holiday_region, stored.name
        closed = [c.day for c in stored.closures]
    if hours_text is not None:
        hours = {str(d): sla_admin.parse_intervals(hours_text.get(d, ""), d) for d in range(7)}
        if not any(hours.values()):
            raise DomainError(_("Mindestens ein Wochentag braucht Servicezeiten."), field="day0")
        label = _("%(calendar)s, Servicezeiten %(hours)s", calendar=label, hours=sla_admin.hours_summary(hours))
        calendar = _calendar(stored.timezone if stored else "Europe/Berlin",
                             {int(d): v for d, v in hours.items() if v}, region or None, closed)
    elif stored is not None:
        calendar = business_calendar(stored)
    else:
        calendar = _calendar("Europe/Berlin", {int(d): v for d, v in hours.items()}, None, [])
    return Proposal(minutes, calendar, label)


_calendars: dict[tuple, sla.BusinessCalendar] = {}


def _calendar(timezone: str, hours: dict[int, list], region: str | None, closed) -> sla.BusinessCalendar:
    """Return a proposal's calendar, reused while the same hours are tried again.

    A calendar fills its day and year tables as it is asked; a fresh one per request would
    recompute a year of holidays and opening times for every try of the same hours.
    """
    key = (timezone, tuple(sorted((d, tuple(tuple(i) for i in v)) for d, v in hours.items())), region,
           tuple(sorted(closed)))
    cached = _calendars.get(key)
    if cached is None:
        if len(_calendars) > 64:
            _calendars.clear()
        cached = _calendars[key] = sla.BusinessCalendar(
            timezone=timezone, hours={d: [tuple(i) for i in v] for d, v in hours.items()}, holidays=region,
            closed=closed)
    return cached


def _minutes(targets: dict) -> dict:
    """Read typed durations as minutes; raise DomainError at the first unreadable one."""
    result = {}
    for priority, row in targets.items():
        result[str(priority)] = {}
        for target, value in (row or {}).items():
            try:
                result[str(priority)][target] = parse_minutes(value)
            except DurationError as exc:
                raise DomainError(str(exc), field=f"p{priority}_{target}") from None
    return result


# --- histories from the database ---------------------------------------------------------------

def _candidates(tenant_id: int, start: datetime, end: datetime):
    """SQL: the tenant's tickets whose clocks can become final in [start, end).

    Clocks become final at a decision or a breach, never before the ticket was filed and never
    after its last resolution (resolved_at is cleared on reopening), under any contract.
    """
    return select(Ticket.id).where(
        Ticket.tenant_id == tenant_id, Ticket.created_at < end,
        or_(Ticket.resolved_at.is_(None), Ticket.resolved_at >= start),
    )


# Event codes computed in SQL, so that a year of a large tenant (~500,000 history lines) costs one
# narrow row per line and no ORM entity.
_PRIORITY, _STATUS, _RESPONSE, _MESSAGE = 1, 2, 3, 4


def _history_rows(tenant: Tenant, start: datetime, end: datetime):
    """Return (tickets, events) of the candidates as plain rows (two queries, Core, no ORM entities).

    tickets: (id, created_at, priority, sla_version_id) by id; events: (ticket_id, created_at, code,
    old_value, new_value) in ticket and time order, code one of the _PRIORITY .. _MESSAGE constants.
    """
    candidates = _candidates(tenant.id, start, end)
    connection = db.session.connection()
    ticket_created, event_created = Ticket.created_at, TicketEvent.created_at
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        # For this transaction only: "UTC" is the server's Etc/UTC under the name psycopg maps to
        # datetime.timezone.utc, so timestamps arrive as the UTC datetimes the calendar takes
        # without conversion (no per-value type processing of ~600,000 values); the sort of the
        # history lines stays in memory; JIT compiling (~90 ms at 1M tickets) buys nothing here.
        connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        connection.exec_driver_sql("SET LOCAL jit = off")
        ticket_created = type_coerce(Ticket.created_at, DateTime(timezone=True))
        event_created = type_coerce(TicketEvent.created_at, DateTime(timezone=True))
    tickets = _rows(connection.execute(
        candidates.with_only_columns(Ticket.id, ticket_created, Ticket.priority, Ticket.sla_version_id)
        .order_by(Ticket.id)
    ))
    if postgresql:
        # The ids just read, as one array: a hashed lookup while scanning the history lines, instead of
        # computing the candidates a second time (about half the query's time at 1M tickets).
        of_candidates = TicketEvent.ticket_id == any_(bindparam("ids", [row[0] for row in tickets],
                                                                type_=ARRAY(Integer)))
    else:
        of_candidates = TicketEvent.ticket_id.in_(candidates)
    code = case(
        (and_(TicketEvent.kind == "field", TicketEvent.field == "priority"), _PRIORITY),
        (and_(TicketEvent.kind == "field", TicketEvent.field == "status"), _STATUS),
        (User.role.in_(STAFF_ROLES), _RESPONSE),
        else_=_MESSAGE,
    )
    events = _rows(connection.execute(
        select(TicketEvent.ticket_id, event_created, code, TicketEvent.old_value, TicketEvent.new_value)
        .outerjoin(User, User.id == TicketEvent.actor_id)
        .where(of_candidates, or_(
            and_(TicketEvent.kind == "reply", TicketEvent.is_internal.is_(False), User.role.is_not(None)),
            and_(TicketEvent.kind == "field", TicketEvent.field.in_(("status", "priority"))),
        ))
        .order_by(TicketEvent.ticket_id, TicketEvent.created_at, TicketEvent.id)
    ))
    return tickets, events


def _rows(result) -> list[tuple]:
    """Return all rows of a result; on PostgreSQL as the driver's plain tuples (no Row per line).

    The PostgreSQL selects above need no result processing (raw timestamps, ints, strings).
    """
    if result.dialect.name == "postgresql":
        rows = result.cursor.fetchall()
        result.close()
        return rows
    return result.all()


def _records(tenant: Tenant, start: datetime, end: datetime):
    """Yield (ticket id, stored contract version, replay records) per candidate ticket, in id order.

    The records are sla.replay_records tuples (at, kind, priority, old status, new status). The first
    priority line is the priority the ticket was filed with; later ones are changes.
    """
    tickets, events = _history_rows(tenant, start, end)
    position, count = 0, len(events)
    response = (PUBLIC_RESPONSE, None, None, None)
    message = (REQUESTER_MESSAGE, None, None, None)
    for ticket_id, created_at, priority, version_id in tickets:
        while position < count and events[position][0] < ticket_id:
            position += 1  # lines of tickets that are no candidates (cannot happen: same subquery)
        initial = None
        records = [None]
        while position < count and events[position][0] == ticket_id:
            _ticket, at, code, old, new = events[position]
            position += 1
            if code == _PRIORITY:
                if initial is None:
                    initial = int(new)
                else:
                    records.append((at, PRIORITY, int(new), None, None))
            elif code == _STATUS:
                records.append((at, STATUS, None, old, new))
            elif code == _RESPONSE:
                records.append((at, *response))
            else:
                records.append((at, *message))
        records[0] = (created_at, CREATED, initial if initial is not None else priority, None, None)
        yield ticket_id, version_id, records


def histories(tenant: Tenant, start: datetime, end: datetime) -> tuple[dict[int, list], dict[int, int | None]]:
    """Return each candidate ticket's clock-relevant history and its stored contract version (two queries)."""
    events: dict[int, list[sla.HistoryEvent]] = {}
    versions: dict[int, int | None] = {}
    for ticket_id, version_id, records in _records(tenant, start, end):
        events[ticket_id] = [sla.HistoryEvent(at, kind, priority, old, new) for at, kind, priority, old, new in records]
        versions[ticket_id] = version_id
    return events, versions


# --- counting ------------------------------------------------------------------------------------

def tally(outcomes: Iterable[tuple[int, sla.ClockOutcome]], start: datetime, end: datetime):
    """Count replayed clocks like the report: overall and per priority, plus distinct tickets.

    Returns (compliance[target], compliance_by_priority[target][priority], tickets[(target, priority|None)]).
    """
    counts: dict[tuple[str, int, bool], int] = defaultdict(int)  # (target, priority, breached) -> clocks
    tickets: dict[tuple, set[int]] = defaultdict(set)
    for ticket_id, outcome in outcomes:
        moment = outcome.decided_at or outcome.breached_at
        if moment is None or not start <= moment < end:
            continue
        breached = outcome.breached_at is not None
        if not breached and outcome.outcome != "met":
            continue
        counts[(outcome.target, outcome.priority, breached)] += 1
        tickets[(outcome.target, None)].add(ticket_id)
        tickets[(outcome.target, outcome.priority)].add(ticket_id)
    overall = {t: Compliance() for t in TARGETS}
    by_priority = {t: {p: Compliance() for p in PRIORITIES} for t in TARGETS}
    for (target, priority, breached), number in counts.items():
        part = Compliance(0, number) if breached else Compliance(number, 0)
        overall[target] += part
        row = by_priority[target]
        row[priority] = row.get(priority, Compliance()) + part
    return overall, by_priority, {key: len(ids) for key, ids in tickets.items()}


def replay_tenant(tenant: Tenant, start: datetime, end: datetime, proposal: Proposal, *, now: datetime):
    """Replay every candidate ticket under the proposal; return [(ticket id, outcome)] and the versions."""
    targets = proposal.target_times()
    empty: dict = {}

    def targets_of(priority: int):
        return targets.get(priority) or empty

    calendar = proposal.calendar
    outcomes: list[tuple[int, sla.ClockOutcome]] = []
    versions: dict[int, int | None] = {}
    for ticket_id, version_id, records in _records(tenant, start, end):
        versions[ticket_id] = version_id
        last = records[-1][0]
        for outcome in sla.replay_records(records, targets_of, calendar, now=now if now >= last else last):
            outcomes.append((ticket_id, outcome))
    return outcomes, versions


def what_if(tenant: Tenant, start: datetime, end: datetime, proposal: Proposal, *, now: datetime,
            label: str = "") -> WhatIfResult:
    """Compare the real compliance of a tenant in [start, end) with what the proposal would have given."""
    if start >= now:
        raise DomainError(_("Der Zeitraum muss in der Vergangenheit beginnen."))
    real_compliance, real_by_priority = compliance_of(tenant.id, start, end)
    outcomes, versions = replay_tenant(tenant, start, end, proposal, now=now)
    overall, by_priority, tickets = tally(outcomes, start, end)
    rows = []
    for target in TARGETS:
        rows.append(WhatIfRow(target, None, real_compliance[target], overall[target], tickets.get((target, None), 0)))
        for priority in PRIORITIES:
            rows.append(WhatIfRow(
                target, priority, real_by_priority[target].get(priority, Compliance()),
                by_priority[target][priority], tickets.get((target, priority), 0),
            ))
    counted = {ticket_id for ticket_id, outcome in outcomes
               if outcome.counted_at is not None and start <= outcome.counted_at < end}
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.tenant_id == tenant.id))
    current_id = policy.current_version_id if policy else None
    goal = float(policy.compliance_goal) if policy is not None and policy.compliance_goal is not None else None
    other_terms = sum(1 for ticket_id in counted if versions.get(ticket_id) != current_id or current_id is None)
    return WhatIfResult(
        tenant_id=tenant.id, tenant_name=tenant.name, start=start, end=end, label=label,
        goal=goal, calendar_label=proposal.calendar_label, rows=rows, tickets_replayed=len(versions),
        tickets_other_terms=other_terms,
    )
