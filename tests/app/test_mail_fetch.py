"""The helpdesk mailbox is fetched over real IMAP (a private dovecot): every mail lands once, nothing is lost."""
from __future__ import annotations

import threading
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from helpdesk import worker
from helpdesk.extensions import db
from helpdesk.models import Comment, InboundMail, MailboxStatus, SlaClock, Ticket
from helpdesk.services import tickets
from helpdesk.services.mail.addresses import reply_address, thread_message_id
from helpdesk.services.mail.imap import MailboxFetcher, fetch_once
from tests.builders import at, make_ticket, make_user
from tests.mailserver import dovecot, imap_mailbox  # noqa: F401 - fixtures

T0 = at("2026-03-05 09:00")  # a Thursday in business hours
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def fetch(now, fetcher_class=MailboxFetcher):
    result = fetch_once(now, fetcher_class=fetcher_class)
    db.session.expire_all()
    return result


def comments_of(ticket) -> list[Comment]:
    db.session.expire_all()
    return list(db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)))


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def answer(delivered, *, text: str, sender: str = "Anna Schulz <anna@lup.example>", attachment: bool = True,
           message_id: str | None = None) -> bytes:
    """Answer a delivered notification the way Thunderbird or Outlook does: quote, HTML + text, a file."""
    original = delivered.get_body(("plain",)).get_content()
    quoted = "\n".join("> " + line if line else ">" for line in original.splitlines())
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = delivered["Reply-To"]
    reply["Subject"] = "AW: " + delivered["Subject"]
    reply["Date"] = format_datetime(T0 + timedelta(hours=2))
    reply["Message-ID"] = message_id or make_msgid(domain="lup.example")
    reply["In-Reply-To"] = delivered["Message-ID"]
    reply["References"] = f"{delivered['References']} {delivered['Message-ID']}"
    reply["User-Agent"] = "Mozilla Thunderbird"
    reply.set_content(
        f"{text}\n\nAm 05.03.2026 um 10:30 schrieb KSM Helpdesk <helpdesk@ksm.example>:\n{quoted}\n"
    )
    html_quote = "<br>".join(original.splitlines())
    reply.add_alternative(
        f"<html><body><p>{text}</p><div class=\"moz-cite-prefix\">Am 05.03.2026 um 10:30 schrieb KSM Helpdesk "
        f"&lt;helpdesk@ksm.example&gt;:</div><blockquote type=\"cite\">{html_quote}</blockquote></body></html>",
        subtype="html",
    )
    if attachment:
        reply.add_attachment(PNG, maintype="image", subtype="png", filename="fehlermeldung.png")
    return bytes(reply)


def new_mail(subject: str, text: str, *, sender: str = "anna@lup.example", message_id: str | None = None) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "helpdesk@ksm.example"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(T0)
    mail["Message-ID"] = message_id or make_msgid(domain="lup.example")
    mail.set_content(text)
    return bytes(mail)


def simple_reply(ticket, text: str, *, message_id: str | None = None) -> bytes:
    mail = EmailMessage()
    mail["From"] = "anna@lup.example"
    mail["To"] = reply_address(ticket)
    mail["Subject"] = f"AW: [{ticket.number}] {ticket.subject}"
    mail["Date"] = format_datetime(T0)
    mail["Message-ID"] = message_id or make_msgid(domain="lup.example")
    mail["In-Reply-To"] = thread_message_id(ticket)
    mail.set_content(text)
    return bytes(mail)


def message_id_of(raw: bytes) -> str:
    from email import message_from_bytes

    return message_from_bytes(raw)["Message-ID"]


def pending_ticket(world, now=T0):
    """A ticket the agent answered publicly with a question (status pending: the resolution clock pauses)."""
    ticket = make_ticket(world["requester"], category=world["category"], subject="VPN bricht ab", now=now)
    tickets.reply(world["agent"], ticket, body="Bitte starten Sie den Rechner neu und melden Sie sich wieder.",
                  now=now + timedelta(minutes=30), new_status="pending")
    return ticket


def clocks(ticket) -> dict:
    db.session.expire_all()
    rows = db.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket.id))
    return {(c.target, c.cycle): (c.running_since, c.paused_at, c.used_seconds, c.paused_seconds, c.due_at,
                                  c.stopped_at, c.outcome) for c in rows}


# --- round trip ------------------------------------------------------------------------------

def test_answer_to_a_notification_lands_on_the_ticket_like_a_portal_reply(
        app, world, client, smtp_server, imap_mailbox, frozen_now):
    world["requester"].name = "Anna Schulz"
    db.session.commit()
    by_mail, by_portal = pending_ticket(world), pending_ticket(world)
    frozen_now(T0 + timedelta(minutes=31))
    worker.run_job(app, worker.deliver_outbox)  # the real SMTP delivery of the worker
    db.session.expire_all()
    delivered = [m for m in smtp_server.to("anna@lup.example")
                 if by_mail.number in m["Subject"] and "Bitte starten Sie" in m.get_body(("plain",)).get_content()]
    assert len(delivered) == 1, [m["Subject"] for m in smtp_server.to("anna@lup.example")]
    assert by_mail.status == "pending" and clocks(by_mail)[("resolution", 1)][1] is not None  # paused

    later = T0 + timedelta(hours=2)
    imap_mailbox.append(answer(delivered[0], text="Der Neustart hat geholfen, vielen Dank!"))
    result = fetch(later)

    assert (result.imported, result.held, result.failed, result.error) == (1, 0, 0, None)
    # The same answer through the portal, at the same moment, on the twin ticket.
    frozen_now(later)
    portal = app.test_client()
    portal.login(world["requester"])
    response = portal.post_form(f"/portal/tickets/{by_portal.number}/reply",
                                {"body": "Der Neustart hat geholfen, vielen Dank!"})
    assert response.status_code == 302
    db.session.expire_all()

    [_agent_reply, comment] = comments_of(by_mail)
    assert comment.author_id == world["requester"].id and not comment.is_internal
    assert "Der Neustart hat geholfen" in comment.body
    assert "Bitte starten Sie" not in comment.body and "schrieb" not in comment.body
    assert by_mail.status == by_portal.status == "open"
    assert clocks(by_mail) == clocks(by_portal)  # paused, resumed and due exactly as after a portal reply
    assert clocks(by_mail)[("resolution", 1)][1] is None  # running again

    client.login(world["agent"])
    page = client.get(f"/agent/tickets/{by_mail.number}").get_data(as_text=True)
    assert "Der Neustart hat geholfen, vielen Dank!" in page
    assert "fehlermeldung.png" in page
    assert "Bitte starten Sie den Rechner neu" in page  # the agent's own reply, once
    assert page.count("Bitte starten Sie den Rechner neu") == 1  # ... and not again as a quote

    assert imap_mailbox.messages("INBOX") == []
    [processed] = imap_mailbox.messages("Verarbeitet")
    assert b"Der Neustart hat geholfen" in processed


# --- exactly once ----------------------------------------------------------------------------

def test_same_message_in_the_mailbox_twice_gives_one_comment(app, world, imap_mailbox):
    ticket = pending_ticket(world)
    raw = simple_reply(ticket, "Geht wieder, danke.")
    imap_mailbox.append(raw)
    imap_mailbox.append(raw)

    result = fetch(T0 + timedelta(hours=1))

    assert (result.imported, result.duplicates, result.moved) == (1, 1, 2)
    assert [c.body for c in comments_of(ticket)][1:] == ["Geht wieder, danke."]
    assert imap_mailbox.messages("INBOX") == [] and len(imap_mailbox.messages("Verarbeitet")) == 2
    assert fetch(T0 + timedelta(hours=2)).moved == 0
    assert len(comments_of(ticket)) == 2


class Killed(BaseException):
    """The worker process died (SIGKILL) at this point."""


class KilledBeforeMove(MailboxFetcher):
    def mark_processed(self, client, uids):
        raise Killed()


class WithoutMove(MailboxFetcher):
    """A server of before RFC 6851 (no MOVE)."""

    def can_move(self, client):
        return False


def test_worker_killed_between_commit_and_move_gives_one_comment_after_the_next_run(app, world, imap_mailbox):
    ticket = pending_ticket(world)
    imap_mailbox.append(simple_reply(ticket, "Geht wieder, danke."))

    with pytest.raises(Killed):
        fetch(T0 + timedelta(hours=1), KilledBeforeMove)

    assert len(comments_of(ticket)) == 2  # committed ...
    assert len(imap_mailbox.messages("INBOX")) == 1  # ... but still in the mailbox

    result = fetch(T0 + timedelta(hours=2))

    assert (result.imported, result.duplicates, result.moved) == (0, 1, 1)
    assert len(comments_of(ticket)) == 2
    assert imap_mailbox.messages("INBOX") == [] and len(imap_mailbox.messages("Verarbeitet")) == 1


class DatabaseDownForFirst(MailboxFetcher):
    calls = 0

    def import_one(self, raw, now):
        type(self).calls += 1
        if type(self).calls == 1:
            raise OperationalError("INSERT INTO inbound_mail", {}, Exception("server closed the connection"))
        return super().import_one(raw, now)


def test_message_whose_import_fails_stays_in_the_mailbox_and_the_others_go_on(app, world, imap_mailbox):
    DatabaseDownForFirst.calls = 0
    ticket = pending_ticket(world)
    imap_mailbox.append(simple_reply(ticket, "Erste Nachricht."))
    imap_mailbox.append(simple_reply(ticket, "Zweite Nachricht."))

    result = fetch(T0 + timedelta(hours=1), DatabaseDownForFirst)

    assert (result.imported, result.failed, result.moved, result.error) == (1, 1, 1, None)
    assert [c.body for c in comments_of(ticket)][1:] == ["Zweite Nachricht."]
    [waiting] = imap_mailbox.messages("INBOX")
    assert b"Erste Nachricht." in waiting
    assert db.session.get(MailboxStatus, 1).last_failed == 1

    assert fetch(T0 + timedelta(hours=2)).imported == 1
    assert [c.body for c in comments_of(ticket)][1:] == ["Zweite Nachricht.", "Erste Nachricht."]
    assert imap_mailbox.messages("INBOX") == []


def test_two_workers_fetching_at_once_give_one_comment_per_mail(app, backend, world, imap_mailbox):
    if backend != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises the whole database)")
    ticket = pending_ticket(world)
    for n in range(6):
        imap_mailbox.append(simple_reply(ticket, f"Antwort {n}"))
    for n in range(4):
        imap_mailbox.append(new_mail(f"Neues Problem {n}", f"Beschreibung {n}"))
    tickets_before = count(Ticket)
    both_listed = threading.Barrier(2, timeout=30)

    class Racing(MailboxFetcher):
        def waiting_messages(self, client):
            listed = super().waiting_messages(client)
            both_listed.wait()  # both workers hold the same ten messages before either imports one
            return listed

    results, errors = [], []

    def run(started):
        try:
            with app.app_context():
                results.append(fetch_once(started, fetcher_class=Racing))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # Each worker reads its own clock at the start of its run.
    threads = [threading.Thread(target=run, args=(T0 + timedelta(hours=1, microseconds=n),)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    db.session.expire_all()

    assert errors == [] and len(results) == 2
    assert all(r.error is None and r.failed == 0 for r in results)
    assert sorted(c.body for c in comments_of(ticket)[1:]) == [f"Antwort {n}" for n in range(6)]
    assert count(Ticket) == tickets_before + 4
    assert count(InboundMail) == 10
    assert sum(r.imported for r in results) == 10  # each mail counted by the worker whose import won
    assert sum(r.duplicates for r in results) == 10
    assert imap_mailbox.messages("INBOX") == []
    # IMAP MOVE is copy + expunge per session: two workers moving the same message at the same instant may
    # both copy it, so the processed folder can hold a second copy. Every mail is there; none is lost.
    processed = {message_id_of(raw) for raw in imap_mailbox.messages("Verarbeitet")}
    assert len(processed) == 10


# --- batches, sizes, TLS ---------------------------------------------------------------------

def test_server_without_move_gets_copy_delete_and_expunge(app, world, imap_mailbox):
    for n in range(30):  # more than one read chunk
        imap_mailbox.append(new_mail(f"Problem {n}", "Text"))

    result = fetch(T0, WithoutMove)

    assert (result.imported, result.moved) == (30, 30)
    assert imap_mailbox.messages("INBOX") == [] and len(imap_mailbox.messages("Verarbeitet")) == 30
    assert count(Ticket) == 30


def test_one_run_takes_at_most_a_batch_and_the_rest_waits(app, world, imap_mailbox):
    app.config["IMAP_BATCH_SIZE"] = 2
    for n in range(3):
        imap_mailbox.append(new_mail(f"Problem {n}", "Text"))

    first = fetch(T0)
    assert (first.waiting, first.imported) == (3, 2)
    assert len(imap_mailbox.messages("INBOX")) == 1
    second = fetch(T0 + timedelta(minutes=1))
    assert (second.waiting, second.imported) == (1, 1)
    assert imap_mailbox.messages("INBOX") == []


def test_too_large_message_is_held_and_moved(app, world, imap_mailbox):
    app.config["MAIL_MAX_BYTES"] = 4000
    imap_mailbox.append(new_mail("Riesige Datei", "x" * 20000))

    result = fetch(T0)

    assert (result.held, result.moved) == (1, 1)
    mail = db.session.scalar(select(InboundMail))
    assert (mail.status, mail.reason) == ("held", "too_large")
    assert imap_mailbox.messages("INBOX") == []


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_mailbox_over_tls_with_the_servers_certificate(app, world, imap_mailbox, tls):
    imap_mailbox.configure(app, tls=tls)
    imap_mailbox.append(new_mail("Über TLS", "Text"))

    result = fetch(T0)

    assert (result.error, result.imported) == (None, 1)


def test_certificate_that_is_not_trusted_is_refused_and_recorded(app, world, imap_mailbox):
    imap_mailbox.configure(app, tls="ssl")
    app.config["IMAP_CA_FILE"] = None  # the self-signed test certificate is in no system store
    imap_mailbox.append(new_mail("Über TLS", "Text"))

    result = fetch(T0)

    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert count(InboundMail) == 0 and len(imap_mailbox.messages("INBOX")) == 1


# --- failures are recorded, the admin sees them ------------------------------------------------

def test_unreachable_mailbox_is_recorded_and_the_worker_goes_on(app, world, imap_mailbox):
    from tests.conftest import free_port

    app.config["IMAP_PORT"] = free_port()  # nothing listens there
    worker.run_job(app, worker.fetch_mailbox)  # would log "job failed" on an exception; must not raise

    status = db.session.get(MailboxStatus, 1)
    db.session.refresh(status)
    assert "ConnectionRefusedError" in status.last_error
    assert status.last_success_at is None and status.last_finished_at is not None

    imap_mailbox.configure(app)
    app.config["IMAP_PASSWORD"] = "wrong"
    assert "LoginError" in fetch(T0).error

    imap_mailbox.configure(app)
    imap_mailbox.append(new_mail("Jetzt geht es", "Text"))
    assert fetch(T0 + timedelta(minutes=5)).imported == 1
    status = db.session.get(MailboxStatus, 1)
    assert status.last_error is None and status.last_success_at == T0 + timedelta(minutes=5)
    assert status.last_error_at == T0  # when it last failed stays visible


def test_admin_page_shows_the_mailbox_without_the_password_and_fetches_now(app, world, client, imap_mailbox,
                                                                           frozen_now):
    admin = make_user("admin", email="admin@ksm.example")
    imap_mailbox.append(new_mail("Drucker", "Druckt nicht."))
    imap_mailbox.append(new_mail("Fremd", "Hallo", sender="jemand@fremd.example"))
    client.login(admin)

    page = client.get("/manage/mailbox").get_data(as_text=True)
    assert "127.0.0.1" in page and "helpdesk@ksm.example" in page and "Verarbeitet" in page
    assert "imap-test-password" not in page
    assert "noch nicht abgerufen" in page

    assert client.post("/manage/mailbox/fetch").status_code == 400  # no CSRF token
    assert count(InboundMail) == 0
    response = client.post_form("/manage/mailbox/fetch", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "1 übernommen, 1 zur Prüfung" in page
    assert "2 Nachrichten warten" not in page and "1 Nachrichten warten auf Prüfung" in page
    assert "imap-test-password" not in page

    app.config["IMAP_PASSWORD"] = "wrong"
    page = client.post_form("/manage/mailbox/fetch", follow_redirects=True).get_data(as_text=True)
    assert "Abruf fehlgeschlagen" in page and "LoginError" in page
    assert "wrong" not in page.replace("LoginError", "")

    agent = app.test_client()
    agent.login(world["agent"])
    assert agent.get("/manage/mailbox").status_code == 403
    assert agent.post_form("/manage/mailbox/fetch").status_code == 403


def test_cli_fetches_once_and_the_worker_job_fetches_on_its_interval(app, world, imap_mailbox, frozen_now):
    imap_mailbox.append(new_mail("Per Kommandozeile", "Text"))
    result = app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code == 0, result.output
    assert "imported 1" in result.output

    assert [job for job in worker.JOBS if job[0] == "mail-fetch"] == [
        ("mail-fetch", worker.fetch_mailbox, "WORKER_IMAP_SECONDS")]
    imap_mailbox.append(new_mail("Per Worker", "Text"))
    worker.run_job(app, worker.fetch_mailbox)
    db.session.expire_all()
    assert count(Ticket, Ticket.subject == "Per Worker") == 1

    app.config["IMAP_PASSWORD"] = "wrong"
    result = app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code == 1 and "LoginError" in result.output


def test_parallel_imports_of_one_run_give_one_comment_or_ticket_per_mail(app, backend, world, imap_mailbox):
    # PostgreSQL imports the messages of a chunk with several threads; SQLite keeps one after the other.
    app.config["MAIL_IMPORT_THREADS"] = 4
    first, second = pending_ticket(world), pending_ticket(world)
    for n in range(8):
        imap_mailbox.append(simple_reply(first if n % 2 else second, f"Antwort {n}"))
    for n in range(5):
        imap_mailbox.append(new_mail(f"Neues Problem {n}", f"Beschreibung {n}"))
    tickets_before = count(Ticket)

    result = fetch(T0 + timedelta(hours=1))

    assert (result.imported, result.failed, result.duplicates, result.moved) == (13, 0, 0, 13)
    db.session.expire_all()
    assert sorted(c.body for c in comments_of(first)[1:]) == [f"Antwort {n}" for n in (1, 3, 5, 7)]
    assert sorted(c.body for c in comments_of(second)[1:]) == [f"Antwort {n}" for n in (0, 2, 4, 6)]
    assert count(Ticket) == tickets_before + 5
    assert imap_mailbox.messages("INBOX") == [] and len(imap_mailbox.messages("Verarbeitet")) == 13
    # A second run finds nothing left and changes nothing.
    assert fetch(T0 + timedelta(hours=2)).imported == 0
    assert count(InboundMail) == 13
