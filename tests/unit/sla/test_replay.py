"""Replaying a ticket history through target clocks: the live bookkeeping's rules, without a database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla import ClockOutcome, HistoryEvent, replay

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
MIN = timedelta(minutes=1)
TARGETS = {
    1: {"first_response": 30 * MIN, "next_update": 60 * MIN, "resolution": 240 * MIN},
    2: {"first_response": 60 * MIN, "next_update": 120 * MIN, "resolution": 480 * MIN},
    3: {"first_response": 60 * MIN, "next_update": 120 * MIN, "resolution": 480 * MIN},
    4: {"first_response": 480 * MIN, "next_update": None, "resolution": 4800 * MIN},
}


def berlin(text: str) -> datetime:
    """Parse a Berlin wall-clock time into an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def created(when: str, priority: int = 3) -> HistoryEvent:
    return HistoryEvent.created(berlin(when), priority)


def reply(when: str) -> HistoryEvent:
    return HistoryEvent.public_response(berlin(when))


def message(when: str) -> HistoryEvent:
    return HistoryEvent.requester_message(berlin(when))


def status(when: str, old: str, new: str) -> HistoryEvent:
    return HistoryEvent.status(berlin(when), old, new)


def priority(when: str, value: int) -> HistoryEvent:
    return HistoryEvent.priority_change(berlin(when), value)


def one(outcomes: list[ClockOutcome], target: str, cycle: int = 1) -> ClockOutcome:
    return next(o for o in outcomes if o.target == target and o.cycle == cycle)


def test_timely_first_reply_is_met_with_the_business_time_used(ksm):
    outcomes = replay([created("2026-03-05 09:00"), reply("2026-03-05 09:45")], TARGETS, ksm)
    first = one(outcomes, "first_response")
    assert first.is_met and first.used == 45 * MIN and first.decided_at == berlin("2026-03-05 09:45")
    assert one(outcomes, "resolution").outcome is None


def test_late_first_reply_is_breached_at_the_next_open_moment_after_the_due_time(ksm):
    # Friday 12:30 with 1 h: 30 min Friday (closes 13:00), due Monday 07:30.
    outcomes = replay([created("2026-03-06 12:30"), reply("2026-03-09 08:00")], TARGETS, ksm)
    first = one(outcomes, "first_response")
    assert first.outcome == "breached" and first.breached_at == berlin("2026-03-09 07:30")


def test_target_used_up_at_closing_time_is_still_met_by_a_reply_before_the_next_opening(ksm):
    outcomes = replay([created("2026-03-06 12:00"), reply("2026-03-06 20:00")], TARGETS, ksm)
    assert one(outcomes, "first_response").is_met


def test_running_clock_is_breached_by_the_last_look_at_now(ksm):
    events = [created("2026-03-05 09:00")]
    assert one(replay(events, TARGETS, ksm, now=berlin("2026-03-05 10:00")), "first_response").breached_at is None
    late = one(replay(events, TARGETS, ksm, now=berlin("2026-03-05 10:01")), "first_response")
    assert late.breached_at == berlin("2026-03-05 10:00") and late.decided_at is None
    assert late.counted_at == berlin("2026-03-05 10:00")


def test_pending_pauses_only_the_resolution_clock(ksm):
    outcomes = replay([
        created("2026-03-05 09:00"),
        reply("2026-03-05 10:00"), status("2026-03-05 10:00", "new", "pending"),
        message("2026-03-09 09:00"), status("2026-03-09 09:00", "pending", "open"),
        status("2026-03-09 15:00", "open", "resolved"),
    ], TARGETS, ksm)
    resolution = one(outcomes, "resolution")
    # 1 h before the pause, 6 h after: 7 h of 8 h; the weekend and Friday spent pending are free.
    assert resolution.is_met and resolution.used == 7 * 60 * MIN


def test_requester_message_on_an_answered_ticket_starts_a_next_update_clock_once(ksm):
    outcomes = replay([
        created("2026-03-05 09:00"),
        message("2026-03-05 09:10"),  # not answered yet: no next-update clock
        reply("2026-03-05 09:20"),
        message("2026-03-05 10:00"),
        message("2026-03-05 10:30"),  # one is open: no second clock
        reply("2026-03-05 13:00"),  # 3 h > 2 h: breached
        message("2026-03-05 14:00"),
        reply("2026-03-05 14:30"),
    ], TARGETS, ksm)
    cycles = [o for o in outcomes if o.target == "next_update"]
    assert [(o.cycle, o.outcome) for o in cycles] == [(1, "breached"), (2, "met")]
    assert cycles[0].breached_at == berlin("2026-03-05 12:00")


def test_resolving_decides_every_open_clock(ksm):
    outcomes = replay([
        created("2026-03-05 09:00"), status("2026-03-05 09:30", "new", "resolved"),
    ], TARGETS, ksm)
    assert {o.target: o.outcome for o in outcomes} == {"first_response": "met", "resolution": "met"}
    assert all(o.decided_at == berlin("2026-03-05 09:30") for o in outcomes)


def test_resolving_a_ticket_without_a_reply_does_not_count_as_answered(ksm):
    outcomes = replay([
        created("2026-03-05 09:00"), status("2026-03-05 09:30", "new", "resolved"),
        message("2026-03-05 10:00"), status("2026-03-05 10:00", "resolved", "open"),
    ], TARGETS, ksm)
    assert [o.target for o in outcomes].count("next_update") == 0


def test_reopening_continues_the_resolution_clock_and_forgets_the_decision(ksm):
    outcomes = replay([
        created("2026-03-05 09:00"), reply("2026-03-05 09:10"),
        status("2026-03-05 11:00", "open", "resolved"),
        status("2026-03-05 12:00", "resolved", "open"),
    ], TARGETS, ksm, now=berlin("2026-03-05 13:00"))
    resolution = one(outcomes, "resolution")
    assert resolution.outcome is None and resolution.decided_at is None
    assert resolution.used == 3 * 60 * MIN


def test_priority_change_gives_open_clocks_the_new_target_and_keeps_the_time_used(ksm):
    outcomes = replay([
        created("2026-03-05 09:00", priority=3), priority("2026-03-05 09:20", 1),
        reply("2026-03-05 09:40"), status("2026-03-05 12:00", "open", "resolved"),
    ], TARGETS, ksm)
    first = one(outcomes, "first_response")
    assert first.priority == 1 and first.target_time == 30 * MIN
    assert first.outcome == "breached" and first.breached_at == berlin("2026-03-05 09:30")
    assert one(outcomes, "resolution").is_met


def test_a_breach_stays_a_breach_after_the_priority_is_lowered(ksm):
    outcomes = replay([
        created("2026-03-05 09:00", priority=1), priority("2026-03-05 10:00", 4), reply("2026-03-05 10:10"),
    ], TARGETS, ksm)
    first = one(outcomes, "first_response")
    assert first.outcome == "met" and first.is_breached and not first.is_met
    assert first.breached_at == berlin("2026-03-05 09:30") and first.priority == 4


def test_priority_without_an_agreed_target_leaves_the_clock_as_it_was(ksm):
    outcomes = replay([
        created("2026-03-05 09:00", priority=1), reply("2026-03-05 09:05"), message("2026-03-05 09:10"),
        priority("2026-03-05 09:20", 4), reply("2026-03-05 09:30"),
    ], TARGETS, ksm)
    update = one(outcomes, "next_update")
    assert update.priority == 1 and update.target_time == 60 * MIN and update.is_met


def test_folded_business_time_keeps_whole_seconds_like_the_stored_clocks(ksm):
    start = berlin("2026-03-05 09:00")
    outcomes = replay([
        HistoryEvent.created(start, 3),
        HistoryEvent.status(start + timedelta(minutes=10, microseconds=900_000), "new", "pending"),
        HistoryEvent.status(start + timedelta(minutes=30), "pending", "resolved"),
    ], TARGETS, ksm)
    assert one(outcomes, "resolution").used == 10 * MIN


def test_history_must_start_with_the_creation_and_be_in_time_order(ksm):
    with pytest.raises(ValueError):
        replay([reply("2026-03-05 09:00")], TARGETS, ksm)
    with pytest.raises(ValueError):
        replay([created("2026-03-05 09:00"), reply("2026-03-05 08:00")], TARGETS, ksm)


def test_a_contract_without_a_target_starts_no_clock_for_it(ksm):
    outcomes = replay([created("2026-03-05 09:00")], {3: {"resolution": 60 * MIN}}, ksm)
    assert [o.target for o in outcomes] == ["resolution"]


# --- properties over random histories --------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, database=None)
STATUSES = ("new", "open", "pending", "resolved", "closed")
# What the helpdesk lets happen next from each status (staff changes and requester actions).
MOVES = {
    "new": ("open", "pending", "resolved"),
    "open": ("pending", "resolved"),
    "pending": ("open", "resolved"),
    "resolved": ("open", "closed"),
    "closed": (),
}

steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * 24 * 60),  # minutes after the previous event
        st.sampled_from(("reply", "message", "status", "priority")),
        st.integers(min_value=0, max_value=3),  # which move / which priority
    ),
    max_size=14,
)
starts = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)).map(
    lambda moment: moment.replace(second=0, microsecond=0, tzinfo=BERLIN).astimezone(UTC)
)


def history(start: datetime, first_priority: int, raw) -> list[HistoryEvent]:
    """Turn random steps into a history the workflow could have written."""
    events = [HistoryEvent.created(start, first_priority)]
    moment, state = start, "new"
    for minutes, kind, pick in raw:
        moment += timedelta(minutes=minutes)
        if state == "closed":
            break
        if kind == "reply":
            events.append(HistoryEvent.public_response(moment))
        elif kind == "message":
            events.append(HistoryEvent.requester_message(moment))
            if state in ("pending", "resolved"):
                events.append(HistoryEvent.status(moment, state, "open"))
                state = "open"
        elif kind == "status" and MOVES[state]:
            new = MOVES[state][pick % len(MOVES[state])]
            events.append(HistoryEvent.status(moment, state, new))
            state = new
        elif kind == "priority" and state != "closed":
            events.append(HistoryEvent.priority_change(moment, pick + 1))
    return events


def scaled(factor: float) -> dict:
    return {p: {t: (v * factor if v else v) for t, v in row.items()} for p, row in TARGETS.items()}


@PROPERTY
@given(starts, st.integers(min_value=1, max_value=4), steps, st.floats(min_value=1, max_value=5))
def test_larger_targets_never_turn_a_met_clock_into_a_breached_one(ksm, start, first, raw, factor):
    events = history(start, first, raw)
    now = events[-1].at + timedelta(days=30)
    real = replay(events, TARGETS, ksm, now=now)
    looser = replay(events, scaled(factor), ksm, now=now)
    assert [(o.target, o.cycle, o.decided_at, o.priority) for o in real] == \
        [(o.target, o.cycle, o.decided_at, o.priority) for o in looser]
    for strict, loose in zip(real, looser):
        assert not (strict.is_met and loose.is_breached)
        # (A breach moment itself may move either way: after a priority change the due time is
        # recomputed from the start of the clock with the new target, as the live bookkeeping does.)


@PROPERTY
@given(starts, st.integers(min_value=1, max_value=4), steps)
def test_fewer_service_hours_never_turn_a_met_clock_into_a_breached_one(ksm, always, start, first, raw):
    # Around the clock counts every hour as business time; the KSM week counts a part of them.
    events = history(start, first, raw)
    now = events[-1].at + timedelta(days=30)
    around_the_clock = replay(events, TARGETS, always, now=now)
    office_hours = replay(events, TARGETS, ksm, now=now)
    for more_hours, fewer_hours in zip(around_the_clock, office_hours):
        assert fewer_hours.used <= more_hours.used
        assert not (more_hours.is_met and fewer_hours.is_breached)
