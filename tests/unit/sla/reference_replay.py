"""A straightforward replay for comparison: TargetClock's public API, no caches, no shortcuts.

It states the rules of sla.replay as plainly as possible (one immutable clock per state, every
breach check a business time computation), so the fast replay and the what-if service can be
checked against it on random histories. It is slow on purpose; tests only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sla import BusinessCalendar, ClockOutcome, HistoryEvent, TargetClock


@dataclass
class _Run:
    target: str
    cycle: int
    priority: int
    clock: TargetClock
    breached_at: datetime | None = None
    outcome: str | None = None
    decided_at: datetime | None = None


def _whole_seconds(clock: TargetClock) -> TargetClock:
    used = clock.used_before
    return replace(clock, used_before=used - timedelta(microseconds=used.microseconds))


def reference_replay(events: list[HistoryEvent], targets: dict, cal: BusinessCalendar,
                     now: datetime | None = None) -> list[ClockOutcome]:
    """Replay one ticket's events like sla.replay (targets: priority -> {target: timedelta or None})."""
    runs: list[_Run] = []
    state = {"priority": None, "answered": False}

    def target_of(priority, target):
        return (targets.get(priority) or {}).get(target) or None

    def start(target, at):
        allowed = target_of(state["priority"], target)
        if allowed is not None:
            cycle = 1 + max([r.cycle for r in runs if r.target == target], default=0)
            runs.append(_Run(target, cycle, state["priority"], TargetClock.start(allowed, at)))

    def open_run(target):
        found = [r for r in runs if r.target == target and not r.clock.is_stopped]
        return found[-1] if found else None

    def decide(run, at):
        due = run.clock.due_at(cal)
        stopped = run.clock.stop(at, cal)
        run.clock = _whole_seconds(stopped)
        run.outcome = "breached" if stopped.used_before > stopped.target else "met"
        run.decided_at = at
        if run.outcome == "breached" and run.breached_at is None:
            run.breached_at = cal.next_open(due) if due is not None else at

    def look(at):
        for run in runs:
            if run.breached_at is None and run.clock.is_running and run.clock.breached(at, cal):
                run.breached_at = cal.next_open(run.clock.due_at(cal))

    for event in events:
        look(event.at)
        at = event.at
        if event.kind == "created":
            state["priority"] = event.priority
            start("first_response", at)
            start("resolution", at)
        elif event.kind == "public_response":
            state["answered"] = True
            for target in ("first_response", "next_update"):
                run = open_run(target)
                if run is not None:
                    decide(run, at)
        elif event.kind == "requester_message":
            if state["answered"] and open_run("next_update") is None:
                start("next_update", at)
        elif event.kind == "priority":
            state["priority"] = event.priority
            for run in runs:
                allowed = target_of(event.priority, run.target)
                if not run.clock.is_stopped and allowed is not None:
                    run.clock = run.clock.with_target(allowed)
                    run.priority = event.priority
        elif event.kind == "status" and event.old_status != event.new_status:
            old, new = event.old_status, event.new_status
            resolution = next((r for r in runs if r.target == "resolution"), None)
            if new == "pending" and resolution is not None and resolution.clock.is_running:
                resolution.clock = _whole_seconds(resolution.clock.pause(at, cal))
            elif old == "pending" and new in ("open", "new") and resolution is not None \
                    and not resolution.clock.is_stopped:
                resolution.clock = resolution.clock.resume(at)
            if new == "resolved":
                for run in runs:
                    if not run.clock.is_stopped:
                        decide(run, at)
            elif old in ("resolved", "closed") and new == "open" and resolution is not None:
                resolution.clock = resolution.clock.reopen(at)
                resolution.outcome = None
                resolution.decided_at = None
    if now is not None:
        look(now)
    return [
        ClockOutcome(
            target=r.target, cycle=r.cycle, priority=r.priority, started_at=r.clock.started_at,
            target_time=r.clock.target, used=r.clock.used(now, cal) if now is not None else r.clock.used_before,
            outcome=r.outcome, decided_at=r.decided_at, breached_at=r.breached_at,
        )
        for r in runs
    ]
