"""Tickets with their comments, attachments and audit history."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models.tenancy import Category, Team, Tenant
from helpdesk.models.types import UTCDateTime
from helpdesk.models.users import User

STATUSES = ("new", "open", "pending", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "pending")
CHANNELS = ("web", "phone", "email", "api")
LEVELS = (1, 2, 3)  # impact and urgency: 1 high, 2 medium, 3 low
PRIORITIES = (1, 2, 3, 4)  # P1 critical .. P4 low


class TicketCounter(db.Model):
    """The last ticket number handed out per year (row-locked while numbering)."""

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


def _open_index(name: str, *columns: str, unassigned: bool = False) -> Index:
    """Return a partial index over open tickets (a few % of all): the queue tabs walk them in sort order."""
    condition = "status IN (%s)" % ", ".join(f"'{status}'" for status in OPEN_STATUSES)
    if unassigned:
        condition += " AND assignee_id IS NULL"
    return Index(name, *columns, postgresql_where=text(condition), sqlite_where=text(condition))


class Ticket(db.Model):
    """An incident or service request of a tenant."""

    __table_args__ = (
        Index("ix_ticket_tenant_status_created", "tenant_id", "status", "created_at"),
        Index("ix_ticket_team_status_updated", "team_id", "status", "updated_at"),
        Index("ix_ticket_assignee_status_updated", "assignee_id", "status", "updated_at"),
        Index("ix_ticket_requester_created", "requester_id", "created_at"),
        Index("ix_ticket_status_updated", "status", "updated_at"),
        Index("ix_ticket_updated_id", "updated_at", "id"),  # API keyset pages over all tickets
        Index("ix_ticket_status_resolved", "status", "resolved_at"),
        Index("ix_ticket_status_sla_due", "status", "sla_due_at"),
        Index("ix_ticket_team_sla_due", "team_id", "sla_due_at"),
        # Service level reports read these index-only: opened and resolved per month of a tenant,
        # with the columns they group by (team, category) and the status the resolved count needs.
        Index("ix_ticket_tenant_created_report", "tenant_id", "created_at", "team_id", "category_id", "id"),
        Index("ix_ticket_tenant_resolved_report", "tenant_id", "resolved_at", "status", "team_id", "category_id"),
        # Queues (services/queues.py KEYSET_COLUMNS): each tab and sort is an index range with a LIMIT.
        _open_index("ix_ticket_open_priority", "priority", "created_at", "id"),
        _open_index("ix_ticket_open_due", "sla_due_at", "priority", "id"),
        _open_index("ix_ticket_open_created", "created_at", "id"),
        _open_index("ix_ticket_open_updated", "updated_at", "id"),
        _open_index("ix_ticket_open_number", "number", "id"),
        _open_index("ix_ticket_open_team_priority", "team_id", "priority", "created_at", "id"),
        _open_index("ix_ticket_open_team_due", "team_id", "sla_due_at", "priority", "id"),
        _open_index("ix_ticket_open_team_created", "team_id", "created_at", "id"),
        _open_index("ix_ticket_open_team_updated", "team_id", "updated_at", "id"),
        _open_index("ix_ticket_open_team_number", "team_id", "number", "id"),
        _open_index("ix_ticket_unassigned_team_priority", "team_id", "priority", "created_at", "id", unassigned=True),
        _open_index("ix_ticket_unassigned_team_due", "team_id", "sla_due_at", "priority", "id", unassigned=True),
        _open_index("ix_ticket_unassigned_team_created", "team_id", "created_at", "id", unassigned=True),
        _open_index("ix_ticket_unassigned_team_updated", "team_id", "updated_at", "id", unassigned=True),
        _open_index("ix_ticket_unassigned_team_number", "team_id", "number", "id", unassigned=True),
        # The "all" tab over every ticket (updated: ix_ticket_updated_id, number: its unique index).
        Index("ix_ticket_priority_created_id", "priority", "created_at", "id"),
        Index("ix_ticket_due_priority_id", "sla_due_at", "priority", "id"),
        Index("ix_ticket_created_id", "created_at", "id"),
        # Portal: a tenant manager's list of the whole authority, newest activity first.
        Index("ix_ticket_tenant_updated_id", "tenant_id", "updated_at", "id"),
        _open_index("ix_ticket_open_tenant_updated", "tenant_id", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    channel: Mapped[str] = mapped_column(String(10), default="web")
    impact: Mapped[int] = mapped_column(Integer)
    urgency: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer)
    priority_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="new")
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)

    # SLA bookkeeping (helpdesk.services.sla keeps these in step with the clocks).
    sla_version_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policy_version.id"))
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_update_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # earliest running target: "due soonest"
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Checks of this ticket by the sweep that failed in a row; each pushes the next check further back.
    sla_check_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    tenant: Mapped[Tenant] = relationship()
    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    category: Mapped[Category | None] = relationship()
    team: Mapped[Team] = relationship()

    @property
    def is_open(self) -> bool:
        """Tell whether KSM still has work on the ticket."""
        return self.status in OPEN_STATUSES

    def __repr__(self) -> str:
        return f"<Ticket {self.number}>"


class Comment(db.Model):
    """A public reply (the requester sees it) or an internal note (KSM only)."""

    __table_args__ = (Index("ix_comment_ticket_created", "ticket_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    body: Mapped[str] = mapped_column(Text)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship()
    attachments: Mapped[list["Attachment"]] = relationship(back_populates="comment")


class Attachment(db.Model):
    """A file uploaded to a ticket; the bytes live in the attachment directory."""

    __table_args__ = (Index("ix_attachment_ticket_created", "ticket_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="SET NULL"))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    comment: Mapped[Comment | None] = relationship(back_populates="attachments")
    uploaded_by: Mapped[User] = relationship()


class TicketEvent(db.Model):
    """One line of a ticket's audit history: who changed what, when, from what to what."""

    __table_args__ = (Index("ix_ticket_event_ticket_created", "ticket_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    field: Mapped[str | None] = mapped_column(String(30))
    old_value: Mapped[str | None] = mapped_column(String(255))
    new_value: Mapped[str | None] = mapped_column(String(255))
    # Text a person typed (a reason, a hand-over note, file names); shown as typed.
    note: Mapped[str | None] = mapped_column(String(500))
    # A line the system wrote: a code with its values, translated when shown (helpdesk.labels.history_note).
    note_code: Mapped[str | None] = mapped_column(String(40))
    note_params: Mapped[dict | None] = mapped_column(db.JSON)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)

    actor: Mapped[User | None] = relationship()

    @property
    def shown_note(self) -> str | None:
        """Return the note as the reader sees it: the code's text in their language, then typed text."""
        from helpdesk.labels import history_note

        return history_note(self)
