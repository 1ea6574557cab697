"""People who log in: authority employees and KSM staff."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models.tenancy import Team, Tenant, team_members
from helpdesk.models.types import UTCDateTime

TENANT_ROLES = ("requester", "tenant_manager")
STAFF_ROLES = ("agent", "team_lead", "service_manager", "admin")
ROLES = TENANT_ROLES + STAFF_ROLES


class User(UserMixin, db.Model):
    """A login; tenant users belong to one tenant, KSM staff to none."""

    # The people lookup (services/people.py) searches name and email parts with ILIKE '%…%': on PostgreSQL
    # trigram GIN indexes serve that (SQLite gets plain indexes, which still order the admin list by name).
    __table_args__ = (
        Index("ix_user_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        Index("ix_user_email_trgm", "email", postgresql_using="gin", postgresql_ops={"email": "gin_trgm_ops"}),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(50))
    locale: Mapped[str] = mapped_column(String(5), default="de")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of every session and remember cookie (see get_id): raising it ends them all at once.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    tenant: Mapped[Tenant | None] = relationship()
    teams: Mapped[list[Team]] = relationship(secondary=team_members, back_populates="members")

    @property
    def is_staff(self) -> bool:
        """Tell whether the user works for KSM (sees all tenants' tickets)."""
        return self.role in STAFF_ROLES

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        """Return Flask-Login's alternative id "<id>:<session version>": cookies of an older version no longer load."""
        return f"{self.id}:{self.session_version or 1}"

    def has_role(self, *roles: str) -> bool:
        """Tell whether the user holds one of the given roles."""
        return self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"
