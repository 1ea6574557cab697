"""Read and show SLA targets as business hours and minutes ("4 h", "1 h 30 min") instead of raw minutes.

Input accepts German and English unit words: "4 h", "4 Std.", "4 Stunden", "4 hours", "4:30",
"90 min", "1,5 h", "1 h 30", "1 Tag 2 h", "2 d". A bare number is minutes, as the form always took.

A day ("Tag", "d", "day") is 8 business hours, the working day the contract form has always
explained ("480 = 1 Arbeitstag à 8 h"). Targets are shown in hours and minutes only, never in
days: a calendar's business days differ in length (Mo–Do 9 h, Fr 6 h in the MV calendar), so a
shown "1 Tag" would read as "by the same time next business day", which the clock does not do.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _

MINUTES_PER_DAY = 8 * 60
_UNITS = {
    "d": MINUTES_PER_DAY, "tag": MINUTES_PER_DAY, "tage": MINUTES_PER_DAY, "tg": MINUTES_PER_DAY,
    "arbeitstag": MINUTES_PER_DAY, "arbeitstage": MINUTES_PER_DAY, "day": MINUTES_PER_DAY,
    "days": MINUTES_PER_DAY, "workday": MINUTES_PER_DAY, "workdays": MINUTES_PER_DAY,
    "h": 60, "std": 60, "stunde": 60, "stunden": 60, "hour": 60, "hours": 60, "hr": 60, "hrs": 60,
    "m": 1, "min": 1, "mins": 1, "minute": 1, "minuten": 1, "minutes": 1,
}
_CLOCK = re.compile(r"^(\d{1,6}):([0-5]\d)$")
_PART = re.compile(r"(\d{1,9}(?:[.,]\d{1,4})?)\s*([^\W\d_]+\.?)?")
_JOINERS = re.compile(r"\s*(?:,|\bund\b|\band\b|\s)\s*", re.IGNORECASE)


class DurationError(ValueError):
    """Text that is no duration; the message says why, in the user's language."""


def parse_minutes(text) -> int | None:
    """Return the whole business minutes a text like "1 Tag 2 h" or "4:30" means; None when empty.

    Raises DurationError with a message for anything else (unknown unit, a unit twice,
    fractions of a minute).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    value = str(text if text is not None else "").strip()
    if not value:
        return None
    clock = _CLOCK.match(value)
    if clock:
        return int(clock.group(1)) * 60 + int(clock.group(2))
    total, seen, position = 0.0, set(), 0
    parts = []
    while position < len(value):
        joiner = _JOINERS.match(value, position)
        if joiner and joiner.end() > position:
            position = joiner.end()
            continue
        part = _PART.match(value, position)
        if not part or part.end() == position:
            raise DurationError(_invalid(text))
        parts.append((part.group(1), (part.group(2) or "").rstrip(".")))  # unit as typed, for the message
        position = part.end()
    if not parts:
        raise DurationError(_invalid(text))
    for index, (number, unit) in enumerate(parts):
        if not unit:
            # "1 h 30" reads as 1 h 30 min; a lone number is minutes.
            if len(parts) == 1 or (index == len(parts) - 1 and parts[index - 1][1].lower() in _hour_words()):
                unit = "min"
            else:
                raise DurationError(_invalid(text))
        size = _UNITS.get(unit.lower())
        if size is None:
            raise DurationError(_("„%(unit)s“ ist keine Zeiteinheit. Erlaubt sind Tag, h und min.", unit=unit))
        if size in seen:
            raise DurationError(_invalid(text))
        seen.add(size)
        total += float(number.replace(",", ".")) * size
    if abs(total - round(total)) > 1e-6:
        raise DurationError(_("Bitte ganze Minuten angeben (z. B. 1,5 h = 90 min)."))
    return int(round(total))


def _hour_words() -> set[str]:
    return {word for word, size in _UNITS.items() if size == 60}


def _invalid(text) -> str:
    return _("„%(text)s“ ist keine Dauer. Beispiele: 4 h, 4:30, 90 min, 1 Tag 2 h (1 Tag = 8 h).", text=text)


def format_minutes(minutes: int | None) -> str:
    """Show business minutes as "4 h", "1 h 30 min" or "30 min"; empty for None."""
    if minutes is None:
        return ""
    minutes = int(minutes)
    sign = "−" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    if not hours:
        return f"{sign}{rest} min"
    return f"{sign}{hours} h {rest} min" if rest else f"{sign}{hours} h"
