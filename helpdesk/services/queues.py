"""Read queries of the agent workspace: queue tabs, filters and sorting on top of the tenant scope."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import selectinload

from helpdesk.extensions import db
from helpdesk.models import Attachment, Category, Comment, Team, Tenant, Ticket, TicketEvent, User, team_members
from helpdesk.models.tickets import OPEN_STATUSES, PRIORITIES, STATUSES
from helpdesk.models.users import STAFF_ROLES, TENANT_ROLES
from helpdesk.services.permissions import attachment_scope, can_see_internal, comment_scope, ticket_scope
from helpdesk.services.ids import as_id

# Tab keys in the order the queue page shows them.
TABS = ("team", "unassigned", "mine", "open", "all")

# Whitelisted sort keys; a leading "-" reverses the direction. The id breaks ties so pages are stable.
_SORT_COLUMNS = {
    "priority": (Ticket.priority, Ticket.created_at),
    # Due soonest first; tickets without a running SLA clock (paused, no contract) come last.
    "due": (Ticket.sla_due_at.is_(None), Ticket.sla_due_at, Ticket.priority),
    "created": (Ticket.created_at,),
    "updated": (Ticket.updated_at,),
    "number": (Ticket.number,),
}
SORTS = tuple(key for name in _SORT_COLUMNS for key in (name, f"-{name}"))
DEFAULT_SORT = "priority"


def _as_id(value) -> int | None:
    text = str(value or "").strip()
    return as_id(text)


@dataclass(frozen=True)
class QueueFilters:
    """The filters of the queue page; unknown or malformed values are dropped, not rejected."""

    status: str | None = None
    priority: int | None = None
    tenant_id: int | None = None
    category_id: int | None = None
    team_id: int | None = None
    text: str | None = None

    @classmethod
    def clean(cls, status=None, priority=None, tenant=None, category=None, team=None, text=None) -> "QueueFilters":
        """Return filters from raw request values, ignoring what does not parse."""
        priority = _as_id(priority)
        return cls(
            status=status if status in STATUSES else None,
            priority=priority if priority in PRIORITIES else None,
            tenant_id=_as_id(tenant),
            category_id=_as_id(category),
            team_id=_as_id(team),
            text=(str(text or "").strip()[:200] or None),
        )


def default_tab(user: User) -> str:
    """Return the tab a user starts on: the own teams' queue, or all open tickets without a team."""
    return "team" if user.teams else "open"


def _my_team_ids(user: User):
    return select(team_members.c.team_id).where(team_members.c.user_id == user.id).scalar_subquery()


def queue_query(user: User, tab: str, filters: QueueFilters, sort: str | None) -> Select:
    """Return the scoped, filtered, ordered select of tickets for one queue tab (related rows eager)."""
    query = ticket_scope(user)
    if tab != "all":
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    if tab in ("team", "unassigned"):
        query = query.where(Ticket.team_id.in_(_my_team_ids(user)))
    if tab == "unassigned":
        query = query.where(Ticket.assignee_id.is_(None))
    elif tab == "mine":
        query = query.where(Ticket.assignee_id == user.id)

    if filters.status:
        query = query.where(Ticket.status == filters.status)
    if filters.priority:
        query = query.where(Ticket.priority == filters.priority)
    if filters.tenant_id:
        query = query.where(Ticket.tenant_id == filters.tenant_id)
    if filters.team_id:
        query = query.where(Ticket.team_id == filters.team_id)
    if filters.category_id:
        # A top-level category also finds the tickets filed under its subcategories.
        children = select(Category.id).where(Category.parent_id == filters.category_id)
        query = query.where(or_(Ticket.category_id == filters.category_id, Ticket.category_id.in_(children)))
    if filters.text:
        query = query.where(or_(
            Ticket.subject.icontains(filters.text, autoescape=True),
            Ticket.number.icontains(filters.text, autoescape=True),
        ))

    sort = sort if sort in SORTS else DEFAULT_SORT
    columns = _SORT_COLUMNS[sort.lstrip("-")]
    descending = sort.startswith("-")
    order = [column.desc() if descending else column.asc() for column in columns]
    order.append(Ticket.id.desc() if descending else Ticket.id.asc())
    return query.order_by(*order).options(
        selectinload(Ticket.tenant),
        selectinload(Ticket.category).selectinload(Category.parent),
        selectinload(Ticket.team),
        selectinload(Ticket.assignee),
    )


def ticket_thread(user: User, ticket: Ticket) -> list[Comment]:
    """Return the comments of a visible ticket the user may read, with authors, oldest first."""
    return list(db.session.scalars(comment_scope(user, ticket).options(selectinload(Comment.author))))


def ticket_attachments(user: User, ticket: Ticket) -> dict[int | None, list[Attachment]]:
    """Return the files of a visible ticket the user may download, keyed by comment id (None: the ticket)."""
    grouped: dict[int | None, list[Attachment]] = {}
    for attachment in db.session.scalars(attachment_scope(user, ticket)):
        grouped.setdefault(attachment.comment_id, []).append(attachment)
    return grouped


def ticket_history(user: User, ticket: Ticket) -> list[TicketEvent]:
    """Return the history of a visible ticket, internal lines only for KSM staff, oldest first."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    if not can_see_internal(user):
        query = query.where(TicketEvent.is_internal.is_(False))
    query = query.order_by(TicketEvent.created_at, TicketEvent.id).options(selectinload(TicketEvent.actor))
    return list(db.session.scalars(query))


def tenants() -> list[Tenant]:
    """Return all tenants by name (the queue's tenant filter)."""
    return list(db.session.scalars(select(Tenant).order_by(Tenant.name)))


def active_teams() -> list[Team]:
    """Return the active teams by name."""
    return list(db.session.scalars(select(Team).where(Team.active.is_(True)).order_by(Team.name)))


def active_categories() -> list[Category]:
    """Return the active catalog entries, each top level followed by its subcategories."""
    entries = db.session.scalars(
        select(Category).where(Category.active.is_(True)).options(selectinload(Category.parent))
    ).all()

    def key(category: Category):
        top = category.parent or category
        return (top.position, top.name, top.id, category.parent is not None, category.position, category.name)

    return sorted(entries, key=key)


def active_requesters() -> list[User]:
    """Return the active users of active tenants, grouped by tenant name, then by name."""
    return list(db.session.scalars(
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(User.active.is_(True), Tenant.active.is_(True), User.role.in_(TENANT_ROLES))
        .order_by(Tenant.name, Tenant.id, User.name)
        .options(selectinload(User.tenant))
    ))


def team_members_for_assignment(ticket: Ticket) -> list[User]:
    """Return the active KSM members of the ticket's team by name (who may be assigned)."""
    return list(db.session.scalars(
        select(User)
        .join(team_members, team_members.c.user_id == User.id)
        .where(team_members.c.team_id == ticket.team_id, User.active.is_(True), User.role.in_(STAFF_ROLES))
        .order_by(User.name)
    ))
