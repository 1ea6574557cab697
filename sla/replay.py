"""Replay a ticket's stored history through target clocks under a (possibly proposed) contract.

The rules are the live bookkeeping's, event by event:
- creation starts the first-response and resolution clocks with the targets of the initial
  priority (a target the contract does not agree starts no clock);
- a public reply of a KSM user decides the open first-response and next-update clocks and
  marks the ticket as answered;
- a requester message on an answered ticket starts a next-update clock unless one is open;
- status `pending` pauses the resolution clock, `pending` → `open`/`new` resumes it,
  `resolved` decides every open clock (paused ones too), `resolved`/`closed` → `open` lets
  the resolution clock continue from the business time already used;
- a priority change gives every open clock the new priority's target (if agreed), keeping
  the business time used;
- a running clock is breached once the business time used exceeds its target; the breach
  moment is the next open moment after the due time, and a breach is final. Breaches are
  detected as a scheduler sweeping continuously would: before each event and at `now`.

Business time used is kept in whole seconds whenever a running segment is folded in (pause,
stop), exactly as the stored clocks keep it, so a replay under the contract a ticket really
ran under reproduces the stored outcomes.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sla.calendar import BusinessCalendar
from sla.clock import ZERO, TargetClock

__all__ = [
    "CREATED",
    "PRIORITY",
    "PUBLIC_RESPONSE",
    "REQUESTER_MESSAGE",
    "STATUS",
    "ClockOutcome",
    "HistoryEvent",
    "replay",
    "replay_records",
]

CREATED = "created"
PUBLIC_RESPONSE = "public_response"
REQUESTER_MESSAGE = "requester_message"
STATUS = "status"
PRIORITY = "priority"
KINDS = (CREATED, PUBLIC_RESPONSE, REQUESTER_MESSAGE, STATUS, PRIORITY)
TRACKED_AT_START = ("first_response", "resolution")

Targets = Mapping[int, Mapping[str, "timedelta | None"]] | Callable[[int], Mapping[str, "timedelta | None"]]


@dataclass(frozen=True)
class HistoryEvent:
    """One event of a ticket's history that matters to its clocks."""

    at: datetime
    kind: str
    priority: int | None = None  # created, priority
    old_status: str | None = None  # status
    new_status: str | None = None  # status

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"event time must be timezone-aware, got naive {self.at.isoformat()}")
        if self.kind in (CREATED, PRIORITY) and self.priority is None:
            raise ValueError(f"a {self.kind} event needs a priority")

    @classmethod
    def created(cls, at: datetime, priority: int) -> HistoryEvent:
        """Return the creation of a ticket with its initial priority."""
        return cls(at, CREATED, priority=priority)

    @classmethod
    def public_response(cls, at: datetime) -> HistoryEvent:
        """Return a public reply of a KSM user."""
        return cls(at, PUBLIC_RESPONSE)

    @classmethod
    def requester_message(cls, at: datetime) -> HistoryEvent:
        """Return a message of the requester (or another user of the tenant)."""
        return cls(at, REQUESTER_MESSAGE)

    @classmethod
    def status(cls, at: datetime, old: str, new: str) -> HistoryEvent:
        """Return a status change."""
        return cls(at, STATUS, old_status=old, new_status=new)

    @classmethod
    def priority_change(cls, at: datetime, priority: int) -> HistoryEvent:
        """Return a change of the ticket's priority."""
        return cls(at, PRIORITY, priority=priority)


@dataclass(frozen=True)
class ClockOutcome:
    """Where one replayed target clock ended: decided (met or breached), or still open."""

    target: str
    cycle: int
    priority: int  # at the decision, or now for an open clock
    started_at: datetime
    target_time: timedelta
    used: timedelta  # business time used until the decision (open clocks: until the last look)
    outcome: str | None  # "met" | "breached" | None while open
    decided_at: datetime | None
    breached_at: datetime | None

    @property
    def counted_at(self) -> datetime | None:
        """Return when the result became final: the decision, else the breach (None: not yet)."""
        return self.decided_at or self.breached_at

    @property
    def is_breached(self) -> bool:
        """Tell whether the clock was breached at any time (a breach is final)."""
        return self.breached_at is not None

    @property
    def is_met(self) -> bool:
        """Tell whether the clock was decided in time and never breached."""
        return self.breached_at is None and self.outcome == "met"


class _Run:
    """One replayed target clock: a TargetClock's state kept in place (no object per change).

    The arithmetic is TargetClock's (used = used_before + business time since running_since,
    due = running_since + what is left of the target), on mutable fields, because a year of a
    large tenant is a million state changes. The due moment is cached until the state changes.
    """

    __slots__ = ("target", "cycle", "priority", "target_time", "started_at", "used_before", "running_since",
                 "stopped_at", "breached_at", "outcome", "decided_at", "_due")

    def __init__(self, target: str, cycle: int, priority: int, target_time: timedelta, at: datetime):
        if target_time <= ZERO:
            raise ValueError(f"target must be positive, got {target_time}")
        self.target = target
        self.cycle = cycle
        self.priority = priority
        self.target_time = target_time
        self.started_at = at
        self.used_before = ZERO
        # Kept in UTC: the wall-clock shortcut subtracts it from event times, and two datetimes of the
        # same zone subtract as wall-clock times (an hour off across a DST change).
        self.running_since: datetime | None = _utc(at)
        self.stopped_at: datetime | None = None
        self.breached_at: datetime | None = None
        self.outcome: str | None = None
        self.decided_at: datetime | None = None
        self._due: object = _UNKNOWN

    @property
    def is_open(self) -> bool:
        return self.stopped_at is None

    @property
    def clock(self) -> TargetClock:
        """Return the state as a TargetClock (for callers that want the public type)."""
        return TargetClock(self.target_time, self.started_at, self.used_before, self.running_since, self.stopped_at)

    def used(self, at: datetime, cal: BusinessCalendar) -> timedelta:
        """Return the business time used up to `at` (TargetClock.used)."""
        if self.running_since is None:
            return self.used_before
        return self.used_before + cal.between(self.running_since, at)

    def due_at(self, cal: BusinessCalendar) -> datetime | None:
        """Return the running clock's due moment (None unless running), cached until the state changes."""
        due = self._due
        if due is _UNKNOWN:
            since = self.running_since
            if since is None:
                due = None
            else:
                need = self.target_time - self.used_before
                due = since if need < ZERO else cal.add(since, need)
            self._due = due
        return due  # type: ignore[return-value]

    def breached(self, at: datetime, cal: BusinessCalendar) -> bool:
        """Tell whether the running clock has used more than its target at `at` (TargetClock.breached).

        Business time only grows, so up to the due moment the target cannot be exceeded: most
        looks are answered by one comparison instead of a business time computation.
        """
        if self.used_before <= self.target_time:  # else due_at is the segment start, already exceeded
            # Business time never runs faster than the wall clock: if even the whole elapsed time
            # fits the target, nothing needs the calendar.
            if self.used_before + (at - self.running_since) <= self.target_time:
                return False
            due = self.due_at(cal)
            if due is not None and at <= due:
                return False
        return self.used(at, cal) > self.target_time

    def fold(self, at: datetime, cal: BusinessCalendar) -> timedelta:
        """Fold the running segment into used_before (kept in whole seconds, as the stored clocks do).

        Return the business time used before the fraction of a second was dropped.
        """
        used = self.used(at, cal)
        self.used_before = used - timedelta(microseconds=used.microseconds) if used.microseconds else used
        self.running_since = None
        self._due = _UNKNOWN
        return used


_UNKNOWN = object()
_UTC = timezone.utc


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is _UTC else moment.astimezone(_UTC)


class _Ticket:
    """The clocks of one ticket while its history is replayed."""

    def __init__(self, targets: Callable[[int], Mapping[str, timedelta | None]], cal: BusinessCalendar):
        self.targets = targets
        self.cal = cal
        self.runs: list[_Run] = []
        self.priority: int | None = None
        self.answered = False

    def _target(self, priority: int, target: str) -> timedelta | None:
        value = (self.targets(priority) or {}).get(target)
        return value if value else None

    def _start(self, target: str, at: datetime) -> None:
        allowed = self._target(self.priority, target)
        if allowed is None:
            return
        cycle = 1
        for run in self.runs:
            if run.target == target and run.cycle >= cycle:
                cycle = run.cycle + 1
        self.runs.append(_Run(target, cycle, self.priority, allowed, at))

    def _open(self, target: str) -> _Run | None:
        for run in reversed(self.runs):
            if run.target == target and run.stopped_at is None:
                return run
        return None

    def _resolution(self) -> _Run | None:
        for run in self.runs:
            if run.target == "resolution":
                return run
        return None

    def _decide(self, run: _Run, at: datetime) -> None:
        running = run.running_since is not None
        if running and run.breached_at is None:
            due = run._due if run._due is not _UNKNOWN else _UNKNOWN
            since, before = run.running_since, run.used_before
        used = run.fold(at, self.cal)
        run.stopped_at = at
        run.outcome = "breached" if used > run.target_time else "met"
        run.decided_at = at
        if run.outcome == "breached" and run.breached_at is None:
            if not running:
                run.breached_at = at
            else:
                if due is _UNKNOWN:  # the due moment of the segment just folded (as _Run.due_at)
                    need = run.target_time - before
                    due = since if need < ZERO else self.cal.add(since, need)
                run.breached_at = self.cal.next_open(due)

    def look(self, at: datetime) -> None:
        """Record the breach of every running clock whose target is exceeded at `at`."""
        for run in self.runs:
            since = run.running_since
            if run.breached_at is None and since is not None:
                if run.used_before + (at - since) <= run.target_time:
                    continue  # not even the wall-clock time since the start exceeds the target (see breached)
                if run.breached(at, self.cal):
                    run.breached_at = self.cal.next_open(run.due_at(self.cal))

    def apply(self, kind: str, at: datetime, priority: int | None, old: str | None, new: str | None) -> None:
        """Run the clocks on one event."""
        if kind == CREATED:
            self.priority = priority
            for target in TRACKED_AT_START:
                self._start(target, at)
        elif kind == PUBLIC_RESPONSE:
            self.answered = True
            for target in ("first_response", "next_update"):
                run = self._open(target)
                if run is not None:
                    self._decide(run, at)
        elif kind == REQUESTER_MESSAGE:
            if self.answered and self._open("next_update") is None:
                self._start("next_update", at)
        elif kind == STATUS:
            self._status(old, new, at)
        elif kind == PRIORITY:
            self.priority = priority
            for run in self.runs:
                allowed = self._target(priority, run.target)
                if run.stopped_at is None and allowed is not None:
                    if allowed <= ZERO:
                        raise ValueError(f"target must be positive, got {allowed}")
                    run.target_time = allowed
                    run._due = _UNKNOWN
                    run.priority = priority

    def _status(self, old: str | None, new: str | None, at: datetime) -> None:
        if old == new:
            return
        resolution = self._resolution()
        if new == "pending" and resolution is not None and resolution.running_since is not None:
            resolution.fold(at, self.cal)
        elif (old == "pending" and new in ("open", "new") and resolution is not None
              and resolution.stopped_at is None and resolution.running_since is None):
            resolution.running_since = _utc(at)
            resolution._due = _UNKNOWN
        if new == "resolved":
            for run in self.runs:
                if run.stopped_at is None:
                    self._decide(run, at)
        elif old in ("resolved", "closed") and new == "open" and resolution is not None:
            if resolution.stopped_at is not None:
                resolution.stopped_at = None
                resolution.running_since = _utc(at)
                resolution._due = _UNKNOWN
            resolution.outcome = None
            resolution.decided_at = None

    def outcomes(self, now: datetime | None) -> list[ClockOutcome]:
        """Return every clock's outcome; open clocks count their business time until `now`."""
        result = []
        new = object.__new__
        for run in self.runs:
            used = run.used(now, self.cal) if now is not None else run.used_before
            # ClockOutcome's fields set directly: its generated __init__ sets each through object.__setattr__
            # (frozen), which is a tenth of a large replay; the values are the ones __init__ would store.
            outcome = new(ClockOutcome)
            outcome.__dict__.update(
                target=run.target, cycle=run.cycle, priority=run.priority, started_at=run.started_at,
                target_time=run.target_time, used=used, outcome=run.outcome, decided_at=run.decided_at,
                breached_at=run.breached_at,
            )
            result.append(outcome)
        return result


def _lookup(targets_for_priority: Targets) -> Callable[[int], Mapping[str, timedelta | None]]:
    if callable(targets_for_priority):
        return targets_for_priority
    return lambda priority: targets_for_priority.get(priority) or {}


def replay(
    events: Iterable[HistoryEvent],
    targets_for_priority: Targets,
    calendar: BusinessCalendar,
    *,
    now: datetime | None = None,
) -> list[ClockOutcome]:
    """Replay one ticket's events (creation first, in time order) and return its clocks' outcomes.

    targets_for_priority maps a priority (or is a function of it) to {target: timedelta or None}.
    `now` is the moment the replay looks last for breaches of clocks still running; without it
    only the events' own moments are looked at.
    """
    return _replay(((e.at, e.kind, e.priority, e.old_status, e.new_status) for e in events),
                   _lookup(targets_for_priority), calendar, now)


def replay_records(
    records: Iterable[tuple[datetime, str, int | None, str | None, str | None]],
    targets_for_priority: Targets,
    calendar: BusinessCalendar,
    *,
    now: datetime | None = None,
) -> list[ClockOutcome]:
    """Replay like `replay`, from plain (at, kind, priority, old status, new status) tuples.

    For bulk callers (a year of a tenant): the tuples are checked as HistoryEvent checks its
    fields, without building an object per event.
    """
    return _replay(records, _lookup(targets_for_priority), calendar, now, check=True)


def _replay(records, targets, calendar: BusinessCalendar, now: datetime | None, *,
            check: bool = False) -> list[ClockOutcome]:
    ticket = _Ticket(targets, calendar)
    started = False
    last = None
    for at, kind, priority, old, new in records:
        if check:  # HistoryEvent's own checks, for plain tuples
            if kind not in KINDS:
                raise ValueError(f"unknown event kind {kind!r}")
            if at.tzinfo is not _UTC and (at.tzinfo is None or at.utcoffset() is None):
                raise ValueError(f"event time must be timezone-aware, got naive {at.isoformat()}")
            if priority is None and (kind == CREATED or kind == PRIORITY):
                raise ValueError(f"a {kind} event needs a priority")
        # Compared in UTC: two times of one zone compare as wall-clock times (wrong in the DST fold).
        moment = at if at.tzinfo is _UTC else at.astimezone(_UTC)
        if last is not None and moment < last:
            raise ValueError(f"events must be in time order: {at.isoformat()} after {last.isoformat()}")
        last = moment
        if not started:
            if kind != CREATED:
                raise ValueError("a history starts with the creation of the ticket")
            started = True
        elif kind == CREATED:
            raise ValueError("a ticket is created only once")
        if ticket.runs:
            ticket.look(at)
        ticket.apply(kind, at, priority, old, new)
    if now is not None:
        if last is not None and now < last:
            raise ValueError("now must not be before the last event")
        ticket.look(now)
    return ticket.outcomes(now)
