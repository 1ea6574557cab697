"""Name a ticket in outgoing mail (thread id, signed reply address, subject) and recognise it in incoming mail."""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr

from flask import current_app

from helpdesk.models.outbox import MESSAGE_ID_DOMAIN

MAC_LENGTH = 12  # hex digits of HMAC-SHA256 in a reply address: 48 bits, far beyond guessing by mail
SUBJECT_MAX_LENGTH = 300  # OutboxMessage.subject


@dataclass(frozen=True)
class ReplyToken:
    """A ticket number read from a plus-address of ours; valid False when its HMAC does not match."""

    number: str
    valid: bool


def thread_message_id(ticket) -> str:
    """Return the stable root Message-ID of the ticket's thread, e.g. "<ticket.KSM-2026-000123@helpdesk.ksm>"."""
    return f"<ticket.{ticket.number}@{MESSAGE_ID_DOMAIN}>"


def _base_address() -> tuple[str, str]:
    """Return (local part, domain) of the reply mailbox: MAIL_REPLY_ADDRESS, else the address in MAIL_FROM."""
    config = current_app.config
    address = parseaddr(config.get("MAIL_REPLY_ADDRESS") or config["MAIL_FROM"])[1]
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"no usable reply address in MAIL_REPLY_ADDRESS / MAIL_FROM: {address!r}")
    return local, domain


def _mac(number: str) -> str:
    key = current_app.config["SECRET_KEY"]
    if not key:
        raise ValueError("SECRET_KEY is needed to sign reply addresses")
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()[:MAC_LENGTH]


def reply_address(ticket) -> str:
    """Return the ticket's signed reply address, e.g. "helpdesk+KSM-2026-000123.3f9a1c0b7e2d@ksm.example"."""
    local, domain = _base_address()
    return f"{local}+{ticket.number}.{_mac(ticket.number)}@{domain}"


def _number_pattern() -> str:
    return re.escape(current_app.config["TICKET_PREFIX"]) + r"-\d{4}-\d{6,}"


def _canonical(number: str) -> str:
    """Return a number read case-insensitively in the spelling the helpdesk gives out (configured prefix)."""
    prefix = current_app.config["TICKET_PREFIX"]
    return prefix + number[len(prefix):]


def token_from_addresses(addresses: list[str]) -> ReplyToken | None:
    """Return the ticket named by the first plus-address of ours among the addresses, or None.

    Each entry may be a bare address, one in angle brackets or with a display name, or a header
    value with several. Mail servers may change the case of an address: it is compared case-insensitively.
    A plus-address of our form whose HMAC does not match its number (tampered, or copied from
    another ticket) gives valid=False.
    """
    local, domain = _base_address()
    form = re.compile(rf"{re.escape(local)}\+([a-z0-9-]+)\.([0-9a-f]{{{MAC_LENGTH}}})@{re.escape(domain)}",
                      re.IGNORECASE)
    number_form = re.compile(_number_pattern(), re.IGNORECASE)
    for _name, address in getaddresses([a for a in addresses if a]):
        match = form.fullmatch(address.strip())
        if match is None:
            continue
        number, mac = match.groups()
        if not number_form.fullmatch(number):
            return ReplyToken(number=number, valid=False)
        number = _canonical(number)
        return ReplyToken(number=number, valid=hmac.compare_digest(mac.lower(), _mac(number)))
    return None


def is_own_message_id(message_id: str) -> bool:
    """Tell whether a Message-ID was made by this helpdesk (outbox mails and ticket threads: …@helpdesk.ksm)."""
    value = (message_id or "").strip().strip("<>").strip().lower()
    return value.endswith("@" + MESSAGE_ID_DOMAIN) and len(value) > len(MESSAGE_ID_DOMAIN) + 1


def ticket_number_in_subject(subject: str) -> str | None:
    """Return the ticket number a subject names as "[KSM-2026-000123]", "Ticket KSM-2026-000123" or "#KSM-2026-000123"."""
    number = _number_pattern()
    match = re.search(rf"(?:\[\s*({number})\s*\]|\bTicket\b[\s:#-]*({number})|#({number}))(?![\d])",
                      subject or "", re.IGNORECASE)
    if match is None:
        return None
    return _canonical(next(group for group in match.groups() if group))


def subject_with_number(subject: str, number: str) -> str:
    """Return the subject with "[<number>] " in front unless it names the number already."""
    if number.lower() in (subject or "").lower():
        return subject
    return f"[{number}] {subject}".strip()[:SUBJECT_MAX_LENGTH]
