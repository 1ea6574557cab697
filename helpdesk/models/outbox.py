"""Emails waiting to be sent, written in the same transaction as their cause."""
from __future__ import annotations

from datetime import datetime
from email.utils import make_msgid

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models.types import UTCDateTime

OUTBOX_STATUSES = ("pending", "sent", "failed")
MESSAGE_ID_DOMAIN = "helpdesk.ksm"


def new_message_id() -> str:
    """Return a fresh, globally unique Message-ID header value for one outbox row."""
    return make_msgid(idstring="outbox", domain=MESSAGE_ID_DOMAIN)


class OutboxMessage(db.Model):
    """One email to one recipient; the worker delivers it with retries."""

    __table_args__ = (Index("ix_outbox_status_next_attempt", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # [{"filename": "bericht.csv", "content_type": "text/csv", "data_b64": "..."}], e.g. monthly reports
    attachments: Mapped[list | None] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(40))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"))
    # Set for events that must produce one email only (escalations, monthly reports).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # One Message-ID for every try of this email, fixed when it is queued: a copy sent again after a
    # worker died between the SMTP server's acceptance and the commit carries the same id, so mail
    # servers and clients can drop it as a duplicate.
    message_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=new_message_id)

    @property
    def can_retry(self) -> bool:
        """Whether a manual "send again" makes sense: tried and failed, or waiting after an error."""
        if self.status == "failed":
            return True
        return self.status == "pending" and self.attempts > 0 and bool(self.last_error)
