"""Per-month report figures of each tenant, kept exact in the transaction of every change (services.reporting)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.extensions import db


class ReportMonthRollup(db.Model):
    """Counts of one tenant's Berlin calendar month, per current team and catalog entry of the tickets.

    Two kinds of rows share the table:
    - target "" and priority 0: tickets `opened` (by created_at) and `resolved` (resolved or closed now,
      by resolved_at) in the month, and `backlog_change`;
    - target first_response / next_update / resolution and the clock's priority at decision: clocks
      whose result became final in the month (coalesce(decided_at, breached_at)), `met` or `breached`,
      with the definitions of helpdesk.services.reports.
    Derived data: no foreign keys (category 0 = tickets without a category); rows may hold zeros.
    """

    __tablename__ = "report_month_rollup"
    __table_args__ = (
        # The all-tenants overview reads one month of every tenant.
        Index("ix_report_month_rollup_month", "month", "tenant_id"),
    )

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # first day of the Berlin month
    team_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    category_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    priority: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    target: Mapped[str] = mapped_column(String(20), primary_key=True)
    opened: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resolved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    met: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    breached: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Ticket rows: +1 in the month a ticket was opened, -1 in the month it left the backlog (resolved or
    # closed; the later of both months). The backlog at a month's end is the sum over all months before.
    backlog_change: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
