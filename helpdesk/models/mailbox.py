"""The state of the IMAP mailbox fetch: when it last ran, what went wrong, what it imported."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.extensions import db
from helpdesk.models.types import UTCDateTime

MAILBOX_STATUS_ID = 1  # one mailbox, one row
# What the import made of a fetched message: "imported" (comment or ticket), "held", "ignored"; and
# "failed": the import raised (database down), the message stays in the mailbox for the next run.
FETCH_COUNTS = ("imported", "held", "ignored", "failed")


class MailboxStatus(db.Model):
    """The one row that tells how fetching from the IMAP mailbox goes (services/mail/imap.py)."""

    __tablename__ = "mailbox_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last run without an error
    last_error: Mapped[str | None] = mapped_column(String(500))  # of the last run; None when it went well
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last run that had one
    # Messages waiting in the folder when the last run began (a backlog shows here).
    last_waiting: Mapped[int] = mapped_column(Integer, default=0)
    last_imported: Mapped[int] = mapped_column(Integer, default=0)
    last_held: Mapped[int] = mapped_column(Integer, default=0)
    last_ignored: Mapped[int] = mapped_column(Integer, default=0)
    last_failed: Mapped[int] = mapped_column(Integer, default=0)
    total_imported: Mapped[int] = mapped_column(Integer, default=0)
    total_held: Mapped[int] = mapped_column(Integer, default=0)
    total_ignored: Mapped[int] = mapped_column(Integer, default=0)
    total_failed: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<MailboxStatus {self.last_finished_at} error={self.last_error!r}>"
