"""Properties of business-time arithmetic over random moments in 2024–2028."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sla import BusinessCalendar

UTC = timezone.utc
TICK = timedelta(microseconds=1)
KSM_HOURS = {day: [("07:00", "16:00")] for day in range(4)} | {4: [("07:00", "13:00")]}

CALENDARS = {
    "ksm": BusinessCalendar(
        hours=KSM_HOURS, holidays="DE-MV",
        closed=[date(year, 12, day) for year in range(2024, 2030) for day in (24, 31)],
    ),
    "lunch break": BusinessCalendar(
        hours={day: [("08:00", "12:00"), ("13:00", "16:30")] for day in range(5)}, holidays="DE-MV"
    ),
    "around the clock": BusinessCalendar(hours={day: [("00:00", "24:00")] for day in range(7)}, holidays=None),
    "nights": BusinessCalendar(
        timezone="America/New_York", hours={day: [("00:00", "03:30"), ("22:00", "24:00")] for day in range(6)},
        holidays="US-NY",
    ),
}

# Examples stay in memory: the suite writes no .hypothesis folder and stays fast.
PROPERTY = settings(max_examples=200, deadline=None, database=None)

calendars = st.sampled_from(sorted(CALENDARS)).map(CALENDARS.__getitem__)
moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31, 23, 59),
    timezones=st.sampled_from([UTC, ZoneInfo("Europe/Berlin")]),
).map(lambda moment: moment.replace(microsecond=0))
durations = st.integers(min_value=0, max_value=30 * 9 * 60).map(lambda minutes: timedelta(minutes=minutes))


@PROPERTY
@given(calendars, moments, durations)
def test_between_start_and_add_is_the_duration(cal, start, duration):
    assert cal.between(start, cal.add(start, duration)) == duration


@PROPERTY
@given(calendars, moments, moments, moments)
def test_between_is_additive(cal, first, second, third):
    a, b, c = sorted([first, second, third])
    assert cal.between(a, b) + cal.between(b, c) == cal.between(a, c)


@PROPERTY
@given(calendars, moments, durations, durations)
def test_add_is_monotone_in_the_duration(cal, start, one, other):
    shorter, longer = sorted([one, other])
    assert start <= cal.add(start, shorter) <= cal.add(start, longer)


@PROPERTY
@given(calendars, moments, moments, durations)
def test_add_is_monotone_in_the_start(cal, one, other, duration):
    earlier, later = sorted([one, other])
    assert cal.add(earlier, duration) <= cal.add(later, duration)


@PROPERTY
@given(calendars, moments, durations.filter(bool))
def test_a_due_moment_ends_business_time_never_closed_time(cal, start, duration):
    due = cal.add(start, duration)
    assert cal.is_open(due - TICK)
    assert due.tzinfo is UTC


@PROPERTY
@given(calendars, moments)
def test_next_open_is_open_and_skips_no_business_time(cal, moment):
    opening = cal.next_open(moment)
    assert opening >= moment
    assert cal.is_open(opening)
    assert cal.between(moment, opening) == timedelta(0)
    assert cal.add(moment, timedelta(0)) == opening


@PROPERTY
@given(calendars, moments)
def test_is_open_means_business_time_runs(cal, moment):
    moment = moment.astimezone(UTC)  # wall-clock arithmetic would misstep in a DST gap
    assert cal.is_open(moment) == (cal.between(moment, moment + TICK) == TICK)
