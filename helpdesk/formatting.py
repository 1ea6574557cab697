"""Format values for people: UTC moments in Berlin time, numbers in the reader's language."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.numbers import format_decimal, parse_pattern

BERLIN = ZoneInfo("Europe/Berlin")
GERMAN = Locale.parse("de")


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


def _locale() -> Locale:
    """Return the reader's locale (Flask-Babel: the user's choice, force_locale in emails); German outside a request."""
    from flask_babel import get_locale

    return get_locale() or GERMAN


def _decimals(digits: int) -> str:
    return "#,##0" + ("." + "0" * digits if digits > 0 else "")


def number(value, digits: int = 0) -> str:
    """Format a number with `digits` decimals as the reader's language writes it ('1.234,5' / '1,234.5')."""
    if value is None:
        return ""
    return format_decimal(value, format=_decimals(digits), locale=_locale())


def signed(value, digits: int = 1) -> str:
    """Format a difference with its sign always shown ('+1,5' / '+1.5'); empty for None."""
    if value is None:
        return ""
    pattern = _decimals(digits)
    return format_decimal(value, format=f"+{pattern};-{pattern}", locale=_locale())


def percent(value, digits: int | None = 1) -> str:
    """Format a value given in percent (87.5) with the reader's percent sign: '87,5 %' / '87.5%'.

    `digits` decimals are always shown; None shows only those needed (95 %, 97,5 %), at most two.
    """
    if value is None:
        return ""
    locale = _locale()
    # The locale's own pattern places the sign ('#,##0 %' in German, '#,##0%' in English);
    # only the number of decimals is ours.
    pattern = parse_pattern(locale.percent_formats[None].pattern)
    pattern.frac_prec = (0, 2) if digits is None else (digits, digits)
    return pattern.apply(value / 100, locale)


def filesize(size: int | None) -> str:
    """Format a byte count for people: '31 Bytes', '1,2 KB', '3,4 MB' (decimals in the reader's language)."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} Bytes"
    value, unit = (size / 1024, "KB") if size < 1024 * 1024 else (size / 1024 / 1024, "MB")
    return f"{number(value, 1)} {unit}"
