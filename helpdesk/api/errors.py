"""Answer every API error as application/problem+json (RFC 9457) with a title, detail and field errors."""
from __future__ import annotations

import json
import logging

from flask import Response, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from helpdesk import outage
from helpdesk.extensions import db
from helpdesk.services.errors import DomainError

PROBLEM_MIMETYPE = "application/problem+json"
log = logging.getLogger(__name__)

# Field names of the service layer that the API calls differently.
FIELD_ALIASES = {"category": "category_id", "team": "team_id", "assignee": "assignee_id", "attachments": "file"}


def _titles() -> dict[int, str]:
    return {
        400: _("Ungültige Anfrage"),
        401: _("Nicht angemeldet"),
        403: _("Kein Zugriff"),
        404: _("Nicht gefunden"),
        405: _("Methode nicht erlaubt"),
        409: _("Konflikt"),
        413: _("Zu groß"),
        415: _("Nicht unterstütztes Format"),
        422: _("Ungültige Eingabe"),
        429: _("Zu viele Anfragen"),
        500: _("Interner Fehler"),
        503: _("Vorübergehend nicht verfügbar"),
    }


def problem(status: int, detail: str | None = None, *, errors: dict | None = None, title: str | None = None,
            headers: dict | None = None) -> Response:
    """Return a problem+json response."""
    body = {"type": "about:blank", "title": title or _titles().get(status, str(status)), "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages, prefix: str = "") -> dict[str, list[str]]:
    """Turn webargs' {location: {field: [msg]}} (possibly nested) into {"field.sub": [msg]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, name))
    elif isinstance(messages, (list, tuple)) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_request"] = list(messages)
    else:
        for index, value in enumerate(messages or ()):
            flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    return flat


def validation_errors(messages: dict) -> dict[str, list[str]]:
    """Return field errors by field name, leaving out the location (json, query, form, files)."""
    flat: dict[str, list[str]] = {}
    for location_messages in (messages or {}).values():
        for field, texts in _flatten(location_messages).items():
            flat.setdefault(FIELD_ALIASES.get(field, field), []).extend(texts)
    return flat


def unauthorized(detail: str) -> Response:
    """Return the 401 problem with the challenge a bearer-token client expects."""
    return problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="api"'})


def handle_domain_error(error: DomainError) -> Response:
    """Map a refused request: NotFound 404, Forbidden 403, Conflict 409, any other rule 422 with the field."""
    db.session.rollback()
    status = error.status if error.status in (403, 404, 409) else 422
    errors = None
    if error.field:
        aliases = {**FIELD_ALIASES, **request.environ.get("helpdesk.api_field_aliases", {})}
        errors = {aliases.get(error.field, error.field): [error.message]}
    return problem(status, error.message, errors=errors)


def handle_http_error(error: HTTPException) -> Response:
    """Answer an HTTP error (also webargs' 422 with field messages) as a problem."""
    db.session.rollback()
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="api"')
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    errors = validation_errors(data["messages"]) if "messages" in data else None
    if status == 422:
        detail = _("Bitte prüfen Sie die Felder: %(fields)s.", fields=", ".join(sorted(errors or {})) or "-")
    elif status == 500:
        detail = _("Es ist ein Fehler aufgetreten. Die Anfrage wurde nicht ausgeführt.")
    elif status == 429:
        detail = _("Zu viele Anfragen mit diesem Zugang. Bitte warten Sie, bis die in Retry-After genannte Zeit vorüber ist.")
    elif status == 413:
        detail = _("Die Anfrage ist zu groß.")
    elif status == 400 and errors:
        detail = "; ".join(m for texts in errors.values() for m in texts)
    elif status == 400 and error.description != type(error).description:
        detail = error.description  # said where it was raised (e.g. unstorable characters, deep JSON)
    elif status == 404:
        detail = _("Diese Adresse gibt es in der API nicht.")
    elif status == 405:
        detail = _("Diese Methode ist für diese Adresse nicht erlaubt.")
    elif status == 415:
        detail = _("Bitte senden Sie den Inhalt als application/json.")
    else:
        detail = _("Die Anfrage konnte nicht verarbeitet werden.")
    if status == 400 and errors:
        # webargs answers an unparsable JSON body with 400; report it as the invalid field "body".
        errors = {"body": [m for texts in errors.values() for m in texts]}
    return problem(status, detail, errors=errors, headers=headers)


def handle_unexpected(error: Exception) -> Response:
    """Answer 503 with Retry-After while the database is down; log any other crash and answer 500."""
    if outage.is_outage(error):
        outage.forget_failed_request(error)
        return problem(503, _("Die Datenbank ist gerade nicht erreichbar. Die Anfrage wurde nicht ausgeführt; "
                              "bitte wiederholen Sie sie nach der in Retry-After genannten Zeit."),
                       headers={"Retry-After": str(outage.RETRY_AFTER_SECONDS)})
    db.session.rollback()
    original = getattr(error, "original_exception", None) or error
    log.exception("API request failed", exc_info=original)
    return problem(500, _("Es ist ein Fehler aufgetreten. Die Anfrage wurde nicht ausgeführt."))
