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


def duration(value) -> str:
    """Format a timedelta of business time as '2 h 05 min' (negative values get a minus)."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    sign = "−" if seconds < 0 else ""
    minutes = abs(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours} h {minutes:02d} min" if hours else f"{sign}{minutes} min"


def filesize(size: int | None) -> str:
    """Format a byte count for people: '31 Bytes', '1,2 KB', '3,4 MB' (German decimal comma)."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} Bytes"
    value, unit = (size / 1024, "KB") if size < 1024 * 1024 else (size / 1024 / 1024, "MB")
    return f"{value:.1f} {unit}".replace(".", ",")
