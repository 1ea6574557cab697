"""Mail channel under attack (review "mailreview"): spoofed staff replies, reply loops, SQLite races, leaks."""
from __future__ import annotations

import re
import threading
from datetime import timedelta
from email import message_from_bytes

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Comment, InboundMail, OutboxMessage, Ticket
from helpdesk.services import tickets
from helpdesk.services.mail.addresses import reply_address, thread_message_id
from helpdesk.services.mail.inbound import import_message
from helpdesk.services.outbox import build_email
from helpdesk.services.watchers import add_watchers
from tests.app.test_mail_import import mail
from tests.builders import at, make_policy, make_tenant, make_ticket, make_user

NOW = at("2026-03-05 09:00")
HELPDESK = "helpdesk@ksm.example"


def comments_of(ticket) -> list[Comment]:
    db.session.expire_all()
    return list(db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)))


@pytest.fixture
def ticket(world):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    tickets.reply(world["agent"], ticket, body="Bitte starten Sie den Drucker neu.", now=NOW + timedelta(minutes=10))
    return ticket


# --- spoofed staff replies ------------------------------------------------------------------------------

@pytest.mark.parametrize("anchor", ["subject", "thread_id"])
def test_a_mail_claiming_to_be_an_agent_without_the_signed_address_makes_no_public_reply(world, ticket, anchor):
    """Anyone can put an agent's address in From and a ticket number in the subject (numbers are sequential):
    that must not become a public KSM answer mailed to the requester."""
    before = len(comments_of(ticket))
    outbox = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    raw = mail(sender="Agent <agent@ksm.example>",
               subject=f"Re: [{ticket.number}]" if anchor == "subject" else "Re: Ihre Anfrage",
               in_reply_to=thread_message_id(ticket) if anchor == "thread_id" else None,
               body="Bitte melden Sie sich unter http://evil.example mit Ihrem Passwort an.")

    record = import_message(raw, now=NOW + timedelta(hours=1))

    assert (record.status, record.reason) == ("held", "staff_unsigned")
    assert len(comments_of(ticket)) == before
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == outbox


def test_an_agent_answering_the_notification_itself_still_replies(world, ticket):
    """Replying to our notification carries our outbox Message-ID (and the signed Reply-To): accepted."""
    notification = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)
                                     .order_by(OutboxMessage.id))
    record = import_message(mail(sender="agent@ksm.example", subject=f"Re: [{ticket.number}]", body="Erledigt.",
                                 in_reply_to=notification.message_id), now=NOW + timedelta(hours=1))
    assert record.status == "comment"
    assert db.session.get(Comment, record.comment_id).author_id == world["agent"].id


# --- reply loops --------------------------------------------------------------------------------------------

def test_a_reply_loop_on_one_ticket_stops_after_the_limit(world, ticket, app):
    """An auto-responder without automatic-mail headers that answers every notification of a ticket:
    each of its replies notifies the assignee (whose own responder answers back). The per-sender
    limit bounds the mails a sender can cause per hour on a ticket; the rest waits in the review queue."""
    app.config["MAIL_AUTO_REPLY_LIMIT"] = 5
    tickets.assign(world["agent"], ticket, world["agent"], NOW + timedelta(minutes=11))
    lead = world["lead"]
    tickets.assign(lead, ticket, lead, NOW + timedelta(minutes=12))  # the assignee hears of requester replies

    for n in range(12):
        import_message(mail(to=reply_address(ticket), subject=f"Re: [{ticket.number}] {n}",
                            body=f"Ich bin bis Montag nicht im Haus ({n})."), now=NOW + timedelta(minutes=20 + n))

    db.session.expire_all()
    notified = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "requester_reply"))
    held = db.session.scalars(select(InboundMail.reason).where(InboundMail.status == "held")).all()
    assert notified == 5
    assert held == ["reply_limit"] * 7
    # An hour later a reply gets through again.
    later = import_message(mail(to=reply_address(ticket), subject="Re", body="Wieder da."),
                           now=NOW + timedelta(minutes=85))
    assert later.status == "comment"


# --- exactly once on SQLite too ----------------------------------------------------------------------------

def test_two_workers_importing_the_same_message_at_once_make_one_comment_on_any_backend(world, ticket, app):
    raw = mail(to=reply_address(ticket), subject="Re", body="Gleichzeitig.")
    barrier = threading.Barrier(3)
    results, errors = [], []

    def worker():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(import_message(raw, now=NOW + timedelta(hours=1)).id)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(results) == 3 and len(set(results)) == 1
    assert [c.body for c in comments_of(ticket)].count("Gleichzeitig.") == 1


# --- watchers and search ------------------------------------------------------------------------------------

def test_a_watcher_finds_the_watched_ticket_in_the_portal_search_and_nothing_else(world, ticket, client):
    colleague = make_user(tenant=world["tenant"], name="Bernd Vogel", email="bernd@lup.example")
    other = make_ticket(world["requester"], category=world["category"], subject="Drucker im Keller", now=NOW)
    add_watchers(ticket, [colleague], actor=None, now=NOW)
    db.session.commit()
    client.login(colleague)

    found = client.get("/portal/search?q=Drucker").get_data(as_text=True)
    listed = client.get("/portal/tickets?q=Drucker").get_data(as_text=True)

    assert ticket.number in found and other.number not in found
    assert ticket.number in listed and other.number not in listed


# --- outgoing headers ---------------------------------------------------------------------------------------

def test_a_mailed_subject_with_line_breaks_cannot_add_headers_to_our_confirmation(world):
    raw = (b"From: anna@lup.example\r\nTo: helpdesk@ksm.example\r\nMessage-ID: <inj@client.example>\r\n"
           b"Subject: =?utf-8?q?Hallo=0D=0ABcc=3A_evil=40evil.example?=\r\n\r\nText.\r\n")
    record = import_message(raw, now=NOW)
    assert record.status == "ticket"
    confirmation = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == record.ticket_id))
    sent = message_from_bytes(build_email(confirmation).as_bytes())
    assert sent["Bcc"] is None and "evil.example" not in (sent["To"] or "")
    assert sent["Auto-Submitted"] == "auto-generated"


# --- CC of many colleagues ------------------------------------------------------------------------------------

def test_a_new_mail_with_more_colleagues_in_cc_than_watchers_allowed_still_files_its_ticket(world):
    from helpdesk.services.watchers import MAX_WATCHERS, watchers_of
    colleagues = [make_user(tenant=world["tenant"], email=f"kollege{n}@lup.example") for n in range(MAX_WATCHERS + 3)]
    message = message_from_bytes(mail(subject="Alle betroffen", body="Das Netz ist weg."))
    message["Cc"] = ", ".join(user.email for user in colleagues)

    record = import_message(message.as_bytes(), now=NOW)

    assert record.status == "ticket"
    assert len(watchers_of(db.session.get(Ticket, record.ticket_id))) == MAX_WATCHERS


# --- what staff and only staff see ------------------------------------------------------------------------------

def test_a_held_mail_shows_its_html_and_script_as_text_in_the_review_queue(world, client):
    raw = mail(sender="Fremd <x@evil.example>", subject="<script>alert(1)</script>",
               body='<img src=x onerror="alert(2)"> Hallo')
    record = import_message(raw, now=NOW)
    assert record.status == "held"
    client.login(world["agent"])

    listing = client.get("/agent/mail").get_data(as_text=True)
    detail = client.get(f"/agent/mail/{record.id}").get_data(as_text=True)

    assert "<script>alert(1)" not in listing and "&lt;script&gt;alert(1)" in listing
    assert "<img src=x" not in detail and "&lt;img src=x" in detail
