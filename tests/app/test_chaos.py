"""Chaos on PostgreSQL: workers killed with SIGKILL, SMTP down and up; every level fires once, every email arrives."""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpdesk import clock, worker
from helpdesk.config import ROOT
from helpdesk.extensions import db
from helpdesk.models import Escalation, OutboxMessage, Ticket
from helpdesk.services import tickets
from tests.builders import make_calendar, make_category, make_policy, make_team, make_tenant, make_ticket, make_user
from tests.conftest import REQUIRE_PG, SmtpSink, _migrate, make_app
from tests.support import create_database, drop_database, postgres_unreachable

pytestmark = pytest.mark.postgres_only

WORKERS = 3
RUN_SECONDS = 30  # the chaos phase; seeding, start-up and the final checks add about 15 s
TICKETS = 24
ALWAYS_OPEN = {str(day): [["00:00", "24:00"]] for day in range(7)}  # business time = wall time
# P3 (impact 2 × urgency 2): first response 1 min, resolution 2 min; levels 75/100/150 % of each.
TARGETS = {
    "1": {"first_response": 30, "next_update": 60, "resolution": 240},
    "2": {"first_response": 60, "next_update": 120, "resolution": 480},
    "3": {"first_response": 1, "next_update": 2, "resolution": 2},
    "4": {"first_response": 480, "next_update": None, "resolution": 4800},
}
EXPECTED_LEVELS = sorted((target, percent) for target in ("first_response", "resolution") for percent in (75, 100, 150))

# A worker process: the real scheduler loop (helpdesk.worker.run_forever) with the test settings.
WORKER_SCRIPT = """
import json, os
from helpdesk import create_app, worker
worker.run_forever(create_app(json.loads(os.environ["CHAOS_SETTINGS"])))
"""


class SlowSmtpSink(SmtpSink):
    """An SMTP sink that takes a moment per message, so kills land during deliveries too."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def chaos_database(tmp_path):
    """A migrated, throw-away PostgreSQL database of its own (the workers are other processes)."""
    reason = postgres_unreachable()
    if reason:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required (HELPDESK_REQUIRE_PG=1) but unreachable: {reason}")
        pytest.skip(f"the chaos test needs PostgreSQL: {reason}")
    name, url = create_database("helpdesk_chaos")
    try:
        _migrate(url, tmp_path)
        yield url
    finally:
        drop_database(name)


def seed(started) -> list[int]:
    """File tickets in the past so that their escalation levels are due now or come due during the run."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    lead = make_user("team_lead", teams=[team], email="lead@ksm.example")
    team.lead = lead
    agent = make_user("agent", teams=[team], email="agent@ksm.example")
    make_user("service_manager", email="sm@ksm.example")
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    make_user("tenant_manager", tenant=tenant, email="kontakt@lup.example")
    make_policy(tenant, calendar=make_calendar(hours=ALWAYS_OPEN, region=None), targets=TARGETS)
    category = make_category("Sonstiges")
    ids = []
    for n in range(TICKETS):
        requester = make_user(tenant=tenant, email=f"person{n}@lup.example")
        filed = started - timedelta(seconds=5 * n)  # first levels due at once, the last ones within the run
        ticket = make_ticket(requester, category=category, now=filed, subject=f"Störung {n}")
        tickets.assign(lead, ticket, agent, filed + timedelta(seconds=1))
        ids.append(ticket.id)
    return ids


def start_worker(settings: dict, log_path) -> subprocess.Popen:
    """Start one worker process with the chaos settings; its output goes to log_path."""
    env = {**os.environ, "CHAOS_SETTINGS": json.dumps(settings), "PYTHONPATH": str(ROOT)}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """Kill a worker process we started and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_workers_killed_and_an_smtp_outage_lose_no_escalation_and_no_email(chaos_database, tmp_path, monkeypatch):
    app = make_app(chaos_database, tmp_path)
    sink = SlowSmtpSink()
    sink.start()
    settings = {
        "SQLALCHEMY_DATABASE_URI": chaos_database, "SECRET_KEY": "chaos-secret", "BASE_URL": "http://helpdesk.test",
        "INSTANCE_DIR": str(tmp_path), "ATTACHMENT_DIR": str(tmp_path / "attachments"),
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": sink.port, "SMTP_TIMEOUT": 2,
        "OUTBOX_BACKOFF_SECONDS": 1, "WORKER_SLA_SECONDS": 1, "WORKER_OUTBOX_SECONDS": 1,
    }
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_TIMEOUT=5)
    processes: list[subprocess.Popen] = []
    logs = [tmp_path / f"worker{n}.log" for n in range(WORKERS)]
    rng = random.Random(8)
    kills = 0
    try:
        with app.app_context():
            ticket_ids = seed(clock.utcnow())
            db.session.remove()
        processes = [start_worker(settings, logs[n]) for n in range(WORKERS)]

        # Chaos: worker 0 is killed with SIGKILL every few seconds and restarted; SMTP goes down twice.
        outages = [(8, 14), (20, 24)]
        began = time.monotonic()
        next_kill = began + rng.uniform(2.5, 4.5)
        smtp_up = True
        while (elapsed := time.monotonic() - began) < RUN_SECONDS:
            down = any(start <= elapsed < end for start, end in outages)
            if down and smtp_up:
                sink.stop()
                smtp_up = False
            elif not down and not smtp_up:
                sink.start()
                smtp_up = True
            if time.monotonic() >= next_kill:
                os.kill(processes[0].pid, signal.SIGKILL)
                processes[0].wait(timeout=10)
                kills += 1
                processes[0] = start_worker(settings, logs[0])
                next_kill = time.monotonic() + rng.uniform(2.5, 4.5)
            for n, process in enumerate(processes):
                assert process.poll() is None, f"worker {n} ended by itself:\n{logs[n].read_text()[-3000:]}"
            time.sleep(0.1)
        if not smtp_up:
            sink.start()
        for process in processes:
            stop(process)

        # The rest is delivered by a last worker run a day later (every backoff has run out by then).
        later = clock.utcnow() + timedelta(days=1)
        monkeypatch.setattr("helpdesk.clock.utcnow", lambda: later)
        with app.app_context():
            for _ in range(30):
                worker.run_once(app)
                if not db.session.scalar(select(func.count()).where(OutboxMessage.status != "sent")):
                    break

            assert kills >= 5
            # Every escalation level of every ticket fired exactly once.
            fired = db.session.execute(select(Escalation.ticket_id, Escalation.target, Escalation.percent)).all()
            assert len(fired) == len(set(fired))
            for ticket_id in ticket_ids:
                levels = sorted((target, percent) for tid, target, percent in fired if tid == ticket_id)
                assert levels == EXPECTED_LEVELS, db.session.get(Ticket, ticket_id).number

            # Every email was sent and received; a copy only with the Message-ID of its outbox row.
            rows = db.session.execute(select(OutboxMessage.status, OutboxMessage.message_id,
                                             OutboxMessage.recipient)).all()
            assert {status for status, _id, _to in rows} == {"sent"}
            recipient_of = {message_id: recipient for _status, message_id, recipient in rows}
            assert len(recipient_of) == len(rows) and None not in recipient_of  # one row per Message-ID
            received = [(m["message"]["Message-ID"], m["to"]) for m in sink.messages]
            assert {message_id for message_id, _to in received} == set(recipient_of)
            for message_id, to in received:
                assert to == [recipient_of[message_id]]
            duplicates = len(received) - len(recipient_of)
            print(f"chaos: {len(ticket_ids)} tickets, {len(fired)} levels, {len(rows)} emails, {kills} kills, "
                  f"{duplicates} copies sent twice (same Message-ID)")
            db.session.remove()
            db.engine.dispose()
    finally:
        for process in processes:
            try:
                stop(process)
            except (OSError, subprocess.TimeoutExpired):
                pass
        sink.stop()
