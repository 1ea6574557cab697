"""Business time in the KSM calendar: the DESIGN.md examples, holidays, DST and validation."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sla import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
HOUR = timedelta(hours=1)


def at(year, month, day, hour=0, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# --- DESIGN.md section 2 -------------------------------------------------------------------

def test_thursday_1530_with_one_hour_target_is_due_friday_0730(ksm):
    assert ksm.add(at(2026, 6, 11, 15, 30), HOUR) == at(2026, 6, 12, 7, 30)


def test_friday_1230_with_one_hour_target_is_due_monday_0730(ksm):
    assert ksm.add(at(2026, 6, 12, 12, 30), HOUR) == at(2026, 6, 15, 7, 30)


def test_friday_1230_before_whit_monday_is_due_tuesday_0730(ksm):
    assert ksm.add(at(2026, 5, 22, 12, 30), HOUR) == at(2026, 5, 26, 7, 30)


def test_thursday_before_easter_skips_good_friday_and_easter_monday(ksm):
    assert ksm.add(at(2026, 4, 2, 15, 30), HOUR) == at(2026, 4, 7, 7, 30)


def test_filing_on_saturday_starts_the_clock_at_monday_opening(ksm):
    assert ksm.add(at(2026, 6, 13, 10, 0), HOUR) == at(2026, 6, 15, 8, 0)


def test_filing_before_opening_starts_the_clock_at_opening(ksm):
    assert ksm.add(at(2026, 6, 10, 5, 0), 2 * HOUR) == at(2026, 6, 10, 9, 0)


def test_filing_after_closing_starts_the_clock_next_morning(ksm):
    assert ksm.add(at(2026, 6, 10, 18, 0), 2 * HOUR) == at(2026, 6, 11, 9, 0)


# --- add ----------------------------------------------------------------------------------

def test_result_is_aware_utc(ksm):
    due = ksm.add(at(2026, 6, 10, 9, 0), HOUR)
    assert due.tzinfo is UTC
    assert due == datetime(2026, 6, 10, 8, 0, tzinfo=UTC)


def test_zero_duration_at_an_open_moment_is_that_moment(ksm):
    assert ksm.add(at(2026, 6, 10, 9, 15), timedelta(0)) == at(2026, 6, 10, 9, 15)


def test_zero_duration_while_closed_is_the_next_opening(ksm):
    assert ksm.add(at(2026, 6, 12, 13, 0), timedelta(0)) == at(2026, 6, 15, 7, 0)


def test_target_that_fills_the_day_is_due_at_closing(ksm):
    assert ksm.add(at(2026, 6, 10, 7, 0), 9 * HOUR) == at(2026, 6, 10, 16, 0)


def test_ten_business_days_span_two_weeks(ksm):
    # 4 × 9 h + 6 h = 42 h a week; 84 h from Monday 07:00 end on the second Friday 13:00.
    assert ksm.add(at(2026, 6, 8, 7, 0), 84 * HOUR) == at(2026, 6, 19, 13, 0)


def test_add_with_a_negative_duration_raises(ksm):
    with pytest.raises(ValueError, match="negative"):
        ksm.add(at(2026, 6, 10, 9), -HOUR)


def test_naive_datetimes_are_rejected(ksm):
    with pytest.raises(ValueError, match="timezone-aware"):
        ksm.add(datetime(2026, 6, 10, 9), HOUR)
    with pytest.raises(ValueError, match="timezone-aware"):
        ksm.between(datetime(2026, 6, 10, 9), at(2026, 6, 11))
    with pytest.raises(ValueError, match="timezone-aware"):
        ksm.is_open(datetime(2026, 6, 10, 9))


# --- holidays and closures ---------------------------------------------------------------

def test_frauentag_on_friday_8_march_2024_is_closed(ksm):
    assert ksm.open_intervals(date(2024, 3, 8)) == []
    assert ksm.add(at(2024, 3, 7, 15, 30), HOUR) == at(2024, 3, 11, 7, 30)


def test_frauentag_on_monday_8_march_2027_is_closed(ksm):
    assert ksm.add(at(2027, 3, 5, 12, 30), HOUR) == at(2027, 3, 9, 7, 30)


def test_frauentag_was_a_working_day_before_2023(ksm):
    assert ksm.open_intervals(date(2022, 3, 8)) != []  # a Tuesday
    assert ksm.open_intervals(date(2023, 3, 8)) == []  # a Wednesday


def test_reformationstag_on_friday_31_october_2025_is_closed(ksm):
    assert ksm.add(at(2025, 10, 30, 15, 30), HOUR) == at(2025, 11, 3, 7, 30)


def test_christmas_and_new_year_with_closed_24_and_31_december(ksm):
    # Wed 23.12.2026 15:30: 24. closed, 25./26. holidays, Mon 28.–Wed 30. open, 31. closed,
    # 1.1.2027 holiday (Friday).
    assert ksm.add(at(2026, 12, 23, 15, 30), HOUR) == at(2026, 12, 28, 7, 30)
    assert ksm.add(at(2026, 12, 30, 15, 30), HOUR) == at(2027, 1, 4, 7, 30)
    # Open: Wed 23.12., Mon 28.–Wed 30.12., Mon 4.1.
    assert ksm.between(at(2026, 12, 23), at(2027, 1, 5)) == 5 * 9 * HOUR


def test_holidays_can_be_a_list_of_dates():
    cal = BusinessCalendar(hours={0: [("08:00", "12:00")]}, holidays=[date(2026, 6, 8)])
    assert cal.add(at(2026, 6, 8, 8), HOUR) == at(2026, 6, 15, 9)


def test_holidays_none_keeps_public_holidays_open():
    cal = BusinessCalendar(hours={0: [("08:00", "12:00")]}, holidays=None)
    assert cal.add(at(2026, 5, 25, 8), HOUR) == at(2026, 5, 25, 9)


def test_unknown_holiday_region_raises():
    with pytest.raises(ValueError, match="holiday region"):
        BusinessCalendar(holidays="DE-XX")
    with pytest.raises(ValueError, match="holiday region"):
        BusinessCalendar(holidays="XX")


def test_unknown_timezone_raises():
    with pytest.raises(ValueError, match="timezone"):
        BusinessCalendar(timezone="Europe/Nowhere")


# --- DST ------------------------------------------------------------------------------------

def test_friday_before_spring_dst_switch_is_due_monday_in_summer_time(ksm):
    due = ksm.add(at(2026, 3, 27, 12, 30), HOUR)
    assert due == at(2026, 3, 30, 7, 30)
    assert due == datetime(2026, 3, 30, 5, 30, tzinfo=UTC)


def test_friday_before_autumn_dst_switch_is_due_monday_in_winter_time(ksm):
    due = ksm.add(at(2026, 10, 23, 12, 30), HOUR)
    assert due == at(2026, 10, 26, 7, 30)
    assert due == datetime(2026, 10, 26, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_seven_to_sixteen_is_nine_hours_on_a_dst_sunday(daily, day):
    [(start, end)] = daily.open_intervals(day)
    assert end - start == 9 * HOUR
    assert start.astimezone(BERLIN).time() == time(7) and end.astimezone(BERLIN).time() == time(16)


def test_spring_dst_sunday_has_23_hours_around_the_clock(always):
    assert always.between(at(2026, 3, 29), at(2026, 3, 30)) == 23 * HOUR
    assert always.add(at(2026, 3, 29, 1, 30), HOUR) == at(2026, 3, 29, 3, 30)


def test_autumn_dst_sunday_has_25_hours_around_the_clock(always):
    assert always.between(at(2026, 10, 25), at(2026, 10, 26)) == 25 * HOUR
    assert always.add(at(2026, 10, 25), 24 * HOUR) == at(2026, 10, 25, 23)


def test_interval_in_the_spring_gap_is_mapped_forward():
    cal = BusinessCalendar(hours={6: [("02:00", "04:00")]}, holidays=None)
    [(start, end)] = cal.open_intervals(date(2026, 3, 29))
    assert (start, end) == (datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 3, 29, 2, tzinfo=UTC))


# --- shapes of opening hours --------------------------------------------------------------

def test_several_intervals_a_day_skip_the_lunch_break():
    cal = BusinessCalendar(hours={d: [("08:00", "12:00"), ("13:00", "16:00")] for d in range(5)}, holidays=None)
    assert cal.add(at(2026, 6, 10, 11, 30), HOUR) == at(2026, 6, 10, 13, 30)
    assert cal.between(at(2026, 6, 10, 11), at(2026, 6, 10, 14)) == 2 * HOUR
    assert not cal.is_open(at(2026, 6, 10, 12, 30))
    assert cal.next_open(at(2026, 6, 10, 12, 30)) == at(2026, 6, 10, 13)


def test_intervals_may_be_given_unsorted_and_as_time_objects():
    cal = BusinessCalendar(hours={0: [(time(13), time(16)), ("08:00", "12:00")]}, holidays=None)
    assert [s.astimezone(BERLIN).hour for s, _ in cal.open_intervals(date(2026, 6, 8))] == [8, 13]


def test_weekdays_without_hours_are_closed():
    cal = BusinessCalendar(hours={1: [("09:00", "10:00")]}, holidays=None)  # Tuesdays only
    assert cal.add(at(2026, 6, 9, 9, 30), HOUR) == at(2026, 6, 16, 9, 30)
    assert cal.open_intervals(date(2026, 6, 10)) == []


def test_24_00_ends_the_day_and_joins_the_next_morning():
    cal = BusinessCalendar(hours={0: [("20:00", "24:00")], 1: [("00:00", "02:00")]}, holidays=None)
    assert cal.add(at(2026, 6, 8, 23), 2 * HOUR) == at(2026, 6, 9, 1)
    assert cal.is_open(at(2026, 6, 9, 0))


def test_touching_intervals_are_allowed():
    cal = BusinessCalendar(hours={0: [("08:00", "12:00"), ("12:00", "16:00")]}, holidays=None)
    assert cal.between(at(2026, 6, 8), at(2026, 6, 9)) == 8 * HOUR


@pytest.mark.parametrize("intervals, message", [
    ([("16:00", "07:00")], "start before it ends"),
    ([("07:00", "07:00")], "start before it ends"),
    ([("08:00", "12:00"), ("11:00", "16:00")], "overlap"),
    ([("24:00", "24:00")], "24:00"),
    ([("7 Uhr", "16:00")], "HH:MM"),
    (["07:00-16:00"], "pair"),
])
def test_invalid_hours_raise_a_clear_error(intervals, message):
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(hours={0: intervals}, holidays=None)


def test_weekday_out_of_range_raises():
    with pytest.raises(ValueError, match="weekday"):
        BusinessCalendar(hours={7: [("07:00", "16:00")]})


def test_calendar_without_hours_raises_on_add_instead_of_looping():
    cal = BusinessCalendar(hours={}, holidays=None)
    with pytest.raises(ValueError, match="no opening hours"):
        cal.add(at(2026, 6, 8), HOUR)
    with pytest.raises(ValueError, match="no opening hours"):
        cal.next_open(at(2026, 6, 8))


def test_calendar_closed_on_every_open_weekday_gives_up_after_years():
    sundays = [date(2026, 6, 14) + timedelta(weeks=n) for n in range(52 * 6)]
    cal = BusinessCalendar(hours={6: [("08:00", "09:00")]}, holidays=None, closed=sundays)
    with pytest.raises(ValueError, match="no opening hours"):
        cal.add(at(2026, 6, 8), HOUR)


def test_a_long_closure_is_skipped():
    closed = [date(2026, 7, 1) + timedelta(days=n) for n in range(200)]
    cal = BusinessCalendar(hours={d: [("08:00", "16:00")] for d in range(5)}, holidays=None, closed=closed)
    assert cal.add(at(2026, 6, 30, 15), 2 * HOUR) == at(2027, 1, 18, 9)


# --- between, is_open, next_open, open_intervals ------------------------------------------

def test_between_counts_only_opening_hours(ksm):
    assert ksm.between(at(2026, 6, 11, 15, 30), at(2026, 6, 12, 7, 30)) == HOUR


def test_between_is_zero_when_end_is_not_after_start(ksm):
    assert ksm.between(at(2026, 6, 11, 10), at(2026, 6, 11, 9)) == timedelta(0)
    assert ksm.between(at(2026, 6, 11, 10), at(2026, 6, 11, 10)) == timedelta(0)


def test_between_over_a_year_counts_every_business_day(ksm):
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    expected = sum(
        (end - start for day in days for start, end in ksm.open_intervals(day)), timedelta(0)
    )
    assert ksm.between(at(2026, 1, 1), at(2027, 1, 1)) == expected
    assert expected > 1800 * HOUR


def test_is_open_includes_opening_and_excludes_closing(ksm):
    assert ksm.is_open(at(2026, 6, 10, 7))
    assert not ksm.is_open(at(2026, 6, 10, 16))
    assert not ksm.is_open(at(2026, 5, 25, 10))  # Whit Monday


def test_next_open_of_an_open_moment_is_itself(ksm):
    assert ksm.next_open(at(2026, 6, 10, 10)) == at(2026, 6, 10, 10)


def test_next_open_on_good_friday_is_tuesday_after_easter(ksm):
    assert ksm.next_open(at(2026, 4, 3, 10)) == at(2026, 4, 7, 7)


def test_open_intervals_are_utc_and_empty_on_holidays(ksm):
    assert ksm.open_intervals(date(2026, 6, 12)) == [
        (datetime(2026, 6, 12, 5, tzinfo=UTC), datetime(2026, 6, 12, 11, tzinfo=UTC))
    ]
    assert ksm.open_intervals(date(2026, 10, 31)) == []
    assert ksm.open_intervals(date(2026, 12, 24)) == []
