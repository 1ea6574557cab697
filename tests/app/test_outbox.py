"""Email delivery from the outbox over real SMTP: once, with retries, never leaking internal notes."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage
from helpdesk.services import tickets
from helpdesk.services.outbox import deliver_due
from helpdesk import worker
from tests.builders import at, make_category, make_team, make_tenant, make_ticket, make_user
from tests.conftest import SmtpSink

NOW = at("2026-03-05 09:00")


@pytest.fixture
def world(app):
    """A Service Desk with an agent, one authority with a requester, and a catalog entry."""
    desk = make_team("service-desk", "Service Desk", fallback=True)
    return {
        "agent": make_user("agent", teams=[desk], name="Jonas Becker", email="jonas@ksm.example"),
        "requester": make_user(tenant=make_tenant("lup"), name="Anna Schulz", email="anna@lup.example"),
        "category": make_category("Sonstiges"),
    }


def outbox_row(ticket=None) -> OutboxMessage:
    """Return the one outbox row (of a ticket), fresh from the database."""
    db.session.expire_all()
    query = select(OutboxMessage)
    if ticket is not None:
        query = query.where(OutboxMessage.ticket_id == ticket.id)
    return db.session.scalars(query).one()


def body(message) -> str:
    """Return the plain-text body of a received email."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content()


def test_new_ticket_email_arrives_once_with_the_ticket_number(world, smtp_server):
    ticket = make_ticket(world["requester"], category=world["category"],
                         subject="Drucker im 2. OG druckt nur leere Seiten", now=NOW)

    first = deliver_due(NOW)
    second = deliver_due(NOW + timedelta(minutes=5))

    assert first["sent"] == 1 and second == {"sent": 0, "retry": 0, "failed": 0}
    received = smtp_server.to("anna@lup.example")
    assert len(received) == 1
    assert ticket.number in received[0]["Subject"]
    assert "Drucker im 2. OG druckt nur leere Seiten" in received[0]["Subject"]
    assert ticket.number in body(received[0])
    row = outbox_row(ticket)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, NOW)


def test_without_smtp_host_nothing_is_sent_and_emails_wait(world, smtp_server, app):
    app.config["SMTP_HOST"] = None
    make_ticket(world["requester"], category=world["category"], now=NOW)

    counts = deliver_due(NOW + timedelta(hours=1))

    assert counts == {"sent": 0, "retry": 0, "failed": 0}
    assert smtp_server.messages == []
    row = outbox_row()
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)


def test_email_waits_with_backoff_while_smtp_is_down_and_arrives_once_it_is_back(world, smtp_server):
    make_ticket(world["requester"], category=world["category"], now=NOW)
    port = smtp_server.port
    smtp_server.stop()

    counts = deliver_due(NOW)

    assert counts == {"sent": 0, "retry": 1, "failed": 0}
    row = outbox_row()
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error
    assert row.next_attempt_at > NOW

    restarted = SmtpSink()
    restarted.port = port
    restarted.start()
    try:
        assert deliver_due(NOW)["sent"] == 0  # not due yet: the backoff is respected
        assert restarted.messages == []

        later = row.next_attempt_at + timedelta(seconds=1)
        assert deliver_due(later)["sent"] == 1
        deliver_due(later + timedelta(minutes=10))

        assert len(restarted.to("anna@lup.example")) == 1
        row = outbox_row()
        assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    finally:
        restarted.stop()


def test_email_is_given_up_after_the_maximum_number_of_attempts(world, smtp_server, app):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    make_ticket(world["requester"], category=world["category"], now=NOW)
    smtp_server.stop()

    moment, results = NOW, []
    for _ in range(3):
        results.append(deliver_due(moment))
        moment = outbox_row().next_attempt_at + timedelta(seconds=1)

    assert [r["retry"] for r in results] == [1, 1, 0]
    assert results[-1]["failed"] == 1
    row = outbox_row()
    assert (row.status, row.attempts) == ("failed", 3)
    assert deliver_due(moment + timedelta(days=1)) == {"sent": 0, "retry": 0, "failed": 0}


def test_an_email_that_cannot_be_built_is_given_up_and_does_not_block_the_others(world, smtp_server):
    db.session.add(OutboxMessage(recipient="anna@lup.example", subject="Kaputt\nBcc: jemand@evil.example",
                                 body_text="x\n", kind="test", created_at=NOW - timedelta(hours=1),
                                 next_attempt_at=NOW - timedelta(hours=1)))
    db.session.commit()
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)

    counts = deliver_due(NOW)

    assert counts == {"sent": 1, "retry": 0, "failed": 1}
    received = smtp_server.to("anna@lup.example")
    assert len(received) == 1 and ticket.number in received[0]["Subject"]
    broken = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "test")).one()
    assert broken.status == "failed" and "ValueError" in broken.last_error


def test_worker_run_once_delivers_the_outbox(world, smtp_server, app):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)

    worker.run_once(app)

    received = smtp_server.to("anna@lup.example")
    assert len(received) == 1 and ticket.number in received[0]["Subject"]
    assert outbox_row(ticket).status == "sent"


def test_requester_never_receives_the_text_of_an_internal_note(world, smtp_server):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    agent = world["agent"]
    tickets.assign(agent, ticket, agent, NOW + timedelta(minutes=5))
    tickets.reply(agent, ticket, body="Zitronenfalter: Admin-Kennwort des Druckservers liegt im Tresor.",
                  internal=True, now=NOW + timedelta(minutes=10))
    tickets.reply(agent, ticket, body="Wir kümmern uns darum und melden uns heute noch.",
                  new_status="pending", now=NOW + timedelta(minutes=15))
    tickets.change_status(agent, ticket, "resolved", NOW + timedelta(minutes=20))

    deliver_due(NOW + timedelta(hours=1))

    received = smtp_server.to("anna@lup.example")
    texts = [m["Subject"] + body(m) for m in received]
    assert len(received) == 3  # filed, public reply, status changed
    assert any("Wir kümmern uns darum" in text for text in texts)
    assert not any("Zitronenfalter" in text or "Tresor" in text for text in texts)
    assert not any("Zitronenfalter" in body(m["message"]) for m in smtp_server.messages)


def test_two_workers_at_once_deliver_every_email_exactly_once(app, backend, smtp_server):
    if backend != "postgresql":
        pytest.skip("concurrent workers rely on FOR UPDATE SKIP LOCKED row claiming, which only PostgreSQL has; "
                    "a SQLite file database is not meant for several writing workers")
    for n in range(20):
        db.session.add(OutboxMessage(recipient=f"person{n}@lup.example", subject=f"Nachricht {n}",
                                     body_text=f"Inhalt {n}\n", kind="test", created_at=NOW, next_attempt_at=NOW))
    db.session.commit()
    start, errors, counts = threading.Barrier(2), [], []

    def run_worker():
        try:
            with app.app_context():
                start.wait(timeout=10)
                counts.append(deliver_due(NOW + timedelta(minutes=1)))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run_worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    recipients = sorted(address for m in smtp_server.messages for address in m["to"])
    assert recipients == sorted(f"person{n}@lup.example" for n in range(20))
    assert sum(c["sent"] for c in counts) == 20
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(OutboxMessage.status == "sent")) == 20
