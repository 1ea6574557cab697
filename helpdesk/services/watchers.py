"""Watchers of a ticket: colleagues of the requester's authority who follow it (portal and email)."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from helpdesk.extensions import db
from helpdesk.models import Ticket, TicketWatcher, User
from helpdesk.services import people
from helpdesk.services.errors import DomainError, Forbidden
from helpdesk.services.ids import as_id
from helpdesk.services.tickets import record

# A ticket is followed by a handful of colleagues; the cap keeps every notification and page bounded.
MAX_WATCHERS = 20


def watchers_of(ticket: Ticket) -> list[User]:
    """Return the people watching the ticket, by name (at most MAX_WATCHERS)."""
    return list(db.session.scalars(
        select(User).join(TicketWatcher, TicketWatcher.user_id == User.id)
        .where(TicketWatcher.ticket_id == ticket.id)
        .order_by(User.name, User.id)
        .limit(MAX_WATCHERS)
    ))


def is_watching(ticket: Ticket, user: User) -> bool:
    """Tell whether the user watches the ticket."""
    return db.session.scalar(
        select(TicketWatcher.id).where(TicketWatcher.ticket_id == ticket.id, TicketWatcher.user_id == user.id)
    ) is not None


def can_manage(user: User | None, ticket: Ticket) -> bool:
    """Tell whether the user may add and remove the ticket's watchers: its requester, the authority's manager, KSM."""
    if user is None or not user.active:
        return False
    if user.is_staff:
        return True
    if user.tenant_id != ticket.tenant_id:
        return False
    return user.id == ticket.requester_id or user.role == "tenant_manager"


def may_watch(ticket: Ticket, user: User | None) -> bool:
    """Tell whether the user can become a watcher: an active person of the ticket's authority, not KSM staff."""
    return (user is not None and user.active and not user.is_staff and user.tenant_id == ticket.tenant_id
            and user.id != ticket.requester_id)


def add_watchers(ticket: Ticket, users: list[User], *, actor: User | None, now: datetime) -> list[User]:
    """Add those of the users who may watch and do not yet; return them; one history line; no commit.

    actor None is the system (e.g. the people in CC of an email); a person must be allowed to manage
    the ticket's watchers. Others (another authority, KSM staff, inactive, the requester) are left out.
    """
    if actor is not None and not can_manage(actor, ticket):
        raise Forbidden(_("Sie können die Beobachter dieses Tickets nicht ändern."))
    present = set(db.session.scalars(select(TicketWatcher.user_id).where(TicketWatcher.ticket_id == ticket.id)))
    added: list[User] = []
    for user in users:
        if not may_watch(ticket, user) or user.id in present:
            continue
        if len(present) >= MAX_WATCHERS:
            raise DomainError(_("Ein Ticket kann höchstens %(n)d Beobachter haben.", n=MAX_WATCHERS), field="user_id")
        present.add(user.id)
        added.append(user)
    if not added:
        return []
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Another request adding the same person at this moment is no error: the unique key keeps one row.
    db.session.execute(
        insert(TicketWatcher)
        .values([{"ticket_id": ticket.id, "user_id": user.id, "created_at": now,
                  "added_by_id": actor.id if actor else None} for user in added])
        .on_conflict_do_nothing(index_elements=["ticket_id", "user_id"])
    )
    record(ticket, actor, "watcher_added", now, new=", ".join(user.name for user in added))
    return added


def remove_watcher(ticket: Ticket, user: User, *, actor: User | None, now: datetime) -> None:
    """Stop the user watching the ticket (whoever may manage watchers, or the watcher themself); no commit."""
    if actor is not None and actor.id != user.id and not can_manage(actor, ticket):
        raise Forbidden(_("Sie können die Beobachter dieses Tickets nicht ändern."))
    removed = db.session.execute(
        delete(TicketWatcher).where(TicketWatcher.ticket_id == ticket.id, TicketWatcher.user_id == user.id)
    ).rowcount
    if removed:
        record(ticket, actor, "watcher_removed", now, new=user.name)


def search_colleagues(ticket: Ticket, text: str | None) -> tuple[list[User], bool]:
    """Return people of the ticket's authority matching the lookup text who could watch it, and whether there are more.

    The requester's people lookup (services/people.py), confined to the ticket's tenant: bounded and indexed.
    """
    found, more = people.search_requesters(text, ticket.tenant_id)
    present = {user.id for user in watchers_of(ticket)}
    return [user for user in found if may_watch(ticket, user) and user.id not in present], more


def watcher_to_remove(ticket: Ticket, user_id) -> User:
    """Return the watcher a form names (by id) or raise DomainError."""
    user = None
    if as_id(user_id):
        user = db.session.scalar(
            select(User).join(TicketWatcher, TicketWatcher.user_id == User.id)
            .where(TicketWatcher.ticket_id == ticket.id, User.id == as_id(user_id))
        )
    if user is None:
        raise DomainError(_("Diese Person beobachtet das Ticket nicht (mehr)."), field="user_id")
    return user


def colleague(ticket: Ticket, user_id) -> User:
    """Return the person a form names (by id) if they may watch the ticket, else raise DomainError."""
    user = db.session.get(User, as_id(user_id)) if as_id(user_id) else None
    if not may_watch(ticket, user):
        # Says the same for unknown ids and other authorities' people: nothing about them leaks.
        raise DomainError(_("Bitte wählen Sie eine Person Ihrer Behörde."), field="user_id")
    return user


def add_from_form(ticket: Ticket, user_id, *, actor: User, now: datetime) -> User:
    """Add the chosen colleague as a watcher; commit. Raise DomainError when nobody or someone unfit is chosen."""
    user = colleague(ticket, user_id)
    if not add_watchers(ticket, [user], actor=actor, now=now) and is_watching(ticket, user):
        raise DomainError(_("%(name)s beobachtet das Ticket bereits.", name=user.name), field="user_id")
    db.session.commit()
    return user


def remove_from_form(ticket: Ticket, user_id, *, actor: User, now: datetime) -> User:
    """Remove the named watcher (or oneself); commit."""
    user = watcher_to_remove(ticket, user_id)
    remove_watcher(ticket, user, actor=actor, now=now)
    db.session.commit()
    return user
