"""Fixtures of the browser tests: the app served on loopback, an SMTP sink, real Chromium."""
from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask, got_request_exception
from werkzeug.serving import make_server

from tests.conftest import REQUIRE_PG, SmtpSink, _empty_all_tables, _migrate, free_port, make_app

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("HELPDESK_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def _browser_missing() -> str | None:
    """Return why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM} (install Debian's chromium package)"
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is not installed"
    return None


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session; skips (or fails with HELPDESK_REQUIRE_BROWSER=1) without it."""
    reason = _browser_missing()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"browser tests required (HELPDESK_REQUIRE_BROWSER=1) but cannot run: {reason}")
        pytest.skip(f"browser tests skipped: {reason}; set HELPDESK_REQUIRE_BROWSER=1 to make this an error")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class LiveServer:
    """The app served over HTTP on 127.0.0.1, with the SMTP sink it sends to."""

    app: Flask
    url: str
    smtp: SmtpSink
    errors: list = field(default_factory=list)  # exceptions raised while handling requests


@pytest.fixture
def live_server(request, tmp_path) -> LiveServer:
    """Serve a fresh, migrated database (SQLite; PostgreSQL with HELPDESK_REQUIRE_PG=1) on a free port."""
    from helpdesk.extensions import db, limiter

    if REQUIRE_PG:
        url = request.getfixturevalue("database_url")("postgresql")
    else:
        url = f"sqlite:///{tmp_path / 'e2e.sqlite'}"
        _migrate(url, tmp_path)
    sink = SmtpSink()
    sink.start()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = make_app(url, tmp_path, BASE_URL=base_url, SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_TIMEOUT=5)
    server = LiveServer(app=app, url=base_url, smtp=sink)

    def record_error(sender, exception, **extra) -> None:
        server.errors.append(exception)

    got_request_exception.connect(record_error, app)
    with app.app_context():
        if REQUIRE_PG:
            _empty_all_tables()
        limiter.reset()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="e2e-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
        httpd.server_close()
        got_request_exception.disconnect(record_error, app)
        sink.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def browser_page(chromium, live_server):
    """A fresh browser context and page (German), recording console errors and failed requests."""
    context = chromium.new_context(base_url=live_server.url, locale="de-DE", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message) -> None:
        # The browser asks for /favicon.ico on its own; the app has none (a 404 nobody sees).
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"console {message.type}: {message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} {req.failure}"))
    page.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url}")
            if res.status >= 400 and not res.url.endswith("/favicon.ico") else None)
    page.problems = problems
    yield page
    context.close()
