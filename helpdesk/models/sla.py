"""Business calendars, SLA contracts with versions, target clocks and escalation records."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models.types import UTCDateTime

TARGETS = ("first_response", "next_update", "resolution")


class Calendar(db.Model):
    """Working hours per weekday, a state's public holidays and extra closure days."""

    __tablename__ = "business_calendar"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    timezone: Mapped[str] = mapped_column(String(60), default="Europe/Berlin")
    # {"0": [["07:00", "16:00"]], ..., "4": [["07:00", "13:00"]]}; a weekday missing is closed.
    hours: Mapped[dict] = mapped_column(JSON)
    holiday_region: Mapped[str | None] = mapped_column(String(10))  # e.g. "DE-MV"
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    closures: Mapped[list["CalendarClosure"]] = relationship(
        back_populates="calendar", cascade="all, delete-orphan", order_by="CalendarClosure.day"
    )


class CalendarClosure(db.Model):
    """An extra day the service is closed (24.12., 31.12., a works outing)."""

    __table_args__ = (UniqueConstraint("calendar_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("business_calendar.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(120), default="")

    calendar: Mapped[Calendar] = relationship(back_populates="closures")


class SlaPolicy(db.Model):
    """A tenant's service contract; its terms live in immutable versions."""

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    calendar_id: Mapped[int] = mapped_column(ForeignKey("business_calendar.id"))
    compliance_goal: Mapped[float] = mapped_column(Numeric(5, 2), default=95)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policy_version.id", use_alter=True, name="fk_sla_policy_current_version")
    )

    calendar: Mapped[Calendar] = relationship()
    current_version: Mapped["SlaPolicyVersion | None"] = relationship(foreign_keys=[current_version_id], post_update=True)
    versions: Mapped[list["SlaPolicyVersion"]] = relationship(
        foreign_keys="SlaPolicyVersion.policy_id", back_populates="policy", order_by="SlaPolicyVersion.version.desc()"
    )


class SlaPolicyVersion(db.Model):
    """The terms of a contract from one moment on: targets per priority and escalation levels."""

    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("sla_policy.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # {"1": {"first_response": 30, "next_update": 60, "resolution": 240}, ...} in business minutes;
    # next_update may be null (no revolving target for that priority).
    targets: Mapped[dict] = mapped_column(JSON)
    # [{"percent": 75, "recipients": ["assignee"], "business_hours_only": true}, ...]
    levels: Mapped[list] = mapped_column(JSON)

    policy: Mapped[SlaPolicy] = relationship(foreign_keys=[policy_id], back_populates="versions")

    def target_minutes(self, priority: int, target: str) -> int | None:
        """Return the business minutes allowed for a target at a priority, None if not agreed."""
        value = (self.targets.get(str(priority)) or {}).get(target)
        return int(value) if value else None


class SlaClock(db.Model):
    """One target clock of a ticket: its run, pauses, due moment and outcome."""

    __table_args__ = (
        UniqueConstraint("ticket_id", "target", "cycle"),
        Index("ix_sla_clock_tenant_outcome", "tenant_id", "target", "decided_at"),
        # Service level reports: clocks final in a period are a range of decided_at, or decided_at null
        # and a range of breached_at; both are ranges of this one index, which carries every column
        # the report counts (index-only for the percentiles).
        Index("ix_sla_clock_tenant_decided_report", "tenant_id", "decided_at", "breached_at", "target", "priority",
              "outcome", "used_seconds", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    target: Mapped[str] = mapped_column(String(20))
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("sla_policy_version.id"))
    priority: Mapped[int] = mapped_column(Integer)
    target_seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_seconds: Mapped[int] = mapped_column(Integer, default=0)  # business time of finished segments
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)  # business time spent paused
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(10))  # met | breached | cancelled
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    policy_version: Mapped[SlaPolicyVersion] = relationship()

    @property
    def is_running(self) -> bool:
        """Tell whether business time is being consumed right now."""
        return self.running_since is not None and self.stopped_at is None


class Escalation(db.Model):
    """An escalation level that fired or was skipped; unique so each level fires once per clock cycle.

    A skipped level was superseded by a higher one of the same clock: recorded, nobody emailed.
    """

    __table_args__ = (UniqueConstraint("ticket_id", "target", "cycle", "percent"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    clock_id: Mapped[int] = mapped_column(ForeignKey("sla_clock.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(20))
    cycle: Mapped[int] = mapped_column(Integer)
    percent: Mapped[int] = mapped_column(Integer)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recipients: Mapped[str] = mapped_column(String(1000), default="")
    skipped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
