"""Outgoing ticket emails name their ticket unforgeably, stay in one thread, and silence auto-responders."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, TicketEvent
from helpdesk.services import tickets
from helpdesk.services.mail.addresses import (
    ReplyToken, is_own_message_id, reply_address, thread_message_id, ticket_number_in_subject,
    token_from_addresses,
)
from helpdesk.services.outbox import deliver_due, mark_bounced
from tests.builders import at, make_category, make_team, make_tenant, make_ticket, make_user

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


def rows(ticket) -> list[OutboxMessage]:
    db.session.expire_all()
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id).order_by(OutboxMessage.id)
    ).all()


def test_ticket_emails_carry_reply_address_thread_headers_and_auto_headers(world, smtp_server):
    ticket = make_ticket(world["requester"], category=world["category"], subject="VPN bricht ab", now=NOW)
    tickets.reply(world["agent"], ticket, body="Bitte starten Sie neu.", now=NOW + timedelta(minutes=5))

    assert deliver_due(NOW + timedelta(minutes=6))["sent"] == 2

    received = smtp_server.to("anna@lup.example")
    assert len(received) == 2
    stored = {row.message_id: row for row in rows(ticket)}
    for message in received:
        assert message["Reply-To"] == reply_address(ticket)
        assert message["Reply-To"].startswith(f"helpdesk+{ticket.number}.")
        assert message["Reply-To"].endswith("@ksm.example")
        assert message["In-Reply-To"] == f"<ticket.{ticket.number}@helpdesk.ksm>"
        assert message["References"] == thread_message_id(ticket)
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["X-Auto-Response-Suppress"] == "All"
        assert f"[{ticket.number}]" in message["Subject"]
        # Each email keeps the id stored on its row; the row's subject is what was sent.
        row = stored[message["Message-ID"]]
        assert row.subject == message["Subject"]
        assert is_own_message_id(message["Message-ID"])
    assert len({m["Message-ID"] for m in received}) == 2


def test_stored_subject_without_the_number_gets_it_when_sent(world, smtp_server):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    row = rows(ticket)[0]
    row.subject = "Ihr Ticket wurde erfasst"  # a row written by an older version
    db.session.commit()

    deliver_due(NOW)

    [message] = smtp_server.to("anna@lup.example")
    assert message["Subject"] == f"[{ticket.number}] Ihr Ticket wurde erfasst"


def test_email_without_ticket_has_no_reply_address_but_auto_headers(world, smtp_server):
    # Like a monthly report: an email of no ticket.
    db.session.add(OutboxMessage(recipient="chef@lup.example", subject="Servicebericht März", body_text="Anbei.",
                                 kind="monthly_report", created_at=NOW, next_attempt_at=NOW))
    db.session.commit()

    deliver_due(NOW)

    [message] = smtp_server.to("chef@lup.example")
    assert message["Reply-To"] is None and message["In-Reply-To"] is None
    assert message["Subject"] == "Servicebericht März"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"


def test_reply_address_of_a_sent_mail_names_its_ticket(world, smtp_server):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    deliver_due(NOW)
    [message] = smtp_server.to("anna@lup.example")

    # A mail client answers to Reply-To, maybe with a display name and another case.
    answer_to = f'"KSM Helpdesk" <{message["Reply-To"].upper()}>'

    assert token_from_addresses(["someone@lup.example", answer_to]) == ReplyToken(ticket.number, True)
    assert token_from_addresses([f"<{message['Reply-To']}>"]) == ReplyToken(ticket.number, True)
    assert token_from_addresses(["helpdesk@ksm.example", "anna@lup.example"]) is None
    assert token_from_addresses([]) is None


def test_tampered_reply_address_is_recognised_but_invalid(world):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    other = make_ticket(world["requester"], category=world["category"], now=NOW)
    address = reply_address(ticket)
    local, _at, domain = address.partition("@")
    mac = local.rsplit(".", 1)[1]
    wrong_mac = ("0" if mac[0] != "0" else "1") + mac[1:]

    assert token_from_addresses([f"helpdesk+{ticket.number}.{wrong_mac}@{domain}"]) == ReplyToken(ticket.number, False)
    # The genuine HMAC of one ticket does not open another.
    assert token_from_addresses([f"helpdesk+{other.number}.{mac}@{domain}"]) == ReplyToken(other.number, False)
    assert token_from_addresses([reply_address(other)]) == ReplyToken(other.number, True)


def test_reply_address_depends_on_the_secret_key(world, app):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    address = reply_address(ticket)

    app.config["SECRET_KEY"] = "another-secret"

    assert reply_address(ticket) != address
    assert token_from_addresses([address]) == ReplyToken(ticket.number, False)


def test_configured_reply_address_replaces_the_sender_address(world, app):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    app.config["MAIL_REPLY_ADDRESS"] = "Antworten <support@mail.ksm.example>"

    address = reply_address(ticket)

    assert address.startswith(f"support+{ticket.number}.") and address.endswith("@mail.ksm.example")
    assert token_from_addresses([address]).valid
    # The sender address is not the reply mailbox any more: its plus-form is not ours.
    assert token_from_addresses([address.replace("support+", "helpdesk+").replace("mail.ksm", "ksm")]) is None


def test_ticket_number_is_found_in_the_usual_subject_forms(app):
    assert ticket_number_in_subject("AW: [KSM-2026-000123] Neue Antwort: VPN") == "KSM-2026-000123"
    assert ticket_number_in_subject("Re: Ticket KSM-2026-000042 Drucker") == "KSM-2026-000042"
    assert ticket_number_in_subject("WG: Frage zu #ksm-2026-000007") == "KSM-2026-000007"
    assert ticket_number_in_subject("Drucker KSM-2026-000007 kaputt") is None
    assert ticket_number_in_subject("[ABC-2026-000123] fremdes System") is None
    assert ticket_number_in_subject("") is None


def test_own_message_ids_are_recognised(app):
    assert is_own_message_id("<170.1.outbox@helpdesk.ksm>")
    assert is_own_message_id(" <ticket.KSM-2026-000001@HELPDESK.KSM> ")
    assert not is_own_message_id("<abc@mail.lup.example>")
    assert not is_own_message_id("<abc@helpdesk.ksm.evil.example>")
    assert not is_own_message_id("")


def test_bounce_marks_the_email_failed_and_tells_agents_on_the_ticket(world, smtp_server, client, app):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    deliver_due(NOW)
    [message] = smtp_server.to("anna@lup.example")

    found = mark_bounced([message["Message-ID"], "<unknown@mail.example>"], "550 5.1.1 user unknown",
                         NOW + timedelta(minutes=3))
    db.session.commit()

    assert [row.recipient for row in found] == ["anna@lup.example"]
    row = rows(ticket)[0]
    assert (row.status, row.last_error) == ("failed", "Unzustellbar: 550 5.1.1 user unknown")
    events = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.kind == "email_failed")).all()
    assert [(e.is_internal, e.new_value) for e in events] == [(True, "anna@lup.example")]

    client.login(world["agent"])
    page = client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "Unzustellbar gemeldet: 550 5.1.1 user unknown" in page
    requester = app.test_client()
    requester.login(world["requester"])
    portal = requester.get(f"/portal/tickets/{ticket.number}")
    assert portal.status_code == 200 and ticket.number in portal.get_data(as_text=True)
    assert "550 5.1.1" not in portal.get_data(as_text=True)


def test_a_second_bounce_for_the_same_email_adds_no_second_history_line(world, smtp_server):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    deliver_due(NOW)
    message_id = rows(ticket)[0].message_id

    mark_bounced([message_id.strip("<>")], "550 no such user", NOW)
    db.session.commit()
    again = mark_bounced([message_id], "550 no such user", NOW + timedelta(minutes=1))
    db.session.commit()

    assert len(again) == 1
    events = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.kind == "email_failed")).all()
    assert len(events) == 1


def test_bounce_of_a_pending_email_stops_it_from_being_sent_again(world, smtp_server):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    message_id = rows(ticket)[0].message_id

    mark_bounced([message_id], "550 mailbox disabled", NOW)
    db.session.commit()

    assert deliver_due(NOW + timedelta(hours=1))["sent"] == 0
    assert smtp_server.messages == []


def test_bounce_without_known_ids_changes_nothing(world):
    make_ticket(world["requester"], category=world["category"], now=NOW)

    assert mark_bounced([], "550", NOW) == []
    assert mark_bounced(["<nothing@example.org>", ""], "550", NOW) == []
    assert db.session.scalars(select(OutboxMessage.status)).all() == ["pending"]
