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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sla.calendar import BusinessCalendar
from sla.clock import TargetClock

__all__ = [
    "CREATED",
    "PRIORITY",
    "PUBLIC_RESPONSE",
    "REQUESTER_MESSAGE",
    "STATUS",
    "ClockOutcome",
    "HistoryEvent",
    "replay",
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


@dataclass
class _Run:
    target: str
    cycle: int
    priority: int
    clock: TargetClock
    breached_at: datetime | None = None
    outcome: str | None = None
    decided_at: datetime | None = None
    # (clock, its due moment): the due moment of the clock as it is now, computed once per state.
    _due: tuple[TargetClock, datetime | None] | None = None

    @property
    def is_open(self) -> bool:
        return self.clock.stopped_at is None

    def due_at(self, cal: BusinessCalendar) -> datetime | None:
        """Return the running clock's due moment (None unless running), cached until the clock changes."""
        cached = self._due
        if cached is None or cached[0] is not self.clock:
            cached = self._due = (self.clock, self.clock.due_at(cal))
        return cached[1]

    def breached(self, at: datetime, cal: BusinessCalendar) -> bool:
        """Tell whether the running clock has used more than its target at `at` (TargetClock.breached).

        Business time only grows, so up to the due moment the target cannot be exceeded: most
        looks are answered by one comparison instead of a business time computation.
        """
        clock = self.clock
        if clock.used_before <= clock.target:  # else due_at is the segment start, already exceeded
            due = self.due_at(cal)
            if due is not None and at <= due:
                return False
        return clock.breached(at, cal)


def _whole_seconds(clock: TargetClock) -> TargetClock:
    """Drop the fraction of a second from the folded business time, as the stored clocks do."""
    used = clock.used_before
    return replace(clock, used_before=used - timedelta(microseconds=used.microseconds))


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
        cycle = max((r.cycle for r in self.runs if r.target == target), default=0) + 1
        self.runs.append(_Run(target, cycle, self.priority, TargetClock.start(allowed, at)))

    def _open(self, target: str) -> _Run | None:
        rows = [r for r in self.runs if r.target == target and r.is_open]
        return rows[-1] if rows else None

    def _resolution(self) -> _Run | None:
        return next((r for r in self.runs if r.target == "resolution"), None)

    def _decide(self, run: _Run, at: datetime) -> None:
        clock = run.clock
        due = run.due_at(self.cal) if clock.is_running else None
        clock = clock.stop(at, self.cal)
        used = clock.used_before
        run.clock = _whole_seconds(clock)
        run.outcome = "breached" if used > clock.target else "met"
        run.decided_at = at
        if run.outcome == "breached" and run.breached_at is None:
            run.breached_at = self.cal.next_open(due) if due is not None else at

    def look(self, at: datetime) -> None:
        """Record the breach of every running clock whose target is exceeded at `at`."""
        for run in self.runs:
            if run.breached_at is None and run.clock.is_running and run.breached(at, self.cal):
                run.breached_at = self.cal.next_open(run.due_at(self.cal))

    def apply(self, event: HistoryEvent) -> None:
        """Run the clocks on one event."""
        at = event.at
        if event.kind == CREATED:
            self.priority = event.priority
            for target in TRACKED_AT_START:
                self._start(target, at)
        elif event.kind == PUBLIC_RESPONSE:
            self.answered = True
            for target in ("first_response", "next_update"):
                run = self._open(target)
                if run is not None:
                    self._decide(run, at)
        elif event.kind == REQUESTER_MESSAGE:
            if self.answered and self._open("next_update") is None:
                self._start("next_update", at)
        elif event.kind == STATUS:
            self._status(event.old_status, event.new_status, at)
        elif event.kind == PRIORITY:
            self.priority = event.priority
            for run in self.runs:
                allowed = self._target(event.priority, run.target)
                if run.is_open and allowed is not None:
                    run.clock = run.clock.with_target(allowed)
                    run.priority = event.priority

    def _status(self, old: str | None, new: str | None, at: datetime) -> None:
        if old == new:
            return
        resolution = self._resolution()
        if new == "pending" and resolution is not None and resolution.clock.is_running:
            resolution.clock = _whole_seconds(resolution.clock.pause(at, self.cal))
        elif old == "pending" and new in ("open", "new") and resolution is not None and resolution.is_open:
            resolution.clock = resolution.clock.resume(at)
        if new == "resolved":
            for run in self.runs:
                if run.is_open:
                    self._decide(run, at)
        elif old in ("resolved", "closed") and new == "open" and resolution is not None:
            resolution.clock = resolution.clock.reopen(at)
            resolution.outcome = None
            resolution.decided_at = None

    def outcomes(self, now: datetime | None) -> list[ClockOutcome]:
        """Return every clock's outcome; open clocks count their business time until `now`."""
        result = []
        for run in self.runs:
            used = run.clock.used(now, self.cal) if now is not None else run.clock.used_before
            result.append(ClockOutcome(
                target=run.target, cycle=run.cycle, priority=run.priority, started_at=run.clock.started_at,
                target_time=run.clock.target, used=used, outcome=run.outcome, decided_at=run.decided_at,
                breached_at=run.breached_at,
            ))
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
    ticket = _Ticket(_lookup(targets_for_priority), calendar)
    started = False
    last = None
    for event in events:
        if last is not None and event.at < last:
            raise ValueError(f"events must be in time order: {event.at.isoformat()} after {last.isoformat()}")
        last = event.at
        if not started:
            if event.kind != CREATED:
                raise ValueError("a history starts with the creation of the ticket")
            started = True
        elif event.kind == CREATED:
            raise ValueError("a ticket is created only once")
        ticket.look(event.at)
        ticket.apply(event)
    if now is not None:
        if last is not None and now < last:
            raise ValueError("now must not be before the last event")
        ticket.look(now)
    return ticket.outcomes(now)
