"""Bearer-token authentication of API requests (never the browser's session cookie)."""
from __future__ import annotations

from flask import request
from flask_babel import gettext as _

from helpdesk import clock
from helpdesk.api.errors import unauthorized
from helpdesk.models import ApiToken, User
from helpdesk.services import api_tokens

# Cached on the request's environ, not on `g`: in tests one app context outlives many requests.
_ENVIRON_KEY = "helpdesk.api_token"


def presented_secret() -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _sep, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def current_token() -> ApiToken | None:
    """Return the valid token of this request (looked up once per request), else None."""
    if _ENVIRON_KEY not in request.environ:
        request.environ[_ENVIRON_KEY] = api_tokens.authenticate(presented_secret(), clock.utcnow())
    return request.environ[_ENVIRON_KEY]


def api_user() -> User:
    """Return the user the request's token acts as (only call after require_token)."""
    token = current_token()
    assert token is not None, "require_token runs before every API view"
    return token.user


def rate_limit_key() -> str:
    """Count requests per token; requests without a valid token per client address."""
    token = current_token()
    return f"api-token:{token.id}" if token is not None else f"api-addr:{request.remote_addr}"


def require_token():
    """Refuse the request with 401 unless it carries a valid bearer token."""
    if presented_secret() is None:
        return unauthorized(_("Bitte senden Sie einen API-Zugang im Header „Authorization: Bearer <Token>“."))
    if current_token() is None:
        return unauthorized(_("Der API-Zugang ist ungültig, abgelaufen oder widerrufen."))
    return None
