"""Personal API tokens: create (secret shown once), list, revoke, and authenticate a bearer token."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from helpdesk.extensions import db
from helpdesk.models import ApiToken, User
from helpdesk.services.errors import DomainError, NotFound

TOKEN_PREFIX = "ksm_"
# Writing last_used_at on every request would turn each read into a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(secret: str) -> str:
    """Return the SHA-256 hex digest under which a token secret is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(user: User, *, name: str, expires_at: datetime | None, now: datetime) -> tuple[ApiToken, str]:
    """Create a token for the user and return it with its secret (never stored, shown once); commit."""
    name = (name or "").strip()
    if not name:
        raise DomainError(_("Bitte geben Sie einen Namen für den Zugang ein."), field="name")
    if len(name) > 100:
        raise DomainError(_("Der Name darf höchstens 100 Zeichen lang sein."), field="name")
    if expires_at is not None and expires_at <= now:
        raise DomainError(_("Das Ablaufdatum muss in der Zukunft liegen."), field="expires_at")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_prefix=secret[:12], token_hash=hash_token(secret),
                     created_at=now, expires_at=expires_at)
    db.session.add(token)
    db.session.commit()
    return token, secret


def user_tokens(user: User) -> list[ApiToken]:
    """Return the user's tokens, newest first."""
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    ))


def revoke_token(user: User, token_id: int, now: datetime) -> ApiToken:
    """Revoke one of the user's own tokens (others' tokens are not found); commit."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))
    if token is None:
        raise NotFound(_("Zugang nicht gefunden."))
    if token.revoked_at is None:
        token.revoked_at = now
        db.session.commit()
    return token


def authenticate(secret: str | None, now: datetime) -> ApiToken | None:
    """Return the valid token for a presented secret (not revoked, not expired, user active), else None.

    Records the time of use at most once a minute (commits only then).
    """
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(secret)).options(joinedload(ApiToken.user))
    )
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return token
