"""KSM Helpdesk: the Flask application factory."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, has_request_context, request, session
from flask_login import current_user

import os

from helpdesk.config import ROOT, Config, DevelopmentConfig
from helpdesk.extensions import babel, csrf, db, limiter, login_manager, migrate, sqlite_wal


def create_app(config: type | dict | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints, error handlers, CLI."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    production = os.environ.get("HELPDESK_ENV") == "production"
    app.config.from_object(Config if production else DevelopmentConfig)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set: export SECRET_KEY (or HELPDESK_SECRET_KEY)")
    if production:
        check_production_settings(app)
    Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    register_extensions(app)
    register_blueprints(app)
    register_template_helpers(app)
    register_error_handlers(app)
    register_api(app)
    register_security_headers(app)
    register_transport_security(app, production=production)
    register_cli(app)
    return app


def check_production_settings(app: Flask) -> None:
    """Refuse to start a production app whose rate limits would count per process."""
    storage = (app.config.get("RATELIMIT_STORAGE_URI") or "memory://").strip()
    if storage.startswith("memory://"):
        raise RuntimeError(
            "HELPDESK_ENV=production needs shared rate-limit storage: with memory:// every web process counts "
            "failed logins and API requests on its own (5 allowed failures become 5 per process). Set "
            "HELPDESK_RATELIMIT_STORAGE_URI to a Redis, e.g. redis://127.0.0.1:6379/0."
        )


def register_transport_security(app: Flask, *, production: bool) -> None:
    """Behind HELPDESK_PROXY_COUNT proxies trust X-Forwarded-For/-Proto; in production: Secure cookies and HSTS."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    count = str(app.config.get("PROXY_COUNT") or "0").strip()
    if not count.isdigit():
        raise RuntimeError(f"HELPDESK_PROXY_COUNT must be the number of proxies in front of the app, not {count!r}")
    if int(count) > 0:
        # Only as many hops as there are proxies of ours: a client could send the headers itself.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(count), x_proto=int(count))
    if not production:
        return
    app.config.update(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)

    @app.after_request
    def strict_transport_security(response):
        # Browsers ignore the header over plain HTTP, so it may go on every answer.
        response.headers.setdefault("Strict-Transport-Security", f"max-age={app.config['HSTS_SECONDS']}")
        return response


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions of helpdesk.extensions to the app."""
    from helpdesk import models  # noqa: F401  (register the tables)
    from helpdesk.services.reporting import rollups  # noqa: F401  (report rollups follow every flush)

    db.init_app(app)
    with app.app_context():
        sqlite_wal(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=lambda: app.config["DISPLAY_TIMEZONE"],
        default_translation_directories=str(ROOT / "translations"),
    )

    @login_manager.user_loader
    def load_user(alternative_id: str):
        """Load the user of a session or remember cookie "<id>:<session version>"; an older version is logged out."""
        from helpdesk.models import User
        from helpdesk.services.ids import as_id

        user_id, _, version = str(alternative_id).partition(":")
        if as_id(user_id) is None or not version.isdigit():
            return None  # also sessions from before session versions existed
        user = db.session.get(User, as_id(user_id))
        if user is None or not user.active or str(user.session_version) != version:
            return None
        return user


def select_locale() -> str:
    """Pick the UI language: the user's choice, then the session's, then German."""
    if not has_request_context():
        return "de"  # CLI and worker: emails choose their locale with force_locale
    if current_user and current_user.is_authenticated and current_user.locale:
        return current_user.locale
    if session.get("locale") in ("de", "en"):
        return session["locale"]
    return "de"


def register_blueprints(app: Flask) -> None:
    """Mount the blueprints: auth, portal (tenants), agent (KSM), manage (admin)."""
    from helpdesk.agent import bp as agent_bp
    from helpdesk.auth import bp as auth_bp
    from helpdesk.manage import bp as manage_bp
    from helpdesk.portal import bp as portal_bp
    from helpdesk.reports import bp as reports_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(portal_bp, url_prefix="/portal")
    app.register_blueprint(agent_bp, url_prefix="/agent")
    app.register_blueprint(manage_bp, url_prefix="/manage")
    app.register_blueprint(reports_bp, url_prefix="/reports")


def register_api(app: Flask) -> None:
    """Mount /api/v1 after the error pages: it answers its own URLs' errors as problem+json."""
    from helpdesk.api import init_api

    init_api(app)


def register_template_helpers(app: Flask) -> None:
    """Expose labels and the Berlin-time formatter to every template."""
    from helpdesk import labels
    from helpdesk.formatting import berlin, berlin_date, duration, filesize, number, percent, signed

    app.jinja_env.filters["berlin"] = berlin
    app.jinja_env.filters["berlin_date"] = berlin_date
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.filters["filesize"] = filesize
    # Numbers in the reader's language: 87,5 % / 87.5%.
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.filters["signed"] = signed
    from flask_babel import get_locale

    app.jinja_env.globals.update(
        get_locale=get_locale,
        STATUS_LABELS=labels.STATUS_LABELS,
        PRIORITY_LABELS=labels.PRIORITY_LABELS,
        LEVEL_LABELS=labels.LEVEL_LABELS,
        CHANNEL_LABELS=labels.CHANNEL_LABELS,
        ROLE_LABELS=labels.ROLE_LABELS,
        FIELD_LABELS=labels.FIELD_LABELS,
        TARGET_LABELS=labels.TARGET_LABELS,
        SLA_STATE_LABELS=labels.SLA_STATE_LABELS,
    )


def register_error_handlers(app: Flask) -> None:
    """Render German error pages (503 with Retry-After while the database is down); roll back the request."""
    from flask import render_template
    from flask_babel import gettext as _
    from flask_wtf.csrf import CSRFError
    from sqlalchemy import exc as sa_exc
    from werkzeug.exceptions import HTTPException

    from helpdesk import outage
    from helpdesk.services.errors import DomainError

    def page(status: int, title: str, detail: str):
        db.session.rollback()
        return render_template("error.html", status=status, title=title, detail=detail), status

    def described(error: HTTPException, default: str) -> str:
        # A description given where the error was raised says what was wrong; werkzeug's English default does not.
        return error.description if error.description != type(error).description else default

    def database_down(error: Exception):
        if not outage.is_outage(error):
            raise error
        outage.forget_failed_request(error)
        body = render_template("error.html", status=503, title=_("Vorübergehend nicht verfügbar"), detail=_(
            "Die Datenbank ist gerade nicht erreichbar. Ihre Eingabe wurde nicht gespeichert. "
            "Bitte versuchen Sie es in einer Minute erneut."))
        return body, 503, {"Retry-After": str(outage.RETRY_AFTER_SECONDS)}

    app.register_error_handler(sa_exc.DBAPIError, database_down)
    app.register_error_handler(sa_exc.TimeoutError, database_down)
    app.register_error_handler(400, lambda e: page(400, _("Ungültige Anfrage"), described(e, _("Die Anfrage konnte nicht verarbeitet werden."))))
    app.register_error_handler(403, lambda e: page(403, _("Kein Zugriff"), _("Dafür fehlt Ihnen die Berechtigung.")))
    app.register_error_handler(404, lambda e: page(404, _("Nicht gefunden"), _("Diese Seite gibt es nicht, oder Sie dürfen sie nicht sehen.")))
    app.register_error_handler(413, lambda e: page(413, _("Zu groß"), _("Die Anfrage ist zu groß. Bitte laden Sie kleinere Dateien hoch.")))
    app.register_error_handler(429, lambda e: page(429, _("Zu viele Versuche"), _("Bitte warten Sie einige Minuten und versuchen Sie es dann erneut.")))
    app.register_error_handler(500, lambda e: page(500, _("Interner Fehler"), _("Es ist ein Fehler aufgetreten. Ihre Eingabe wurde nicht gespeichert.")))
    app.register_error_handler(CSRFError, lambda e: page(400, _("Sitzung abgelaufen"), _("Das Formular ist abgelaufen oder ungültig. Bitte laden Sie die Seite neu und senden Sie es erneut.")))
    app.register_error_handler(DomainError, lambda e: page(e.status, _("Nicht möglich"), e.message))


def register_security_headers(app: Flask) -> None:
    """Refuse unstorable input; send a strict Content-Security-Policy, and no-store for every dynamic answer."""
    from werkzeug.exceptions import BadRequest

    from helpdesk.input_guard import input_problem

    @app.before_request
    def refuse_unusable_input():
        # NUL, lone surrogates and deep JSON would fail deep inside a query or a parser: answer 400 here.
        problem = input_problem(request)
        if problem:
            raise BadRequest(description=problem)

    @app.after_request
    def headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static":
            # Pages, CSV exports, downloads and API answers are private: no browser or proxy may keep a copy.
            response.headers["Cache-Control"] = "no-store"
        return response


def register_cli(app: Flask) -> None:
    """Add the `users`, `seed-demo` and `worker` commands."""
    from helpdesk.cli import register

    register(app)
