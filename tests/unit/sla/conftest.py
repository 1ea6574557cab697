"""Calendars for the SLA unit tests: the KSM standard week and simpler shapes."""
from __future__ import annotations

from datetime import date

import pytest

from sla import BusinessCalendar

KSM_HOURS = {day: [("07:00", "16:00")] for day in range(4)} | {4: [("07:00", "13:00")]}


@pytest.fixture(scope="session")
def ksm() -> BusinessCalendar:
    """Mo–Do 07:00–16:00, Fr 07:00–13:00, Europe/Berlin, MV holidays, closed 24.12. and 31.12."""
    closed = [date(year, 12, day) for year in range(2024, 2030) for day in (24, 31)]
    return BusinessCalendar(timezone="Europe/Berlin", hours=KSM_HOURS, holidays="DE-MV", closed=closed)


@pytest.fixture(scope="session")
def always() -> BusinessCalendar:
    """Open around the clock every day, no holidays, in Europe/Berlin."""
    return BusinessCalendar(
        timezone="Europe/Berlin", hours={day: [("00:00", "24:00")] for day in range(7)}, holidays=None
    )


@pytest.fixture(scope="session")
def daily() -> BusinessCalendar:
    """Open 07:00–16:00 every day including Sundays, no holidays (to test the DST Sundays)."""
    return BusinessCalendar(timezone="Europe/Berlin", hours={day: [("07:00", "16:00")] for day in range(7)},
                            holidays=None)
