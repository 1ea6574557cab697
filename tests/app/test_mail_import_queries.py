"""The mail import costs the same number of SQL statements per mail however many tickets and users exist.

An import that looked up, say, every ticket of the sender or every user of the tenant one by one would
get slower with the archive; this counts the statements of a reply, a new ticket, a held mail and a
message imported a second time, with 10 and with 200 tickets and users, and wants the same numbers.
"""
from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import event, func, inspect, select

from helpdesk.extensions import db
from helpdesk.models import Comment, InboundMail, Ticket
from helpdesk.services import tickets
from helpdesk.services.mail.addresses import reply_address, thread_message_id
from helpdesk.services.mail.inbound import import_message
from tests.builders import at, make_ticket, make_user

NOW = at("2026-03-05 09:00")  # Thursday, business hours
QUOTE = "Am 05.03.2026 um 09:10 schrieb KSM Helpdesk <helpdesk@ksm.example>:\n> Bitte starten Sie neu.\n"


def _mail(sender: str, to: str, subject: str, *, cc: str | None = None, thread: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if thread:
        message["In-Reply-To"] = thread
        message["References"] = thread
    message["Subject"] = subject
    message["Date"] = format_datetime(NOW)
    message["Message-ID"] = make_msgid(domain="client.example")
    message.set_content("Der Fehler kommt weiterhin.\n\n" + QUOTE)
    message.add_alternative("<p>Der Fehler kommt weiterhin.</p>", subtype="html")
    return message.as_bytes()


def _grow(world, up_to: int) -> None:
    """Give the tenant `up_to` requesters and `up_to` open tickets of the requester and the others."""
    tenant, category = world["tenant"], world["category"]
    have = db.session.scalar(select(func.count()).select_from(Ticket))
    people = [world["requester"]]
    for n in range(have, up_to):
        person = make_user(tenant=tenant, email=f"kollege{n}@lup.example")
        people.append(person)
        make_ticket(people[n % len(people)] if n % 2 else world["requester"], category=category,
                    subject=f"Altlast {n}", now=NOW - timedelta(days=2))


def _count(action) -> tuple[int, object]:
    statements = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        result = action()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(statements), result


def _round(world, size: int) -> dict:
    """Grow the data to `size`, then import one mail of each kind from an empty session; return the counts."""
    world = {key: db.session.get(type(row), inspect(row).identity) for key, row in world.items()}
    _grow(world, size)
    answered = make_ticket(world["requester"], category=world["category"], subject="Drucker", now=NOW)
    tickets.reply(world["agent"], answered, body="Bitte starten Sie neu.", now=NOW + timedelta(minutes=10))
    number, to, thread = answered.number, reply_address(answered), thread_message_id(answered)
    ticket_id = answered.id
    colleague = make_user(tenant=world["tenant"], email=f"cc{size}@lup.example").email
    db.session.expunge_all()  # every round starts with nothing loaded

    later = NOW + timedelta(hours=1)
    reply = _mail("Anna Amsel <anna@lup.example>", to, f"AW: [{number}] Drucker", thread=thread)
    new = _mail("Anna Amsel <anna@lup.example>", "helpdesk@ksm.example", f"Scanner {size}", cc=colleague)
    held = _mail("Fremd <jemand@fremd.example>", "helpdesk@ksm.example", "Angebot")
    counts, rows = {}, {}
    for kind, raw in (("reply", reply), ("new", new), ("held", held), ("again", reply)):
        counts[kind], rows[kind] = _count(lambda raw=raw: import_message(raw, now=later))
    assert (rows["reply"].status, rows["reply"].ticket_id) == ("comment", ticket_id)
    assert db.session.get(Comment, rows["reply"].comment_id).body == "Der Fehler kommt weiterhin."
    assert rows["new"].status == "ticket" and rows["new"].ticket_id not in (None, ticket_id)
    assert (rows["held"].status, rows["held"].reason) == ("held", "unknown_domain")
    assert rows["again"].id == rows["reply"].id
    assert db.session.scalar(select(func.count()).select_from(InboundMail).where(InboundMail.received_at == later)) \
        == 3 * (1 + (size > 10))
    return counts


def test_statements_per_mail_do_not_grow_with_tickets_and_users(world):
    small = _round(world, 10)
    large = _round(world, 200)

    assert db.session.scalar(select(func.count()).select_from(Ticket)) > 200
    assert large == small, f"statements per mail grew with the data: {small} -> {large}"
    # The paths that are the import's own: a held mail is its row and the two look-ups (it took 7
    # statements before the import inserted the row once), a message seen before at most 3.
    assert small["held"] <= 4 and small["again"] <= 3, small
