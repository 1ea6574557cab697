"""Import one incoming email: thread a reply into its ticket, file a new ticket, or hold it for review.

Each Message-ID is imported once: the InboundMail row is inserted and flushed first, under a unique
key, so a second import of the same message (a crash before the mailbox was told, or two workers at
once) finds the first one's row and changes nothing. The row, the ticket or comment it made and the
stored original commit together.

The statements per mail do not grow with the data (tests/app/test_mail_import_queries.py counts them):
the row is inserted without a look-up first (the unique key answers "seen before?"), the ticket or
sender comes with what the ticket and SLA services read of it (tenant, team, category, contract and
calendar) in one query, a held mail's row is written once, and the returned row keeps the values it
was committed with instead of being read again.

What happens to a mail, in this order:
1. too large, unparsable, or nothing in it → held with that reason;
2. one of our own Message-IDs came back → ignored;
3. a bounce → the outbox rows it reports are marked failed (shown on their tickets), ignored;
4. a reply address of ours with a wrong signature → held ("forged_reply");
5. automatic mail (auto-submitted, bulk, out of office) → ignored, never answered; on a ticket it
   leaves an internal history line and no comment;
6. a reply to a ticket (reply address, then In-Reply-To/References, then the number in the subject)
   from an active user who may see the ticket → a public comment through tickets.reply, exactly like
   a portal reply (staff users answer as agents); otherwise held ("not_allowed"), and the sender
   learns nothing about the ticket. A staff user's mail must carry the signed reply address or one of
   our Message-IDs of that ticket ("staff_unsigned" else); more than MAIL_AUTO_REPLY_LIMIT comments of
   one sender on one ticket within an hour are held ("reply_limit": a loop of auto-responders);
7. anything else from an active tenant user → a new ticket (channel email, default category,
   impact and urgency medium); from an unknown address of a tenant's mail domain → a requester
   account per the tenant's policy, or held; from any other domain → held ("unknown_domain").
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from helpdesk.extensions import db
from helpdesk.models import (
    Calendar, Category, InboundMail, OutboxMessage, SlaPolicy, SlaPolicyVersion, Tenant, TenantMailDomain, Ticket, User,
)
from helpdesk.services import outbox, people, tickets, watchers
from helpdesk.services.attachments import Upload, storage_path, validate_uploads
from helpdesk.services.errors import DomainError
from helpdesk.services.mail import addresses
from helpdesk.services.mail.parse import ParsedMail, parse_message
from helpdesk.services.permissions import ticket_scope

log = logging.getLogger(__name__)

DEFAULT_LEVEL = 2  # impact and urgency "medium" for tickets that arrive by mail
MAX_REFERENCES = 30  # Message-IDs of In-Reply-To/References looked at: a thread header, never a list to walk
MAX_CC = 50

# Why a mail was held or ignored, in words for the review queue.
REASON_LABELS = {
    "too_large": _l("Nachricht zu groß"),
    "unparsable": _l("Nachricht nicht lesbar"),
    "no_text": _l("Weder Text noch Anhänge"),
    "no_sender": _l("Kein lesbarer Absender"),
    "own_message": _l("Eigene Nachricht zurückgekommen"),
    "bounce": _l("Unzustellbarkeitsmeldung"),
    "auto_mail": _l("Automatische Nachricht"),
    "auto_reply": _l("Automatische Antwort zu einem Ticket"),
    "forged_reply": _l("Antwortadresse ungültig oder gefälscht"),
    "not_allowed": _l("Absender darf zu diesem Ticket nicht schreiben"),
    "ticket_closed": _l("Ticket ist geschlossen"),
    "attachment_rejected": _l("Anhang abgelehnt"),
    "inactive_sender": _l("Konto des Absenders ist deaktiviert"),
    "staff_without_ticket": _l("KSM-Konto ohne Ticketbezug"),
    "unknown_sender": _l("Unbekannter Absender einer Mandanten-Domain"),
    "unknown_domain": _l("Unbekannter Absender (fremde Domain)"),
    "no_category": _l("Keine aktive Kategorie für neue Tickets"),
    "refused": _l("Vom System abgelehnt"),
    "answer_limit": _l("Eingangsbestätigung wegen Antwortlimit unterdrückt"),
    "reply_limit": _l("Zu viele Antworten dieses Absenders zum Ticket in einer Stunde (Schleifenschutz)"),
    "staff_unsigned": _l("KSM-Absender ohne signierte Antwortadresse (möglicherweise gefälscht)"),
}


class _Hold(Exception):
    """The mail goes to the review queue with this reason; anything done for it so far is rolled back."""

    def __init__(self, reason: str, detail: str | None = None, *, ticket_id: int | None = None,
                 user_id: int | None = None, tenant_id: int | None = None, status: str = "held"):
        super().__init__(reason)
        self.reason, self.detail, self.status = reason, detail, status
        self.ticket_id, self.user_id, self.tenant_id = ticket_id, user_id, tenant_id


def message_key(message_id: str) -> str:
    """Return the unique key of a Message-ID: the header value, or "sha256:<hex>" of it if longer than 255."""
    value = (message_id or "").strip()
    if len(value) <= 255:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def _by_key(key: str) -> InboundMail | None:
    return db.session.scalar(select(InboundMail).where(InboundMail.message_id == key))


def import_message(raw: bytes, *, now: datetime, source: str = "imap") -> InboundMail:
    """Import one message (idempotent per Message-ID) and commit; return its InboundMail row.

    Never raises for bad mail (it is held with a reason); raises only for infrastructure errors
    (database down), and then nothing is committed and the stored original is removed again.
    """
    parsed = parse_message(raw, max_bytes=current_app.config["MAIL_MAX_BYTES"])
    key = message_key(parsed.message_id)
    storage_key = secrets.token_hex(16)
    path = storage_path(storage_key)
    committed = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)  # inside: a failed write (disk full) leaves no partial file behind
        mail = _insert(key, parsed, raw, storage_key, now, source)
        if mail is None:
            return _by_key(key)  # imported before, or another import of the same message won the race
        try:
            try:
                _decide(mail, parsed, now)
            except DomainError as exc:  # a rule of a service the rules above missed: bad mail, not a crash
                raise _Hold("refused", exc.message) from exc
        except _Hold as hold:
            db.session.rollback()  # drop whatever was begun for the mail; keep the record of it
            mail = _insert(key, parsed, raw, storage_key, now, source, hold=hold)
            if mail is None:
                return _by_key(key)
        db.session.flush()
        values = _column_values(mail)
        db.session.commit()
        committed = True
        _keep_values(mail, values)
        log.info("mail: %s from %s -> %s %s", key[:80], mail.sender_address, mail.status, mail.reason or "")
        return mail
    except BaseException:
        db.session.rollback()
        raise
    finally:
        if not committed:
            path.unlink(missing_ok=True)


def _column_values(mail: InboundMail) -> dict:
    """Return the flushed row's column values (all loaded: nothing is read)."""
    return {attr.key: getattr(mail, attr.key) for attr in inspect(InboundMail).column_attrs}


def _keep_values(mail: InboundMail, values: dict) -> None:
    """Give the committed (hence expired) row back the values it was just committed with, so that the
    caller's reads (status, id, ticket) need no query; relationships still load on demand."""
    for key, value in values.items():
        set_committed_value(mail, key, value)


def _insert(key: str, parsed: ParsedMail, raw: bytes, storage_key: str, now: datetime,
            source: str, *, hold: _Hold | None = None) -> InboundMail | None:
    """Add and flush the mail's row ("held" until decided, or as `hold` says); None if that Message-ID
    is already taken (imported before, or by another import at the same time)."""
    mail = InboundMail(
        message_id=key, source=(source or "imap")[:20], status="held", reason=None,
        sender_address=(parsed.from_address or None) and parsed.from_address[:254],
        sender_name=" ".join((parsed.from_name or "").split())[:200],
        subject=" ".join((parsed.subject or "").split())[:300], sent_at=parsed.date, received_at=now,
        storage_key=storage_key, size=len(raw), auto_answered=False,
    )
    if hold is not None:
        _apply_hold(mail, hold)
    db.session.add(mail)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    return mail


def _apply_hold(mail: InboundMail, hold: _Hold) -> None:
    mail.status = hold.status
    mail.reason = hold.reason
    mail.reason_detail = (" ".join((hold.detail or "").split())[:500]) or None
    mail.ticket_id, mail.user_id, mail.tenant_id = hold.ticket_id, hold.user_id, hold.tenant_id


def _decide(mail: InboundMail, parsed: ParsedMail, now: datetime) -> None:
    """Apply the rules of the module docstring to one flushed row; raise _Hold to hold or ignore it."""
    if parsed.problem in ("too_large", "unparsable"):
        raise _Hold(parsed.problem)
    if addresses.is_own_message_id(parsed.message_id):
        raise _Hold("own_message", status="ignored")
    if parsed.bounce:
        rows = outbox.mark_bounced(parsed.bounced_message_ids, parsed.bounce_reason or "", now)
        mail.status, mail.reason = "ignored", "bounce"
        mail.reason_detail = parsed.bounce_reason
        mail.ticket_id = next((row.ticket_id for row in rows if row.ticket_id), None)
        mail.tenant_id = next((row.tenant_id for row in rows if row.tenant_id), None)
        return
    if parsed.problem == "no_text":
        raise _Hold("no_text")

    token = addresses.token_from_addresses([*parsed.to, *parsed.cc, *parsed.delivered_to])
    if token is not None and not token.valid:
        raise _Hold("forged_reply")
    ticket = _match_ticket(parsed, token)
    sender = _sender(parsed.from_address)

    if parsed.auto:
        if ticket is None:
            raise _Hold("auto_mail", parsed.auto, status="ignored", user_id=sender.id if sender else None)
        # Kept on record for the agents (an out-of-office note says the requester is away), never answered.
        mail.status, mail.reason, mail.reason_detail = "ignored", "auto_reply", parsed.auto
        mail.ticket_id, mail.tenant_id, mail.user_id = ticket.id, ticket.tenant_id, sender.id if sender else None
        if may_write(sender, ticket):
            tickets.record(ticket, sender, "email_received", now, new=mail.subject[:255] or None,
                           note_code="auto_reply_received", internal=True)
        return
    if not parsed.from_address:
        raise _Hold("no_sender")
    if ticket is not None:
        _reply(mail, parsed, ticket, sender, now)
    else:
        _new_ticket(mail, parsed, sender, now)


def _match_ticket(parsed: ParsedMail, token) -> Ticket | None:
    """Return the ticket a mail answers: by reply address, then its thread headers, then the subject."""
    if token is not None:
        ticket = _ticket_by_number(token.number)
        if ticket is not None:
            return ticket
    ids = []
    for value in [*parsed.in_reply_to, *reversed(parsed.references)]:
        value = "<" + (value or "").strip().strip("<>").strip() + ">"
        if value != "<>" and addresses.is_own_message_id(value) and value not in ids:
            ids.append(value)
    ids = ids[:MAX_REFERENCES]
    if ids:
        found = dict(db.session.execute(
            select(OutboxMessage.message_id, OutboxMessage.ticket_id)
            .where(OutboxMessage.message_id.in_(ids), OutboxMessage.ticket_id.is_not(None))
        ).all())
        number_form = re.compile(re.escape(current_app.config["TICKET_PREFIX"]) + r"-\d{4}-\d{6,}", re.IGNORECASE)
        for value in ids:  # the nearest reference first: In-Reply-To, then References from the end
            if value in found:
                ticket = db.session.get(Ticket, found[value])
                if ticket is not None:
                    return ticket
            match = number_form.search(value)
            if match:
                ticket = _ticket_by_number(match.group(0))
                if ticket is not None and addresses.thread_message_id(ticket) == value:
                    return ticket
    number = addresses.ticket_number_in_subject(parsed.subject)
    return _ticket_by_number(number) if number else None


def _ticket_by_number(number: str) -> Ticket | None:
    # With what a reply reads of the ticket (notifications, history, search document): one query.
    return db.session.scalar(
        select(Ticket).where(Ticket.number == number)
        .options(joinedload(Ticket.tenant), joinedload(Ticket.team), joinedload(Ticket.category))
    )


def _sender(address: str | None) -> User | None:
    """Return the account of the sender's address (addresses are stored in lower case), active or not."""
    if not address:
        return None
    return db.session.scalar(select(User).where(User.email == address.lower()).options(joinedload(User.tenant)))


def _load_contract_version(version_id: int | None) -> list:
    """Load a ticket's contract version with its policy, calendar and closures in one query, so that the
    SLA service finds them in the session instead of loading them one by one. The caller keeps the
    returned list while the service runs: the session holds loaded rows only weakly."""
    if version_id is None:
        return []
    return db.session.execute(
        select(SlaPolicyVersion).where(SlaPolicyVersion.id == version_id)
        .options(joinedload(SlaPolicyVersion.policy).joinedload(SlaPolicy.calendar).joinedload(Calendar.closures))
    ).unique().all()


def _load_contract(tenant_id: int | None) -> list:
    """Load a tenant's contract with its current version, calendar and closures in one query (see above)."""
    if tenant_id is None:
        return []
    return db.session.execute(
        select(SlaPolicy).where(SlaPolicy.tenant_id == tenant_id)
        .options(joinedload(SlaPolicy.current_version), joinedload(SlaPolicy.calendar).joinedload(Calendar.closures))
    ).unique().all()


def may_write(user: User, ticket: Ticket) -> bool:
    """Tell whether the user may add a public message to the ticket: active and allowed to see it."""
    if user is None or not user.active:
        return False
    return db.session.scalar(ticket_scope(user).where(Ticket.id == ticket.id).with_only_columns(Ticket.id)) is not None


def uploads_of(parsed: ParsedMail) -> list[Upload]:
    """Return the mail's attachments as uploads, checked by the same rules as files sent through a form."""
    uploads = [Upload(a.filename or "", a.content_type or "", a.data) for a in parsed.attachments]
    validate_uploads(uploads)
    return uploads


def body_of(parsed: ParsedMail) -> str:
    """Return what the sender wrote (quote and signature removed), or a line saying there are only files."""
    return (parsed.text or "").strip() or _("(Die E-Mail enthält nur Anhänge.)")


def subject_of(parsed: ParsedMail) -> str:
    """Return the mail's subject for a new ticket (one line, at most 200 characters)."""
    return " ".join((parsed.subject or "").split())[:200] or _("(ohne Betreff)")


def _checked_uploads(parsed: ParsedMail, **context) -> list[Upload]:
    try:
        return uploads_of(parsed)
    except DomainError as exc:
        raise _Hold("attachment_rejected", exc.message, **context) from exc


def _reply(mail: InboundMail, parsed: ParsedMail, ticket: Ticket, sender: User | None, now: datetime) -> None:
    context = {"ticket_id": ticket.id, "tenant_id": ticket.tenant_id, "user_id": sender.id if sender else None}
    if not may_write(sender, ticket):
        raise _Hold("not_allowed", **context)
    if ticket.status == "closed":
        raise _Hold("ticket_closed", **context)
    if sender.is_staff and not answers_our_mail(parsed, ticket):
        # A KSM answer goes out publicly to the requester: a From line and a (sequential) ticket number
        # in the subject are easy to forge, the signed reply address and our Message-IDs are not.
        raise _Hold("staff_unsigned", **context)
    limit = current_app.config["MAIL_AUTO_REPLY_LIMIT"]
    if replies_in_last_hour(parsed.from_address, ticket.id, now, limit) >= limit:
        # Each reply notifies someone whose auto-responder may answer again: a loop stops here.
        raise _Hold("reply_limit", **context)
    uploads = _checked_uploads(parsed, **context)
    contract = _load_contract_version(ticket.sla_version_id)  # noqa: F841 - kept in the session until replied
    try:
        comment = tickets.reply(sender, ticket, body=body_of(parsed), now=now, uploads=uploads,
                                note_code="by_email", commit=False)
    except DomainError as exc:
        raise _Hold("refused", exc.message, **context) from exc
    mail.status, mail.ticket_id, mail.comment_id = "comment", ticket.id, comment.id
    mail.tenant_id, mail.user_id = ticket.tenant_id, sender.id


def _new_ticket(mail: InboundMail, parsed: ParsedMail, sender: User | None, now: datetime) -> None:
    if sender is not None:
        context = {"user_id": sender.id, "tenant_id": sender.tenant_id}
        if not sender.active:
            raise _Hold("inactive_sender", **context)
        if sender.is_staff:
            raise _Hold("staff_without_ticket", **context)  # agents file tickets in the agent area
        if sender.tenant is None or not sender.tenant.active:
            raise _Hold("inactive_sender", **context)
    else:
        sender = _new_requester(parsed)
    context = {"user_id": sender.id, "tenant_id": sender.tenant_id}
    category = default_category()
    if category is None:
        raise _Hold("no_category", **context)
    uploads = _checked_uploads(parsed, **context)
    limit = current_app.config["MAIL_AUTO_REPLY_LIMIT"]
    confirm = answers_in_last_hour(parsed.from_address, now, limit) < limit
    contract = _load_contract(sender.tenant_id)  # noqa: F841 - kept in the session until filed
    try:
        ticket = tickets.create_ticket(
            sender, subject=subject_of(parsed), description=body_of(parsed), category_id=category.id,
            impact=DEFAULT_LEVEL, urgency=DEFAULT_LEVEL, now=now, channel="email", uploads=uploads,
            confirm=confirm, commit=False,
        )
    except DomainError as exc:
        raise _Hold("refused", exc.message, **context) from exc
    if not confirm:
        mail.reason = "answer_limit"
        tickets.record(ticket, None, "email_received", now, note_code="confirmation_suppressed",
                       note_params={"limit": limit}, internal=True)
    mail.status, mail.ticket_id, mail.tenant_id, mail.user_id = "ticket", ticket.id, ticket.tenant_id, sender.id
    mail.auto_answered = confirm
    _add_cc_watchers(ticket, parsed, sender, now)


def _new_requester(parsed: ParsedMail) -> User:
    """Create the account of an unknown sender of a tenant's mail domain (if its policy says so), or hold."""
    domain = parsed.from_address.rpartition("@")[2].lower()
    owner = db.session.scalar(
        select(TenantMailDomain).join(Tenant, Tenant.id == TenantMailDomain.tenant_id)
        .where(TenantMailDomain.domain == domain, Tenant.active.is_(True))
    )
    if owner is None:
        raise _Hold("unknown_domain")
    if owner.tenant.mail_unknown_senders != "create":
        raise _Hold("unknown_sender", tenant_id=owner.tenant_id)
    name = " ".join((parsed.from_name or "").split()) or parsed.from_address.partition("@")[0]
    try:
        # Like a new caller of the phone intake: no usable password until an admin sets one.
        return people.add_caller(name=name[:200], email=parsed.from_address, tenant_id=owner.tenant_id)
    except DomainError as exc:
        raise _Hold("unknown_sender", exc.message, tenant_id=owner.tenant_id) from exc


def _add_cc_watchers(ticket: Ticket, parsed: ParsedMail, requester: User, now: datetime) -> None:
    """Let colleagues of the same tenant in CC of a new ticket watch it."""
    cc = sorted({address.lower() for address in parsed.cc if address and address.lower() != requester.email})[:MAX_CC]
    if not cc:
        return
    colleagues = list(db.session.scalars(
        select(User).where(User.email.in_(cc), User.active.is_(True), User.tenant_id == ticket.tenant_id)
        .order_by(User.id).limit(watchers.MAX_WATCHERS)  # a mail to a whole department: the first ones watch
    ))
    if colleagues:
        watchers.add_watchers(ticket, colleagues, actor=requester, now=now)


def default_category() -> Category | None:
    """Return the category of tickets that arrive by mail: MAIL_DEFAULT_CATEGORY_ID if active, else the
    first active top-level category of the catalog (by position, then name)."""
    chosen = current_app.config.get("MAIL_DEFAULT_CATEGORY_ID")
    if chosen:
        category = db.session.get(Category, int(chosen))
        if category is not None and category.active:
            return category
    return db.session.scalar(
        select(Category).where(Category.parent_id.is_(None), Category.active.is_(True))
        .order_by(Category.position, Category.name, Category.id).limit(1)
    )


def answers_in_last_hour(address: str | None, now: datetime, limit: int) -> int:
    """Count (up to `limit`) the automatic answers the import sent to this address in the hour before `now`."""
    if not address:
        return 0
    recent = (
        select(InboundMail.id)
        .where(InboundMail.sender_address == address, InboundMail.received_at > now - timedelta(hours=1),
               InboundMail.auto_answered.is_(True))
        .limit(limit)
    )
    return db.session.scalar(select(func.count()).select_from(recent.subquery())) or 0


def answers_our_mail(parsed: ParsedMail, ticket: Ticket) -> bool:
    """Tell whether the mail carries something only a recipient of the ticket's mail knows: its signed
    reply address, or the Message-ID of one of our emails about it (not the guessable thread id)."""
    token = addresses.token_from_addresses([*parsed.to, *parsed.cc, *parsed.delivered_to])
    if token is not None and token.valid and token.number == ticket.number:
        return True
    ids = []
    for value in [*parsed.in_reply_to, *parsed.references]:
        value = "<" + (value or "").strip().strip("<>").strip() + ">"
        if addresses.is_own_message_id(value) and value not in ids:
            ids.append(value)
    if not ids:
        return False
    return db.session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.message_id.in_(ids[:MAX_REFERENCES]),
                                       OutboxMessage.ticket_id == ticket.id).limit(1)
    ) is not None


def replies_in_last_hour(address: str | None, ticket_id: int, now: datetime, limit: int) -> int:
    """Count (up to `limit`) the mails of this address that became comments on the ticket in the hour before `now`."""
    if not address:
        return 0
    recent = (
        select(InboundMail.id)
        .where(InboundMail.sender_address == address, InboundMail.received_at > now - timedelta(hours=1),
               InboundMail.ticket_id == ticket_id, InboundMail.status == "comment")
        .limit(limit)
    )
    return db.session.scalar(select(func.count()).select_from(recent.subquery())) or 0
