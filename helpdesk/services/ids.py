"""Read database ids and page numbers from untrusted input without overflowing a 32-bit column."""
from __future__ import annotations

from flask_babel import gettext as _

from helpdesk.services.errors import DomainError, NotFound

MAX_ID = 2**31 - 1  # INTEGER columns on PostgreSQL (and what SQLite ids stay within here)


def as_id(value) -> int | None:
    """Return the id in 1..MAX_ID that `value` spells, else None (never raises)."""
    text = str(value if value is not None else "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None  # isdigit() alone accepts "²", which int() refuses
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def page_number(value) -> int:
    """Return the page number `value` spells (1 when absent); refuse anything else with a clear message."""
    text = str(value if value is not None else "").strip()
    if not text:
        return 1
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise DomainError(_("Die Seitenzahl muss eine ganze Zahl ab 1 sein."), field="page")
    if as_id(text) is None:
        # No list has that many pages; an offset this large would overflow the database's integers.
        raise NotFound(_("Die Seite %(page)s gibt es nicht.", page=text[:30]))
    return int(text)


def optional_id(value, message: str) -> int | None:
    """Return None for an empty value, else the id `value` spells; refuse anything else with `message` (400)."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    number = as_id(text)
    if number is None:
        raise DomainError(message)
    return number
