"""Compute business time in a tenant's calendar: opening hours, public holidays, closure days."""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import holidays as holidays_lib

__all__ = ["BusinessCalendar"]

UTC = dt_timezone.utc
ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)
# A search that meets this many days in a row without any opening gives up: a calendar whose
# every day is closed (no hours, or closures everywhere) would otherwise loop forever.
_MAX_CLOSED_DAYS = 3 * 366
# Smallest step datetime can express; used to ask for "any business time at all".
_TICK = timedelta(microseconds=1)

Interval = tuple[datetime, datetime]


def _parse_time(value: str | time, *, is_end: bool) -> tuple[time, bool]:
    """Return (wall time, ends at next midnight) for an "HH:MM" string or a time."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError(f"opening time {value} must be a local wall-clock time without tzinfo")
        return value, False
    if not isinstance(value, str):
        raise ValueError(f"opening time must be 'HH:MM' or datetime.time, got {value!r}")
    text = value.strip()
    if text in ("24:00", "24:00:00"):
        if not is_end:
            raise ValueError("24:00 is only allowed as the end of an interval")
        return time(0), True
    try:
        return time.fromisoformat(text), False
    except ValueError:
        raise ValueError(f"opening time {value!r} is not in HH:MM format") from None


def _seconds(moment: time, next_midnight: bool) -> float:
    if next_midnight:
        return 86400.0
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def _label(row: tuple[time, time, bool]) -> str:
    start, end, end_midnight = row
    return f"{start:%H:%M}-{'24:00' if end_midnight else format(end, '%H:%M')}"


def _parse_hours(hours: Mapping[int, Iterable[Sequence[str | time]]]) -> dict[int, tuple[tuple[time, time, bool], ...]]:
    """Validate the weekly hours and return weekday -> ((start, end, end is next midnight), ...)."""
    parsed: dict[int, tuple[tuple[time, time, bool], ...]] = {}
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    for weekday, intervals in hours.items():
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be an int 0 (Monday) .. 6 (Sunday), got {weekday!r}")
        rows = []
        for interval in intervals or ():
            if isinstance(interval, str) or len(interval) != 2:
                raise ValueError(f"{names[weekday]}: an interval is a pair (start, end), got {interval!r}")
            start, _ = _parse_time(interval[0], is_end=False)
            end, end_midnight = _parse_time(interval[1], is_end=True)
            if _seconds(start, False) >= _seconds(end, end_midnight):
                raise ValueError(f"{names[weekday]}: interval {interval[0]}-{interval[1]} must start before it ends")
            rows.append((start, end, end_midnight))
        rows.sort(key=lambda row: _seconds(row[0], False))
        for before, after in zip(rows, rows[1:]):
            if _seconds(after[0], False) < _seconds(before[1], before[2]):
                raise ValueError(
                    f"{names[weekday]}: intervals {_label(before)} and {_label(after)} overlap"
                )
        if rows:
            parsed[weekday] = tuple(rows)
    return parsed


class _Year:
    """Business time of one calendar year as prefix sums over its local days."""

    __slots__ = ("first", "cumulative", "total")

    def __init__(self, first: date, cumulative: list[timedelta]):
        self.first = first
        # cumulative[i] is the business time of the days before first + i days.
        self.cumulative = cumulative
        self.total = cumulative[-1]


class BusinessCalendar:
    """Weekly opening hours in a timezone, minus public holidays and extra closure days."""

    def __init__(
        self,
        timezone: str = "Europe/Berlin",
        hours: Mapping[int, Iterable[Sequence[str | time]]] | None = None,
        holidays: str | Iterable[date] | None = "DE-MV",
        closed: Iterable[date] = (),
    ):
        """Build a calendar (hours default to the KSM week); raise ValueError for bad input."""
        try:
            self._tz = ZoneInfo(timezone)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown timezone {timezone!r}") from exc
        self.timezone = timezone
        if hours is None:
            hours = {day: [("07:00", "16:00")] for day in range(4)} | {4: [("07:00", "13:00")]}
        self._hours = _parse_hours(hours)
        self._closed = frozenset(closed)
        self._region: tuple[str, str | None] | None = None
        self._fixed_holidays: frozenset[date] = frozenset()
        if isinstance(holidays, str):
            self._region = self._parse_region(holidays)
        elif holidays is not None:
            self._fixed_holidays = frozenset(holidays)
        fixed = tuple(sorted(self._fixed_holidays))
        self.holidays = holidays if holidays is None or isinstance(holidays, str) else fixed
        # Lazily filled; values are built completely before they are stored, so concurrent
        # readers at worst compute the same entry twice.
        self._holiday_years: dict[int, frozenset[date]] = {}
        self._days: dict[date, tuple[Interval, ...]] = {}
        self._years: dict[int, _Year] = {}

    def __repr__(self) -> str:
        return f"BusinessCalendar(timezone={self.timezone!r}, holidays={self.holidays!r})"

    # ----------------------------------------------------------------- holidays and days

    @staticmethod
    def _parse_region(code: str) -> tuple[str, str | None]:
        country, _, subdivision = code.strip().upper().partition("-")
        try:
            # Built once for no year to check the country and state exist.
            holidays_lib.country_holidays(country, subdiv=subdivision or None, years=[])
        except NotImplementedError as exc:
            raise ValueError(f"unknown holiday region {code!r}: {exc}") from exc
        return country, subdivision or None

    def _holidays_of(self, year: int) -> frozenset[date]:
        cached = self._holiday_years.get(year)
        if cached is not None:
            return cached
        days = set(self._closed)
        days.update(self._fixed_holidays)
        if self._region is not None:
            country, subdivision = self._region
            days.update(holidays_lib.country_holidays(country, subdiv=subdivision, years=year).keys())
            if (country, subdivision) == ("DE", "MV"):
                # The state law is the contract; keep it even if a package release drops a day.
                days.add(date(year, 10, 31))  # Reformationstag
                if year >= 2023:
                    days.add(date(year, 3, 8))  # Frauentag
        result = frozenset(day for day in days if day.year == year)
        self._holiday_years[year] = result
        return result

    def _day(self, day: date) -> tuple[Interval, ...]:
        cached = self._days.get(day)
        if cached is not None:
            return cached
        rows = self._hours.get(day.weekday())
        intervals: list[Interval] = []
        if rows and day not in self._holidays_of(day.year):
            for start, end, end_midnight in rows:
                # Wall-clock times on this date; in a DST gap fold=0 maps forward, which keeps
                # intervals ordered, and an interval that vanishes in the gap is dropped.
                utc_start = datetime.combine(day, start, self._tz).astimezone(UTC)
                if end_midnight:
                    utc_end = datetime.combine(day + _ONE_DAY, time(0), self._tz).astimezone(UTC)
                else:
                    utc_end = datetime.combine(day, end, self._tz).astimezone(UTC)
                if utc_end > utc_start:
                    intervals.append((utc_start, utc_end))
        result = tuple(intervals)
        self._days[day] = result
        return result

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        first = date(year, 1, 1)
        cumulative = [ZERO]
        running = ZERO
        day = first
        while day.year == year:
            for start, end in self._day(day):
                running += end - start
            cumulative.append(running)
            day += _ONE_DAY
        result = _Year(first, cumulative)
        self._years[year] = result
        return result

    def _full_days(self, first: date, stop: date) -> timedelta:
        """Return the business time of the whole local days first .. stop - 1."""
        if stop <= first:
            return ZERO
        head = self._year(first.year)
        if first.year == stop.year:
            return head.cumulative[(stop - head.first).days] - head.cumulative[(first - head.first).days]
        total = head.total - head.cumulative[(first - head.first).days]
        for year in range(first.year + 1, stop.year):
            total += self._year(year).total
        tail = self._year(stop.year)
        return total + tail.cumulative[(stop - tail.first).days]

    def _find_day(self, first: date, need: timedelta) -> tuple[date, timedelta]:
        """Return the day on which `need` (> 0) from the start of `first` runs out, and what is left then."""
        day = first
        closed_days = 0
        while True:
            year = self._year(day.year)
            index = (day - year.first).days
            base = year.cumulative[index]
            available = year.total - base
            if available >= need:
                # First i with cumulative[i] - base >= need: the need runs out during day i - 1.
                end = bisect.bisect_left(year.cumulative, base + need, lo=index + 1)
                found = year.first + timedelta(days=end - 1)
                return found, need - (year.cumulative[end - 1] - base)
            need -= available
            days_left = len(year.cumulative) - 1 - index
            closed_days = closed_days + days_left if available == ZERO else 0
            if closed_days > _MAX_CLOSED_DAYS:
                raise ValueError(f"{self!r} has no opening hours in the {closed_days} days after {first}")
            day = date(day.year + 1, 1, 1)

    # ----------------------------------------------------------------- public API

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self._tz).date()

    @staticmethod
    def _check(moment: datetime, name: str = "moment") -> datetime:
        if moment.__class__ is datetime and moment.tzinfo is UTC:
            return moment  # the common case (stored times are UTC): nothing to check or convert
        if not isinstance(moment, datetime):
            raise ValueError(f"{name} must be a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
        return moment.astimezone(UTC)

    def open_intervals(self, day: date) -> list[Interval]:
        """Return the UTC opening intervals of a local date (empty on holidays and closed days)."""
        return list(self._day(day))

    def is_open(self, moment: datetime) -> bool:
        """Tell whether business time runs at this moment (intervals include start, exclude end)."""
        moment = self._check(moment)
        return any(start <= moment < end for start, end in self._day(self._local_date(moment)))

    def next_open(self, moment: datetime) -> datetime:
        """Return the first moment at or after `moment` when the calendar is open, in UTC."""
        return self.add(moment, ZERO)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Return the UTC moment when `duration` of business time has passed after `start`.

        A zero duration gives the next open moment at or after start (start itself if open);
        otherwise a due time that exactly fills an interval is that interval's closing moment.
        """
        start = self._check(start, "start")
        if duration < ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if not self._hours:
            raise ValueError(f"{self!r} has no opening hours on any weekday")
        need = duration
        day = self._local_date(start)
        for open_at, close_at in self._day(day):
            if close_at <= start:
                continue
            begin = max(open_at, start)
            if need == ZERO:
                return begin
            if need <= close_at - begin:
                return begin + need
            need -= close_at - begin
        if need == ZERO:
            # Only the next opening is wanted: ask for the first tick of business time.
            found, _ = self._find_day(day + _ONE_DAY, _TICK)
            return self._day(found)[0][0]
        found, need = self._find_day(day + _ONE_DAY, need)
        for open_at, close_at in self._day(found):
            if need <= close_at - open_at:
                return open_at + need
            need -= close_at - open_at
        raise AssertionError("prefix sums and day intervals disagree")  # pragma: no cover

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Return the business time between two moments (zero if end is not after start)."""
        start = self._check(start, "start")
        end = self._check(end, "end")
        if end <= start:
            return ZERO
        first, last = self._local_date(start), self._local_date(end)
        if first == last:
            return self._overlap(self._day(first), start, end)
        # The intervals of a local date lie within that date, so the span splits cleanly into
        # the rest of the first day, whole days in between, and the start of the last day.
        return (
            self._overlap(self._day(first), start, None)
            + self._full_days(first + _ONE_DAY, last)
            + self._overlap(self._day(last), None, end)
        )

    @staticmethod
    def _overlap(intervals: tuple[Interval, ...], start: datetime | None, end: datetime | None) -> timedelta:
        total = ZERO
        for open_at, close_at in intervals:
            if start is not None and start > open_at:
                open_at = start
            if end is not None and end < close_at:
                close_at = end
            if close_at > open_at:
                total += close_at - open_at
        return total
