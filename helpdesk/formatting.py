"""Show stored UTC moments in the display timezone (Europe/Berlin)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(moment: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """Format an aware datetime in Berlin time; empty for None."""
    if moment is None:
        return ""
    return moment.astimezone(BERLIN).strftime(fmt)


def berlin_date(moment: datetime | None) -> str:
    """Format the Berlin calendar date of a moment."""
    return berlin(moment, "%d.%m.%Y")
