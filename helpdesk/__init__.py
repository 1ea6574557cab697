"""KSM Helpdesk: the Flask application factory."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, abort, has_request_context, request, session
from flask_login import current_user

import os

from helpdesk.config import ROOT, Config, DevelopmentConfig
from helpdesk.extensions import babel, csrf, db, limiter, login_manager, migrate


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
    Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    register_extensions(app)
    register_blueprints(app)
    register_template_helpers(app)
    register_error_handlers(app)
    register_api(app)
    register_security_headers(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions of helpdesk.extensions to the app."""
    from helpdesk import models  # noqa: F401  (register the tables)

    db.init_app(app)
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
    def load_user(user_id: str):
        from helpdesk.models import User
        from helpdesk.services.ids import as_id

        user = db.session.get(User, as_id(user_id)) if as_id(user_id) else None
        return user if user is not None and user.active else None


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
    from helpdesk.formatting import berlin, berlin_date, duration, filesize

    app.jinja_env.filters["berlin"] = berlin
    app.jinja_env.filters["berlin_date"] = berlin_date
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.filters["filesize"] = filesize
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
    """Render German error pages; roll back whatever a failed request started."""
    from flask import render_template
    from flask_babel import gettext as _
    from flask_wtf.csrf import CSRFError

    from helpdesk.services.errors import DomainError

    def page(status: int, title: str, detail: str):
        db.session.rollback()
        return render_template("error.html", status=status, title=title, detail=detail), status

    app.register_error_handler(400, lambda e: page(400, _("Ungültige Anfrage"), _("Die Anfrage konnte nicht verarbeitet werden.")))
    app.register_error_handler(403, lambda e: page(403, _("Kein Zugriff"), _("Dafür fehlt Ihnen die Berechtigung.")))
    app.register_error_handler(404, lambda e: page(404, _("Nicht gefunden"), _("Diese Seite gibt es nicht, oder Sie dürfen sie nicht sehen.")))
    app.register_error_handler(413, lambda e: page(413, _("Zu groß"), _("Die Anfrage ist zu groß. Bitte laden Sie kleinere Dateien hoch.")))
    app.register_error_handler(429, lambda e: page(429, _("Zu viele Versuche"), _("Bitte warten Sie einige Minuten und versuchen Sie es dann erneut.")))
    app.register_error_handler(500, lambda e: page(500, _("Interner Fehler"), _("Es ist ein Fehler aufgetreten. Ihre Eingabe wurde nicht gespeichert.")))
    app.register_error_handler(CSRFError, lambda e: page(400, _("Sitzung abgelaufen"), _("Das Formular ist abgelaufen oder ungültig. Bitte laden Sie die Seite neu und senden Sie es erneut.")))
    app.register_error_handler(DomainError, lambda e: page(e.status, _("Nicht möglich"), e.message))


def register_security_headers(app: Flask) -> None:
    """Refuse NUL bytes in input; send a strict Content-Security-Policy (no inline scripts)."""

    @app.before_request
    def refuse_nul_bytes():
        # PostgreSQL cannot store NUL in text: answer 400 instead of failing deep inside a query.
        values = [request.path, *request.args.values()]
        if request.method == "POST" and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            values += list(request.form.values())
        if request.is_json:
            values.append(request.get_data(as_text=True).replace("\\u0000", "\x00"))
        if any("\x00" in value for value in values):
            abort(400)

    @app.after_request
    def headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def register_cli(app: Flask) -> None:
    """Add the `users`, `seed-demo` and `worker` commands."""
    from helpdesk.cli import register

    register(app)
