"""The ticket workflow: create, reply, change fields and status; every change is recorded."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Category, Comment, Team, Ticket, TicketEvent, User
from helpdesk.models.tickets import CHANNELS, LEVELS, PRIORITIES, STATUSES
from helpdesk.services import notifications
from helpdesk.services import sla as sla_clocks
from helpdesk.services.attachments import Upload, store_uploads, validate_uploads
from helpdesk.services.errors import DomainError, Forbidden
from helpdesk.services.ids import as_id
from helpdesk.services.numbering import next_ticket_number
from helpdesk.services.permissions import require_staff
from helpdesk.services.routing import priority_for, route

# Status changes KSM staff may make by hand; requesters only reopen or confirm.
STAFF_TRANSITIONS = {
    "new": {"open", "pending", "resolved"},
    "open": {"pending", "resolved"},
    "pending": {"open", "resolved"},
    "resolved": {"open", "closed"},
    "closed": set(),
}


def record(ticket: Ticket, actor: User | None, kind: str, now: datetime, *, field: str | None = None,
           old=None, new=None, note: str | None = None, note_code: str | None = None,
           note_params: dict | None = None, internal: bool = False) -> TicketEvent:
    """Add one history line to the ticket.

    `note` is text as a person typed it (shown as is); a line the system writes names a
    `note_code` of helpdesk.labels.HISTORY_NOTES with its `note_params` (JSON values), and is
    translated into the reader's language when shown.
    """
    event = TicketEvent(
        ticket_id=ticket.id, actor_id=actor.id if actor else None, created_at=now, kind=kind,
        field=field, old_value=None if old is None else str(old)[:255],
        new_value=None if new is None else str(new)[:255], note=(note or None) and note[:500],
        note_code=note_code, note_params=note_params or None, is_internal=internal,
    )
    db.session.add(event)
    return event


def _clean_text(value: str | None, field: str, label: str, max_length: int | None = None,
                single_line: bool = False) -> str:
    value = (value or "").strip()
    if single_line:
        # A subject travels into email headers: line breaks and other control characters become spaces.
        value = " ".join("".join(" " if ord(ch) < 32 or ch == "\x7f" else ch for ch in value).split())
    if not value:
        raise DomainError(_("Bitte füllen Sie das Feld „%(label)s“ aus.", label=label), field=field)
    if max_length and len(value) > max_length:
        raise DomainError(
            _("„%(label)s“ darf höchstens %(n)d Zeichen lang sein.", label=label, n=max_length), field=field
        )
    return value


def _level(value, field: str, label: str) -> int:
    try:
        value = int(value)
    except (TypeError, ValueError):
        value = None
    if value not in LEVELS:
        raise DomainError(_("Bitte wählen Sie „%(label)s“.", label=label), field=field)
    return value


def _active_category(category_id) -> Category:
    category = db.session.get(Category, as_id(category_id)) if as_id(category_id) else None
    if category is None or not category.active:
        raise DomainError(_("Bitte wählen Sie eine Kategorie aus dem Servicekatalog."), field="category")
    return category


def _touch(ticket: Ticket, now: datetime) -> None:
    ticket.updated_at = now


def create_ticket(
    actor: User,
    *,
    subject: str,
    description: str,
    category_id,
    impact,
    urgency,
    now: datetime,
    requester: User | None = None,
    channel: str = "web",
    uploads: list[Upload] = (),
    confirm: bool = True,
    commit: bool = True,
) -> Ticket:
    """File a ticket, route it, number it, store its files and notify the requester; commit.

    confirm=False skips the confirmation email (the mail import's loop limit); commit=False leaves the
    commit to the caller (the mail import commits the ticket with its record of the mail).
    """
    if actor.is_staff:
        if requester is None or requester.is_staff or not requester.active:
            raise DomainError(_("Bitte wählen Sie die anfragende Person einer Behörde."), field="requester")
    else:
        requester = actor
        channel = "web" if channel not in ("web", "api", "email") else channel
    if channel not in CHANNELS:
        raise DomainError(_("Unbekannter Eingangskanal."), field="channel")
    subject = _clean_text(subject, "subject", _("Betreff"), 200, single_line=True)
    description = _clean_text(description, "description", _("Beschreibung"))
    category = _active_category(category_id)
    impact = _level(impact, "impact", _("Auswirkung"))
    urgency = _level(urgency, "urgency", _("Dringlichkeit"))
    uploads = list(uploads)
    validate_uploads(uploads)

    priority = priority_for(impact, urgency)
    team, rule = route(requester.tenant_id, category, priority)
    ticket = Ticket(
        number=next_ticket_number(now), tenant_id=requester.tenant_id, requester_id=requester.id,
        created_by_id=actor.id, category_id=category.id, team_id=team.id, channel=channel,
        impact=impact, urgency=urgency, priority=priority, status="new", subject=subject,
        description=description, created_at=now, updated_at=now,
    )
    db.session.add(ticket)
    db.session.flush()
    if actor is requester:
        record(ticket, actor, "created", now, new=channel)
    else:
        record(ticket, actor, "created", now, new=channel, note_code="created_by", note_params={"name": actor.name})
    record(ticket, None, "field", now, field="priority", new=priority, note_code="priority_from_matrix")
    if rule is not None:
        record(ticket, None, "field", now, field="team", new=team.name, note_code="routing_rule",
               note_params={"rule": rule.name}, internal=True)
    else:
        record(ticket, None, "field", now, field="team", new=team.name, note_code="default_team")
    if uploads:
        store_uploads(uploads, ticket=ticket, uploader=actor, comment=None, internal=False)
        record(ticket, actor, "attachment", now, note=", ".join(u.filename for u in uploads))
    ticket.requester = requester
    sla_clocks.start_clocks(ticket, now)
    if confirm:
        notifications.queue_email(requester, "ticket_created", now=now, ticket=ticket)
    if commit:
        db.session.commit()
    return ticket


def _set_status(ticket: Ticket, actor: User | None, status: str, now: datetime, note: str | None = None,
                note_code: str | None = None, note_params: dict | None = None) -> None:
    old = ticket.status
    if old == status:
        return
    ticket.status = status
    if status == "resolved":
        ticket.resolved_at = now
    elif status == "closed":
        ticket.closed_at = now
    elif old in ("resolved", "closed"):
        ticket.resolved_at = None
        ticket.closed_at = None
    record(ticket, actor, "field", now, field="status", old=old, new=status, note=note, note_code=note_code,
           note_params=note_params)
    _touch(ticket, now)
    sla_clocks.on_status_change(ticket, old, status, now)


def _check_not_closed(ticket: Ticket) -> None:
    if ticket.status == "closed":
        raise DomainError(_("Das Ticket ist geschlossen. Bitte erstellen Sie ein neues Ticket."))


def reply(
    actor: User,
    ticket: Ticket,
    *,
    body: str,
    now: datetime,
    internal: bool = False,
    uploads: list[Upload] = (),
    new_status: str | None = None,
    note_code: str | None = None,
    commit: bool = True,
) -> Comment:
    """Add a public reply or internal note, optionally with a status change; notify; commit.

    note_code marks the history line (e.g. "by_email"); commit=False leaves the commit to the caller.
    """
    _check_not_closed(ticket)
    if internal:
        require_staff(actor)
    body = _clean_text(body, "body", _("Nachricht"))
    uploads = list(uploads)
    validate_uploads(uploads)
    if new_status and new_status != ticket.status:
        require_staff(actor)
        _check_transition(ticket, new_status)

    comment = Comment(ticket_id=ticket.id, author_id=actor.id, body=body, is_internal=internal, created_at=now)
    db.session.add(comment)
    db.session.flush()
    if uploads:
        store_uploads(uploads, ticket=ticket, uploader=actor, comment=comment, internal=internal)
    record(ticket, actor, "internal_note" if internal else "reply", now, internal=internal,
           note=", ".join(u.filename for u in uploads) or None, note_code=note_code)
    _touch(ticket, now)

    old_status = ticket.status
    if actor.is_staff:
        if not internal:
            ticket.first_responded_at = ticket.first_responded_at or now
            sla_clocks.on_public_response(ticket, now)
        if new_status and new_status != ticket.status:
            _set_status(ticket, actor, new_status, now)
        elif not internal and ticket.status == "new":
            _set_status(ticket, actor, "open", now)
        if not internal:
            # The requester and the ticket's watchers (services/watchers.py) hear of every public update.
            notifications.queue_public_update(ticket, "public_reply", now=now, comment=comment,
                                              status_changed=ticket.status != old_status)
    else:
        # The requester answered: a question was answered or a solution was not enough.
        if ticket.status == "pending":
            _set_status(ticket, actor, "open", now, note_code="requester_answered")
        elif ticket.status == "resolved":
            ticket.reopen_count += 1
            _set_status(ticket, actor, "open", now, note_code="reopened_by_reply")
        sla_clocks.on_requester_message(ticket, now)
        if ticket.assignee and ticket.assignee_id != actor.id:
            notifications.queue_email(ticket.assignee, "requester_reply", now=now, ticket=ticket, comment=comment)
    if commit:
        db.session.commit()
    return comment


def _check_transition(ticket: Ticket, status: str) -> None:
    if status not in STATUSES:
        raise DomainError(_("Unbekannter Status."), field="status")
    if status not in STAFF_TRANSITIONS[ticket.status]:
        raise DomainError(_("Dieser Statuswechsel ist nicht möglich."), field="status")


def change_status(actor: User, ticket: Ticket, status: str, now: datetime) -> None:
    """Set the status by hand (KSM staff) and tell the requester; commit."""
    require_staff(actor)
    if not status:
        raise DomainError(_("Bitte wählen Sie einen neuen Status."), field="status")
    if status == ticket.status:
        return
    _check_transition(ticket, status)
    if ticket.status == "resolved" and status == "open":
        ticket.reopen_count += 1
    _set_status(ticket, actor, status, now)
    notifications.queue_public_update(ticket, "status_changed", now=now)
    db.session.commit()


def reopen(actor: User, ticket: Ticket, now: datetime, reason: str | None = None) -> None:
    """Reopen a resolved ticket (the requester or staff); the resolution clock continues; commit."""
    if ticket.status != "resolved":
        raise DomainError(_("Nur gelöste Tickets können wiedereröffnet werden."))
    ticket.reopen_count += 1
    reason = (reason or "").strip()
    # A reason the person typed is kept as typed; without one the line says "reopened" in the reader's language.
    _set_status(ticket, actor, "open", now, note=reason or None, note_code=None if reason else "reopened")
    if reason:
        db.session.add(Comment(ticket_id=ticket.id, author_id=actor.id, body=reason, created_at=now))
    if ticket.assignee and ticket.assignee_id != actor.id:
        notifications.queue_email(ticket.assignee, "reopened", now=now, ticket=ticket)
    db.session.commit()


def confirm_resolution(actor: User, ticket: Ticket, now: datetime) -> None:
    """Close a resolved ticket because the requester confirmed the solution; commit."""
    if actor.is_staff:
        raise Forbidden(_("Die Lösung bestätigt die anfragende Person."))
    if ticket.status != "resolved":
        raise DomainError(_("Nur gelöste Tickets können bestätigt werden."))
    _set_status(ticket, actor, "closed", now, note_code="resolution_confirmed")
    db.session.commit()


def assign(actor: User, ticket: Ticket, assignee: User | None, now: datetime) -> None:
    """Give the ticket to a KSM user (or nobody); a new ticket becomes open; notify; commit."""
    require_staff(actor)
    _check_not_closed(ticket)
    if assignee is not None and (not assignee.is_staff or not assignee.active):
        raise DomainError(_("Tickets können nur KSM-Mitarbeitenden zugewiesen werden."), field="assignee")
    if assignee is not None and ticket.team not in assignee.teams:
        # Taking a ticket of another team moves it along: the queue follows the person.
        raise DomainError(
            _("%(name)s gehört nicht zum Team %(team)s. Bitte übergeben Sie das Ticket zuerst an das passende Team.",
              name=assignee.name, team=ticket.team.name),
            field="assignee",
        )
    if ticket.assignee_id == (assignee.id if assignee else None):
        return
    record(ticket, actor, "field", now, field="assignee",
           old=ticket.assignee.name if ticket.assignee else None, new=assignee.name if assignee else None)
    ticket.assignee = assignee
    if assignee is not None and ticket.status == "new":
        _set_status(ticket, actor, "open", now)
    _touch(ticket, now)
    if assignee is not None and assignee.id != actor.id:
        notifications.queue_email(assignee, "assigned", now=now, ticket=ticket, actor=actor)
    db.session.commit()


def change_priority(actor: User, ticket: Ticket, priority, now: datetime, reason: str | None = None) -> None:
    """Override the derived priority (recorded with the agent's reason); commit."""
    require_staff(actor)
    _check_not_closed(ticket)
    try:
        priority = int(priority)
    except (TypeError, ValueError):
        priority = None
    if priority not in PRIORITIES:
        raise DomainError(_("Unbekannte Priorität."), field="priority")
    if priority == ticket.priority:
        return
    # KSM-internal: the reason is written for colleagues (the requester sees the new priority itself).
    reason = (reason or "").strip()
    record(ticket, actor, "field", now, field="priority", old=ticket.priority, new=priority, note=reason or None,
           note_code=None if reason else "changed_by_hand", internal=True)
    ticket.priority = priority
    ticket.priority_overridden = True
    _touch(ticket, now)
    sla_clocks.on_priority_change(ticket, now)
    db.session.commit()


def change_category(actor: User, ticket: Ticket, category_id, now: datetime) -> None:
    """Move the ticket to another catalog entry (no re-routing: the team is kept); commit."""
    require_staff(actor)
    _check_not_closed(ticket)
    category = _active_category(category_id)
    if category.id == ticket.category_id:
        return
    record(ticket, actor, "field", now, field="category",
           old=ticket.category.full_name if ticket.category else None, new=category.full_name)
    ticket.category = category
    _touch(ticket, now)
    db.session.commit()


def transfer(actor: User, ticket: Ticket, team_id, now: datetime, note: str | None = None) -> None:
    """Hand the ticket to another team's queue; the assignee is cleared if not in that team; commit."""
    require_staff(actor)
    _check_not_closed(ticket)
    team = db.session.get(Team, as_id(team_id)) if as_id(team_id) else None
    if team is None or not team.active:
        raise DomainError(_("Bitte wählen Sie ein aktives Team."), field="team")
    if team.id == ticket.team_id:
        return
    # A hand-over note is for the receiving team, never for the requester.
    record(ticket, actor, "field", now, field="team", old=ticket.team.name, new=team.name, note=note, internal=True)
    ticket.team = team
    if ticket.assignee is not None and team not in ticket.assignee.teams:
        record(ticket, actor, "field", now, field="assignee", old=ticket.assignee.name, new=None)
        ticket.assignee = None
    _touch(ticket, now)
    db.session.commit()


def auto_close_resolved(now: datetime, days: int, batch: int = 500) -> int:
    """Close tickets resolved more than `days` ago and not reopened; return how many; commit."""
    cutoff = now - timedelta(days=days)
    tickets = db.session.scalars(
        select(Ticket)
        .where(Ticket.status == "resolved", Ticket.resolved_at <= cutoff)
        .order_by(Ticket.resolved_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    for ticket in tickets:
        _set_status(ticket, None, "closed", now, note_code="auto_closed", note_params={"days": days})
    db.session.commit()
    return len(tickets)
