"""Tell a database outage from a bug: a refused, dropped or exhausted connection is a 503, not a 500."""
from __future__ import annotations

import logging

from flask import g
from sqlalchemy import exc as sa_exc

from helpdesk.extensions import db, login_manager

RETRY_AFTER_SECONDS = 30  # what a client should wait before trying again; the pool reconnects by itself
# sqlite3 raises OperationalError for bugs too ("no such column"); only these mean "try again later".
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")
log = logging.getLogger(__name__)


def is_outage(error: BaseException) -> bool:
    """Return True if `error` means the database cannot be reached right now (worth a retry)."""
    error = getattr(error, "original_exception", None) or error
    if isinstance(error, sa_exc.TimeoutError):
        return True  # every pooled connection is busy
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if type(error.orig).__module__.startswith("sqlite3"):
        return isinstance(error, sa_exc.OperationalError) and any(
            word in str(error.orig).lower() for word in _SQLITE_TRANSIENT)
    # PostgreSQL: OperationalError is a refused or dropped connection, a server shutting down, too many
    # clients, a lock or statement timeout; InterfaceError: the driver lost its connection.
    return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))


def forget_failed_request(error: BaseException) -> None:
    """Log the outage, drop the session's transaction and treat the rest of the request as anonymous.

    The error answer is rendered in the user's language: without the anonymous user, looking up that
    language would ask the (unreachable) database who is logged in, and fail again.
    """
    log.error("Database unavailable, answering 503: %s", getattr(error, "orig", None) or error)
    try:
        db.session.rollback()
    except sa_exc.SQLAlchemyError:
        db.session().invalidate()
    g._login_user = login_manager.anonymous_user()  # Flask-Login's per-request cache of current_user
