"""While PostgreSQL refuses connections the app answers 503 with Retry-After, and recovers by itself."""
from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy.engine import make_url

from helpdesk.extensions import db
from helpdesk.services import api_tokens
from tests.app.test_sla_workflow import berlin, file
from tests.conftest import free_port, make_app


class Forwarder:
    """A TCP forwarder on loopback in front of PostgreSQL that can be switched off (refuse and cut)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Accept connections again (on the same port)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a stopped server would."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            self._thread.join(timeout=5)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        listener.settimeout(0.1)
        while self._listener is listener:
            try:
                client, _address = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def outage(world, database_url, tmp_path):
    """An app whose database connections go through a forwarder; yields (app, forwarder, API headers)."""
    url = make_url(database_url("postgresql"))
    forwarder = Forwarder(url.host, url.port or 5432)
    forwarder.start()
    _token, secret = api_tokens.create_token(world["requester"], name="outage", expires_at=None,
                                             now=berlin("2026-03-05 09:00"))
    ticket = file(world, "2026-03-05 09:00")
    db.session.commit()
    app = make_app(url.set(host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False), tmp_path)
    yield app, forwarder, {"Authorization": f"Bearer {secret}"}, ticket
    forwarder.stop()
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_pages_and_api_answer_503_with_retry_after_while_the_database_refuses_and_recover_by_themselves(
        world, outage):
    app, forwarder, api_headers, ticket = outage
    browser = app.test_client()
    browser.login(world["requester"])
    visitor = app.test_client()
    token = visitor.csrf_token()
    urls = {"page": f"/portal/tickets/{ticket.number}", "api": "/api/v1/tickets"}

    def answers():
        page = browser.get(urls["page"])
        api = browser.get(urls["api"], headers=api_headers)
        login = visitor.post("/login", data={"email": world["requester"].email, "password": "falsch",
                                             "csrf_token": token})
        return page, api, login

    page, api, login = answers()
    assert (page.status_code, api.status_code, login.status_code) == (200, 200, 200)

    forwarder.stop()
    page, api, login = answers()
    for response in (page, api, login):
        assert response.status_code == 503, response.get_data(as_text=True)[:1000]
        assert int(response.headers["Retry-After"]) > 0
    assert "Die Datenbank ist gerade nicht erreichbar." in page.get_data(as_text=True)
    assert "Die Datenbank ist gerade nicht erreichbar." in login.get_data(as_text=True)
    assert api.mimetype == "application/problem+json"
    assert api.get_json(force=True)["status"] == 503 and "Retry-After" in api.get_json(force=True)["detail"]

    forwarder.start()
    page, api, login = answers()
    assert (page.status_code, api.status_code) == (200, 200)
    assert ticket.number in page.get_data(as_text=True)
    assert [t["number"] for t in api.get_json()["items"]] == [ticket.number]
    assert login.status_code == 200 and "Die Datenbank" not in login.get_data(as_text=True)


def test_a_database_bug_is_not_mistaken_for_an_outage():
    import sqlite3

    import psycopg
    from sqlalchemy import exc

    from helpdesk.outage import is_outage

    assert is_outage(exc.OperationalError("select", {}, psycopg.OperationalError("connection refused")))
    assert is_outage(exc.OperationalError("select", {}, sqlite3.OperationalError("database is locked")))
    assert is_outage(exc.TimeoutError("QueuePool limit reached"))
    assert not is_outage(exc.OperationalError("select", {}, sqlite3.OperationalError("no such column: x")))
    assert not is_outage(exc.IntegrityError("insert", {}, psycopg.IntegrityError("duplicate key")))
