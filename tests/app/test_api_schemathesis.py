"""Schemathesis fuzzes /api/v1 from its own OpenAPI document against the app served on loopback."""
from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from helpdesk.services import api_tokens, tickets
from tests.builders import at, make_category, make_policy, make_rule, make_team, make_tenant, make_ticket, make_user
from tests.conftest import free_port

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")


def _seed() -> dict[str, str]:
    """Create a small helpdesk with tickets, comments and an SLA contract; return a token per role."""
    now = at("2026-03-05 09:00")
    desk = make_team("service-desk", "Service Desk", fallback=True)
    printers = make_team("drucker", "Arbeitsplatz & Drucker")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    make_rule(printers, category=hardware)
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    make_policy(tenant)
    requester = make_user(tenant=tenant, email="erika@lup.example")
    agent = make_user("agent", teams=[desk, printers])
    for n in range(3):
        ticket = make_ticket(requester, category=printer, subject=f"Störung {n}", now=now)
        tickets.reply(agent, ticket, body="Wir kümmern uns.", now=now)
    secrets = {}
    for name, user in (("agent", agent), ("requester", requester)):
        _token, secrets[name] = api_tokens.create_token(user, name="schemathesis", expires_at=None, now=now)
    return secrets


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (requirements-dev.txt)")
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("role", ["agent", "requester"])
def test_schemathesis_finds_no_server_error_and_no_response_violating_the_schema(app, role, tmp_path):
    app.config.update(API_RATE_LIMIT="100000 per minute", SERVER_NAME=None)
    secret = _seed()[role]
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [SCHEMATHESIS, "run", f"http://127.0.0.1:{port}/api/v1/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance",
             "--header", f"Authorization: Bearer {secret}",
             "--max-examples", "8", "--workers", "1", "--seed", "20260305", "--no-shrink",
             "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
             "--request-timeout", "10", "--no-color", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=240, cwd=tmp_path,
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
