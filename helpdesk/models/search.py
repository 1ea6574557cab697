"""The search document of every ticket: its words for requesters and for KSM staff."""
from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.extensions import db
from helpdesk.models.tickets import Ticket

# PostgreSQL keeps the German-stemmed tsvectors here; SQLite leaves them empty and indexes the three texts in
# the FTS5 table `ticket_search_fts` (created by the migration, kept in step by triggers on this table).
_Document = TSVECTOR().with_variant(Text(), "sqlite")


class TicketSearch(db.Model):
    """One row per ticket, rebuilt in the transaction that changes what it is found by (services.search)."""

    __tablename__ = "ticket_search"
    __table_args__ = (
        Index("ix_ticket_search_public_document", "public_document", postgresql_using="gin"),
        Index("ix_ticket_search_internal_document", "internal_document", postgresql_using="gin"),
    )

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True,
                                           autoincrement=False)
    # Number and subject (ranked highest), then what else the requester may read: description, public
    # replies, requester name and email, authority.
    title: Mapped[str] = mapped_column(Text, default="")
    public_text: Mapped[str] = mapped_column(Text, default="")
    # Internal notes: only KSM staff search and see these.
    internal_text: Mapped[str] = mapped_column(Text, default="")
    public_document: Mapped[str | None] = mapped_column(_Document)
    # NULL while the ticket has no internal note (most tickets): GIN skips it, the table stays small.
    internal_document: Mapped[str | None] = mapped_column(_Document)


# Ticket numbers and parts of them ("000123", "2026-0001") through trigrams on PostgreSQL (pg_trgm);
# on SQLite the same name is a plain index, which LIKE '%…%' does not use but keeps the schemas alike.
Index("ix_ticket_number_trgm", Ticket.number, postgresql_using="gin", postgresql_ops={"number": "gin_trgm_ops"})
