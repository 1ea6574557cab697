"""The review queue "Posteingang prüfen": held mail that KSM staff assign to a ticket, file, or discard.

Every decision is recorded on the mail (who, when, the note) and the mail leaves the queue. Two
agents deciding the same mail at once: the row is locked and the second one is told it is done.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Response, current_app, send_file
from flask_babel import gettext as _
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import InboundMail, Ticket, User
from helpdesk.services import people, tickets
from helpdesk.services.attachments import DOWNLOAD_POLICY, storage_path
from helpdesk.services.errors import DomainError, NotFound
from helpdesk.services.mail import inbound
from helpdesk.services.mail.parse import ParsedMail, parse_message
from helpdesk.services.permissions import get_ticket, require_staff

LIST_STATUSES = ("held", "ignored", "discarded")


def queue_page(actor: User, status: str, page: int, per_page: int) -> people.CappedPage:
    """Return one page of the mails of a status (held: the queue), newest first; counting stops at 1,000."""
    require_staff(actor)
    status = status if status in LIST_STATUSES else "held"
    query = (
        select(InboundMail).where(InboundMail.status == status)
        .order_by(InboundMail.received_at.desc(), InboundMail.id.desc())
    )
    return people.capped_page(query, page, per_page)


def get_mail(actor: User, mail_id: int) -> InboundMail:
    """Return one imported mail for KSM staff, else raise (Forbidden for others, NotFound if none)."""
    require_staff(actor)
    mail = db.session.get(InboundMail, mail_id)
    if mail is None:
        raise NotFound(_("Diese E-Mail gibt es nicht."))
    return mail


def original(mail: InboundMail) -> bytes | None:
    """Return the stored original message, or None if its file is gone."""
    if not mail.storage_key:
        return None
    path = storage_path(mail.storage_key)
    return path.read_bytes() if path.is_file() else None


def parsed(mail: InboundMail) -> ParsedMail | None:
    """Return the stored original parsed again (text and attachments for the detail page and the decisions)."""
    raw = original(mail)
    return parse_message(raw, max_bytes=current_app.config["MAIL_MAX_BYTES"]) if raw is not None else None


def send_original(mail: InboundMail) -> Response:
    """Send the original message as an .eml download that no browser renders."""
    if not mail.storage_key or not storage_path(mail.storage_key).is_file():
        raise NotFound(_("Die Originalnachricht ist nicht mehr vorhanden."))
    response = send_file(storage_path(mail.storage_key), mimetype="application/octet-stream", as_attachment=True,
                         download_name=f"email-{mail.id}.eml", max_age=0)
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class Originals:
    """The imported mails behind a ticket page: the one that filed it, and those behind its comments."""

    ticket_mail: InboundMail | None
    by_comment: dict[int, InboundMail]


def originals(actor: User, ticket: Ticket) -> Originals:
    """Return the mails a ticket and its comments came from (one query), for staff only."""
    if not (actor and actor.is_staff):
        return Originals(None, {})
    mails = db.session.scalars(
        select(InboundMail).where(InboundMail.ticket_id == ticket.id,
                                  InboundMail.status.in_(("ticket", "comment")))
        .order_by(InboundMail.id)
    ).all()
    ticket_mail = next((mail for mail in mails if mail.status == "ticket"), None)
    return Originals(ticket_mail, {mail.comment_id: mail for mail in mails if mail.comment_id})


def _claim_held(mail_id: int) -> InboundMail:
    """Lock the mail row; raise unless it still waits for a decision."""
    mail = db.session.scalar(select(InboundMail).where(InboundMail.id == mail_id).with_for_update())
    if mail is None:
        raise NotFound(_("Diese E-Mail gibt es nicht."))
    if mail.status != "held":
        raise DomainError(_("Über diese E-Mail wurde bereits entschieden."))
    return mail


def _content(mail: InboundMail) -> ParsedMail:
    content = parsed(mail)
    if content is None:
        raise DomainError(_("Die Originalnachricht ist nicht mehr vorhanden; bitte verwerfen Sie die E-Mail."))
    return content


def _decided(mail: InboundMail, actor: User, now: datetime, status: str, note: str | None = None) -> None:
    mail.status = status
    mail.decided_by_id = actor.id
    mail.decided_at = now
    mail.decision_note = (note or None) and note[:500]


def assign_to_ticket(actor: User, mail_id: int, *, number: str, requester_id, now: datetime) -> InboundMail:
    """Add the held mail to a ticket as a public comment of the chosen person of its tenant; commit."""
    require_staff(actor)
    mail = _claim_held(mail_id)
    number = " ".join((number or "").split()).upper()
    if not number:
        raise DomainError(_("Bitte geben Sie die Ticketnummer an."), field="number")
    try:
        ticket = get_ticket(actor, number)
    except NotFound as exc:
        raise DomainError(_("Ticket %(number)s nicht gefunden.", number=number), field="number") from exc
    author = people.requester(requester_id)
    if author.tenant_id != ticket.tenant_id or not inbound.may_write(author, ticket):
        raise DomainError(
            _("%(name)s gehört nicht zu %(tenant)s oder darf dieses Ticket nicht sehen.",
              name=author.name, tenant=ticket.tenant.name),
            field="requester",
        )
    content = _content(mail)
    comment = tickets.reply(author, ticket, body=inbound.body_of(content), now=now,
                            uploads=inbound.uploads_of(content), note_code="by_email", commit=False)
    _decided(mail, actor, now, "comment")
    mail.ticket_id, mail.comment_id, mail.tenant_id = ticket.id, comment.id, ticket.tenant_id
    db.session.commit()
    return mail


def create_ticket(actor: User, mail_id: int, *, requester_id, category_id, impact, urgency,
                  now: datetime) -> InboundMail:
    """File a ticket (channel email) for the chosen requester from the held mail; confirmation as usual; commit."""
    require_staff(actor)
    mail = _claim_held(mail_id)
    requester = people.requester(requester_id)
    content = _content(mail)
    ticket = tickets.create_ticket(
        actor, requester=requester, subject=inbound.subject_of(content), description=inbound.body_of(content),
        category_id=category_id, impact=impact, urgency=urgency, now=now, channel="email",
        uploads=inbound.uploads_of(content), commit=False,
    )
    _decided(mail, actor, now, "ticket")
    mail.ticket_id, mail.tenant_id = ticket.id, ticket.tenant_id
    db.session.commit()
    return mail


def discard(actor: User, mail_id: int, *, note: str | None, now: datetime) -> InboundMail:
    """Throw the held mail away with the reason why (kept on record, original kept); commit."""
    require_staff(actor)
    mail = _claim_held(mail_id)
    note = " ".join((note or "").split())
    if not note:
        raise DomainError(_("Bitte begründen Sie, warum die E-Mail verworfen wird."), field="note")
    if len(note) > 500:
        raise DomainError(_("Höchstens 500 Zeichen."), field="note")
    _decided(mail, actor, now, "discarded", note)
    db.session.commit()
    return mail
