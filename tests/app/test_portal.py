"""The requester portal: filing, following and answering tickets through the browser."""
from __future__ import annotations

import io
import re
from html import unescape
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Attachment, Comment, OutboxMessage, Ticket
from helpdesk.services import tickets
from helpdesk.services.attachments import Upload
from tests.builders import at, make_category, make_rule, make_team, make_tenant, make_ticket, make_user


@pytest.fixture
def world(app):
    """Two teams with a routing rule, a small catalog, an authority with two employees, an agent."""
    desk = make_team("service-desk", "Service Desk", fallback=True)
    printers = make_team("drucker", "Arbeitsplatz & Drucker")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    other = make_category("Sonstiges")
    make_rule(printers, category=hardware, name="Hardware an Drucker-Team")
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    requester = make_user(tenant=tenant, name="Erika Muster", email="erika@lup.example")
    colleague = make_user(tenant=tenant, name="Max Kollege")
    manager = make_user("tenant_manager", tenant=tenant, name="Petra Leitung")
    agent = make_user("agent", teams=[desk, printers], name="Anna Agentin")
    return SimpleNamespace(desk=desk, printers=printers, hardware=hardware, printer=printer, other=other,
                           tenant=tenant, requester=requester, colleague=colleague, manager=manager, agent=agent)


def _form(world, **overrides) -> dict:
    data = {"category": str(world.printer.id), "impact": "2", "urgency": "1",
            "subject": "Drucker im Bürgerbüro druckt nicht", "description": "Seit heute früh kommt kein Ausdruck."}
    data.update(overrides)
    return data


def _login(client, user) -> None:
    """Log in and take the CSRF token from a portal page (every page's logout form carries one)."""
    client.login(user)
    page = _text(client.get("/portal/tickets"))
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _ticket_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket))


def _files_on_disk(app) -> list:
    root = app.config["ATTACHMENT_DIR"]
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _text(response) -> str:
    return response.get_data(as_text=True)


# --- filing a ticket ------------------------------------------------------------------------------


def test_requester_files_a_ticket_with_a_file_and_lands_on_its_page(client, world):
    _login(client, world.requester)
    form = _form(world, attachments=(io.BytesIO(b"PNG-bytes"), "fehlermeldung.png"))

    response = client.post_form("/portal/tickets/new", form)

    ticket = db.session.scalars(select(Ticket)).one()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/portal/tickets/{ticket.number}")
    page = _text(client.get(response.headers["Location"]))
    assert f"Ihr Ticket {ticket.number} wurde erfasst" in page
    assert ticket.number in page and "Drucker im Bürgerbüro druckt nicht" in page
    assert "fehlermeldung.png" in page
    assert ticket.team == world.printers and ticket.priority == 2
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)).one()
    assert mail.recipient == world.requester.email and ticket.number in mail.subject


def test_new_ticket_form_groups_categories_and_explains_impact_and_urgency(client, world):
    _login(client, world.requester)

    page = _text(client.get("/portal/tickets/new"))

    assert '<optgroup label="Hardware">' in page
    assert '<optgroup label="Weitere Anliegen">' in page and "Sonstiges" in page
    assert "viele Arbeitsplätze oder ein Fachverfahren stehen still" in page
    assert "die Arbeit ist blockiert, es gibt keine Umgehung" in page


def test_ticket_without_subject_is_refused_and_the_typed_description_is_kept(client, world):
    _login(client, world.requester)

    response = client.post_form("/portal/tickets/new", _form(world, subject="  ", description="Mein langer Text"))

    assert response.status_code == 422
    page = _text(response)
    assert "Bitte füllen Sie das Feld „Betreff“ aus." in page
    assert "Mein langer Text" in page
    assert _ticket_count() == 0


def test_empty_file_is_refused_with_a_clear_message_and_no_ticket_is_created(client, world, app):
    _login(client, world.requester)
    form = _form(world, attachments=(io.BytesIO(b""), "leer.txt"))

    response = client.post_form("/portal/tickets/new", form)

    assert response.status_code == 422
    page = _text(response)
    assert "Die Datei „leer.txt“ ist leer." in page
    assert "Seit heute früh kommt kein Ausdruck." in page
    assert _ticket_count() == 0 and _files_on_disk(app) == []


def test_oversized_file_is_refused_naming_it_without_ticket_or_orphan_file(client, world, app):
    app.config["MAX_ATTACHMENT_BYTES"] = 1000
    _login(client, world.requester)
    form = _form(world, attachments=[(io.BytesIO(b"ok"), "klein.txt"), (io.BytesIO(b"x" * 1001), "riesig.pdf")])

    response = client.post_form("/portal/tickets/new", form)

    assert response.status_code == 422
    page = _text(response)
    assert "Die Datei „riesig.pdf“ ist zu groß" in page
    assert "Bitte wählen Sie Ihre Dateien erneut aus" in page
    assert _ticket_count() == 0
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert _files_on_disk(app) == []


def test_html_in_subject_and_description_is_shown_as_text(client, world):
    _login(client, world.requester)
    evil = "<script>alert(1)</script>"

    response = client.post_form("/portal/tickets/new", _form(world, subject=f"Fehler {evil}", description=evil))

    for url in (response.headers["Location"], "/portal/tickets"):
        page = _text(client.get(url))
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script>alert" not in page


# --- following a ticket ---------------------------------------------------------------------------


def test_requester_reply_appears_in_the_thread(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    _login(client, world.requester)

    response = client.post_form(f"/portal/tickets/{ticket.number}/reply",
                                {"body": "Der Drucker zeigt jetzt Fehler 42.",
                                 "attachments": (io.BytesIO(b"log"), "drucker.log")})

    assert response.status_code == 302
    page = _text(client.get(f"/portal/tickets/{ticket.number}"))
    assert "Ihre Nachricht wurde gesendet." in page
    assert "Der Drucker zeigt jetzt Fehler 42." in page and "drucker.log" in page


def test_empty_reply_is_refused_at_the_field(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    _login(client, world.requester)

    response = client.post_form(f"/portal/tickets/{ticket.number}/reply", {"body": " "})

    assert response.status_code == 422
    assert "Bitte füllen Sie das Feld „Nachricht“ aus." in _text(response)
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0


def test_reply_to_a_pending_ticket_hands_it_back_to_ksm(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    tickets.reply(world.agent, ticket, body="Welches Gerät genau?", new_status="pending", now=at("2026-03-05 10:00"))
    _login(client, world.requester)
    assert "Wir warten auf Ihre Rückmeldung" in _text(client.get(f"/portal/tickets/{ticket.number}"))

    client.post_form(f"/portal/tickets/{ticket.number}/reply", {"body": "Der im zweiten Stock."})

    db.session.refresh(ticket)
    assert ticket.status == "open"


def test_requester_reopens_a_resolved_ticket_with_a_reason(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    tickets.change_status(world.agent, ticket, "resolved", now=at("2026-03-05 10:00"))
    _login(client, world.requester)
    page = _text(client.get(f"/portal/tickets/{ticket.number}"))
    assert "Lösung bestätigen" in page and "Wiedereröffnen" in page

    response = client.post_form(f"/portal/tickets/{ticket.number}/reopen", {"reason": "Druckt wieder nicht."},
                                follow_redirects=True)

    db.session.refresh(ticket)
    assert ticket.status == "open" and ticket.reopen_count == 1
    assert "Das Ticket wurde wiedereröffnet" in _text(response) and "Druckt wieder nicht." in _text(response)


def test_reopening_a_ticket_that_is_not_resolved_is_refused_with_a_message(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    _login(client, world.requester)

    response = client.post_form(f"/portal/tickets/{ticket.number}/reopen", {"reason": "Bitte nochmal"})

    assert response.status_code == 422
    assert "Nur gelöste Tickets können wiedereröffnet werden." in _text(response)
    assert "Bitte nochmal" in _text(response)


def test_confirming_the_solution_closes_the_ticket(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    tickets.change_status(world.agent, ticket, "resolved", now=at("2026-03-05 10:00"))
    _login(client, world.requester)

    response = client.post_form(f"/portal/tickets/{ticket.number}/confirm", follow_redirects=True)

    db.session.refresh(ticket)
    assert ticket.status == "closed" and ticket.closed_at is not None
    assert "Das Ticket ist jetzt geschlossen" in _text(response)


def test_closed_ticket_offers_no_reply_form_and_refuses_a_reply(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    tickets.change_status(world.agent, ticket, "resolved", now=at("2026-03-05 10:00"))
    tickets.change_status(world.agent, ticket, "closed", now=at("2026-03-05 11:00"))
    _login(client, world.requester)

    page = _text(client.get(f"/portal/tickets/{ticket.number}"))
    assert "Nachricht senden" not in page and f"/portal/tickets/{ticket.number}/reply" not in page

    response = client.post_form(f"/portal/tickets/{ticket.number}/reply", {"body": "Noch eine Frage"})
    assert response.status_code == 422
    assert "Das Ticket ist geschlossen." in _text(response)
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0


def test_internal_notes_and_internal_files_stay_hidden_from_the_requester(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    tickets.reply(world.agent, ticket, body="GEHEIM: Toner beim Lieferanten bestellt", internal=True,
                  uploads=[Upload("intern.txt", "text/plain", b"nur KSM")], now=at("2026-03-05 10:00"))
    tickets.reply(world.agent, ticket, body="Wir kümmern uns darum.", now=at("2026-03-05 10:05"))
    internal_file = db.session.scalars(select(Attachment).where(Attachment.is_internal.is_(True))).one()
    _login(client, world.requester)

    page = _text(client.get(f"/portal/tickets/{ticket.number}"))

    assert "Wir kümmern uns darum." in page
    assert "GEHEIM" not in page and "intern.txt" not in page
    assert "interne Notiz" not in page  # the history line of the note is internal too
    assert "Hardware an Drucker-Team" not in page  # the routing rule is KSM-internal
    assert client.get(f"/portal/attachments/{internal_file.id}").status_code == 404


def test_visible_file_is_downloaded_as_attachment_with_its_type(client, world):
    ticket = make_ticket(world.requester, category=world.printer,
                         uploads=[Upload("bericht.pdf", "application/pdf", b"%PDF-1.4 inhalt")])
    attachment = db.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).one()
    _login(client, world.requester)

    with client.get(f"/portal/attachments/{attachment.id}") as response:
        assert response.status_code == 200
        assert response.data == b"%PDF-1.4 inhalt"
        assert response.mimetype == "application/pdf"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "bericht.pdf" in response.headers["Content-Disposition"]


def test_post_without_csrf_token_is_refused_and_creates_nothing(client, world):
    _login(client, world.requester)

    response = client.post("/portal/tickets/new", data=_form(world))

    assert response.status_code == 400
    assert _ticket_count() == 0


# --- the ticket list ------------------------------------------------------------------------------


def test_my_tickets_shows_open_tickets_newest_activity_first_with_tabs_and_search(client, world):
    older = make_ticket(world.requester, category=world.printer, subject="Alter Drucker", now=at("2026-03-02 09:00"))
    newer = make_ticket(world.requester, category=world.other, subject="Neues Postfach", now=at("2026-03-03 09:00"))
    done = make_ticket(world.requester, category=world.other, subject="Erledigte Sache", now=at("2026-03-01 09:00"))
    tickets.change_status(world.agent, done, "resolved", now=at("2026-03-04 09:00"))
    tickets.reply(world.agent, older, body="Schon dran", now=at("2026-03-04 10:00"))
    make_ticket(world.colleague, category=world.other, subject="Fremdes Anliegen")
    _login(client, world.requester)

    page = _text(client.get("/portal/tickets"))
    assert page.index("Alter Drucker") < page.index("Neues Postfach")  # older got the latest activity
    assert "Erledigte Sache" not in page and "Fremdes Anliegen" not in page
    assert "04.03.2026 11:00" in page  # last update in Berlin time

    page = _text(client.get("/portal/tickets?status=done"))
    assert "Erledigte Sache" in page and "Alter Drucker" not in page

    page = _text(client.get(f"/portal/tickets?status=all&q={newer.number}"))
    assert "Neues Postfach" in page and "Alter Drucker" not in page
    page = _text(client.get("/portal/tickets?status=all&q=drucker"))
    assert "Alter Drucker" in page and "Neues Postfach" not in page


def test_my_tickets_is_paginated(client, world, app):
    app.config["PAGE_SIZE"] = 2
    for n in range(3):
        make_ticket(world.requester, category=world.other, subject=f"Anliegen {n}", now=at(f"2026-03-0{n + 1} 09:00"))
    _login(client, world.requester)

    first = _text(client.get("/portal/tickets"))
    second = _text(client.get(unescape(re.search(r'href="([^"]+)" rel="next"', first)[1])))

    assert "Anliegen 2" in first and "Anliegen 0" not in first and "3 Tickets" in first
    assert "Anliegen 0" in second and "Anliegen 2" not in second


def test_tenant_manager_switches_between_own_and_whole_authority_tickets(client, world):
    make_ticket(world.requester, category=world.other, subject="Anliegen von Erika")
    make_ticket(world.manager, category=world.other, subject="Anliegen der Leitung")
    make_ticket(make_user(tenant=make_tenant()), category=world.other, subject="Andere Behörde")
    _login(client, world.manager)

    page = _text(client.get("/portal/tickets"))
    assert "Anliegen von Erika" in page and "Anliegen der Leitung" in page
    assert "Erika Muster" in page  # requester column
    assert "Andere Behörde" not in page

    page = _text(client.get("/portal/tickets?scope=mine"))
    assert "Anliegen der Leitung" in page and "Anliegen von Erika" not in page


def test_requester_cannot_widen_the_list_to_the_whole_authority(client, world):
    make_ticket(world.colleague, category=world.other, subject="Anliegen vom Kollegen")
    _login(client, world.requester)

    page = _text(client.get("/portal/tickets?scope=tenant&status=all"))

    assert "Anliegen vom Kollegen" not in page and "Alle meiner Behörde" not in page


def test_ksm_staff_visiting_the_portal_is_sent_to_the_agent_workspace(client, world):
    client.login(world.agent)

    response = client.get("/portal/tickets")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/agent")


def test_anonymous_visitor_is_sent_to_login(client, world):
    response = client.get("/portal/tickets")

    assert response.status_code == 302 and "/login" in response.headers["Location"]
