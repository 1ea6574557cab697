"""Incoming mail: replies thread into their ticket, new mail files tickets, everything else is held or ignored."""
from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import (
    Attachment, Comment, InboundMail, OutboxMessage, SlaClock, Tenant, TenantMailDomain, Ticket, TicketEvent, User,
)
from helpdesk.services import tickets
from helpdesk.services.attachments import storage_path
from helpdesk.services.mail.addresses import reply_address, thread_message_id
from helpdesk.services.mail.inbound import import_message, message_key
from helpdesk.services.people import NO_PASSWORD
from helpdesk.services.watchers import watchers_of
from tests.builders import at, make_category, make_policy, make_rule, make_team, make_tenant, make_ticket, make_user

NOW = at("2026-03-05 09:00")  # Thursday, business hours
HELPDESK = "helpdesk@ksm.example"
QUOTE = ("Am 05.03.2026 um 09:10 schrieb KSM Helpdesk <helpdesk@ksm.example>:\n"
         "> Guten Tag, bitte starten Sie den Drucker neu.\n> Ihr KSM Service Desk\n")


def mail(*, sender="Anna Amsel <anna@lup.example>", to=HELPDESK, subject="Drucker im 2. OG", body="Der Drucker druckt nicht.",
         cc=None, headers=None, attachments=(), in_reply_to=None) -> bytes:
    """Build a raw message as a mail client would send it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(NOW)
    message["Message-ID"] = make_msgid(domain="client.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def outbox_count() -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage))


def comments_of(ticket) -> list[Comment]:
    return list(db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)))


@pytest.fixture
def ticket(world):
    """Anna's ticket, answered once by the agent (so her reply starts a next-update clock)."""
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    tickets.reply(world["agent"], ticket, body="Bitte starten Sie den Drucker neu.", now=NOW + timedelta(minutes=10))
    return ticket


def test_reply_to_the_reply_address_becomes_the_requesters_comment_without_the_quote(world, ticket):
    raw = mail(to=reply_address(ticket), subject=f"AW: [{ticket.number}] Drucker druckt nicht",
               body="Danke, nach dem Neustart geht es wieder.\n\n" + QUOTE,
               attachments=[("foto.png", "image/png", b"\x89PNG fake image bytes")])

    record = import_message(raw, now=NOW + timedelta(hours=1))

    assert (record.status, record.ticket_id, record.user_id) == ("comment", ticket.id, world["requester"].id)
    comment = db.session.get(Comment, record.comment_id)
    assert comment.author_id == world["requester"].id and not comment.is_internal
    assert comment.body == "Danke, nach dem Neustart geht es wieder."
    files = list(db.session.scalars(select(Attachment).where(Attachment.comment_id == comment.id)))
    assert [f.filename for f in files] == ["foto.png"]
    assert storage_path(files[0].storage_key).read_bytes() == b"\x89PNG fake image bytes"
    assert storage_path(record.storage_key).read_bytes() == raw  # the original stays downloadable
    line = db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "reply",
                                                      TicketEvent.actor_id == world["requester"].id))
    assert line.note_code == "by_email"


def _sla_state(ticket):
    db.session.refresh(ticket)
    clocks = db.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket.id)
                                .order_by(SlaClock.target, SlaClock.cycle)).all()
    return (ticket.status, ticket.reopen_count, ticket.next_update_due_at, ticket.resolution_due_at, ticket.sla_due_at,
            ticket.sla_next_check_at, [(c.target, c.cycle, c.started_at, c.due_at, c.paused_at, c.outcome) for c in clocks])


def test_a_mailed_reply_reopens_a_resolved_ticket_and_moves_the_clocks_exactly_like_a_portal_reply(world):
    anna, agent = world["requester"], world["agent"]
    twins = []
    for _ in range(2):
        twin = make_ticket(anna, category=world["category"], now=NOW)
        tickets.reply(agent, twin, body="Erledigt, bitte prüfen.", now=NOW + timedelta(minutes=20), new_status="resolved")
        twins.append(twin)
    portal, mailed = twins
    later = NOW + timedelta(hours=2)

    tickets.reply(anna, portal, body="Geht leider immer noch nicht.", now=later)
    import_message(mail(to=reply_address(mailed), subject=f"Re: [{mailed.number}]",
                        body="Geht leider immer noch nicht.\n\n" + QUOTE), now=later)

    assert _sla_state(mailed)[0] == "open"
    assert _sla_state(mailed)[1] == 1
    assert _sla_state(mailed) == _sla_state(portal)


def test_the_same_message_imported_twice_gives_one_comment(world, ticket):
    raw = mail(to=reply_address(ticket), subject=f"Re: [{ticket.number}]", body="Nachtrag: Raum 204.")
    first = import_message(raw, now=NOW + timedelta(hours=1))
    outbox = outbox_count()

    second = import_message(raw, now=NOW + timedelta(hours=2))

    assert second.id == first.id
    assert [c.body for c in comments_of(ticket)][-1:] == ["Nachtrag: Raum 204."]
    assert len(comments_of(ticket)) == 2  # the agent's answer and this one
    assert outbox_count() == outbox
    assert db.session.scalar(select(func.count()).select_from(InboundMail)) == 1


def test_a_reply_found_by_its_thread_headers_or_the_subject_number_lands_in_the_ticket(world, ticket):
    confirmation = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)
                                     .order_by(OutboxMessage.id))
    by_outbox_id = import_message(mail(subject="Re: Ihre Anfrage", body="Per In-Reply-To.",
                                       in_reply_to=confirmation.message_id), now=NOW + timedelta(hours=1))
    by_thread_id = import_message(mail(subject="Re: Ihre Anfrage", body="Per Thread-ID.",
                                       in_reply_to=thread_message_id(ticket)), now=NOW + timedelta(hours=1))
    by_subject = import_message(mail(subject=f"Noch eine Frage zu [{ticket.number}]", body="Per Betreff."),
                                now=NOW + timedelta(hours=1))

    assert {r.status for r in (by_outbox_id, by_thread_id, by_subject)} == {"comment"}
    assert [c.body for c in comments_of(ticket)][1:] == ["Per In-Reply-To.", "Per Thread-ID.", "Per Betreff."]


def test_a_reply_with_a_wrong_signature_is_held_and_makes_no_comment(world, ticket):
    local, domain = reply_address(ticket).split("@")
    wrong_mac = "0" * 12 if local[-12:] != "0" * 12 else "1" * 12
    forged = f"{local[:-12]}{wrong_mac}@{domain}"
    outbox = outbox_count()

    record = import_message(mail(to=forged, subject=f"Re: [{ticket.number}]", body="Gefälscht."), now=NOW)

    assert (record.status, record.reason) == ("held", "forged_reply")
    assert len(comments_of(ticket)) == 1
    assert outbox_count() == outbox


def test_a_reply_to_another_tenants_ticket_address_is_held_and_tells_the_sender_nothing(world, ticket):
    other_tenant = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    make_policy(other_tenant)
    bert = make_user(tenant=other_tenant, email="bert@schwerin.example")
    theirs = make_ticket(bert, category=world["category"], now=NOW)
    outbox = outbox_count()

    # From set to Anna, but the signed reply address of Schwerin's ticket.
    record = import_message(mail(to=reply_address(theirs), subject=f"Re: [{theirs.number}]", body="Ich auch!"),
                            now=NOW + timedelta(hours=1))

    assert (record.status, record.reason) == ("held", "not_allowed")
    assert comments_of(theirs) == []
    assert outbox_count() == outbox  # no answer: nothing about the ticket reaches the sender


def test_a_reply_to_a_closed_ticket_is_held(world, ticket):
    tickets.change_status(world["agent"], ticket, "resolved", NOW + timedelta(minutes=30))
    tickets.confirm_resolution(world["requester"], ticket, NOW + timedelta(minutes=40))

    record = import_message(mail(to=reply_address(ticket), subject="Re", body="Noch etwas."), now=NOW + timedelta(hours=1))

    assert (record.status, record.reason, record.ticket_id) == ("held", "ticket_closed", ticket.id)
    assert len(comments_of(ticket)) == 1


def test_a_reply_with_an_oversized_attachment_is_held_whole(world, ticket, app):
    app.config["MAX_ATTACHMENT_BYTES"] = 100
    raw = mail(to=reply_address(ticket), subject="Re", body="Anbei das Protokoll.",
               attachments=[("klein.txt", "text/plain", b"ok"), ("gross.log", "text/plain", b"x" * 500)])

    record = import_message(raw, now=NOW + timedelta(hours=1))

    assert (record.status, record.reason) == ("held", "attachment_rejected")
    assert "gross.log" in record.reason_detail
    assert len(comments_of(ticket)) == 1
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_an_agent_replying_by_mail_answers_publicly_as_the_agent(world, ticket):
    record = import_message(mail(sender="Agent <agent@ksm.example>", to=reply_address(ticket), subject="Re",
                                 body="Wir tauschen den Toner heute."), now=NOW + timedelta(hours=1))

    comment = db.session.get(Comment, record.comment_id)
    assert (comment.author_id, comment.is_internal) == (world["agent"].id, False)
    queued = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "public_reply")
                               .order_by(OutboxMessage.id.desc()))
    assert queued.recipient == "anna@lup.example"


def test_an_agent_mailing_the_helpdesk_without_a_ticket_is_held(world):
    record = import_message(mail(sender="agent@ksm.example", body="Bitte Ticket anlegen."), now=NOW)

    assert (record.status, record.reason) == ("held", "staff_without_ticket")
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_new_mail_from_a_known_requester_files_a_routed_email_ticket_and_confirms_it(world):
    printers = make_team("drucker", "Arbeitsplatz & Drucker")
    make_rule(printers, tenant=world["tenant"])

    record = import_message(mail(subject="Drucker im 2. OG", body="Der Drucker druckt nicht.\n\n-- \nAnna Amsel\nBauamt"),
                            now=NOW)

    assert record.status == "ticket"
    ticket = db.session.get(Ticket, record.ticket_id)
    assert (ticket.channel, ticket.requester_id, ticket.tenant_id) == ("email", world["requester"].id, world["tenant"].id)
    assert (ticket.category_id, ticket.impact, ticket.urgency) == (world["category"].id, 2, 2)
    assert ticket.team_id == printers.id
    assert ticket.subject == "Drucker im 2. OG"
    assert ticket.description == "Der Drucker druckt nicht."
    confirmations = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_created")).all()
    assert [m.recipient for m in confirmations] == ["anna@lup.example"]
    assert ticket.number in confirmations[0].subject or ticket.number in confirmations[0].body_text


def test_the_configured_default_category_is_used_for_new_mail(world, app):
    chosen = make_category("E-Mail-Eingang")
    app.config["MAIL_DEFAULT_CATEGORY_ID"] = chosen.id

    record = import_message(mail(), now=NOW)

    assert db.session.get(Ticket, record.ticket_id).category_id == chosen.id


def test_cc_colleagues_of_the_same_tenant_become_watchers_of_a_new_ticket(world):
    colleague = make_user(tenant=world["tenant"], email="carla@lup.example")
    stranger = make_user(tenant=make_tenant(), email="dora@elsewhere.example")

    record = import_message(mail(cc="Carla <Carla@lup.example>, dora@elsewhere.example, nobody@lup.example"), now=NOW)

    ticket = db.session.get(Ticket, record.ticket_id)
    assert [u.id for u in watchers_of(ticket)] == [colleague.id]
    assert stranger.id not in [u.id for u in watchers_of(ticket)]


def test_an_unknown_sender_of_a_listed_domain_gets_a_requester_account_and_a_ticket(world):
    db.session.add(TenantMailDomain(tenant_id=world["tenant"].id, domain="lup.example"))
    db.session.commit()

    record = import_message(mail(sender="Erik Eule <erik@lup.example>"), now=NOW)

    erik = db.session.scalar(select(User).where(User.email == "erik@lup.example"))
    assert (erik.name, erik.role, erik.tenant_id, erik.password_hash) == (
        "Erik Eule", "requester", world["tenant"].id, NO_PASSWORD)
    assert record.status == "ticket"
    assert db.session.get(Ticket, record.ticket_id).requester_id == erik.id


def test_an_unknown_sender_of_a_domain_whose_tenant_holds_is_held_without_an_account(world):
    db.session.add(TenantMailDomain(tenant_id=world["tenant"].id, domain="lup.example"))
    world["tenant"].mail_unknown_senders = "hold"
    db.session.commit()

    record = import_message(mail(sender="erik@lup.example"), now=NOW)

    assert (record.status, record.reason, record.tenant_id) == ("held", "unknown_sender", world["tenant"].id)
    assert db.session.scalar(select(User).where(User.email == "erik@lup.example")) is None


def test_mail_from_an_unknown_domain_is_held(world):
    outbox = outbox_count()

    record = import_message(mail(sender="Max <max@freemail.example>"), now=NOW)

    assert (record.status, record.reason) == ("held", "unknown_domain")
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert db.session.scalar(select(User).where(User.email == "max@freemail.example")) is None
    assert outbox_count() == outbox


def test_an_auto_reply_to_a_ticket_makes_no_comment_and_no_answer(world, ticket):
    outbox = outbox_count()

    record = import_message(mail(to=reply_address(ticket), subject=f"Automatische Antwort: [{ticket.number}]",
                                 body="Ich bin bis Montag nicht im Haus.", headers={"Auto-Submitted": "auto-replied"}),
                            now=NOW + timedelta(hours=1))

    assert (record.status, record.reason, record.ticket_id) == ("ignored", "auto_reply", ticket.id)
    assert len(comments_of(ticket)) == 1
    assert outbox_count() == outbox
    db.session.refresh(ticket)
    assert ticket.status == "open"


def test_automatic_mail_without_a_ticket_files_nothing(world):
    outbox = outbox_count()

    record = import_message(mail(subject="Newsletter März", body="Neuigkeiten.", headers={"Precedence": "bulk"}), now=NOW)

    assert (record.status, record.reason) == ("ignored", "auto_mail")
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert outbox_count() == outbox


def _bounce_for(original: OutboxMessage) -> bytes:
    report = EmailMessage()
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.lup.example>"
    report["To"] = HELPDESK
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = make_msgid(domain="mx.lup.example")
    report["Auto-Submitted"] = "auto-replied"
    report.set_content("This is the mail system at host mx.lup.example.\n\nYour message could not be delivered.")
    report.add_attachment("Reporting-MTA: dns; mx.lup.example\n\nFinal-Recipient: rfc822; anna@lup.example\n"
                          "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n",
                          subtype="delivery-status")
    returned = EmailMessage()
    returned["From"] = HELPDESK
    returned["To"] = original.recipient
    returned["Subject"] = original.subject
    returned["Message-ID"] = original.message_id
    returned.set_content(original.body_text)
    report.add_attachment(returned)  # message/rfc822
    raw = report.as_bytes()
    return raw.replace(b"multipart/mixed", b"multipart/report; report-type=delivery-status", 1)


def test_a_bounce_marks_the_outbox_row_failed_and_files_no_ticket(world):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    confirmation = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id))
    outbox = outbox_count()

    record = import_message(_bounce_for(confirmation), now=NOW + timedelta(minutes=5))

    assert (record.status, record.reason, record.ticket_id) == ("ignored", "bounce", ticket.id)
    db.session.refresh(confirmation)
    assert confirmation.status == "failed" and confirmation.last_error.startswith("Unzustellbar")
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert outbox_count() == outbox
    assert len(comments_of(ticket)) == 0


def test_our_own_mail_coming_back_is_ignored(world):
    message = EmailMessage()
    message["From"] = "anna@lup.example"
    message["To"] = HELPDESK
    message["Subject"] = "Weitergeleitet"
    message["Message-ID"] = "<outbox.123.456@helpdesk.ksm>"
    message.set_content("Text")

    record = import_message(message.as_bytes(), now=NOW)

    assert (record.status, record.reason) == ("ignored", "own_message")
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_mail_loop_with_an_auto_responder_stops_after_the_limit(world, app):
    app.config["MAIL_AUTO_REPLY_LIMIT"] = 10
    responder = make_user(tenant=world["tenant"], email="poststelle@lup.example", name="Poststelle")

    def confirmations() -> int:
        return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.recipient == responder.email, OutboxMessage.kind == "ticket_created"))

    # The responder answers every confirmation with a fresh mail and no automatic-mail headers.
    for n in range(15):
        import_message(mail(sender="poststelle@lup.example", subject=f"Eingangsbestätigung {n}",
                            body="Ihre Nachricht ist bei uns eingegangen."), now=NOW + timedelta(minutes=2 * n))

    assert confirmations() == 10
    suppressed = db.session.scalar(select(func.count()).select_from(InboundMail).where(
        InboundMail.reason == "answer_limit"))
    assert suppressed == 5
    # An hour after the first answers the limit has room again.
    import_message(mail(sender="poststelle@lup.example", subject="Später", body="Neue Frage."),
                   now=NOW + timedelta(minutes=65))
    assert confirmations() == 11


def test_a_message_over_the_size_limit_is_held(world, app):
    app.config["MAIL_MAX_BYTES"] = 2000

    record = import_message(mail(body="x" * 5000), now=NOW)

    assert (record.status, record.reason) == ("held", "too_large")
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_very_long_message_id_is_stored_under_a_stable_key(world):
    long_id = "<" + "a" * 300 + "@client.example>"
    raw = mail().replace(b"Message-ID: <", b"X-Old-ID: <", 1)
    raw = b"Message-ID: " + long_id.encode() + b"\r\n" + raw

    first = import_message(raw, now=NOW)
    second = import_message(raw, now=NOW)

    assert first.id == second.id and first.message_id == message_key(long_id) and len(first.message_id) <= 255


def test_the_cli_imports_one_stored_message(world, app, tmp_path):
    path = tmp_path / "anfrage.eml"
    path.write_bytes(mail(subject="Per Kommandozeile"))

    result = app.test_cli_runner().invoke(args=["mail", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert "ticket" in result.output
    record = db.session.scalar(select(InboundMail))
    assert (record.source, record.status) == ("cli", "ticket")


# --- the real-looking samples of tests/mail_samples/ ------------------------------------------------

SAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "mail_samples"


def sample(name: str, ticket=None) -> bytes:
    """Return a sample mail; with a ticket, its number and signed reply address stand in for the sample's."""
    raw = (SAMPLES / name).read_bytes()
    if ticket is not None:
        mac = reply_address(ticket).split("@")[0].rsplit(".", 1)[1]
        raw = raw.replace(b"KSM-2026-000123", ticket.number.encode()).replace(b"3f9a1c0b7e2d", mac.encode())
    return raw


@pytest.fixture
def max_ticket(world):
    """The ticket of Max Mustermann, the sender of the Outlook samples, answered once by the agent."""
    max_ = make_user(tenant=world["tenant"], email="max.mustermann@lup.example", name="Max Mustermann")
    ticket = make_ticket(max_, category=world["category"], now=NOW)
    tickets.reply(world["agent"], ticket, body="Bitte prüfen Sie die Duplex-Einstellung.", now=NOW + timedelta(minutes=5))
    return ticket


def test_an_outlook_reply_lands_without_the_original_message_block(world, max_ticket):
    record = import_message(sample("outlook_de_reply.eml", max_ticket), now=NOW + timedelta(hours=1))

    assert record.status == "comment"
    body = db.session.get(Comment, record.comment_id).body
    assert "Drucker druckt nach dem Neustart wieder" in body
    assert "Ursprüngliche Nachricht" not in body and "Gesendet:" not in body


def test_a_thunderbird_reply_brings_its_inline_image_and_pdf(world):
    klaus = make_user(tenant=world["tenant"], email="klaus.neumann@lup.example", name="Klaus Neumann")
    ticket = make_ticket(klaus, category=world["category"], now=NOW)

    record = import_message(sample("reply_with_attachments.eml", ticket), now=NOW + timedelta(hours=1))

    assert record.status == "comment"
    names = sorted(a.filename for a in db.session.get(Comment, record.comment_id).attachments)
    assert len(names) == 2 and names[0].endswith(".png") and names[1].endswith(".pdf")


def test_an_exchange_out_of_office_without_auto_submitted_is_not_a_comment(world, max_ticket):
    outbox = outbox_count()

    record = import_message(sample("exchange_ooo_de.eml", max_ticket), now=NOW + timedelta(hours=1))

    assert (record.status, record.reason, record.ticket_id) == ("ignored", "auto_reply", max_ticket.id)
    assert len(comments_of(max_ticket)) == 1 and outbox_count() == outbox


def test_a_postfix_bounce_of_our_mail_marks_it_failed(world):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    confirmation = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id))
    confirmation.message_id = "<1764493920.48211.7771234567890123456.outbox@helpdesk.ksm>"
    db.session.commit()

    record = import_message(sample("postfix_bounce.eml"), now=NOW + timedelta(hours=1))

    assert (record.status, record.reason, record.ticket_id) == ("ignored", "bounce", ticket.id)
    db.session.refresh(confirmation)
    assert confirmation.status == "failed"


def test_an_html_only_mail_files_a_ticket_with_safe_text(world):
    make_user(tenant=world["tenant"], email="s.krueger@lup.example", name="Sabine Krüger")

    record = import_message(sample("html_only.eml"), now=NOW)

    ticket = db.session.get(Ticket, record.ticket_id)
    assert ticket.subject == "Fachverfahren stürzt beim Anmelden ab"
    assert "- Arbeitsplatz B-2.14" in ticket.description
    assert "<p" not in ticket.description and "<script" not in ticket.description.lower()


@pytest.mark.parametrize("name, status, reason", [
    ("garbage.eml", "held", "unparsable"),
    ("mailing_list.eml", "ignored", "auto_mail"),
    ("no_message_id.eml", "held", "unknown_domain"),
])
def test_samples_that_make_no_ticket(world, name, status, reason):
    first = import_message(sample(name), now=NOW)
    again = import_message(sample(name), now=NOW + timedelta(minutes=1))

    assert (first.status, first.reason) == (status, reason)
    assert again.id == first.id  # also without a Message-ID: imported once
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
