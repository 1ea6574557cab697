"""Colleagues who follow a ticket of their authority: they see it in the portal and get its public updates."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models.types import UTCDateTime
from helpdesk.models.users import User


class TicketWatcher(db.Model):
    """One person of the ticket's tenant watching one ticket (added by the requester, a manager or from CC)."""

    __table_args__ = (
        UniqueConstraint("ticket_id", "user_id"),
        # permissions.ticket_visibility asks "which tickets does this user watch": an index range per user.
        Index("ix_ticket_watcher_user_ticket", "user_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who added the watcher (None: the system, e.g. from the CC of an email).
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    added_by: Mapped[User | None] = relationship(foreign_keys=[added_by_id])
