"""Read the wall clock in one place, so tests and services can pass `now` explicitly."""
from datetime import datetime, timezone


def utcnow() -> datetime:
    """Return the current moment as an aware UTC datetime."""
    return datetime.now(timezone.utc)
