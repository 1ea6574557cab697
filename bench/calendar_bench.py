"""Print the time per business-calendar operation: add 10 business days, between over a year."""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sla import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = {day: [("07:00", "16:00")] for day in range(4)} | {4: [("07:00", "13:00")]}
TEN_BUSINESS_DAYS = timedelta(hours=84)  # two KSM weeks: 2 × (4 × 9 h + 6 h)


def measure(label: str, operation, arguments: list[tuple], rounds: int) -> None:
    """Run the operation over all arguments `rounds` times and print the mean per call."""
    began = time.perf_counter()
    for _ in range(rounds):
        for args in arguments:
            operation(*args)
    elapsed = time.perf_counter() - began
    calls = rounds * len(arguments)
    print(f"{label:<40} {elapsed / calls * 1e6:8.2f} µs per call ({calls} calls)")


def main() -> None:
    """Build the KSM calendar, warm its caches, and time add and between."""
    closed = [date(year, 12, day) for year in range(2024, 2031) for day in (24, 31)]
    build = time.perf_counter()
    cal = BusinessCalendar(timezone="Europe/Berlin", hours=HOURS, holidays="DE-MV", closed=closed)
    cal.between(datetime(2025, 1, 1, tzinfo=BERLIN), datetime(2029, 1, 1, tzinfo=BERLIN))
    print(f"{'first use: load holidays, 5 years of tables':<40} {(time.perf_counter() - build) * 1e3:8.2f} ms once")
    # Starts spread over two years at odd minutes, inside and outside opening hours.
    starts = [datetime(2026, 1, 1, tzinfo=BERLIN) + timedelta(minutes=7919 * n) for n in range(200)]
    measure("add(start, 10 business days)", cal.add, [(s, TEN_BUSINESS_DAYS) for s in starts], 200)
    measure("between(start, start + 365 days)", cal.between, [(s, s + timedelta(days=365)) for s in starts], 200)
    measure("is_open(moment)", cal.is_open, [(s,) for s in starts], 200)


if __name__ == "__main__":
    main()
