"""Track one SLA target (first response, next update, resolution) in business time."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sla.calendar import BusinessCalendar

__all__ = ["TARGETS", "TargetClock"]

TARGETS = ("first_response", "next_update", "resolution")
ZERO = timedelta(0)


def _aware(moment: datetime | None, name: str) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")


@dataclass(frozen=True)
class TargetClock:
    """One target clock: business time used across running segments, paused or stopped.

    State is running (running_since set), paused (neither set) or stopped (stopped_at set).
    Business time of earlier segments is folded into used_before, so pauses cost nothing.
    """

    target: timedelta
    started_at: datetime
    used_before: timedelta = ZERO
    # None means not running; use TargetClock.start() for a clock that runs from the start.
    running_since: datetime | None = None
    stopped_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.target <= ZERO:
            raise ValueError(f"target must be positive, got {self.target}")
        if self.used_before < ZERO:
            raise ValueError(f"used_before must not be negative, got {self.used_before}")
        _aware(self.started_at, "started_at")
        _aware(self.running_since, "running_since")
        _aware(self.stopped_at, "stopped_at")
        if self.stopped_at is not None and self.running_since is not None:
            raise ValueError("a stopped clock cannot be running")

    def _evolve(self, **changes) -> TargetClock:
        """Return a copy with some fields changed, without the checks of __init__.

        Only for changes that keep the invariants (the callers check what they add): the
        dataclasses.replace path re-validated every field and cost most of a clock update.
        """
        clock = object.__new__(TargetClock)
        fields = {"target": self.target, "started_at": self.started_at, "used_before": self.used_before,
                  "running_since": self.running_since, "stopped_at": self.stopped_at}
        fields.update(changes)
        for name, value in fields.items():
            object.__setattr__(clock, name, value)
        return clock

    @classmethod
    def start(cls, target: timedelta, now: datetime) -> TargetClock:
        """Start a clock for a target, running from now."""
        return cls(target=target, started_at=now, running_since=now)

    @property
    def is_running(self) -> bool:
        """Tell whether business time is being consumed."""
        return self.running_since is not None

    @property
    def is_paused(self) -> bool:
        """Tell whether the clock is paused (neither running nor stopped)."""
        return self.running_since is None and self.stopped_at is None

    @property
    def is_stopped(self) -> bool:
        """Tell whether the clock has been stopped."""
        return self.stopped_at is not None

    def used(self, now: datetime, cal: BusinessCalendar) -> timedelta:
        """Return the business time used up to now."""
        if self.running_since is None:
            return self.used_before
        return self.used_before + cal.between(self.running_since, now)

    def remaining(self, now: datetime, cal: BusinessCalendar) -> timedelta:
        """Return the business time left before the target; negative once it is exceeded."""
        return self.target - self.used(now, cal)

    def breached(self, now: datetime, cal: BusinessCalendar) -> bool:
        """Tell whether the business time used exceeds the target (exactly at due is still met)."""
        return self.used(now, cal) > self.target

    @property
    def met(self) -> bool | None:
        """Tell whether a stopped clock met its target; None while it is not stopped."""
        if self.stopped_at is None:
            return None
        return self.used_before <= self.target

    def percent_used(self, now: datetime, cal: BusinessCalendar) -> float:
        """Return the business time used as a percentage of the target."""
        return self.used(now, cal) / self.target * 100

    def pause(self, now: datetime, cal: BusinessCalendar) -> TargetClock:
        """Pause the clock, keeping the business time used so far; a no-op unless running."""
        if self.running_since is None:
            return self
        return self._evolve(used_before=self.used(now, cal), running_since=None)

    def resume(self, now: datetime) -> TargetClock:
        """Resume a paused clock from now; a no-op if it runs; ValueError if it is stopped."""
        if self.stopped_at is not None:
            raise ValueError("a stopped clock cannot resume; reopen it")
        if self.running_since is not None:
            return self
        _aware(now, "running_since")
        return self._evolve(running_since=now)

    def stop(self, now: datetime, cal: BusinessCalendar) -> TargetClock:
        """Stop the clock at now, keeping the business time used; a no-op if already stopped."""
        if self.stopped_at is not None:
            return self
        _aware(now, "stopped_at")
        return self._evolve(used_before=self.used(now, cal), running_since=None, stopped_at=now)

    def reopen(self, now: datetime) -> TargetClock:
        """Let a stopped clock run again from the business time already used; a no-op otherwise."""
        if self.stopped_at is None:
            return self
        _aware(now, "running_since")
        return self._evolve(stopped_at=None, running_since=now)

    def with_target(self, target: timedelta) -> TargetClock:
        """Return the clock with a new target and the same business time used (priority change)."""
        if target <= ZERO:
            raise ValueError(f"target must be positive, got {target}")
        return self._evolve(target=target)

    def moment_reaching(self, fraction: float, cal: BusinessCalendar) -> datetime | None:
        """Return when the business time used reaches fraction × target; None unless running.

        If that amount was already used before the current running segment, the exact moment
        is gone (earlier segments are folded), so the start of the segment is returned.
        """
        if self.running_since is None:
            return None
        need = self.target * fraction - self.used_before
        if need < ZERO:
            return self.running_since
        return cal.add(self.running_since, need)

    def due_at(self, cal: BusinessCalendar) -> datetime | None:
        """Return when the target is used up (breach right after it); None unless running."""
        return self.moment_reaching(1, cal)
