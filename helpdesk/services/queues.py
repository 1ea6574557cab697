"""Read queries of the agent workspace: queue tabs, filters and sorting on top of the tenant scope."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, or_, select, tuple_
from sqlalchemy.orm import selectinload

from helpdesk.extensions import db
from helpdesk.models import Attachment, Category, Comment, Team, Tenant, Ticket, TicketEvent, User, team_members
from helpdesk.models.tickets import OPEN_STATUSES, PRIORITIES, STATUSES
from helpdesk.models.types import UTCDateTime
from helpdesk.models.users import STAFF_ROLES, TENANT_ROLES
from helpdesk.services.errors import DomainError
from helpdesk.services.ids import as_id
from helpdesk.services.permissions import attachment_scope, can_see_internal, comment_scope, ticket_scope
from helpdesk.services.search import text_condition

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

# Keyset pages walk these columns (all in one direction, the id last) so every page is an index range
# scan with a LIMIT (the partial indexes on open tickets in models/tickets.py), however deep.
# "due" keeps tickets without a clock after the others: the NULL due dates are a segment of their own.
KEYSET_COLUMNS = {
    "priority": (Ticket.priority, Ticket.created_at, Ticket.id),
    "due": (Ticket.sla_due_at, Ticket.priority, Ticket.id),
    "created": (Ticket.created_at, Ticket.id),
    "updated": (Ticket.updated_at, Ticket.id),
    "number": (Ticket.number, Ticket.id),
}
# Counting stops here: a page view never counts all open tickets ("mehr als 1.000").
COUNT_CAP = 1000


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


def status_in(statuses) -> ColumnElement[bool]:
    """Return `status IN (...)` with the statuses written into the SQL, not bound.

    The partial indexes on open tickets name these statuses; PostgreSQL (in a generic plan) and SQLite
    use a partial index only when the query spells its condition with the same literals.
    """
    return Ticket.status.in_(bindparam("statuses", list(statuses), expanding=True, literal_execute=True))


def default_tab(user: User) -> str:
    """Return the tab a user starts on: the own teams' queue, or all open tickets without a team."""
    return "team" if user.teams else "open"


def queue_query(user: User, tab: str, filters: QueueFilters, sort: str | None) -> Select:
    """Return the scoped, filtered, ordered select of tickets for one queue tab (related rows eager)."""
    return _ordered(_filtered(user, tab, filters), sort)


def _filtered(user: User, tab: str, filters: QueueFilters) -> Select:
    """Return the scoped and filtered select of one tab's tickets, not yet ordered."""
    query = ticket_scope(user)
    if tab != "all":
        query = query.where(status_in(OPEN_STATUSES))
    if tab in ("team", "unassigned"):
        # The team ids as values, not a subquery: with one team the planner walks that team's index in order.
        query = query.where(Ticket.team_id.in_([team.id for team in user.teams]))
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
        # The full-text index (helpdesk.services.search): words of the whole ticket, number parts, people;
        # checked per ticket inside the page's own scan, so the page never collects all matches first.
        query = query.where(text_condition(user, filters.text))
    return query


def _ordered(query: Select, sort: str | None) -> Select:
    """Order a ticket select by a whitelisted sort key, the id breaking ties, with related rows eager."""
    sort = sort if sort in SORTS else DEFAULT_SORT
    columns = _SORT_COLUMNS[sort.lstrip("-")]
    descending = sort.startswith("-")
    order = [column.desc() if descending else column.asc() for column in columns]
    order.append(Ticket.id.desc() if descending else Ticket.id.asc())
    return query.order_by(*order).options(*_QUEUE_LOADS)


_QUEUE_LOADS = (
    selectinload(Ticket.tenant),
    selectinload(Ticket.category).selectinload(Category.parent),
    selectinload(Ticket.team),
    selectinload(Ticket.assignee),
)


@dataclass(frozen=True)
class KeysetPage:
    """One page of a ticket list walked by keyset: the rows, cursors to the neighbours, a capped count."""

    items: list[Ticket]
    next_cursor: str | None
    prev_cursor: str | None
    total: int  # at most COUNT_CAP + 1
    total_capped: bool  # True: more than COUNT_CAP tickets, `total` is not the exact number


def queue_page(user: User, tab: str, filters: QueueFilters, sort: str | None, *, after: str | None = None,
               before: str | None = None, per_page: int = 25) -> KeysetPage:
    """Return one page of a queue tab: after/before a cursor of a neighbouring page, or the first page."""
    return keyset_page(_filtered(user, tab, filters), sort if sort in SORTS else DEFAULT_SORT,
                       after=after, before=before, per_page=per_page, options=_QUEUE_LOADS)


def keyset_page(query: Select, sort: str, *, after: str | None, before: str | None, per_page: int,
                options=()) -> KeysetPage:
    """Return the page of a filtered ticket select after (or before) a cursor, in the order of `sort`.

    Costs a fixed number of statements however many tickets match: at most two for the rows (the
    "due" sort's NULL segment), one capped count, and the eager loads of `options`.
    """
    descending = sort.startswith("-")
    columns = KEYSET_COLUMNS[sort.lstrip("-")]
    backward = before is not None
    anchor = decode_cursor(before if backward else after, sort, columns) if (before or after) else None
    # Walking backward scans in the opposite direction from the anchor, then shows the rows turned round.
    scan_descending = descending != backward
    rows = _scan(query, columns, anchor, scan_descending, per_page + 1, options)
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backward:
        rows.reverse()
        has_prev, has_next = more, True
    else:
        has_prev, has_next = anchor is not None, more
    # Only the id: the count reads an index, not the rows (with a text filter: the search documents once).
    counted = query.with_only_columns(Ticket.id, maintain_column_froms=True).limit(COUNT_CAP + 1)
    total = db.session.scalar(select(func.count()).select_from(counted.subquery()))
    return KeysetPage(
        items=rows,
        next_cursor=encode_cursor(rows[-1], sort, columns) if rows and has_next else None,
        prev_cursor=encode_cursor(rows[0], sort, columns) if rows and has_prev else None,
        total=total,
        total_capped=total > COUNT_CAP,
    )


def _scan(query: Select, columns, anchor: list | None, descending: bool, limit: int, options) -> list[Ticket]:
    """Return up to `limit` tickets strictly beyond the anchor (or from the start) in one direction."""
    if columns[0] is not Ticket.sla_due_at:
        return _fetch(query, columns, anchor, descending, limit, options)
    # Tickets without a due date come after all others (ascending), so before them descending: two
    # segments, each one index range; the NULL segment orders by the remaining columns.
    due, rest = columns[0], columns[1:]
    segments = [("set", columns), ("null", rest)]
    if descending:
        segments.reverse()
    if anchor is not None:
        start = "null" if anchor[0] is None else "set"
        segments = segments[[name for name, _ in segments].index(start):]
    rows: list[Ticket] = []
    for name, segment_columns in segments:
        segment = query.where(due.is_(None) if name == "null" else due.is_not(None))
        segment_anchor = None
        if anchor is not None and name == ("null" if anchor[0] is None else "set"):
            segment_anchor = anchor[1:] if name == "null" else anchor
        # The NULL segment still orders by the due column too (all NULL there): PostgreSQL treats IS NULL as
        # no equality, so only the full column list lets it read the index in order instead of sorting.
        rows += _fetch(segment, segment_columns, segment_anchor, descending, limit - len(rows), options,
                       order_columns=columns)
        if len(rows) >= limit:
            break
    return rows


def _fetch(query: Select, columns, anchor: list | None, descending: bool, limit: int, options,
           order_columns=None) -> list[Ticket]:
    """Run one index range: a row-value comparison with the anchor, ordered by the same columns."""
    if anchor is not None:
        values = tuple_(*(bindparam(None, value, type_=column.type) for column, value in zip(columns, anchor)))
        query = query.where(tuple_(*columns) < values if descending else tuple_(*columns) > values)
    order = [column.desc() if descending else column.asc() for column in order_columns or columns]
    return list(db.session.scalars(query.order_by(*order).limit(limit).options(*options)))


def encode_cursor(ticket: Ticket, sort: str, columns) -> str:
    """Return the opaque cursor of a ticket's place in a sort order (URL-safe base64 of its sort key)."""
    values = [getattr(ticket, column.key) for column in columns]
    raw = json.dumps([sort, *[v.isoformat() if isinstance(v, datetime) else v for v in values]],
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, columns) -> list:
    """Return the sort key a cursor carries; refuse a cursor of another sort or a damaged one (400)."""
    try:
        if len(cursor) > 400:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, *values = json.loads(raw)
        if cursor_sort != sort or len(values) != len(columns):
            raise ValueError
        return [_cursor_value(column, value) for column, value in zip(columns, values)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise DomainError(_("Der Link zum Blättern ist ungültig. Bitte beginnen Sie auf der ersten Seite."),
                          field="cursor") from None


def _cursor_value(column, value):
    """Return one value of a cursor as the column's Python type (ValueError when it is not one)."""
    if value is None and column.nullable:
        return None
    if isinstance(column.type, UTCDateTime):
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        return moment
    if isinstance(column.type, Integer):
        if not isinstance(value, int) or isinstance(value, bool) or as_id(value) is None:
            raise ValueError  # ids and priorities are 1..2**31-1
        return value
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError
    return value


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
