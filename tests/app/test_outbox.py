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


# --- a worker that dies mid-delivery (issue 8, defect 3) -------------------------------------

def die_after_the_server_accepted(monkeypatch):
    """Make the worker die (SystemExit escapes) right after the SMTP server accepted an email."""
    import smtplib

    original = smtplib.SMTP.send_message

    def send_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise SystemExit("worker killed between SMTP acceptance and commit")

    monkeypatch.setattr(smtplib.SMTP, "send_message", send_then_die)


def die_before_sending(monkeypatch):
    """Make the worker die (a BaseException escapes) every time it hands an email to SMTP."""
    import smtplib

    def die(self, *args, **kwargs):
        raise SystemExit("worker killed while talking to SMTP")

    monkeypatch.setattr(smtplib.SMTP, "send_message", die)


def run_worker_that_dies(moment) -> None:
    """Run one delivery that kills the worker; forget what the dead process had not committed."""
    with pytest.raises(SystemExit):
        deliver_due(moment)
    db.session.rollback()


def test_every_try_of_one_email_carries_the_same_message_id(world, smtp_server, monkeypatch):
    make_ticket(world["requester"], category=world["category"], now=NOW)
    with monkeypatch.context() as patch:
        die_after_the_server_accepted(patch)
        run_worker_that_dies(NOW)

    assert deliver_due(NOW + timedelta(days=1))["sent"] == 1

    received = smtp_server.to("anna@lup.example")
    assert len(received) == 2  # the copy a kill after acceptance cannot avoid …
    ids = {m["Message-ID"] for m in received}
    assert len(ids) == 1  # … carries the same Message-ID, so mail servers can drop it
    row = outbox_row()
    assert ids == {row.message_id}
    assert (row.status, row.attempts) == ("sent", 2)


def test_an_email_being_sent_is_not_claimed_again_by_another_worker_meanwhile(world, smtp_server, monkeypatch):
    make_ticket(world["requester"], category=world["category"], now=NOW)
    with monkeypatch.context() as patch:
        die_after_the_server_accepted(patch)
        run_worker_that_dies(NOW)

    # A second worker a moment later sees the try in progress (its attempt is recorded) and leaves it alone.
    assert deliver_due(NOW + timedelta(seconds=5)) == {"sent": 0, "retry": 0, "failed": 0}
    assert len(smtp_server.to("anna@lup.example")) == 1
    assert outbox_row().attempts == 1


def test_an_email_that_kills_the_worker_on_every_try_is_failed_after_the_maximum_attempts(
        world, smtp_server, app, monkeypatch):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    die_before_sending(monkeypatch)

    moment = NOW
    for _ in range(3):
        run_worker_that_dies(moment)
        moment += timedelta(days=1)
    assert outbox_row().attempts == 3

    counts = deliver_due(moment)  # the next worker gives up instead of dying a fourth time

    assert counts == {"sent": 0, "retry": 0, "failed": 1}
    row = outbox_row()
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error
    assert failure_lines(ticket) == ["anna@lup.example"]


# --- permanent and temporary SMTP refusals (issue 8, defect 4) ---------------------------------

class PickySmtpServer(SmtpSink):
    """A real SMTP server that refuses some recipients permanently (5xx) or for now (4xx)."""

    ANSWERS = {
        "unbekannt@lup.example": "550 5.1.1 <unbekannt@lup.example>: Recipient address rejected: User unknown",
        "voll@lup.example": "452 4.2.2 <voll@lup.example>: Mailbox full, try again later",
        "grau@lup.example": "451 4.7.1 <grau@lup.example>: Greylisted, please try again later",
    }
    DATA_ANSWERS = {"spam@lup.example": "554 5.7.1 Message rejected as spam"}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        if address in self.ANSWERS:
            return self.ANSWERS[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        for address in envelope.rcpt_tos:
            if address in self.DATA_ANSWERS:
                return self.DATA_ANSWERS[address]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def picky_smtp(app):
    """A running PickySmtpServer the app sends to."""
    sink = PickySmtpServer()
    sink.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_TIMEOUT=5)
    yield sink
    sink.stop()


def ticket_for(world, email: str, moment=NOW):
    """File a ticket for a requester with this address; its confirmation email is queued for them."""
    requester = make_user(tenant=world["requester"].tenant, email=email)
    return make_ticket(requester, category=world["category"], now=moment)


def failure_lines(ticket) -> list[str]:
    """Return the recipients named by the ticket's history lines about undeliverable emails."""
    from helpdesk.models import TicketEvent

    db.session.expire_all()
    return list(db.session.scalars(select(TicketEvent.new_value).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "email_failed").order_by(TicketEvent.id)))


def test_permanent_smtp_refusal_fails_the_email_at_once(world, picky_smtp):
    refused = ticket_for(world, "unbekannt@lup.example")

    counts = deliver_due(NOW)

    assert counts == {"sent": 0, "retry": 0, "failed": 1}
    row = outbox_row(refused)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error and "User unknown" in row.last_error  # the server's own answer
    assert deliver_due(NOW + timedelta(days=2)) == {"sent": 0, "retry": 0, "failed": 0}
    assert failure_lines(refused) == ["unbekannt@lup.example"]


def test_message_refused_after_data_with_5xx_fails_at_once(world, picky_smtp):
    spam = ticket_for(world, "spam@lup.example")

    assert deliver_due(NOW) == {"sent": 0, "retry": 0, "failed": 1}

    row = outbox_row(spam)
    assert row.status == "failed" and "554" in row.last_error and "spam" in row.last_error
    assert failure_lines(spam) == ["spam@lup.example"]


def test_temporary_smtp_refusal_keeps_the_backoff(world, picky_smtp):
    greylisted = ticket_for(world, "grau@lup.example")

    assert deliver_due(NOW) == {"sent": 0, "retry": 1, "failed": 0}

    row = outbox_row(greylisted)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in row.last_error and row.next_attempt_at > NOW
    assert failure_lines(greylisted) == []


def test_a_refused_recipient_does_not_stop_the_rest_of_the_batch(world, picky_smtp):
    refused = ticket_for(world, "unbekannt@lup.example")
    full = ticket_for(world, "voll@lup.example")
    fine = ticket_for(world, "rita@lup.example")
    spam = ticket_for(world, "spam@lup.example")
    also_fine = ticket_for(world, "tom@lup.example")

    counts = deliver_due(NOW)

    assert counts == {"sent": 2, "retry": 1, "failed": 2}
    assert [outbox_row(t).status for t in (refused, full, fine, spam, also_fine)] == [
        "failed", "pending", "sent", "failed", "sent"]
    assert len(picky_smtp.to("rita@lup.example")) == 1 and len(picky_smtp.to("tom@lup.example")) == 1
    assert picky_smtp.to("unbekannt@lup.example") == [] and picky_smtp.to("spam@lup.example") == []


def test_outbox_page_shows_a_refused_email_as_failed_with_the_servers_answer(world, picky_smtp, client):
    ticket_for(world, "unbekannt@lup.example")
    deliver_due(NOW)
    admin = make_user("admin", email="ada@ksm.example")
    client.login(admin)

    page = client.get("/manage/outbox").get_data(as_text=True)

    assert "unbekannt@lup.example" in page and "fehlgeschlagen" in page
    assert "550 5.1.1" in page and "User unknown" in page


def test_ticket_history_tells_agents_that_an_email_could_not_be_delivered(world, picky_smtp, client):
    refused = ticket_for(world, "unbekannt@lup.example")
    deliver_due(NOW)
    client.login(world["agent"])

    page = client.get(f"/agent/tickets/{refused.number}").get_data(as_text=True)

    assert "nicht zugestellt" in page and "unbekannt@lup.example" in page and "550 5.1.1" in page


# --- the outbox page offers a retry only where one makes sense ---------------------------------

def test_outbox_offers_send_again_only_for_emails_that_were_tried_and_failed_or_wait_after_an_error(
        world, client):
    never_tried = ticket_for(world, "neu@lup.example")
    waiting = ticket_for(world, "grau@lup.example")
    failed = ticket_for(world, "unbekannt@lup.example")
    sent = ticket_for(world, "rita@lup.example")
    for ticket, status, attempts, error in ((waiting, "pending", 1, "451 4.7.1 Greylisted"),
                                            (failed, "failed", 1, "550 5.1.1 User unknown"),
                                            (sent, "sent", 1, None)):
        row = outbox_row(ticket)
        row.status, row.attempts, row.last_error = status, attempts, error
        db.session.commit()
    client.login(make_user("admin", email="ada@ksm.example"))

    page = client.get("/manage/outbox").get_data(as_text=True)

    offered = {outbox_row(t).id for t in (never_tried, waiting, failed, sent)
               if f"/manage/outbox/{outbox_row(t).id}/retry" in page}
    assert offered == {outbox_row(waiting).id, outbox_row(failed).id}
    for ticket, expected in ((never_tried, False), (waiting, True), (failed, True), (sent, False)):
        detail = client.get(f"/manage/outbox/{outbox_row(ticket).id}").get_data(as_text=True)
        assert ("Erneut senden" in detail) is expected, ticket


def test_send_again_is_refused_for_an_email_that_was_never_tried(world, client):
    ticket = ticket_for(world, "neu@lup.example")
    client.login(make_user("admin", email="ada@ksm.example"))
    row_id = outbox_row(ticket).id

    response = client.post_form(f"/manage/outbox/{row_id}/retry", follow_redirects=True)

    assert "wartet noch auf ihren ersten Versuch" in response.get_data(as_text=True)
    row = outbox_row(ticket)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, NOW)
