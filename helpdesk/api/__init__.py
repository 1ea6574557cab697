"""The versioned JSON API under /api/v1: bearer tokens, problem+json errors, a generated OpenAPI document."""
from __future__ import annotations

import http

from flask import Blueprint as FlaskBlueprint, Flask, request
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from helpdesk.api.errors import PROBLEM_MIMETYPE, handle_domain_error, handle_http_error, handle_unexpected, problem
from helpdesk.api.schemas import ProblemSchema
from helpdesk.services.errors import DomainError

URL_PREFIX = "/api/v1"
ERROR_CODES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500)

bp = Blueprint("api", __name__, description="Tickets, comments, attachments, catalog, teams and SLA state.")
docs_bp = FlaskBlueprint("api_docs", __name__)

API_DESCRIPTION = """\
The KSM Helpdesk JSON API. Authenticate every request with a personal API token
(`Authorization: Bearer ksm_…`, created under "Mein Konto > API-Zugänge"); the token acts with
exactly its user's role and tenant. Errors are `application/problem+json`. Creates accept an
`Idempotency-Key` header: a retry with the same key and body returns the first answer again (also
after a crash before that answer was sent). While the database is unreachable every request answers
503 with `Retry-After`; nothing was done, repeat it after that many seconds.
"""


class HelpdeskApi(Api):
    """flask-smorest's Api with problem+json error documents and no app-wide JSON error handler."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        # The browser keeps its HTML error pages; the API blueprint answers its own errors.
        pass

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Error as problem details", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def _api_config(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "KSM Helpdesk API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", URL_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": API_DESCRIPTION},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    })


def _is_api_request() -> bool:
    return request.path == URL_PREFIX or request.path.startswith(URL_PREFIX + "/")


def _wrap_app_handler(app: Flask, code: int) -> None:
    """Answer unmatched URLs under /api/v1 (no blueprint is known yet) as problems; keep the HTML page elsewhere."""
    previous = next(iter(app.error_handler_spec[None].get(code, {}).values()), None)

    def handler(error: HTTPException):
        if _is_api_request():
            return handle_http_error(error)
        return previous(error) if previous else error

    app.register_error_handler(code, handler)


def init_api(app: Flask) -> HelpdeskApi:
    """Mount the API blueprint with its OpenAPI document, error handling and CSRF exemption."""
    from helpdesk.api import docs, routes  # noqa: F401  (register the views)
    from helpdesk.api import reports  # noqa: F401  (the service level report)
    from helpdesk.extensions import csrf

    _api_config(app)
    api = HelpdeskApi(app)
    api.register_blueprint(bp, url_prefix=URL_PREFIX)
    app.register_blueprint(docs_bp, url_prefix=URL_PREFIX)
    # Bearer tokens, never cookies: a cross-site form cannot authenticate, so CSRF tokens are not needed.
    csrf.exempt(bp)
    for code in (404, 405):
        _wrap_app_handler(app, code)
    app.extensions["helpdesk_api"] = api
    return api


# Error handlers of the blueprint win over the app's HTML pages for every request routed to it.
for _code in ERROR_CODES:
    bp.register_error_handler(_code, handle_http_error)
bp.register_error_handler(HTTPException, handle_http_error)
bp.register_error_handler(DomainError, handle_domain_error)
bp.register_error_handler(Exception, handle_unexpected)

__all__ = ["bp", "docs_bp", "init_api", "problem"]
