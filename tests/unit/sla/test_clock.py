"""Target clocks: consumption in business time, pauses, stops, reopening and priority changes."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla import TargetClock

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def at(year, month, day, hour=0, minute=0, second=0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


# Monday 2026-06-08 08:00, a normal week.
MONDAY_8 = at(2026, 6, 8, 8)


def test_a_started_clock_runs_and_is_due_after_the_target_in_business_time(ksm):
    clock = TargetClock.start(4 * HOUR, at(2026, 6, 8, 14))
    assert clock.is_running and not clock.is_paused and not clock.is_stopped
    assert clock.due_at(ksm) == at(2026, 6, 9, 9)


def test_used_counts_only_business_time(ksm):
    clock = TargetClock.start(8 * HOUR, at(2026, 6, 8, 15))
    assert clock.used(at(2026, 6, 9, 8), ksm) == 2 * HOUR
    assert clock.remaining(at(2026, 6, 9, 8), ksm) == 6 * HOUR
    assert clock.percent_used(at(2026, 6, 9, 8), ksm) == 25.0


def test_pause_stops_consumption(ksm):
    clock = TargetClock.start(4 * HOUR, MONDAY_8).pause(at(2026, 6, 8, 9), ksm)
    assert clock.is_paused
    assert clock.used(at(2026, 6, 10, 15), ksm) == HOUR
    assert clock.due_at(ksm) is None
    assert not clock.breached(at(2026, 7, 1, 12), ksm)


def test_pausing_a_paused_clock_changes_nothing(ksm):
    paused = TargetClock.start(4 * HOUR, MONDAY_8).pause(at(2026, 6, 8, 9), ksm)
    assert paused.pause(at(2026, 6, 8, 12), ksm) is paused


def test_resume_continues_from_the_time_used(ksm):
    clock = TargetClock.start(4 * HOUR, MONDAY_8).pause(at(2026, 6, 8, 9), ksm).resume(at(2026, 6, 9, 8))
    assert clock.running_since == at(2026, 6, 9, 8)
    assert clock.due_at(ksm) == at(2026, 6, 9, 11)
    assert clock.used(at(2026, 6, 9, 10), ksm) == 3 * HOUR


def test_resuming_a_running_clock_changes_nothing():
    clock = TargetClock.start(4 * HOUR, MONDAY_8)
    assert clock.resume(at(2026, 6, 8, 9)) is clock


def test_resuming_a_stopped_clock_raises(ksm):
    stopped = TargetClock.start(4 * HOUR, MONDAY_8).stop(at(2026, 6, 8, 9), ksm)
    with pytest.raises(ValueError, match="reopen"):
        stopped.resume(at(2026, 6, 8, 10))


def test_stop_keeps_the_time_used_and_decides_met(ksm):
    clock = TargetClock.start(4 * HOUR, MONDAY_8).stop(at(2026, 6, 8, 11), ksm)
    assert clock.stopped_at == at(2026, 6, 8, 11)
    assert clock.used(at(2026, 6, 12, 12), ksm) == 3 * HOUR
    assert clock.met is True
    assert clock.due_at(ksm) is None
    assert clock.stop(at(2026, 6, 9, 8), ksm) is clock


def test_stopping_after_the_target_is_not_met(ksm):
    clock = TargetClock.start(HOUR, MONDAY_8).stop(at(2026, 6, 8, 9, 0, 1), ksm)
    assert clock.met is False


def test_a_running_clock_is_neither_met_nor_missed():
    assert TargetClock.start(HOUR, MONDAY_8).met is None


def test_a_paused_clock_can_be_stopped(ksm):
    clock = TargetClock.start(4 * HOUR, MONDAY_8).pause(at(2026, 6, 8, 9), ksm).stop(at(2026, 6, 10, 9), ksm)
    assert clock.used_before == HOUR and clock.met is True


def test_reopen_continues_from_the_time_used(ksm):
    resolved = TargetClock.start(4 * HOUR, MONDAY_8).stop(at(2026, 6, 8, 11), ksm)
    reopened = resolved.reopen(at(2026, 6, 10, 8))
    assert reopened.stopped_at is None and reopened.is_running
    assert reopened.used(at(2026, 6, 10, 8, 30), ksm) == 3.5 * HOUR
    assert reopened.due_at(ksm) == at(2026, 6, 10, 9)


def test_reopening_an_open_clock_changes_nothing():
    clock = TargetClock.start(HOUR, MONDAY_8)
    assert clock.reopen(at(2026, 6, 9, 8)) is clock


def test_with_target_keeps_the_elapsed_business_time(ksm):
    clock = TargetClock.start(8 * HOUR, MONDAY_8).pause(at(2026, 6, 8, 10), ksm).resume(at(2026, 6, 8, 12))
    raised = clock.with_target(4 * HOUR)
    assert raised.used(at(2026, 6, 8, 12), ksm) == 2 * HOUR
    assert raised.started_at == MONDAY_8
    assert raised.due_at(ksm) == at(2026, 6, 8, 14)


def test_breach_exactly_at_due_is_not_breached_one_second_later_is(ksm):
    clock = TargetClock.start(HOUR, at(2026, 6, 11, 15, 30))
    due = clock.due_at(ksm)
    assert due == at(2026, 6, 12, 7, 30)
    assert not clock.breached(due, ksm)
    assert clock.remaining(due, ksm) == timedelta(0)
    assert clock.breached(due + SECOND, ksm)
    assert clock.remaining(due + SECOND, ksm) == -SECOND


def test_no_breach_while_the_calendar_is_closed_after_due(ksm):
    clock = TargetClock.start(HOUR, at(2026, 6, 11, 15))
    assert clock.due_at(ksm) == at(2026, 6, 11, 16)
    assert not clock.breached(at(2026, 6, 12, 3), ksm)


def test_moment_reaching_a_fraction_of_the_target(ksm):
    clock = TargetClock.start(4 * HOUR, at(2026, 6, 11, 14))
    assert clock.moment_reaching(0.75, ksm) == at(2026, 6, 12, 8)
    assert clock.moment_reaching(1.5, ksm) == at(2026, 6, 12, 11)


def test_moment_reaching_an_amount_used_before_a_pause_is_the_resume_moment(ksm):
    clock = TargetClock(4 * HOUR, MONDAY_8, used_before=5 * HOUR, running_since=at(2026, 6, 9, 10))
    assert clock.moment_reaching(0.75, ksm) == at(2026, 6, 9, 10)
    assert clock.due_at(ksm) == at(2026, 6, 9, 10)
    assert clock.moment_reaching(1.5, ksm) == at(2026, 6, 9, 11)


def test_due_at_of_a_clock_resumed_at_exactly_the_target_is_the_next_opening(ksm):
    clock = TargetClock(4 * HOUR, MONDAY_8, used_before=4 * HOUR, running_since=at(2026, 6, 9, 20))
    assert clock.due_at(ksm) == at(2026, 6, 10, 7)


def test_moment_reaching_is_none_unless_running(ksm):
    paused = TargetClock(4 * HOUR, MONDAY_8, used_before=HOUR)
    assert paused.moment_reaching(0.75, ksm) is None


def test_a_clock_is_frozen():
    clock = TargetClock.start(HOUR, MONDAY_8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        clock.target = 2 * HOUR


@pytest.mark.parametrize("fields, message", [
    ({"target": timedelta(0)}, "target"),
    ({"used_before": -HOUR}, "used_before"),
    ({"started_at": datetime(2026, 6, 8, 8)}, "timezone-aware"),
    ({"running_since": MONDAY_8, "stopped_at": MONDAY_8}, "stopped"),
])
def test_an_inconsistent_clock_is_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        TargetClock(**({"target": HOUR, "started_at": MONDAY_8} | fields))
