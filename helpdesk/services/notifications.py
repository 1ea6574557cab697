"""Write emails to the outbox in the caller's transaction; the worker sends them later."""
from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app, render_template
from flask_babel import force_locale

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, Ticket, User

log = logging.getLogger(__name__)


def ticket_url(ticket: Ticket, user: User) -> str:
    """Return the absolute link to the ticket page the recipient can open."""
    base = current_app.config["BASE_URL"].rstrip("/")
    area = "agent" if user.is_staff else "portal"
    return f"{base}/{area}/tickets/{ticket.number}"


def queue_email(
    recipient: User,
    template: str,
    *,
    now: datetime,
    ticket: Ticket | None = None,
    dedupe_key: str | None = None,
    body_html: str | None = None,
    attachments: list[dict] | None = None,
    **context,
) -> OutboxMessage | None:
    """Render templates/email/<template>.txt in the recipient's language and add it to the outbox.

    body_html and attachments ([{"filename", "content_type", "data_b64"}]) are stored as given.
    """
    if recipient is None or not recipient.active or not recipient.email:
        return None
    with force_locale(recipient.locale or "de"):
        rendered = render_template(
            f"email/{template}.txt",
            recipient=recipient,
            ticket=ticket,
            url=ticket_url(ticket, recipient) if ticket else current_app.config["BASE_URL"],
            **context,
        )
    subject, _, body = rendered.strip().partition("\n")
    message = OutboxMessage(
        recipient=recipient.email,
        subject=" ".join(subject.removeprefix("Subject:").split())[:300],
        body_text=body.strip() + "\n",
        kind=template,
        ticket_id=ticket.id if ticket else None,
        tenant_id=ticket.tenant_id if ticket else recipient.tenant_id,
        dedupe_key=dedupe_key,
        body_html=body_html,
        attachments=attachments,
        created_at=now,
        next_attempt_at=now,
    )
    db.session.add(message)
    log.info("outbox: queued %s to %s", template, recipient.email)
    return message
