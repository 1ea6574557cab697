"""Decide which escalation levels of a target clock fire now and when to look again."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sla.calendar import BusinessCalendar
from sla.clock import TargetClock

__all__ = ["DEFAULT_LEVELS", "EscalationLevel", "Evaluation", "evaluate_levels", "next_level_check", "supersede"]


@dataclass(frozen=True)
class EscalationLevel:
    """A threshold as a percentage of a target and who is told when it is reached.

    business_hours_only defaults to True below 100 % (warnings wait for opening hours) and
    False from 100 % on (breach emails go out when the breach happens).
    """

    percent: int
    recipients: tuple[str, ...]
    business_hours_only: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.percent, bool) or not isinstance(self.percent, int) or self.percent <= 0:
            raise ValueError(f"percent must be a positive int, got {self.percent!r}")
        if isinstance(self.recipients, str):
            raise ValueError(f"recipients must be a sequence of roles, got the string {self.recipients!r}")
        # Frozen: normalise through object.__setattr__ so lists from JSON compare and hash.
        object.__setattr__(self, "recipients", tuple(self.recipients))
        if self.business_hours_only is None:
            object.__setattr__(self, "business_hours_only", self.percent < 100)

    @property
    def name(self) -> str:
        """Return the label of the level: warning below 100 %, breach at 100 %, overdue above."""
        if self.percent < 100:
            return "warning"
        return "breach" if self.percent == 100 else "overdue"

    @property
    def fraction(self) -> float:
        """Return the threshold as a fraction of the target."""
        return self.percent / 100


# "assignee" means the assignee or, for an unassigned ticket, the team lead (not every member).
DEFAULT_LEVELS = (
    EscalationLevel(75, ("assignee",), True),
    EscalationLevel(100, ("team_lead", "service_manager"), False),
    EscalationLevel(150, ("team_lead", "service_manager", "tenant_contact"), False),
)


@dataclass(frozen=True)
class Evaluation:
    """The levels to fire now and when the scheduler must look at the clock again.

    waiting holds the levels already reached that wait for business hours.
    """

    due: tuple[EscalationLevel, ...]
    next_check_at: datetime | None
    waiting: tuple[EscalationLevel, ...] = ()


def _unfired(levels: Iterable[EscalationLevel], fired: frozenset[int]) -> list[EscalationLevel]:
    return sorted((level for level in levels if level.percent not in fired), key=lambda level: level.percent)


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


def evaluate_levels(
    clock: TargetClock,
    levels: Iterable[EscalationLevel],
    fired: frozenset[int],
    now: datetime,
    cal: BusinessCalendar,
) -> Evaluation:
    """Return the unfired levels reached by now, lowest first, and the next moment to check.

    A level is reached when now >= clock.moment_reaching(percent / 100), i.e. when the
    business time used reaches its share of the target; the 100 % level so fires at the due
    moment. Every reached level is returned once, so a sweep after downtime fires each missed
    level once. A business-hours-only level reached while the calendar is closed waits for
    the next opening. Paused and stopped clocks fire nothing and need no check.
    """
    if not clock.is_running:
        return Evaluation((), None)
    due: list[EscalationLevel] = []
    waiting: list[EscalationLevel] = []
    later: list[datetime | None] = []
    open_now: bool | None = None
    for level in _unfired(levels, fired):
        reached_at = clock.moment_reaching(level.fraction, cal)
        if now < reached_at:
            later.append(cal.next_open(reached_at) if level.business_hours_only else reached_at)
            continue
        if level.business_hours_only:
            if open_now is None:
                open_now = cal.is_open(now)
            if not open_now:
                waiting.append(level)
                later.append(cal.next_open(now))
                continue
        due.append(level)
    return Evaluation(tuple(due), _earliest(later), tuple(waiting))


def supersede(
    ready: Iterable[EscalationLevel],
    waiting: Iterable[EscalationLevel],
    fired: frozenset[int],
) -> tuple[tuple[EscalationLevel, ...], tuple[EscalationLevel, ...]]:
    """Split the levels ready to fire into the one to send and the lower ones to record as skipped.

    Once a level of a clock has fired, a lower one would only bring stale news (a 75 % warning
    after the breach email). So of the levels ready together (a catch-up after downtime, a
    warning that waited for the morning in which the breach fires) only the highest is sent; every
    lower unfired level, ready or waiting for business hours, and any level below one fired in an
    earlier check is skipped. `fired` holds the percentages already recorded, sent or skipped.
    """
    ready, waiting = list(ready), list(waiting)
    ceiling = max([level.percent for level in ready] + list(fired), default=0)
    send = tuple(level for level in ready if level.percent == ceiling and level.percent not in fired)
    skip = {level.percent: level for level in ready + waiting if level.percent < ceiling and level.percent not in fired}
    return send, tuple(skip[percent] for percent in sorted(skip))


def next_level_check(
    clock: TargetClock,
    levels: Iterable[EscalationLevel],
    fired: frozenset[int],
    cal: BusinessCalendar,
    now: datetime | None = None,
) -> datetime | None:
    """Return the earliest moment an unfired level can fire; None if none is left or not running.

    A business-hours-only level counts from the first open moment at or after its threshold.
    Without `now` a level already reached is reported at that past moment ("check now"); pass
    `now` to get the next opening instead for warnings that are waiting for business hours.
    """
    if not clock.is_running:
        return None
    if now is not None:
        evaluation = evaluate_levels(clock, levels, fired, now, cal)
        return now if evaluation.due else evaluation.next_check_at
    return _earliest(
        cal.next_open(moment) if level.business_hours_only else moment
        for level in _unfired(levels, fired)
        for moment in (clock.moment_reaching(level.fraction, cal),)
    )
