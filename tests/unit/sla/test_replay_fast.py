"""The fast replay (mutable clock state, wall-clock shortcut, cached due moments) gives exactly the
outcomes of a straightforward replay through TargetClock, on random histories in several calendars."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sla import BusinessCalendar, HistoryEvent, replay, replay_records
from tests.unit.sla.reference_replay import reference_replay

UTC = timezone.utc
MIN = timedelta(minutes=1)
TARGETS = {
    1: {"first_response": 30 * MIN, "next_update": 60 * MIN, "resolution": 240 * MIN},
    2: {"first_response": 60 * MIN, "next_update": 120 * MIN, "resolution": 480 * MIN},
    3: {"first_response": 120 * MIN, "next_update": None, "resolution": 960 * MIN},
    4: {"first_response": 480 * MIN, "next_update": None, "resolution": 4800 * MIN},
}
CALENDARS = {
    "ksm": dict(hours={d: [("07:00", "16:00")] for d in range(4)} | {4: [("07:00", "13:00")]}, holidays="DE-MV",
                closed=[date(2025, 12, 24), date(2025, 12, 31)]),
    "split": dict(hours={d: [("07:30", "12:00"), ("13:00", "16:30")] for d in range(5)}, holidays="DE-SH"),
    "saturday": dict(hours={d: [("08:00", "18:00")] for d in range(5)} | {5: [("09:00", "12:00")]},
                     holidays="DE-MV"),
    "always": dict(hours={d: [("00:00", "24:00")] for d in range(7)}, holidays=None),
}
STATUSES = ("new", "open", "pending", "resolved", "closed")


def random_history(rng: random.Random, cal: BusinessCalendar) -> list[HistoryEvent]:
    """A ticket's history: replies, messages, status and priority changes at random moments.

    Moments fall on nights, weekends, holidays and DST changes (2025 spans both), several events
    share a moment, and some land exactly on a due moment (the "met at due" boundary).
    """
    created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 360 * 86400))
    if rng.random() < 0.7:
        created = cal.next_open(created)
    created = created.replace(microsecond=rng.choice((0, 0, rng.randrange(1_000_000))))
    priority = rng.randint(1, 4)
    events = [HistoryEvent.created(created, priority)]
    at, status = created, "new"
    for _ in range(rng.randint(0, 9)):
        roll = rng.random()
        if roll < 0.1:
            step = timedelta(0)  # same moment as the event before
        elif roll < 0.3:  # at, just before or just after a due moment
            target = rng.choice([t for t in TARGETS[priority].values() if t])
            offset = timedelta(seconds=rng.choice((-1, 0, 0, 1, 30)))
            step = max(cal.add(created, target) + offset - at, timedelta(0))
        else:
            step = timedelta(seconds=rng.expovariate(1 / 20000))
        at = at + step
        kind = rng.random()
        if kind < 0.3:
            events.append(HistoryEvent.public_response(at))
        elif kind < 0.5:
            events.append(HistoryEvent.requester_message(at))
        elif kind < 0.6:
            priority = rng.randint(1, 4)
            events.append(HistoryEvent.priority_change(at, priority))
        else:
            new = rng.choice(STATUSES + (status,))
            events.append(HistoryEvent.status(at, status, new))
            status = new
    return events


@pytest.mark.parametrize("shape", sorted(CALENDARS))
def test_fast_replay_gives_the_outcomes_of_the_straightforward_replay(shape):
    cal = BusinessCalendar(timezone="Europe/Berlin", **CALENDARS[shape])
    rng = random.Random(f"replay-{shape}")
    compared = breached = reopened = 0
    for _ in range(1500):
        events = random_history(rng, cal)
        now = events[-1].at + timedelta(seconds=rng.choice((0, 60, 86400, 30 * 86400)))
        expected = reference_replay(events, TARGETS, cal, now=now)
        assert replay(events, TARGETS, cal, now=now) == expected, events
        records = [(e.at, e.kind, e.priority, e.old_status, e.new_status) for e in events]
        assert replay_records(records, TARGETS, cal, now=now) == expected, events
        # Without a last look the open clocks count only what was folded.
        assert replay(events, TARGETS, cal) == reference_replay(events, TARGETS, cal), events
        compared += len(expected)
        breached += sum(1 for o in expected if o.breached_at is not None)
        reopened += sum(1 for o in expected if o.cycle > 1)
    # The random histories reach every branch that matters: breaches, met clocks, next cycles.
    assert compared > 3000 and 0.05 < breached / compared < 0.95 and reopened > 20


@pytest.mark.parametrize("shape", ["always", "ksm"])
def test_times_in_another_timezone_give_the_outcomes_of_the_straightforward_replay(shape):
    # Berlin wall-clock times around the DST changes: two times of one zone subtract as wall-clock
    # times, an hour off across the change, so no shortcut may subtract them.
    cal = BusinessCalendar(timezone="Europe/Berlin", **CALENDARS[shape])
    berlin = ZoneInfo("Europe/Berlin")
    rng = random.Random(f"zones-{shape}")
    for _ in range(600):
        change = rng.choice((datetime(2025, 10, 26, 1, tzinfo=UTC), datetime(2025, 3, 30, 1, tzinfo=UTC)))
        start = change - timedelta(hours=rng.uniform(0, 30))
        at, events = start, [HistoryEvent.created(start.astimezone(berlin), 1)]
        for _ in range(rng.randint(1, 5)):
            at += timedelta(minutes=rng.randint(0, 400))
            kind = rng.random()
            if kind < 0.5:
                events.append(HistoryEvent.public_response(at.astimezone(berlin)))
            elif kind < 0.7:
                events.append(HistoryEvent.requester_message(at.astimezone(berlin)))
            else:
                events.append(HistoryEvent.status(at.astimezone(berlin), "open", rng.choice(("pending", "open"))))
        now = at + timedelta(minutes=rng.randint(0, 300))
        assert replay(events, TARGETS, cal, now=now) == reference_replay(events, TARGETS, cal, now=now), events


def test_plain_records_are_checked_like_history_events():
    cal = BusinessCalendar(timezone="Europe/Berlin", **CALENDARS["ksm"])
    at = datetime(2025, 3, 5, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        replay_records([(at.replace(tzinfo=None), "created", 3, None, None)], TARGETS, cal)
    with pytest.raises(ValueError, match="unknown event kind"):
        replay_records([(at, "created", 3, None, None), (at, "comment", None, None, None)], TARGETS, cal)
    with pytest.raises(ValueError, match="needs a priority"):
        replay_records([(at, "created", None, None, None)], TARGETS, cal)
    with pytest.raises(ValueError, match="time order"):
        replay_records([(at, "created", 3, None, None), (at - MIN, "public_response", None, None, None)],
                       TARGETS, cal)
