"""Escalation levels: each fires once, missed ones catch up, warnings wait for business hours."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla import EscalationLevel, Evaluation, TargetClock, evaluate_levels, next_level_check, supersede
from sla.escalation import DEFAULT_LEVELS

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
NOTHING = frozenset()


def at(year, month, day, hour=0, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def percents(evaluation: Evaluation) -> list[int]:
    return [level.percent for level in evaluation.due]


# Wednesday 2026-06-10 15:00 with a 1 h target: 75 % at 15:45, 100 % at 16:00 (closing),
# 150 % on Thursday at 07:30.
EVENING_CLOCK = TargetClock.start(HOUR, at(2026, 6, 10, 15))


def test_default_levels_warn_the_assignee_then_tell_lead_and_managers():
    assert [(lvl.percent, lvl.name, lvl.recipients, lvl.business_hours_only) for lvl in DEFAULT_LEVELS] == [
        (75, "warning", ("assignee",), True),
        (100, "breach", ("team_lead", "service_manager"), False),
        (150, "overdue", ("team_lead", "service_manager", "tenant_contact"), False),
    ]


def test_business_hours_only_defaults_to_warnings_only():
    assert EscalationLevel(50, ("assignee",)).business_hours_only is True
    assert EscalationLevel(100, ["team_lead"]).business_hours_only is False
    assert EscalationLevel(100, ["team_lead"]).recipients == ("team_lead",)


def test_a_level_needs_a_positive_percent():
    with pytest.raises(ValueError, match="percent"):
        EscalationLevel(0, ("assignee",))


def test_nothing_fires_before_the_first_threshold(ksm):
    evaluation = evaluate_levels(EVENING_CLOCK, DEFAULT_LEVELS, NOTHING, at(2026, 6, 10, 15, 30), ksm)
    assert evaluation == Evaluation((), at(2026, 6, 10, 15, 45))


def test_a_level_fires_at_its_threshold_and_never_again(ksm):
    now = at(2026, 6, 10, 15, 45)
    first = evaluate_levels(EVENING_CLOCK, DEFAULT_LEVELS, NOTHING, now, ksm)
    assert percents(first) == [75]
    again = evaluate_levels(EVENING_CLOCK, DEFAULT_LEVELS, frozenset({75}), now, ksm)
    assert again.due == ()
    assert again.next_check_at == at(2026, 6, 10, 16)


def test_the_breach_level_fires_at_the_due_moment(ksm):
    now = EVENING_CLOCK.due_at(ksm)
    evaluation = evaluate_levels(EVENING_CLOCK, DEFAULT_LEVELS, frozenset({75}), now, ksm)
    assert percents(evaluation) == [100]
    assert evaluation.next_check_at == at(2026, 6, 11, 7, 30)


def test_missed_levels_after_downtime_fire_once_each_in_one_evaluation(ksm):
    clock = TargetClock.start(2 * HOUR, at(2026, 6, 10, 8))
    now = at(2026, 6, 10, 12)  # the sweep was down for hours: 200 % used
    evaluation = evaluate_levels(clock, DEFAULT_LEVELS, NOTHING, now, ksm)
    assert percents(evaluation) == [75, 100, 150]
    assert evaluation.next_check_at is None
    after = evaluate_levels(clock, DEFAULT_LEVELS, frozenset({75, 100, 150}), now + HOUR, ksm)
    assert after == Evaluation((), None)


def test_levels_are_returned_lowest_first_whatever_their_order(ksm):
    clock = TargetClock.start(2 * HOUR, at(2026, 6, 10, 8))
    evaluation = evaluate_levels(clock, tuple(reversed(DEFAULT_LEVELS)), NOTHING, at(2026, 6, 10, 12), ksm)
    assert percents(evaluation) == [75, 100, 150]


def test_a_warning_at_0300_waits_for_the_next_opening(ksm):
    night = at(2026, 6, 11, 3)
    evaluation = evaluate_levels(EVENING_CLOCK, DEFAULT_LEVELS, frozenset({100}), night, ksm)
    assert evaluation.due == ()
    assert evaluation.next_check_at == at(2026, 6, 11, 7)
    morning = evaluate_levels(EVENING_CLOCK, DEFAULT_LEVELS, frozenset({100}), at(2026, 6, 11, 7), ksm)
    assert percents(morning) == [75]


def test_a_breach_at_night_fires_at_once_while_the_warning_waits(ksm):
    evaluation = evaluate_levels(EVENING_CLOCK, DEFAULT_LEVELS, NOTHING, at(2026, 6, 11, 3), ksm)
    assert percents(evaluation) == [100]
    assert evaluation.next_check_at == at(2026, 6, 11, 7)


def test_a_warning_reached_at_closing_time_waits_for_the_next_opening(ksm):
    clock = TargetClock.start(4 * HOUR, at(2026, 6, 10, 13))  # 75 % = 3 h at 16:00 sharp
    assert clock.moment_reaching(0.75, ksm) == at(2026, 6, 10, 16)
    evaluation = evaluate_levels(clock, DEFAULT_LEVELS, NOTHING, at(2026, 6, 10, 16), ksm)
    assert evaluation == Evaluation((), at(2026, 6, 11, 7), waiting=(DEFAULT_LEVELS[0],))


def test_a_paused_clock_fires_nothing_and_needs_no_check(ksm):
    paused = TargetClock.start(HOUR, at(2026, 6, 10, 8)).pause(at(2026, 6, 10, 8, 50), ksm)
    assert evaluate_levels(paused, DEFAULT_LEVELS, NOTHING, at(2026, 6, 12, 10), ksm) == Evaluation((), None)
    assert next_level_check(paused, DEFAULT_LEVELS, NOTHING, ksm) is None


def test_a_stopped_clock_fires_nothing_and_needs_no_check(ksm):
    stopped = TargetClock.start(HOUR, at(2026, 6, 10, 8)).stop(at(2026, 6, 10, 10), ksm)
    assert evaluate_levels(stopped, DEFAULT_LEVELS, NOTHING, at(2026, 6, 10, 11), ksm) == Evaluation((), None)
    assert next_level_check(stopped, DEFAULT_LEVELS, NOTHING, ksm) is None


def test_next_level_check_is_the_earliest_unfired_threshold(ksm):
    clock = TargetClock.start(4 * HOUR, at(2026, 6, 10, 8))
    assert next_level_check(clock, DEFAULT_LEVELS, NOTHING, ksm) == at(2026, 6, 10, 11)
    assert next_level_check(clock, DEFAULT_LEVELS, frozenset({75}), ksm) == at(2026, 6, 10, 12)
    assert next_level_check(clock, DEFAULT_LEVELS, frozenset({75, 100, 150}), ksm) is None


def test_next_level_check_puts_a_warning_at_the_first_open_moment_after_its_threshold(ksm):
    clock = TargetClock.start(4 * HOUR, at(2026, 6, 10, 13))  # 75 % at closing, 100 % Thu 08:00
    assert next_level_check(clock, DEFAULT_LEVELS, NOTHING, ksm) == at(2026, 6, 11, 7)


def test_next_level_check_with_now_defers_a_waiting_warning_to_the_next_opening(ksm):
    night = at(2026, 6, 11, 3)
    fired = frozenset({100})
    assert next_level_check(EVENING_CLOCK, DEFAULT_LEVELS, fired, ksm) == at(2026, 6, 10, 15, 45)
    assert next_level_check(EVENING_CLOCK, DEFAULT_LEVELS, fired, ksm, now=night) == at(2026, 6, 11, 7)
    assert next_level_check(EVENING_CLOCK, DEFAULT_LEVELS, NOTHING, ksm, now=night) == night


WARNING, BREACH, OVERDUE = DEFAULT_LEVELS


def test_of_levels_ready_together_only_the_highest_is_sent_and_the_lower_ones_are_skipped():
    assert supersede([WARNING, BREACH, OVERDUE], [], NOTHING) == ((OVERDUE,), (WARNING, BREACH))


def test_a_warning_waiting_for_business_hours_is_skipped_when_the_breach_fires():
    assert supersede([BREACH], [WARNING], NOTHING) == ((BREACH,), (WARNING,))


def test_a_level_below_one_fired_earlier_is_skipped_not_sent():
    assert supersede([WARNING], [], frozenset({100, 150})) == ((), (WARNING,))
    assert supersede([], [WARNING], frozenset({100})) == ((), (WARNING,))


def test_a_single_ready_level_is_sent_and_a_waiting_one_alone_keeps_waiting():
    assert supersede([WARNING], [], NOTHING) == ((WARNING,), ())
    assert supersede([], [WARNING], NOTHING) == ((), ())
    assert supersede([OVERDUE], [], frozenset({75, 100})) == ((OVERDUE,), ())


def test_catching_up_after_downtime_sends_the_highest_missed_level_once(ksm):
    clock = TargetClock.start(2 * HOUR, at(2026, 6, 10, 8))
    evaluation = evaluate_levels(clock, DEFAULT_LEVELS, NOTHING, at(2026, 6, 10, 12), ksm)
    send, skip = supersede(evaluation.due, evaluation.waiting, NOTHING)
    assert [level.percent for level in send] == [150] and [level.percent for level in skip] == [75, 100]
    recorded = frozenset({75, 100, 150})
    later = evaluate_levels(clock, DEFAULT_LEVELS, recorded, at(2026, 6, 10, 13), ksm)
    assert supersede(later.due, later.waiting, recorded) == ((), ())
