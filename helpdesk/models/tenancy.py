"""Tenants, KSM teams, the service catalog and routing rules."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Table, Column, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models.types import UTCDateTime

team_members = Table(
    "team_member",
    db.metadata,
    Column("team_id", ForeignKey("team.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tenant(db.Model):
    """A member authority (Mandant) whose employees file tickets."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Mail from an unknown address of one of the tenant's mail domains: "create" a requester account
    # for the sender, or "hold" the mail for review (helpdesk.models.mail.UNKNOWN_SENDER_POLICIES).
    mail_unknown_senders: Mapped[str] = mapped_column(String(10), default="create", server_default="create")

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"


class Team(db.Model):
    """A KSM support team with its own queue."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    is_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    lead: Mapped["User | None"] = relationship(foreign_keys=[lead_id])  # noqa: F821
    members: Mapped[list["User"]] = relationship(  # noqa: F821
        secondary=team_members, back_populates="teams", order_by="User.name"
    )

    def __repr__(self) -> str:
        return f"<Team {self.slug}>"


class Category(db.Model):
    """An entry of the two-level service catalog ("Hardware > Drucker")."""

    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped["Category | None"] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list["Category"]] = relationship(
        back_populates="parent", order_by="(Category.position, Category.name)"
    )

    @property
    def full_name(self) -> str:
        """Return "Parent > Child" for a subcategory, the name for a top level."""
        return f"{self.parent.name} > {self.name}" if self.parent else self.name


class RoutingRule(db.Model):
    """Send tickets matching (tenant?, category?, priority?) to a team; lowest position wins."""

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=100, index=True)
    name: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("category.id", ondelete="CASCADE"))
    priority: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    tenant: Mapped[Tenant | None] = relationship()
    category: Mapped[Category | None] = relationship()
    team: Mapped[Team] = relationship()
