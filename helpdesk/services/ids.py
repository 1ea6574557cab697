"""Read database ids and page numbers from untrusted input without overflowing a 32-bit column."""
from __future__ import annotations

MAX_ID = 2**31 - 1  # INTEGER columns on PostgreSQL (and what SQLite ids stay within here)


def as_id(value) -> int | None:
    """Return the id in 1..MAX_ID that `value` spells, else None (never raises)."""
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def page_number(value) -> int:
    """Return a page number for pagination: 1 for anything unusable, at most MAX_ID."""
    return as_id(value) or 1
