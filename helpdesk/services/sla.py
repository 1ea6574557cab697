"""SLA bookkeeping: run each ticket's target clocks on its events and escalate in the sweep.

The arithmetic lives in the pure `sla` package; this module maps between its frozen clocks and
the SlaClock rows, keeps the due times and the next check moment on the ticket, and writes
escalation records and their emails in one transaction.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.orm import joinedload, selectinload

import sla
from helpdesk.extensions import db
from helpdesk.models import (
    Calendar, Escalation, SlaClock, SlaPolicy, SlaPolicyVersion, Team, Tenant, Ticket, TicketEvent, User,
)
from helpdesk.services import notifications

log = logging.getLogger(__name__)

TRACKED_AT_START = ("first_response", "resolution")
DEFAULT_HOURS = {str(d): [["07:00", "16:00"]] for d in range(4)} | {"4": [["07:00", "13:00"]]}
# "assignee" is the assignee or, while the ticket is unassigned, the team lead: a warning for
# nobody in particular must not reach every member of the team.
DEFAULT_LEVELS = [
    {"percent": 75, "recipients": ["assignee"], "business_hours_only": True},
    {"percent": 100, "recipients": ["team_lead", "service_manager"], "business_hours_only": False},
    {"percent": 150, "recipients": ["team_lead", "service_manager", "tenant_contact"], "business_hours_only": False},
]
# The sweep works until no ticket is due, for at most this long per run (a backlog after downtime
# is spread over runs); a ticket whose check fails is retried after 1, 2, 4 … at most 60 minutes.
SWEEP_BUDGET_SECONDS = 120
RETRY_MAX_MINUTES = 60
# Due tickets claimed and checked per transaction (setting SLA_SWEEP_BATCH_SIZE): the statements of
# a sweep grow with the batches, not with the tickets; a failed batch is redone one ticket at a time.
SWEEP_BATCH_SIZE = 100

_calendar_cache: dict[tuple, sla.BusinessCalendar] = {}


def business_calendar(calendar: Calendar) -> sla.BusinessCalendar:
    """Return the pure calendar for a stored one (cached until the row changes)."""
    closed = tuple(sorted(c.day for c in calendar.closures))
    key = (calendar.id, calendar.timezone, repr(sorted(calendar.hours.items())), calendar.holiday_region, closed)
    cached = _calendar_cache.get(key)
    if cached is None:
        cached = sla.BusinessCalendar(
            timezone=calendar.timezone,
            hours={int(day): [tuple(interval) for interval in intervals] for day, intervals in calendar.hours.items()},
            holidays=calendar.holiday_region or None,
            closed=closed,
        )
        if len(_calendar_cache) > 256:
            _calendar_cache.clear()
        _calendar_cache[key] = cached
    return cached


def levels_of(version: SlaPolicyVersion) -> tuple[sla.EscalationLevel, ...]:
    """Return the escalation levels of a contract version as pure values, lowest first."""
    return tuple(
        sla.EscalationLevel(int(level["percent"]), tuple(level["recipients"]), bool(level.get("business_hours_only")))
        for level in sorted(version.levels or [], key=lambda level: int(level["percent"]))
    )


def _policy_for(tenant_id: int) -> SlaPolicy | None:
    return db.session.scalar(select(SlaPolicy).where(SlaPolicy.tenant_id == tenant_id))


def _context(ticket: Ticket) -> tuple[SlaPolicyVersion, sla.BusinessCalendar] | None:
    if ticket.sla_version_id is None:
        return None
    version = db.session.get(SlaPolicyVersion, ticket.sla_version_id)
    return version, business_calendar(version.policy.calendar)


def _domain(row: SlaClock) -> sla.TargetClock:
    return sla.TargetClock(
        target=timedelta(seconds=row.target_seconds),
        started_at=row.started_at,
        used_before=timedelta(seconds=row.used_seconds),
        running_since=row.running_since,
        stopped_at=row.stopped_at,
    )


def _store(row: SlaClock, clock: sla.TargetClock, cal: sla.BusinessCalendar) -> None:
    row.target_seconds = int(clock.target.total_seconds())
    row.used_seconds = int(clock.used_before.total_seconds())
    row.running_since = clock.running_since
    row.stopped_at = clock.stopped_at
    if clock.running_since is not None and clock.stopped_at is None:
        row.due_at = clock.due_at(cal)


def _clocks(ticket: Ticket) -> list[SlaClock]:
    return list(db.session.scalars(
        select(SlaClock).where(SlaClock.ticket_id == ticket.id).order_by(SlaClock.target, SlaClock.cycle)
    ))


def _open_clock(ticket: Ticket, target: str) -> SlaClock | None:
    rows = [c for c in _clocks(ticket) if c.target == target and c.stopped_at is None]
    return rows[-1] if rows else None


def _history(ticket: Ticket, kind: str, now: datetime, *, target: str, note: str | None = None,
             actor: User | None = None, note_code: str | None = None) -> None:
    db.session.add(TicketEvent(ticket_id=ticket.id, actor_id=actor.id if actor else None, created_at=now,
                               kind=kind, field="sla", new_value=target, note=note, note_code=note_code,
                               is_internal=True))


def _start(ticket: Ticket, version: SlaPolicyVersion, cal, target: str, cycle: int, now: datetime) -> SlaClock | None:
    minutes = version.target_minutes(ticket.priority, target)
    if not minutes:
        return None
    clock = sla.TargetClock.start(timedelta(minutes=minutes), now)
    row = SlaClock(ticket_id=ticket.id, tenant_id=ticket.tenant_id, target=target, cycle=cycle,
                   policy_version_id=version.id, priority=ticket.priority, started_at=now,
                   target_seconds=minutes * 60)
    _store(row, clock, cal)
    db.session.add(row)
    return row


def _decide(row: SlaClock, cal, now: datetime, ticket: Ticket) -> None:
    """Stop a clock and store its outcome: met when the business time used is within the target."""
    clock = _domain(row)
    due = clock.due_at(cal) if clock.running_since is not None else row.due_at
    clock = clock.stop(now, cal)
    _store(row, clock, cal)
    used = clock.used(now, cal)
    row.outcome = "breached" if used > clock.target else "met"
    row.decided_at = now
    row.paused_at = None
    if row.outcome == "breached" and row.breached_at is None:
        row.breached_at = breach_moment(due, cal) if due else now
        ticket.sla_breached = True


def breach_moment(due_at: datetime, cal: sla.BusinessCalendar) -> datetime:
    """Return when a clock due at `due_at` starts to exceed its target: the next open moment.

    A target used up exactly at closing time is not exceeded before the next opening, so a
    reply in between still meets it (DESIGN.md: breached when used time exceeds the target).
    """
    return cal.next_open(due_at)


def _evaluate(clock: sla.TargetClock, levels, fired: frozenset[int], now: datetime,
              cal) -> tuple[tuple, tuple, datetime | None]:
    """Return the level to send now, the lower levels to record as skipped and the next moment to look again.

    Levels of 100 % and more fire only once the target is really exceeded (breach_moment), so
    a breach email never goes out for a ticket that can still be answered in time. Of the levels
    ready together only the highest is sent (sla.supersede): no warning after a breach email.
    """
    evaluation = sla.evaluate_levels(clock, levels, fired, now, cal)
    breached = clock.breached(now, cal)
    ready = [level for level in evaluation.due if level.percent < 100 or breached]
    send, skip = sla.supersede(ready, evaluation.waiting, fired)
    moments = [evaluation.next_check_at]
    if not breached and clock.is_running:
        due = clock.due_at(cal)
        if due is not None:
            moments.append(cal.add(due, timedelta(seconds=1)))
    moments = [m for m in moments if m is not None]
    return send, skip, (min(moments) if moments else None)


def start_clocks(ticket: Ticket, now: datetime) -> None:
    """Attach the tenant's current contract version to a new ticket and start its clocks."""
    policy = _policy_for(ticket.tenant_id)
    if policy is None or policy.current_version is None:
        return
    version = policy.current_version
    ticket.sla_version_id = version.id
    cal = business_calendar(policy.calendar)
    db.session.flush()
    for target in TRACKED_AT_START:
        _start(ticket, version, cal, target, 1, now)
    refresh(ticket, now)


def on_public_response(ticket: Ticket, now: datetime) -> None:
    """A KSM user answered publicly: first response and a running next-update clock are met."""
    context = _context(ticket)
    if context is None:
        return
    _version, cal = context
    for target in ("first_response", "next_update"):
        row = _open_clock(ticket, target)
        if row is not None:
            _decide(row, cal, now, ticket)
    refresh(ticket, now)


def on_requester_message(ticket: Ticket, now: datetime) -> None:
    """The requester wrote on an answered ticket: start a next-update clock unless one runs."""
    context = _context(ticket)
    if context is None or ticket.first_responded_at is None or _open_clock(ticket, "next_update"):
        return
    version, cal = context
    cycles = [c.cycle for c in _clocks(ticket) if c.target == "next_update"]
    if _start(ticket, version, cal, "next_update", max(cycles, default=0) + 1, now):
        refresh(ticket, now)


def on_status_change(ticket: Ticket, old: str, new: str, now: datetime) -> None:
    """Pause, resume, stop or reopen the resolution clock as the status moves."""
    context = _context(ticket)
    if context is None or old == new:
        return
    _version, cal = context
    resolution = next((c for c in _clocks(ticket) if c.target == "resolution"), None)
    if new == "pending" and resolution is not None and resolution.is_running:
        _store(resolution, _domain(resolution).pause(now, cal), cal)
        resolution.paused_at = now
        resolution.due_at = None
        _history(ticket, "sla_paused", now, target="resolution")
    elif old == "pending" and new in ("open", "new") and resolution is not None and resolution.stopped_at is None:
        if resolution.paused_at is not None:
            resolution.paused_seconds += int(cal.between(resolution.paused_at, now).total_seconds())
        _store(resolution, _domain(resolution).resume(now), cal)
        resolution.paused_at = None
        _history(ticket, "sla_resumed", now, target="resolution")
    if new == "resolved":
        # The resolution notice is a public message, so open response clocks are decided too.
        for row in _clocks(ticket):
            if row.stopped_at is None:
                if row.paused_at is not None:
                    row.paused_seconds += int(cal.between(row.paused_at, now).total_seconds())
                _decide(row, cal, now, ticket)
    elif old in ("resolved", "closed") and new == "open" and resolution is not None:
        # Reopening continues the same resolution clock from the business time already used.
        _store(resolution, _domain(resolution).reopen(now), cal)
        resolution.outcome = None
        resolution.decided_at = None
        _history(ticket, "sla_resumed", now, target="resolution", note_code="reopened")
    refresh(ticket, now)


def on_priority_change(ticket: Ticket, now: datetime) -> None:
    """Give running clocks the new priority's targets; business time already used is kept."""
    context = _context(ticket)
    if context is None:
        return
    version, cal = context
    for row in _clocks(ticket):
        if row.stopped_at is not None:
            continue
        minutes = version.target_minutes(ticket.priority, row.target)
        if not minutes:
            continue
        clock = _domain(row).with_target(timedelta(minutes=minutes))
        _store(row, clock, cal)
        row.priority = ticket.priority
    refresh(ticket, now)


def _fired_levels(ticket_ids: list[int]) -> dict[tuple[int, str, int], set[int]]:
    """Return the levels fired or skipped so far per (ticket, target, cycle), in one query."""
    fired: dict[tuple[int, str, int], set[int]] = defaultdict(set)
    if ticket_ids:
        for ticket_id, target, cycle, percent in db.session.execute(
                select(Escalation.ticket_id, Escalation.target, Escalation.cycle, Escalation.percent)
                .where(Escalation.ticket_id.in_(ticket_ids))):
            fired[(ticket_id, target, cycle)].add(percent)
    return fired


def _set_check_times(ticket: Ticket, clocks: list[SlaClock], levels, cal,
                     fired: dict[tuple[int, str, int], set[int]], now: datetime) -> None:
    """Copy the running clocks' due times onto the ticket and set when the sweep must look next."""
    dues: dict[str, datetime | None] = dict.fromkeys(sla.TARGETS)
    next_check = None
    for row in clocks:
        if not row.is_running:
            continue
        dues[row.target] = row.due_at
        done = frozenset(fired.get((row.ticket_id, row.target, row.cycle), ()))
        send, skip, later = _evaluate(_domain(row), levels, done, now, cal)
        moment = now if send or skip else later
        if moment is not None and (next_check is None or moment < next_check):
            next_check = moment
    ticket.first_response_due_at = dues["first_response"]
    ticket.next_update_due_at = dues["next_update"]
    ticket.resolution_due_at = dues["resolution"]
    ticket.sla_due_at = min((d for d in dues.values() if d is not None), default=None)
    ticket.sla_next_check_at = max(next_check, now) if next_check else None


def refresh(ticket: Ticket, now: datetime) -> None:
    """Copy the running clocks' due times onto the ticket and set when the sweep must look next."""
    context = _context(ticket)
    if context is None:
        return
    version, cal = context
    db.session.flush()
    _set_check_times(ticket, _clocks(ticket), levels_of(version), cal, _fired_levels([ticket.id]), now)


def _team_leads(ticket: Ticket) -> list[User]:
    """Return the team's lead, or its members with the team lead role when no lead is set."""
    if ticket.team.lead is not None:
        return [ticket.team.lead]
    return [member for member in ticket.team.members if member.role == "team_lead"]


def bounded_list(items: list[str], width: int) -> str:
    """Join items with ", " in at most `width` characters, ending "… (+12)" for those left out."""
    text = ", ".join(items)
    if len(text) <= width:
        return text
    shown = []
    for item in items:
        candidate = ", ".join([*shown, item]) + f" … (+{len(items) - len(shown) - 1})"
        if len(candidate) > width:
            break
        shown.append(item)
    rest = f"… (+{len(items) - len(shown)})"
    return (", ".join(shown) + " " + rest if shown else rest)[:width]


def _column_length(column) -> int:
    return column.property.columns[0].type.length


LevelKey = tuple[int, str, int, int]  # ticket id, target, cycle, percent: what fires once


class _Batch:
    """The tickets one sweep transaction checks: what they need, loaded at once, and what they write.

    check_ticket stages escalation records, history entries and emails here; write() inserts
    the records in one statement that leaves out levels another worker recorded already, and
    only then adds the history and the emails of the levels this transaction recorded.
    """

    def __init__(self, tickets: list[Ticket]):
        self.tickets = {ticket.id: ticket for ticket in tickets}
        ids = list(self.tickets)
        self.clocks: dict[int, list[SlaClock]] = defaultdict(list)
        for row in db.session.scalars(select(SlaClock).where(SlaClock.ticket_id.in_(ids))
                                      .order_by(SlaClock.ticket_id, SlaClock.target, SlaClock.cycle)):
            self.clocks[row.ticket_id].append(row)
        self.fired = _fired_levels(ids)
        version_ids = {t.sla_version_id for t in tickets if t.sla_version_id is not None}
        self.versions: dict[int, SlaPolicyVersion] = {v.id: v for v in db.session.scalars(
            select(SlaPolicyVersion).where(SlaPolicyVersion.id.in_(version_ids)).options(
                joinedload(SlaPolicyVersion.policy).joinedload(SlaPolicy.calendar).selectinload(Calendar.closures))
        )} if version_ids else {}
        self._levels: dict[int, tuple] = {}
        self._people: list | None = None  # loaded when the first email is staged; kept so the session keeps them
        self._service_managers: list[User] | None = None
        self._tenant_contacts: dict[int, list[User]] | None = None
        self.records: list[dict] = []
        self.events: list[tuple[LevelKey | None, dict]] = []
        self.emails: list[tuple[LevelKey, Ticket, list[User], dict]] = []

    def context(self, ticket: Ticket) -> tuple[SlaPolicyVersion, sla.BusinessCalendar, tuple] | None:
        """Return the ticket's contract version, calendar and escalation levels (None without a contract)."""
        version = self.versions.get(ticket.sla_version_id)
        if version is None:
            return None
        if version.id not in self._levels:
            self._levels[version.id] = levels_of(version)
        return version, business_calendar(version.policy.calendar), self._levels[version.id]

    def _load_people(self) -> None:
        """Load the tenants, teams with their leads and members, and assignees of all tickets at once."""
        tickets = self.tickets.values()
        tenant_ids = {t.tenant_id for t in tickets}
        team_ids = {t.team_id for t in tickets if t.team_id is not None}
        assignee_ids = {t.assignee_id for t in tickets if t.assignee_id is not None}
        people: list = list(db.session.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids))))
        if team_ids:
            people += db.session.scalars(select(Team).where(Team.id.in_(team_ids)).options(
                joinedload(Team.lead), selectinload(Team.members))).all()
        if assignee_ids:
            people += db.session.scalars(select(User).where(User.id.in_(assignee_ids))).all()
        self._people = people

    def recipients(self, ticket: Ticket, roles: tuple[str, ...]) -> list[User]:
        """Return the active people the roles of a level name for a ticket, each once."""
        if self._people is None:
            self._load_people()
        people: dict[int, User] = {}
        for role in roles:
            if role == "assignee":
                # Nobody in particular works on an unassigned ticket: its lead is told, not every member.
                assignee = ticket.assignee
                found = [assignee] if assignee is not None and assignee.active else _team_leads(ticket)
            elif role == "team_lead":
                found = _team_leads(ticket)
            elif role == "service_manager":
                if self._service_managers is None:
                    self._service_managers = list(db.session.scalars(select(User).where(
                        User.role == "service_manager", User.active.is_(True)).order_by(User.id)))
                found = self._service_managers
            elif role == "tenant_contact":
                if self._tenant_contacts is None:
                    self._tenant_contacts = defaultdict(list)
                    for user in db.session.scalars(select(User).where(
                            User.role == "tenant_manager", User.active.is_(True),
                            User.tenant_id.in_({t.tenant_id for t in self.tickets.values()})).order_by(User.id)):
                        self._tenant_contacts[user.tenant_id].append(user)
                found = self._tenant_contacts.get(ticket.tenant_id, [])
            else:
                found = []
            for user in found:
                if user is not None and user.active:
                    people[user.id] = user
        return list(people.values())

    def history(self, ticket: Ticket, kind: str, now: datetime, *, target: str, note: str | None = None,
                key: LevelKey | None = None) -> None:
        """Stage a history entry; one tied to a level is written only if this transaction records the level."""
        self.events.append((key, {"ticket_id": ticket.id, "actor_id": None, "created_at": now, "kind": kind,
                                  "field": "sla", "new_value": target, "note": note, "is_internal": True}))

    def escalate(self, ticket: Ticket, row: SlaClock, level: sla.EscalationLevel, clock: sla.TargetClock,
                 cal, now: datetime) -> None:
        """Stage a level that fires: its record, its emails and the history note naming the recipients."""
        key = (ticket.id, row.target, row.cycle, level.percent)
        recipients = self.recipients(ticket, level.recipients)
        addresses = [u.email for u in recipients]
        self.records.append({"ticket_id": ticket.id, "clock_id": row.id, "target": row.target, "cycle": row.cycle,
                             "percent": level.percent, "fired_at": now, "skipped": False,
                             "recipients": bounded_list(addresses, _column_length(Escalation.recipients))})
        over = clock.used(now, cal) - clock.target
        self.emails.append((key, ticket, recipients, {
            "level": level, "target": row.target, "due_at": row.due_at or row.breached_at,
            "over": over if over > timedelta(0) else None, "percent_used": round(clock.percent_used(now, cal)),
        }))
        # The note names the recipients without words, so it reads the same in every language;
        # bounded because a level may reach dozens of people and the column holds 500 characters.
        prefix = f"{level.percent} % → "
        note = bounded_list(addresses, _column_length(TicketEvent.note) - len(prefix)) or "-"
        self.history(ticket, "sla_escalation", now, target=row.target, note=prefix + note, key=key)

    def skip(self, ticket: Ticket, row: SlaClock, level: sla.EscalationLevel, now: datetime) -> None:
        """Stage a level superseded by a higher one as skipped: it counts as done, nobody is emailed."""
        key = (ticket.id, row.target, row.cycle, level.percent)
        self.records.append({"ticket_id": ticket.id, "clock_id": row.id, "target": row.target, "cycle": row.cycle,
                             "percent": level.percent, "fired_at": now, "skipped": True, "recipients": ""})
        self.history(ticket, "sla_escalation_skipped", now, target=row.target, note=f"{level.percent} %", key=key)

    def write(self, now: datetime) -> int:
        """Record the staged levels, then add the history and emails of those recorded here; return levels fired."""
        recorded = _record_levels(self.records)
        events = [event for key, event in self.events if key is None or key in recorded]
        if events:  # a Core insert: one statement for all rows on SQLite too (the ORM inserts row by row there)
            db.session.execute(insert(TicketEvent.__table__), events)
        rows = []
        fired = 0
        for key, ticket, recipients, context in self.emails:
            if key not in recorded:
                continue  # another worker fired this level already
            fired += 1
            dedupe = {u.id: "esc:{}:{}:{}:{}:{}".format(*key, u.id) for u in recipients}
            rows += notifications.outbox_rows(recipients, "escalation", now=now, ticket=ticket,
                                              dedupe_keys=dedupe, **context)
        notifications.add_to_outbox(rows)
        self.records, self.events, self.emails = [], [], []
        return fired


def _record_levels(records: list[dict]) -> set[LevelKey]:
    """Insert escalation records, leaving out those that exist already; return the keys inserted.

    One INSERT … ON CONFLICT DO NOTHING RETURNING per 1,000 rows instead of a savepoint
    per row: the unique constraint on (ticket, target, cycle, percent) keeps a level from firing
    twice when several workers sweep, and RETURNING tells which ones this transaction recorded.
    """
    if not records:
        return set()
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the app runs on PostgreSQL and SQLite only
        raise NotImplementedError(f"idempotent escalation insert for {dialect}")
    table = Escalation.__table__
    statement = (dialect_insert(table)
                 .on_conflict_do_nothing(index_elements=["ticket_id", "target", "cycle", "percent"])
                 .returning(table.c.ticket_id, table.c.target, table.c.cycle, table.c.percent))
    # A list of parameter sets: SQLAlchemy sends them as multi-row INSERTs of up to 1,000 rows
    # ("insertmanyvalues") from one cached compilation and gathers the RETURNING rows of all.
    return {tuple(row) for row in db.session.execute(statement, records)}


_BATCH = "sla_sweep_batch"  # key in db.session.info: the batch the sweep is checking right now


def _check(ticket: Ticket, now: datetime, batch: _Batch) -> int:
    context = batch.context(ticket)
    if context is None:
        ticket.sla_next_check_at = None
        return 0
    _version, cal, levels = context
    clocks = batch.clocks.get(ticket.id, [])
    staged = 0
    for row in clocks:
        if not row.is_running:
            continue
        clock = _domain(row)
        if row.breached_at is None and clock.breached(now, cal):
            row.breached_at = breach_moment(clock.due_at(cal), cal)
            ticket.sla_breached = True
            batch.history(ticket, "sla_breach", now, target=row.target)
        done = batch.fired[(ticket.id, row.target, row.cycle)]
        send, skip, _later = _evaluate(clock, levels, frozenset(done), now, cal)
        for level in skip:
            batch.skip(ticket, row, level, now)
            done.add(level.percent)
        for level in send:
            batch.escalate(ticket, row, level, clock, cal, now)
            done.add(level.percent)
            staged += 1
    _set_check_times(ticket, clocks, levels, cal, batch.fired, now)
    return staged


def check_ticket(ticket: Ticket, now: datetime) -> int:
    """Record breaches, skip superseded levels and fire due escalation levels of one ticket; return levels fired.

    Inside the sweep the ticket's data come from the batch it was claimed with and its writes
    are staged there (the count returned is then the levels staged); on its own it loads and
    writes for itself, in the caller's transaction.
    """
    batch = db.session.info.get(_BATCH)
    if batch is not None and ticket.id in batch.tickets:
        return _check(ticket, now, batch)
    batch = _Batch([ticket])
    _check(ticket, now, batch)
    return batch.write(now)


def _check_batch(tickets: list[Ticket], now: datetime) -> int:
    """Check claimed tickets with their data loaded at once and write what they fired; return levels fired."""
    batch = _Batch(tickets)
    db.session.info[_BATCH] = batch
    try:
        for ticket in tickets:
            check_ticket(ticket, now)
            if ticket.sla_next_check_at is not None and ticket.sla_next_check_at <= now:
                ticket.sla_next_check_at = now + timedelta(minutes=1)  # never spin on one ticket
            ticket.sla_check_failures = 0
        return batch.write(now)
    finally:
        db.session.info.pop(_BATCH, None)


def retry_delay(failures: int) -> timedelta:
    """Return how long a ticket whose check failed `failures` times in a row waits: 1, 2, 4 … 60 minutes."""
    return timedelta(minutes=min(2 ** min(max(failures, 1) - 1, 10), RETRY_MAX_MINUTES))


def _claim(now: datetime, size: int, ticket_id: int | None = None) -> list[Ticket]:
    """Lock up to `size` due tickets, soonest first, skipping those another worker holds."""
    query = select(Ticket).where(Ticket.sla_next_check_at <= now)
    if ticket_id is not None:
        query = query.where(Ticket.id == ticket_id)
    return list(db.session.scalars(
        query.order_by(Ticket.sla_next_check_at, Ticket.id).limit(size).with_for_update(skip_locked=True)))


def _postpone(ticket_id: int, number: str, now: datetime) -> None:
    """Count a failed check of a ticket and move its next check back, in a transaction of its own."""
    failures = (db.session.scalar(
        select(Ticket.sla_check_failures).where(Ticket.id == ticket_id).with_for_update()) or 0) + 1
    delay = retry_delay(failures)
    db.session.execute(update(Ticket).where(Ticket.id == ticket_id).values(
        sla_check_failures=failures, sla_next_check_at=now + delay))
    db.session.commit()
    log.error("sla sweep: ticket %s failed %d time(s) in a row, next check in %d min",
              number, failures, delay.total_seconds() // 60)


def _check_one_by_one(claimed: list[tuple[int, str]], now: datetime, counts: dict[str, int]) -> None:
    """Check the tickets of a failed batch one per transaction, so only the broken one is postponed."""
    for ticket_id, number in claimed:
        tickets = _claim(now, 1, ticket_id)  # still due and not taken by another worker meanwhile?
        if not tickets:
            db.session.rollback()
            continue
        try:
            fired = _check_batch(tickets, now)
            db.session.commit()
        except Exception:
            db.session.rollback()
            _failed(ticket_id, number, now, counts)
            continue
        counts["tickets"] += 1
        counts["escalations"] += fired


def _failed(ticket_id: int, number: str, now: datetime, counts: dict[str, int]) -> None:
    """Log the failed check of a ticket (rolled back already), count it and postpone the ticket."""
    log.exception("sla sweep: check of ticket %s failed", number)
    counts["failed"] += 1
    try:
        _postpone(ticket_id, number, now)
    except Exception:
        db.session.rollback()  # the database itself is in trouble: let the worker log and retry
        raise


def sweep(now: datetime, limit: int | None = None,
          budget_seconds: float | None = SWEEP_BUDGET_SECONDS, batch_size: int | None = None) -> dict[str, int]:
    """Check every ticket whose next SLA check has come, in batches of row-locked tickets, one transaction each.

    Runs until no ticket is due (each is checked at most once: its next check moves past `now`),
    `limit` tickets were taken or `budget_seconds` of wall time are used. A batch takes up to
    `batch_size` tickets (setting SLA_SWEEP_BATCH_SIZE). When a batch fails it is rolled back and
    its tickets are checked one at a time: a ticket whose check raises is logged with its number
    and retried later with a growing delay, the others go on, so one broken ticket never holds up
    the rest.
    """
    size = max(1, batch_size or current_app.config.get("SLA_SWEEP_BATCH_SIZE") or SWEEP_BATCH_SIZE)
    counts = {"tickets": 0, "escalations": 0, "failed": 0}
    deadline = time.monotonic() + budget_seconds if budget_seconds is not None else None
    while limit is None or counts["tickets"] + counts["failed"] < limit:
        if deadline is not None and time.monotonic() > deadline:
            log.warning("sla sweep: time budget of %s s used up; the rest follows in the next run", budget_seconds)
            break
        taken = size if limit is None else min(size, limit - counts["tickets"] - counts["failed"])
        tickets = _claim(now, taken)
        if not tickets:
            db.session.commit()  # ends the claim's transaction; a rollback would also undo a caller's unflushed work
            break
        claimed = [(ticket.id, ticket.number) for ticket in tickets]
        try:
            fired = _check_batch(tickets, now)
            db.session.commit()
        except Exception:
            db.session.rollback()
            if len(claimed) == 1:
                _failed(*claimed[0], now, counts)
            else:
                log.warning("sla sweep: a batch of %d tickets failed; checking them one at a time", len(claimed))
                _check_one_by_one(claimed, now, counts)
            continue
        counts["tickets"] += len(claimed)
        counts["escalations"] += fired
    return counts


def clock_rows(ticket: Ticket) -> list[SlaClock]:
    """Return the ticket's clocks in target order."""
    order = {"first_response": 0, "next_update": 1, "resolution": 2}
    return sorted(_clocks(ticket), key=lambda c: (order.get(c.target, 9), c.cycle))


def clock_views(ticket: Ticket, now: datetime) -> list[dict]:
    """Return each clock with business time used, target and time paused, for the ticket page."""
    context = _context(ticket)
    if context is None:
        return []
    _version, cal = context
    views = []
    for row in clock_rows(ticket):
        paused = timedelta(seconds=row.paused_seconds)
        if row.paused_at is not None:
            paused += cal.between(row.paused_at, now)
        views.append({"row": row, "used": _domain(row).used(now, cal), "target": timedelta(seconds=row.target_seconds),
                      "paused": paused})
    return views


TARGET_ORDER = ("first_response", "next_update", "resolution")


def badges(tickets: list[Ticket], now: datetime) -> dict[int, dict]:
    """Return the SLA badge of each ticket (state, remaining business time) with two queries in all.

    States: ok, warning (past the first warning level), breached, paused (pending), met (decided
    in time), none (no contract). Remaining time counts business time of the tenant's calendar.
    """
    version_ids = {t.sla_version_id for t in tickets if t.sla_version_id}
    versions = {
        v.id: v for v in db.session.scalars(select(SlaPolicyVersion).where(SlaPolicyVersion.id.in_(version_ids)))
    } if version_ids else {}
    policy_ids = {v.policy_id for v in versions.values()}
    policies = {
        p.id: p for p in db.session.scalars(select(SlaPolicy).where(SlaPolicy.id.in_(policy_ids)))
    } if policy_ids else {}
    result = {}
    for ticket in tickets:
        version = versions.get(ticket.sla_version_id)
        if version is None:
            result[ticket.id] = {"state": "none"}
            continue
        cal = business_calendar(policies[version.policy_id].calendar)
        result[ticket.id] = _badge(ticket, version, cal, now)
    return result


def _badge(ticket: Ticket, version: SlaPolicyVersion, cal, now: datetime) -> dict:
    dues = {"first_response": ticket.first_response_due_at, "next_update": ticket.next_update_due_at,
            "resolution": ticket.resolution_due_at}
    running = [(due, target) for target, due in dues.items() if due is not None]
    if not running:
        if ticket.status == "pending":
            return {"state": "paused"}
        return {"state": "breached" if ticket.sla_breached else "met"}
    due, target = min(running)
    remaining = cal.between(now, due) if due >= now else -cal.between(due, now)
    minutes = version.target_minutes(ticket.priority, target) or 0
    warn_percent = min((int(lvl["percent"]) for lvl in version.levels if int(lvl["percent"]) < 100), default=75)
    if remaining < timedelta(0):
        state = "breached"
    elif minutes and remaining <= timedelta(minutes=minutes) * (1 - warn_percent / 100):
        state = "warning"
    else:
        state = "ok"
    return {"state": state, "remaining": remaining, "target": target, "due_at": due}


def badge(ticket: Ticket, now: datetime) -> dict:
    """Return the SLA badge of one ticket."""
    return badges([ticket], now)[ticket.id]
