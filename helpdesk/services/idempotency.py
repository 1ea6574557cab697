"""Idempotent creates: the first answer to a request with an Idempotency-Key is stored and replayed.

The claim row is added to the session before the create service runs, so the service's commit stores
the new object and the claim together: a retry can never create a second object, also when two retries
race (the unique constraint on (user, key) makes the loser's transaction fail and roll back). The
answer itself (status, body, Location) is written right after, in a second commit; should the process
die in between, the claim stays without an answer and retries get 409 instead of a duplicate.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, select

from helpdesk.extensions import db
from helpdesk.models import IdempotencyRecord, User
from helpdesk.services.errors import DomainError

HEADER = "Idempotency-Key"
IN_PROGRESS = 0  # status_code of a claim whose answer is not stored yet


class Conflict(DomainError):
    """A request with the same key is still being processed (or its answer was lost)."""

    status = 409


def fingerprint(method: str, path: str, payload) -> str:
    """Return a hash of what makes two requests "the same": method, path and canonical body."""
    canonical = json.dumps([method.upper(), path, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_key(key: str) -> str:
    """Return the key if it is usable (1–200 visible ASCII characters), else raise DomainError."""
    key = (key or "").strip()
    if not key or len(key) > 200 or not all(33 <= ord(char) < 127 for char in key):
        raise DomainError(_("Der Idempotency-Key muss aus 1 bis 200 sichtbaren ASCII-Zeichen bestehen."), field=HEADER)
    return key


def find(user: User, key: str, request_fingerprint: str) -> IdempotencyRecord | None:
    """Return the stored answer for this user and key; refuse a key reused for another request."""
    record = db.session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == user.id, IdempotencyRecord.key == key)
    )
    if record is None:
        return None
    if record.request_fingerprint != request_fingerprint:
        raise DomainError(_("Idempotency-Key reused with a different request"), field=HEADER)
    if record.status_code == IN_PROGRESS:
        raise Conflict(_("Eine Anfrage mit diesem Idempotency-Key wird noch verarbeitet."), field=HEADER)
    return record


def claim(user: User, key: str, request_fingerprint: str, now: datetime) -> IdempotencyRecord:
    """Add the claim for a key to the session (no commit: the create service commits it with its object)."""
    record = IdempotencyRecord(user_id=user.id, key=key, request_fingerprint=request_fingerprint,
                               status_code=IN_PROGRESS, response_body="", created_at=now)
    db.session.add(record)
    return record


def complete(record: IdempotencyRecord, *, status_code: int, body: str, location: str | None) -> None:
    """Store the answer on a committed claim; commit."""
    record.status_code = status_code
    record.response_body = body
    record.location = location
    db.session.commit()


def purge(before: datetime) -> int:
    """Delete stored answers older than `before` (keys are meant for retries, not forever); commit."""
    result = db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))
    db.session.commit()
    return result.rowcount or 0
