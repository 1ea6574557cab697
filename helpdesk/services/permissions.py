"""The one place that decides which tickets, comments and attachments a user may see."""
from __future__ import annotations

from sqlalchemy import Select, and_, false, select, union
from sqlalchemy.orm import aliased

from flask_babel import gettext as _

from helpdesk.extensions import db
from helpdesk.models import Attachment, Comment, Ticket, TicketWatcher, User
from helpdesk.services.errors import Forbidden, NotFound


def ticket_visibility(user: User):
    """Return the WHERE clause restricting tickets to what `user` may see."""
    if user is None or not user.is_authenticated or not user.active:
        return false()
    if user.is_staff:
        return Ticket.id.is_not(None)
    if user.role == "tenant_manager":
        return Ticket.tenant_id == user.tenant_id
    if user.role == "requester":
        # Their own tickets and those they watch; never another tenant's, even if a watcher row pointed there.
        return and_(Ticket.tenant_id == user.tenant_id, own_or_watched(user))
    return false()


def own_or_watched(user: User):
    """Return the WHERE clause "requested or watched by the user" (the portal's "my tickets").

    One IN over a UNION of two index ranges (ix_ticket_requester_created, ix_ticket_watcher_user_ticket):
    the database joins the few ids by primary key. An OR with a subquery could not use an index and
    would read every ticket of the authority.
    """
    own = aliased(Ticket)
    ids = union(select(own.id).where(own.requester_id == user.id),
                select(TicketWatcher.ticket_id).where(TicketWatcher.user_id == user.id))
    return Ticket.id.in_(select(ids.subquery().c[0]))


def ticket_scope(user: User) -> Select:
    """Return `select(Ticket)` scoped to the user; every ticket query starts here."""
    return select(Ticket).where(ticket_visibility(user))


def get_ticket(user: User, number: str) -> Ticket:
    """Return the ticket with this number if the user may see it, else raise NotFound."""
    ticket = db.session.scalar(ticket_scope(user).where(Ticket.number == number))
    if ticket is None:
        raise NotFound(_("Ticket nicht gefunden."))
    return ticket


def get_ticket_by_id(user: User, ticket_id: int) -> Ticket:
    """Return the ticket with this id if the user may see it, else raise NotFound."""
    ticket = db.session.scalar(ticket_scope(user).where(Ticket.id == ticket_id))
    if ticket is None:
        raise NotFound(_("Ticket nicht gefunden."))
    return ticket


def can_see_internal(user: User) -> bool:
    """Tell whether the user may read internal notes, internal files and internal history."""
    return bool(user and user.is_staff)


def comment_scope(user: User, ticket: Ticket) -> Select:
    """Return the comments of a visible ticket the user may read, oldest first."""
    query = select(Comment).where(Comment.ticket_id == ticket.id)
    if not can_see_internal(user):
        query = query.where(Comment.is_internal.is_(False))
    return query.order_by(Comment.created_at, Comment.id)


def attachment_scope(user: User, ticket: Ticket) -> Select:
    """Return the attachments of a visible ticket the user may download."""
    query = select(Attachment).where(Attachment.ticket_id == ticket.id)
    if not can_see_internal(user):
        query = query.where(Attachment.is_internal.is_(False))
    return query.order_by(Attachment.created_at, Attachment.id)


def get_attachment(user: User, attachment_id: int) -> Attachment:
    """Return an attachment if its ticket is visible and the file not hidden, else NotFound."""
    attachment = db.session.scalar(
        select(Attachment)
        .join(Ticket, Ticket.id == Attachment.ticket_id)
        .where(Attachment.id == attachment_id, ticket_visibility(user))
    )
    if attachment is None or (attachment.is_internal and not can_see_internal(user)):
        raise NotFound(_("Datei nicht gefunden."))
    return attachment


def require_staff(user: User) -> None:
    """Raise Forbidden unless the user works for KSM."""
    if not (user and user.is_staff):
        raise Forbidden(_("Diese Aktion ist nur für KSM-Mitarbeitende möglich."))


def require_role(user: User, *roles: str) -> None:
    """Raise Forbidden unless the user holds one of the roles."""
    if not (user and user.role in roles):
        raise Forbidden(_("Dafür fehlt Ihnen die Berechtigung."))
