"""Deliver outbox emails over SMTP with retries and exponential backoff."""
from __future__ import annotations

import base64
import logging
import smtplib
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, Ticket
from helpdesk.models.outbox import new_message_id
from helpdesk.services.errors import DomainError
from helpdesk.services.mail.addresses import reply_address, subject_with_number, thread_message_id
from helpdesk.services.tickets import record

log = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next try: 1, 2, 4 … minutes, at most 6 hours.

    The setting OUTBOX_BACKOFF_SECONDS (default 60) sets the first step; the chaos test shortens it.
    """
    first = current_app.config["OUTBOX_BACKOFF_SECONDS"]
    return timedelta(seconds=min(first * 2 ** max(attempts - 1, 0), 6 * 3600))


def build_email(message: OutboxMessage) -> EmailMessage:
    """Turn an outbox row into a MIME message, under the row's one Message-ID.

    A ticket's email answers to the ticket's signed reply address and hangs in the ticket's
    thread (In-Reply-To/References), its subject names the ticket number; every email says it
    was sent automatically, so auto-responders and out-of-office replies stay quiet.
    """
    ticket = db.session.get(Ticket, message.ticket_id) if message.ticket_id is not None else None
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = message.recipient
    # Rows are stored with the number (notifications); rows of older versions get it here.
    email["Subject"] = subject_with_number(message.subject, ticket.number) if ticket else message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = message.message_id or new_message_id()
    if ticket is not None:
        email["Reply-To"] = reply_address(ticket)
        email["In-Reply-To"] = thread_message_id(ticket)
        email["References"] = thread_message_id(ticket)
    email["Auto-Submitted"] = "auto-generated"
    email["X-Auto-Response-Suppress"] = "All"
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    for attachment in message.attachments or []:
        maintype, _sep, subtype = attachment["content_type"].partition("/")
        email.add_attachment(base64.b64decode(attachment["data_b64"]), maintype=maintype,
                             subtype=subtype or "octet-stream", filename=attachment["filename"])
    return email


def _connect() -> smtplib.SMTP:
    config = current_app.config
    smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"])
    if config["SMTP_STARTTLS"]:
        smtp.starttls()
    if config["SMTP_USER"]:
        smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
    return smtp


def _answer(exc: BaseException) -> str:
    """Return the SMTP server's answer (or the error) as one readable line for the outbox page."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{code} {_text(reply)}" for code, reply in exc.recipients.values()]
        return f"{type(exc).__name__}: {'; '.join(parts)}"[:500]
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def _text(reply) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(str(reply).split())


def is_permanent(exc: BaseException) -> bool:
    """Whether the server refused this email for good (5xx for its recipient or its content).

    A 5xx to MAIL FROM or to the login is about our own setup, not this email: it keeps the backoff
    (every email would fail the same way, and fixing the configuration must let them all go out).
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, (smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError)):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def _server_unusable(exc: BaseException) -> bool:
    """Whether the rest of this run would fail the same way (server down, gone, or refusing us)."""
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, smtplib.SMTPSenderRefused,
                        smtplib.SMTPAuthenticationError, smtplib.SMTPHeloError, smtplib.SMTPNotSupportedError)):
        return True
    # SMTPException is an OSError too: only a network error outside SMTP (refused, timeout) counts here;
    # an answer about one recipient or one message leaves the server usable for the others.
    return not isinstance(exc, smtplib.SMTPException)


def _give_up(message: OutboxMessage, error: str, now: datetime) -> None:
    """Mark the email failed and say so in the history of its ticket (caller commits)."""
    message.status = "failed"
    message.last_error = error[:500]
    if message.ticket_id is not None:
        ticket = db.session.get(Ticket, message.ticket_id)
        if ticket is not None:
            # Internal: the server's answer is for KSM staff; requesters do not see this line.
            record(ticket, None, "email_failed", now, new=message.recipient, note=message.last_error,
                   internal=True)


def mark_bounced(message_ids: list[str], reason: str, now: datetime) -> list[OutboxMessage]:
    """Mark the emails a bounce reports as failed and note it on their tickets; return the rows found.

    Runs in the caller's transaction (no commit). A second bounce for the same email changes
    nothing more, so a mail server that reports twice does not fill the history.
    """
    wanted = set()
    for message_id in message_ids[:50]:  # a bounce reports one email, a digest a few: never a list to walk
        value = (message_id or "").strip().strip("<>").strip()
        if value:
            wanted.add(f"<{value}>")
    if not wanted:
        return []
    reason = " ".join((reason or "").split())[:300] or "?"
    error = f"Unzustellbar: {reason}"[:500]
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.message_id.in_(sorted(wanted))).order_by(OutboxMessage.id)
    ).all()
    for message in rows:
        if message.status == "failed" and message.last_error == error:
            continue
        message.status = "failed"
        message.last_error = error
        if message.ticket_id is not None:
            ticket = db.session.get(Ticket, message.ticket_id)
            if ticket is not None:
                # Internal: agents learn that the requester cannot be reached by email (the address is wrong or gone).
                record(ticket, None, "email_failed", now, new=message.recipient, note_code="bounced",
                       note_params={"reason": reason}, internal=True)
    return list(rows)


def _claim(now: datetime) -> OutboxMessage | None:
    return db.session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def deliver_due(now: datetime, limit: int = 50) -> dict[str, int]:
    """Send the pending emails whose time has come; return counts of sent, retried and failed emails.

    Each try is recorded (attempts + 1, next try pushed back) and committed before SMTP is spoken,
    so a worker that dies mid-delivery still uses up a try and an email that kills every worker
    ends as failed. The pushed-back time is also the lease: rows are claimed with FOR UPDATE SKIP
    LOCKED (PostgreSQL), and after the attempt commit releases that lock, no other worker takes the
    row until it is due again. Sent emails are committed right after the server accepted them; a
    kill in between can send one copy twice, with the same Message-ID. A 5xx for a recipient or
    its content fails the email at once; 4xx and an unreachable server keep the backoff.
    """
    counts = {"sent": 0, "retry": 0, "failed": 0}
    if not current_app.config["SMTP_HOST"]:
        return counts  # no SMTP configured: emails stay visible in the admin outbox page
    max_attempts = current_app.config["OUTBOX_MAX_ATTEMPTS"]
    # The lease must outlast one delivery (a few SMTP commands, each up to SMTP_TIMEOUT), and it is
    # counted from the time reached in this run, not from its start: a long run must not hand out
    # leases that have already run out.
    lease = timedelta(seconds=3 * current_app.config["SMTP_TIMEOUT"])
    started = time.monotonic()

    def moment() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    smtp = None
    try:
        for _ in range(limit):
            message = _claim(now)
            if message is None:
                break
            if message.attempts >= max_attempts:
                # Its last try never came back (the worker died during it): do not die once more.
                _give_up(message, f"Aborted: the worker stopped during try {message.attempts} of {max_attempts}", now)
                db.session.commit()
                counts["failed"] += 1
                log.error("outbox: giving up on %s after %d unfinished tries", message.id, message.attempts)
                continue
            if not message.message_id:
                message.message_id = new_message_id()  # rows queued before Message-IDs were stored
            try:
                email = build_email(message)
            except (ValueError, TypeError, UnicodeError) as exc:
                # A row that cannot become an email never will: give up on it at once, otherwise it
                # is claimed first on every run, fails outside the SMTP handling and stalls the queue.
                message.attempts += 1
                _give_up(message, f"{type(exc).__name__}: {exc}", now)
                db.session.commit()
                counts["failed"] += 1
                log.error("outbox: %s cannot be built, not sent: %s", message.id, exc)
                continue
            message.attempts += 1
            message.next_attempt_at = moment() + max(backoff(message.attempts), lease)
            db.session.commit()  # the try is on record, and the row is leased until next_attempt_at
            try:
                if smtp is None:
                    smtp = _connect()
                smtp.send_message(email)
            except (OSError, smtplib.SMTPException) as exc:
                if smtp is not None:
                    try:
                        smtp.close()
                    finally:
                        smtp = None
                error = _answer(exc)
                if is_permanent(exc):
                    _give_up(message, error, now)
                    counts["failed"] += 1
                    log.error("outbox: %s refused for good: %s", message.id, error)
                elif message.attempts >= max_attempts:
                    _give_up(message, error, now)
                    counts["failed"] += 1
                    log.error("outbox: giving up on %s after %d tries: %s", message.id, message.attempts, error)
                else:
                    message.last_error = error
                    message.next_attempt_at = moment() + backoff(message.attempts)
                    counts["retry"] += 1
                    log.warning("outbox: %s not sent (%s), retry at %s", message.id, error, message.next_attempt_at)
                db.session.commit()
                if _server_unusable(exc):
                    break  # the server is unreachable: the rest waits for the next run
                continue
            message.status = "sent"
            message.sent_at = now
            message.last_error = None
            db.session.commit()
            counts["sent"] += 1
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
    return counts


def retry_now(message: OutboxMessage, now: datetime) -> None:
    """Put a failed or waiting email back in line for the next worker run; commit."""
    if not message.can_retry:
        raise DomainError(_("Diese E-Mail wartet noch auf ihren ersten Versuch."))
    message.status = "pending"
    message.attempts = 0  # a manual retry earns the full series of tries again
    message.next_attempt_at = now
    db.session.commit()
