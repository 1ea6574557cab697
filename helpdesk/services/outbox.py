"""Deliver outbox emails over SMTP with retries and exponential backoff."""
from __future__ import annotations

import base64
import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage

log = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next try: 1, 2, 4 … minutes, at most 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def build_email(message: OutboxMessage) -> EmailMessage:
    """Turn an outbox row into a MIME message."""
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(idstring=f"outbox-{message.id}", domain="helpdesk.ksm")
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


def deliver_due(now: datetime, limit: int = 50) -> dict[str, int]:
    """Send the pending emails whose time has come; return counts of sent and failed tries.

    Rows are claimed with FOR UPDATE SKIP LOCKED (PostgreSQL), so several workers never send the
    same email; each email is committed as sent right after the SMTP server accepted it.
    """
    counts = {"sent": 0, "retry": 0, "failed": 0}
    if not current_app.config["SMTP_HOST"]:
        return counts  # no SMTP configured: emails stay visible in the admin outbox page
    smtp = None
    try:
        for _ in range(limit):
            message = db.session.scalar(
                select(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if message is None:
                break
            message.attempts += 1
            try:
                email = build_email(message)
            except (ValueError, TypeError, UnicodeError) as exc:
                # A row that cannot become an email never will: give up on it at once, otherwise it
                # is claimed first on every run, fails outside the SMTP handling and stalls the queue.
                message.status = "failed"
                message.last_error = f"{type(exc).__name__}: {exc}"[:500]
                db.session.commit()
                counts["failed"] += 1
                log.error("outbox: %s cannot be built, not sent: %s", message.id, exc)
                continue
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
                message.last_error = f"{type(exc).__name__}: {exc}"[:500]
                if message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
                    message.status = "failed"
                    counts["failed"] += 1
                    log.error("outbox: giving up on %s after %d tries: %s", message.id, message.attempts, exc)
                else:
                    message.next_attempt_at = now + backoff(message.attempts)
                    counts["retry"] += 1
                    log.warning("outbox: %s not sent (%s), retry at %s", message.id, exc, message.next_attempt_at)
                db.session.commit()
                if isinstance(exc, (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)):
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
    message.status = "pending"
    message.attempts = 0  # a manual retry earns the full series of tries again
    message.next_attempt_at = now
    db.session.commit()
