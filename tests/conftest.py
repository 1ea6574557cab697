"""Shared fixtures: the app on SQLite and PostgreSQL, a logged-in client, a real SMTP server."""
from __future__ import annotations

import os
import re
import socket
import threading
from datetime import datetime, timezone

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from helpdesk import create_app
from helpdesk.config import ROOT
from helpdesk.extensions import db, limiter
from tests.builders import PASSWORD
from tests.support import (
    PG_ADMIN_URL, app_config as _config, create_database, drop_database, postgres_unreachable as _postgres_reachable,
)

REQUIRE_PG = os.environ.get("HELPDESK_REQUIRE_PG") == "1"
BACKENDS = ["sqlite", "postgresql"]
_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def pytest_report_header(config):
    return f"PostgreSQL tests: {PG_ADMIN_URL} ({'required' if REQUIRE_PG else 'skipped if unreachable'})"


def _migrate(url: str, tmp) -> None:
    from flask_migrate import upgrade

    app = create_app(_config(url, tmp))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """Return a function backend -> URL of a migrated, session-private database."""
    urls: dict[str, str] = {}
    created_pg: list[str] = []
    root = tmp_path_factory.mktemp("db")

    def get(backend: str) -> str:
        if backend in urls:
            return urls[backend]
        if backend == "sqlite":
            url = f"sqlite:///{root / 'helpdesk.sqlite'}"
        else:
            reason = _postgres_reachable()
            if reason:
                if REQUIRE_PG:
                    pytest.fail(f"PostgreSQL required (HELPDESK_REQUIRE_PG=1) but unreachable: {reason}")
                pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({reason}); set HELPDESK_TEST_PG_URL")
            name, url = create_database("helpdesk_test")
            created_pg.append(name)
        _migrate(url, root)
        urls[backend] = url
        return url

    yield get
    if created_pg:
        for name in created_pg:
            drop_database(name)


def _empty_all_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


class HelpdeskClient(FlaskClient):
    """Test client that logs in and sends forms with a valid CSRF token."""

    _token: str | None = None

    def open(self, *args, **kwargs):
        """Forget what Flask-Login, Flask-Babel and Flask-WTF cached on `g`: the app context outlives requests."""
        from flask import g

        g.pop("_login_user", None)
        g.pop("_flask_babel", None)
        g.pop("csrf_token", None)  # Flask-WTF caches the token of the last session here
        return super().open(*args, **kwargs)

    def csrf_token(self, refresh: bool = False) -> str:
        """Return a CSRF token for this client's session (read from a rendered form)."""
        if self._token is None or refresh:
            page = self.get("/account")
            if page.status_code != 200:
                page = self.get("/login")
            match = _CSRF_RE.search(page.get_data(as_text=True))
            assert match, "no CSRF token on the page"
            self._token = match.group(1) or match.group(2)
        return self._token

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        """POST a form with the session's CSRF token added."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self.post(url, data=data, **kwargs)

    def login(self, user, password: str = PASSWORD):
        """Log in through the login form; assert it worked."""
        self._token = None
        response = self.post_form("/login", {"email": user.email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self._token = None
        return response


def make_app(url: str, tmp_path, **overrides):
    """Build an app against a migrated database, with test settings."""
    app = create_app({**_config(url, tmp_path), **overrides})
    app.test_client_class = HelpdeskClient
    return app


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture
def app(backend, database_url, tmp_path):
    """The app with an empty, migrated database and an app context pushed."""
    app = make_app(database_url(backend), tmp_path)
    with app.app_context():
        _empty_all_tables()
        limiter.reset()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app) -> HelpdeskClient:
    """A fresh browser-like client."""
    return app.test_client()


@pytest.fixture
def frozen_now(monkeypatch):
    """Freeze helpdesk.clock.utcnow at a moment; call the returned function to move it."""
    state = {"now": datetime(2026, 3, 5, 9, 0, tzinfo=timezone.utc)}

    def set_now(moment: datetime | None = None) -> datetime:
        if moment is not None:
            state["now"] = moment
        return state["now"]

    monkeypatch.setattr("helpdesk.clock.utcnow", lambda: state["now"])
    return set_now


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    def __init__(self):
        self.port = free_port()
        self.messages: list = []
        self._lock = threading.Lock()
        self.controller = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes, policy

        with self._lock:
            self.messages.append(
                {"to": list(envelope.rcpt_tos), "from": envelope.mail_from,
                 "message": message_from_bytes(envelope.content, policy=policy.default)}
            )
        return "250 OK"

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list:
        """Return the messages delivered to one address."""
        return [m["message"] for m in self.messages if address in m["to"]]


@pytest.fixture
def smtp_server(app):
    """A running SMTP sink; the app is configured to send to it."""
    sink = SmtpSink()
    sink.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_TIMEOUT=5)
    yield sink
    sink.stop()


REQUIRE_REDIS = os.environ.get("HELPDESK_REQUIRE_REDIS") == "1"
REDIS_URL = os.environ.get("HELPDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_limits():
    """Rate-limit storage in the Redis on loopback, under a key prefix of this test; its keys are deleted after."""
    import uuid
    from types import SimpleNamespace

    import redis

    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        connection.ping()
    except redis.RedisError as exc:
        connection.close()
        if REQUIRE_REDIS:
            pytest.fail(f"Redis required (HELPDESK_REQUIRE_REDIS=1) but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({exc}); set HELPDESK_TEST_REDIS_URL")
    prefix = f"helpdesk-test-{uuid.uuid4().hex[:12]}"
    yield SimpleNamespace(url=REDIS_URL, prefix=prefix, connection=connection)
    keys = list(connection.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        connection.delete(*keys)
    connection.close()
