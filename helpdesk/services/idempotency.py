"""Idempotent creates: the first answer to a request with an Idempotency-Key is stored and replayed.

The claim row is added to the session before the create service runs, so the service's commit stores
the new object and the claim together: a retry can never create a second object, also when two retries
race (the unique constraint on (user, key) makes the loser's transaction fail and roll back). The same
commit notes on the claim what was created (type and ids, from a flush listener), so should the process
die before the answer (status, body, Location) is written in the second commit, a retry rebuilds that
answer from the created rows instead of waiting forever.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, event, select

from helpdesk.extensions import db
from helpdesk.models import Attachment, Comment, IdempotencyRecord, Ticket, User
from helpdesk.services.errors import DomainError

HEADER = "Idempotency-Key"
IN_PROGRESS = 0  # status_code of a claim whose answer is not stored yet
RESOURCES = {"ticket": Ticket, "comment": Comment, "attachment": Attachment}  # what an idempotent create makes
_LISTENERS = "helpdesk.idempotency_listeners"


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
    if record.status_code == IN_PROGRESS and not record.resource_ids:
        raise in_progress()
    return record


def in_progress() -> Conflict:
    """Return the refusal for a key whose request has not created anything yet."""
    return Conflict(_("Eine Anfrage mit diesem Idempotency-Key wird noch verarbeitet."), field=HEADER)


def created(record: IdempotencyRecord) -> list:
    """Return the rows a claim's request created (empty if they are gone), in the order they were made."""
    model = RESOURCES.get(record.resource_type or "")
    ids = [int(part) for part in (record.resource_ids or "").split(",") if part]
    if model is None or not ids:
        return []
    rows = {row.id: row for row in db.session.scalars(select(model).where(model.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def claim(user: User, key: str, request_fingerprint: str, now: datetime, *, resource_type: str) -> IdempotencyRecord:
    """Add the claim for a key to the session and note on it the `resource_type` rows the request flushes.

    No commit: the create service commits the claim, its rows and their ids together. Call `release`
    when the request is over.
    """
    model = RESOURCES[resource_type]
    record = IdempotencyRecord(user_id=user.id, key=key, request_fingerprint=request_fingerprint,
                               status_code=IN_PROGRESS, response_body="", created_at=now,
                               resource_type=resource_type)
    db.session.add(record)
    session = db.session()
    seen: list[int] = []

    def collect(flushed, _context):
        # Ids exist once the INSERTs ran; attributes changed here would be lost, so they are set below.
        seen.extend(sorted(obj.id for obj in flushed.new if isinstance(obj, model) and obj.id not in seen))

    def note(_flushed, _context):
        ids = ",".join(str(i) for i in seen) or None
        if record.resource_ids != ids:
            record.resource_ids = ids  # the commit flushes again before it commits: same transaction

    event.listen(session, "after_flush", collect)
    event.listen(session, "after_flush_postexec", note)
    session.info.setdefault(_LISTENERS, []).extend([("after_flush", collect), ("after_flush_postexec", note)])
    return record


def release() -> None:
    """Stop noting created rows on the claim of this request."""
    session = db.session()
    for name, listener in session.info.pop(_LISTENERS, []):
        if event.contains(session, name, listener):
            event.remove(session, name, listener)


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
