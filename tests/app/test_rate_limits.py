"""Failed logins are throttled per account and per address, with counters shared by every web process."""
from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest

from helpdesk.config import ROOT
from helpdesk.extensions import db
from tests.builders import PASSWORD, make_team, make_tenant, make_user
from tests.conftest import _migrate, free_port, make_app

TOO_MANY = "Bitte warten Sie einige Minuten"


def attempt(client, email: str, password: str, address: str):
    """Submit the login form once from a client address."""
    return client.post_form("/login", {"email": email, "password": password},
                            environ_base={"REMOTE_ADDR": address})


def allowed_per_address(app) -> int:
    """Return how many failed logins one address may make (the number of HELPDESK_LOGIN_IP_RATE_LIMIT)."""
    return int(app.config["LOGIN_IP_RATE_LIMIT"].split()[0])


@pytest.fixture
def office(app):
    """An authority with a few employees."""
    make_team("service-desk", "Service Desk", fallback=True)
    tenant = make_tenant("lup")
    return [make_user(tenant=tenant, email=f"person{n}@lup.example") for n in range(5)]


def test_one_address_trying_one_password_on_many_accounts_is_refused_after_the_limit(app, client, office):
    limit = allowed_per_address(app)
    emails = [user.email for user in office] + [f"geraten{n}@lup.example" for n in range(limit)]
    for email in emails[:limit]:
        assert attempt(client, email, "Sommer2026!", "198.51.100.9").status_code == 200

    response = attempt(client, office[0].email, PASSWORD, "198.51.100.9")

    assert response.status_code == 429
    assert "Zu viele Versuche" in response.get_data(as_text=True)
    assert TOO_MANY in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


def test_another_address_may_still_log_in_while_one_address_is_refused(app, client, office):
    for n in range(allowed_per_address(app) + 1):
        attempt(client, f"geraten{n}@lup.example", "Sommer2026!", "198.51.100.9")

    colleague = app.test_client()
    response = attempt(colleague, office[1].email, PASSWORD, "198.51.100.10")

    assert response.status_code == 302


def test_successful_logins_from_one_office_address_do_not_count_towards_its_limit(app, office):
    for n in range(allowed_per_address(app) + 2):
        browser = app.test_client()
        assert attempt(browser, office[n % len(office)].email, PASSWORD, "198.51.100.20").status_code == 302


def test_the_address_limit_is_configurable(app, client, office):
    app.config["LOGIN_IP_RATE_LIMIT"] = "2 per 5 minutes"
    attempt(client, "a@lup.example", "Sommer2026!", "198.51.100.30")
    attempt(client, "b@lup.example", "Sommer2026!", "198.51.100.30")

    assert attempt(client, office[0].email, PASSWORD, "198.51.100.30").status_code == 429


# --- two gunicorn workers sharing the counters in Redis --------------------------------------------

class Server:
    """`gunicorn -w 2 wsgi:app` on loopback in production mode, with its access log naming each worker's pid."""

    def __init__(self, tmp_path, database_url: str, redis_limits):
        self.port = free_port()
        self.access_log = tmp_path / "access.log"
        self.error_log = tmp_path / "error.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
        env.update({
            "HELPDESK_ENV": "production",
            "SECRET_KEY": "gunicorn-test-secret",
            "HELPDESK_DATABASE_URL": database_url,
            "HELPDESK_INSTANCE_DIR": str(tmp_path),
            "HELPDESK_RATELIMIT_STORAGE_URI": redis_limits.url,
            "HELPDESK_RATELIMIT_KEY_PREFIX": redis_limits.prefix,
            "HELPDESK_LOGIN_RATE_LIMIT": "5 per 5 minutes",
        })
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{self.port}", "--timeout", "60",
             "--access-logfile", str(self.access_log), "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
             "--error-logfile", str(self.error_log), "wsgi:app"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def wait_until_both_workers_booted(self) -> None:
        """Wait (bounded) until the master has started two workers and one answers."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.error_log.read_text()
            log = self.error_log.read_text() if self.error_log.exists() else ""
            if log.count("Booting worker") >= 2:
                try:
                    status, _ = self.request("GET", "/login")
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        pytest.fail("gunicorn did not start in 60 s:\n" + self.error_log.read_text())

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """Send one request on a new connection; return the status and the response."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            connection.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
            response = connection.getresponse()
            return response.status, response
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop the master (it stops its workers) and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def login_pids(self, expected: int) -> list[str]:
        """Return the pid of the worker that answered each POST /login, in order (waits for `expected` lines)."""
        deadline = time.monotonic() + 10  # a worker writes its log line just after the answer went out
        while True:
            lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
            pids = [line.split()[0] for line in lines if " POST /login " in line + " "]
            if len(pids) >= expected or time.monotonic() > deadline:
                return pids
            time.sleep(0.05)


class LoginForm:
    """A login form fetched once (session cookie + CSRF token), submitted over fresh connections."""

    def __init__(self, server: Server):
        self.server = server
        status, response = server.request("GET", "/login")
        assert status == 200
        cookie = response.getheader("Set-Cookie")
        assert "Secure" in cookie  # production: the browser would send it over HTTPS only
        self.cookie = cookie.split(";", 1)[0]
        self.token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.read().decode()).group(1)

    def body(self, email: str, password: str) -> bytes:
        """Return the urlencoded form."""
        return urlencode({"csrf_token": self.token, "email": email, "password": password}).encode()

    def headers(self, length: int) -> dict:
        """Return the headers of a form POST."""
        return {"Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded",
                "Content-Length": str(length)}

    def submit(self, email: str, password: str) -> int:
        """Submit on a new connection; return the status."""
        body = self.body(email, password)
        status, response = self.server.request("POST", "/login", body, self.headers(len(body)))
        response.read()
        return status

    def submit_held(self, email: str, password: str) -> "HeldLogin":
        """Start a POST whose body is sent only later: the worker that took it waits and serves nobody else."""
        return HeldLogin(self, self.body(email, password))


class HeldLogin:
    """A login POST with `Expect: 100-continue`: once "100 Continue" came back, one worker is busy with it."""

    def __init__(self, form: LoginForm, body: bytes):
        self.body = body
        self.sock = socket.create_connection(("127.0.0.1", form.server.port), timeout=20)
        head = "".join(f"{k}: {v}\r\n" for k, v in {**form.headers(len(body)), "Host": "127.0.0.1",
                                                      "Expect": "100-continue", "Connection": "close"}.items())
        self.sock.sendall(f"POST /login HTTP/1.1\r\n{head}\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(1024)
            assert chunk, "connection closed before 100 Continue"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 100"), answer

    def finish(self) -> int:
        """Send the body; return the status of the answer."""
        self.sock.sendall(self.body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed without an answer"
            answer += chunk
        self.sock.close()
        return int(answer.split()[1])


@pytest.fixture
def gunicorn_two_workers(tmp_path, redis_limits):
    """A migrated SQLite file with one employee, served by two gunicorn workers sharing Redis limits."""
    url = f"sqlite:///{tmp_path / 'helpdesk.sqlite'}"
    _migrate(url, tmp_path)
    seeding = make_app(url, tmp_path)
    with seeding.app_context():
        make_team("service-desk", "Service Desk", fallback=True)
        user = make_user(tenant=make_tenant("lup"), email="anna@lup.example")
        email = user.email
        db.session.remove()
        db.engine.dispose()
    server = Server(tmp_path, url, redis_limits)
    try:
        server.wait_until_both_workers_booted()
        yield server, email
    finally:
        server.stop()


def test_sixth_failed_login_is_refused_whichever_of_two_gunicorn_workers_gets_it(gunicorn_two_workers):
    server, email = gunicorn_two_workers
    form = LoginForm(server)

    first_busy = form.submit_held(email, "falsch-1")  # worker A waits for this body
    statuses = [form.submit(email, f"falsch-{n}") for n in (2, 3, 4)]  # so worker B answers these
    second_busy = form.submit_held(email, PASSWORD)  # now B waits ...
    statuses.append(first_busy.finish())  # ... and A answers failure 1 (the 4th counted)
    statuses.append(form.submit(email, "falsch-5"))  # A again: the 5th failure
    statuses.append(form.submit(email, "falsch-6"))  # A: the 6th attempt
    statuses.append(second_busy.finish())  # B: the right password, after 5 failures

    assert statuses[:5] == [200, 200, 200, 200, 200]
    assert statuses[5] == 429, statuses
    assert statuses[6] == 429, statuses
    pids = server.login_pids(expected=7)
    assert len(pids) == 7 and len(set(pids)) == 2, pids
    assert pids[0] == pids[1] == pids[2] == pids[6] != pids[3] == pids[4] == pids[5], pids
