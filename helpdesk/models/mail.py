"""Mail that came in: every imported message (held, ignored or applied) and the mail domains of tenants."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models.tenancy import Tenant
from helpdesk.models.tickets import Comment, Ticket
from helpdesk.models.types import UTCDateTime
from helpdesk.models.users import User

# comment/ticket: applied; held: waits in the review queue; ignored: automatic mail or bounce (recorded, no
# answer); discarded: a person threw it away from the review queue (with a note).
INBOUND_STATUSES = ("comment", "ticket", "held", "ignored", "discarded")
# What happens to a mail from an unknown address of a tenant's own mail domain.
UNKNOWN_SENDER_POLICIES = ("create", "hold")


class InboundMail(db.Model):
    """One message read from the mailbox (or imported by hand), once per Message-ID."""

    __table_args__ = (
        # The review queue: held mail, newest first.
        Index("ix_inbound_mail_status_received", "status", "received_at", "id"),
        # The limit of automatic answers per sender and hour.
        Index("ix_inbound_mail_sender_received", "sender_address", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Message-ID header ("<…>"); longer ones are stored as "sha256:<hex>" of the header value.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[str] = mapped_column(String(20), default="imap")
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(40))
    # What a service said when it refused the mail (e.g. which attachment was too large), one line.
    reason_detail: Mapped[str | None] = mapped_column(String(500))
    sender_address: Mapped[str | None] = mapped_column(String(254))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the Date header
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))  # the matched sender
    # Whether the import sent an automatic answer (the ticket confirmation): counted for the loop limit.
    auto_answered: Mapped[bool] = mapped_column(Boolean, default=False)
    # The original message as received, in the attachment storage (services/attachments.storage_path).
    storage_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(500))

    tenant: Mapped[Tenant | None] = relationship()
    ticket: Mapped[Ticket | None] = relationship()
    comment: Mapped[Comment | None] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    def __repr__(self) -> str:
        return f"<InboundMail {self.id} {self.status} {self.reason}>"


class TenantMailDomain(db.Model):
    """A mail domain a tenant owns ("lup.example"): its unknown senders belong to that tenant."""

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)  # lower case, no leading "@"

    tenant: Mapped[Tenant] = relationship()
