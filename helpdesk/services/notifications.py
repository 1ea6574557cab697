"""Write emails to the outbox in the caller's transaction; the worker sends them later."""
from __future__ import annotations

import logging
import re
from datetime import datetime

from flask import current_app, render_template
from flask_babel import force_locale, get_translations
from sqlalchemy import insert, select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, Ticket, TicketWatcher, User
from helpdesk.models.outbox import new_message_id
from helpdesk.services.mail.addresses import subject_with_number

log = logging.getLogger(__name__)

# Stand-ins for what differs between the recipients of one email rendered for many: NUL bytes never
# occur in stored text (input is refused with them), so a marker cannot be forged by a ticket subject.
_SLOT = re.compile("\x00(url|recipient\\.[a-z_]+)\x00")


def ticket_url(ticket: Ticket, user: User) -> str:
    """Return the absolute link to the ticket page the recipient can open."""
    base = current_app.config["BASE_URL"].rstrip("/")
    area = "agent" if user.is_staff else "portal"
    return f"{base}/{area}/tickets/{ticket.number}"


def _reachable(recipient: User | None) -> bool:
    return recipient is not None and recipient.active and bool(recipient.email)


def _subject_and_body(rendered: str) -> tuple[str, str]:
    """Split a rendered email template into its "Subject:" line and the body text."""
    subject, _, body = rendered.strip().partition("\n")
    return " ".join(subject.removeprefix("Subject:").split())[:300], body.strip() + "\n"


def queue_email(
    recipient: User,
    template: str,
    *,
    now: datetime,
    ticket: Ticket | None = None,
    dedupe_key: str | None = None,
    body_html: str | None = None,
    attachments: list[dict] | None = None,
    **context,
) -> OutboxMessage | None:
    """Render templates/email/<template>.txt in the recipient's language and add it to the outbox.

    body_html and attachments ([{"filename", "content_type", "data_b64"}]) are stored as given.
    """
    if not _reachable(recipient):
        return None
    with force_locale(recipient.locale or "de"):
        rendered = render_template(
            f"email/{template}.txt",
            recipient=recipient,
            ticket=ticket,
            url=ticket_url(ticket, recipient) if ticket else current_app.config["BASE_URL"],
            **context,
        )
    subject, body = _subject_and_body(rendered)
    if ticket is not None:
        # Stored as sent: the number in the subject lets a reply find its ticket even without the headers.
        subject = subject_with_number(subject, ticket.number)
    message = OutboxMessage(
        recipient=recipient.email,
        subject=subject,
        body_text=body,
        kind=template,
        ticket_id=ticket.id if ticket else None,
        tenant_id=ticket.tenant_id if ticket else recipient.tenant_id,
        dedupe_key=dedupe_key,
        body_html=body_html,
        attachments=attachments,
        created_at=now,
        next_attempt_at=now,
    )
    db.session.add(message)
    log.info("outbox: queued %s to %s", template, recipient.email)
    return message


def queue_public_update(ticket: Ticket, template: str, *, now: datetime, **context) -> list[OutboxMessage]:
    """Queue a public update of the ticket for its requester and each watcher: one email each, in their language.

    Only for what the requester may read (never internal notes). Watchers are capped per ticket
    (services/watchers.MAX_WATCHERS), so this stays a handful of rows.
    """
    watchers = db.session.scalars(
        select(User).join(TicketWatcher, TicketWatcher.user_id == User.id)
        .where(TicketWatcher.ticket_id == ticket.id, User.active.is_(True), User.tenant_id == ticket.tenant_id)
        .order_by(User.id)
        .limit(50)
    ).all()
    messages = []
    seen = set()
    for recipient in [ticket.requester, *watchers]:
        if recipient is None or recipient.id in seen or recipient.is_staff:
            continue
        seen.add(recipient.id)
        message = queue_email(recipient, template, now=now, ticket=ticket, **context)
        if message is not None:
            messages.append(message)
    return messages


class _RecipientSlots:
    """Stands in for the recipient while one rendering serves many: each attribute is a marker."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return f"\x00recipient.{name}\x00"


def _bound_gettext() -> dict:
    """Return gettext and ngettext for a template, bound to the current language's catalog.

    They replace the environment's callables for one rendering (the i18n extension resolves them
    from the context), which otherwise look the catalog up again for every text of the email.
    Like Jinja's "newstyle" gettext they always %-format, so "%%" reads the same.
    """
    translations = get_translations()

    def gettext(__string: str, **variables) -> str:
        return translations.ugettext(__string) % variables

    def ngettext(__singular: str, __plural: str, __num: int, **variables) -> str:
        variables.setdefault("num", __num)
        return translations.ungettext(__singular, __plural, __num) % variables

    return {"gettext": gettext, "ngettext": ngettext}


def outbox_rows(recipients: list[User], template: str, *, now: datetime, ticket: Ticket,
                dedupe_keys: dict[int, str], **context) -> list[dict]:
    """Render templates/email/<template>.txt once per language for all recipients; return one outbox row each.

    The recipient's attributes and the link are filled in per person after rendering, so the
    template may use them as text only (no conditions on them). Plain-text templates are not
    HTML-escaped, so filling in after rendering gives the same text as rendering per person.
    Each row gets its own Message-ID and dedupe key (dedupe_keys by user id).
    """
    by_locale: dict[str, list[User]] = {}
    for user in recipients:
        if _reachable(user):
            by_locale.setdefault(user.locale or "de", []).append(user)
    rows = []
    for locale, users in by_locale.items():
        with force_locale(locale):
            rendered = render_template(f"email/{template}.txt", recipient=_RecipientSlots(), ticket=ticket,
                                       url="\x00url\x00", **_bound_gettext(), **context)
        for user in users:
            def fill(match: re.Match, user: User = user) -> str:
                slot = match.group(1)
                if slot == "url":
                    return ticket_url(ticket, user)
                return str(getattr(user, slot.removeprefix("recipient.")))

            subject, body = _subject_and_body(_SLOT.sub(fill, rendered))
            subject = subject_with_number(subject, ticket.number)
            rows.append({
                "recipient": user.email, "subject": subject, "body_text": body, "kind": template,
                "ticket_id": ticket.id, "tenant_id": ticket.tenant_id,
                "dedupe_key": dedupe_keys.get(user.id), "status": "pending", "attempts": 0,
                "created_at": now, "next_attempt_at": now, "message_id": new_message_id(),
            })
    return rows


def add_to_outbox(rows: list[dict]) -> None:
    """Insert outbox rows built by outbox_rows in one statement, in the caller's transaction."""
    if not rows:
        return
    db.session.execute(insert(OutboxMessage.__table__), rows)
    log.info("outbox: queued %d %s email(s)", len(rows), rows[0]["kind"])
