"""The agent workspace: queues, the ticket page with its actions, and filing tickets by phone."""
from __future__ import annotations

import io
import re
from html import unescape
from types import SimpleNamespace

import pytest
from sqlalchemy import event, select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, Ticket, TicketEvent
from helpdesk.services import tickets
from helpdesk.services.attachments import Upload
from tests.builders import at, make_category, make_rule, make_team, make_tenant, make_ticket, make_user

NUMBER = re.compile(r"KSM-\d{4}-\d{6}")


def numbers_on(response) -> list[str]:
    """Return the ticket numbers on a page in order of first appearance."""
    seen: list[str] = []
    for number in NUMBER.findall(response.get_data(as_text=True)):
        if number not in seen:
            seen.append(number)
    return seen


def sign_in(client, user) -> None:
    """Log in and take the CSRF token from an agent page (every page's logout form carries one).

    The shared client reads it from /account, whose language form still warns about WTForms tuple choices.
    """
    client.login(user)
    page = client.get("/agent/tickets/new").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def outbox(kind: str | None = None, recipient: str | None = None) -> list[OutboxMessage]:
    """Return the queued emails, optionally of one kind and to one address."""
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    if recipient:
        query = query.where(OutboxMessage.recipient == recipient)
    return list(db.session.scalars(query))


def history(ticket: Ticket, field: str | None = None) -> list[TicketEvent]:
    """Return the ticket's history lines, optionally for one field."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    if field:
        query = query.where(TicketEvent.field == field)
    return list(db.session.scalars(query))


def fresh(ticket: Ticket) -> Ticket:
    """Return the ticket as stored now (requests share the test's session)."""
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)


@pytest.fixture
def world(app):
    """Two teams, two tenants, agents in each team, requesters in each tenant."""
    desk = make_team("service-desk", "Service Desk", fallback=True)
    network = make_team("netz", "Netzwerk & Infrastruktur")
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    schwerin = make_tenant("sn", "Landeshauptstadt Schwerin")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    lan = make_category("Netzwerk")
    make_rule(network, category=lan)
    agent = make_user("agent", teams=[desk], name="Anna Agentin")
    colleague = make_user("agent", teams=[desk], name="Carl Kollege")
    network_agent = make_user("agent", teams=[network], name="Nora Netz")
    requester = make_user(tenant=lup, name="Rita Richter", email="rita@lup.example")
    requester.phone = "03871 722-100"
    citizen_office = make_user(tenant=schwerin, name="Sven Stadt", email="sven@schwerin.example")
    db.session.commit()
    return SimpleNamespace(
        desk=desk, network=network, lup=lup, schwerin=schwerin, hardware=hardware, printer=printer, lan=lan,
        agent=agent, colleague=colleague, network_agent=network_agent, requester=requester,
        citizen_office=citizen_office,
    )


# --- queue tabs ---------------------------------------------------------------------------------

def test_my_team_tab_lists_open_tickets_of_my_teams_only(client, world):
    mine = make_ticket(world.requester, category=world.printer, subject="Drucker im Bürgerbüro")
    other_team = make_ticket(world.requester, category=world.lan, subject="Switch im Keller ausgefallen")
    done = make_ticket(world.requester, category=world.printer, subject="Toner leer")
    tickets.change_status(world.agent, done, "resolved", at("2026-03-05 10:00"))
    sign_in(client, world.agent)

    response = client.get("/agent/queue?tab=team")

    assert response.status_code == 200
    assert numbers_on(response) == [mine.number]
    assert other_team.number not in response.get_data(as_text=True)


def test_the_start_page_of_an_agent_is_the_team_queue(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.get("/agent/")

    assert response.status_code == 200
    assert ticket.number in response.get_data(as_text=True)
    assert 'class="active" aria-current="page">Mein Team' in response.get_data(as_text=True)


def test_unassigned_and_mine_tabs_split_the_team_queue(client, world):
    unassigned = make_ticket(world.requester, category=world.printer, subject="Niemand kümmert sich")
    taken = make_ticket(world.requester, category=world.printer, subject="Ich kümmere mich")
    colleagues = make_ticket(world.requester, category=world.printer, subject="Kollege kümmert sich")
    tickets.assign(world.agent, taken, world.agent, at("2026-03-05 09:10"))
    tickets.assign(world.agent, colleagues, world.colleague, at("2026-03-05 09:10"))
    sign_in(client, world.agent)

    assert numbers_on(client.get("/agent/queue?tab=unassigned")) == [unassigned.number]
    assert numbers_on(client.get("/agent/queue?tab=mine")) == [taken.number]
    assert set(numbers_on(client.get("/agent/queue?tab=team"))) == {unassigned.number, taken.number, colleagues.number}


def test_all_open_tab_shows_every_team_and_tenant_and_all_tab_adds_resolved(client, world):
    lup_ticket = make_ticket(world.requester, category=world.printer)
    schwerin_ticket = make_ticket(world.citizen_office, category=world.lan)
    resolved = make_ticket(world.citizen_office, category=world.printer)
    tickets.change_status(world.agent, resolved, "resolved", at("2026-03-05 10:00"))
    sign_in(client, world.agent)

    open_page = client.get("/agent/queue?tab=open")
    all_page = client.get("/agent/queue?tab=all")

    assert set(numbers_on(open_page)) == {lup_ticket.number, schwerin_ticket.number}
    assert set(numbers_on(all_page)) == {lup_ticket.number, schwerin_ticket.number, resolved.number}
    assert "Landeshauptstadt Schwerin" in open_page.get_data(as_text=True)


def test_staff_without_a_team_start_on_all_open_tickets(client, world):
    manager = make_user("service_manager", name="Sabine Service")
    ticket = make_ticket(world.citizen_office, category=world.lan)
    sign_in(client, manager)

    response = client.get("/agent/queue")

    assert numbers_on(response) == [ticket.number]


# --- filters, sorting, pagination ---------------------------------------------------------------

def test_filters_by_status_priority_tenant_and_category(client, world):
    p1 = make_ticket(world.requester, category=world.printer, impact=1, urgency=1, subject="Alle Drucker aus")
    p4 = make_ticket(world.requester, category=world.printer, impact=3, urgency=3, subject="Drucker quietscht")
    schwerin = make_ticket(world.citizen_office, category=world.lan, subject="WLAN langsam")
    tickets.change_status(world.agent, p4, "pending", at("2026-03-05 10:00"))
    sign_in(client, world.agent)

    assert numbers_on(client.get("/agent/queue?tab=open&status=pending")) == [p4.number]
    assert numbers_on(client.get("/agent/queue?tab=open&priority=1")) == [p1.number]
    assert numbers_on(client.get(f"/agent/queue?tab=open&tenant={world.schwerin.id}")) == [schwerin.number]
    # A top-level category finds its subcategories' tickets.
    assert set(numbers_on(client.get(f"/agent/queue?tab=open&category={world.hardware.id}"))) == {p1.number, p4.number}
    assert numbers_on(client.get(f"/agent/queue?tab=open&team={world.network.id}")) == [schwerin.number]


def test_text_filter_matches_subject_and_number_ignoring_case(client, world):
    printer = make_ticket(world.requester, category=world.printer, subject="Drucker im Standesamt")
    wlan = make_ticket(world.citizen_office, category=world.lan, subject="WLAN im Ratssaal")
    sign_in(client, world.agent)

    assert numbers_on(client.get("/agent/queue?tab=open&text=standesAMT")) == [printer.number]
    assert numbers_on(client.get(f"/agent/queue?tab=open&text={wlan.number.lower()}")) == [wlan.number]
    assert numbers_on(client.get("/agent/queue?tab=open&text=000002")) == [wlan.number]
    assert numbers_on(client.get("/agent/queue?tab=open&text=100%25")) == []


def test_unknown_filter_and_sort_values_are_ignored(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.get("/agent/queue?tab=bogus&status=kaputt&priority=9&tenant=x&sort=id;drop")

    assert response.status_code == 200
    assert numbers_on(response) == [ticket.number]


def test_default_order_puts_the_p1_first_and_then_the_oldest(client, world):
    old_p3 = make_ticket(world.requester, category=world.printer, impact=2, urgency=2, now=at("2026-03-02 08:00"))
    new_p3 = make_ticket(world.requester, category=world.printer, impact=2, urgency=2, now=at("2026-03-04 08:00"))
    p4 = make_ticket(world.requester, category=world.printer, impact=3, urgency=3, now=at("2026-03-01 08:00"))
    p1 = make_ticket(world.requester, category=world.printer, impact=1, urgency=1, now=at("2026-03-05 08:00"))
    sign_in(client, world.agent)

    assert numbers_on(client.get("/agent/queue")) == [p1.number, old_p3.number, new_p3.number, p4.number]
    assert numbers_on(client.get("/agent/queue?sort=priority")) == [p1.number, old_p3.number, new_p3.number, p4.number]
    assert numbers_on(client.get("/agent/queue?sort=-created")) == [p1.number, new_p3.number, old_p3.number, p4.number]
    assert numbers_on(client.get("/agent/queue?sort=number")) == [old_p3.number, new_p3.number, p4.number, p1.number]


def test_column_headers_link_to_the_other_sort_direction(client, world):
    make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    html = client.get("/agent/queue?tab=open&sort=created&priority=3").get_data(as_text=True)

    assert 'sort=-created' in html and 'aria-sort="ascending"' in html
    default_tab = client.get("/agent/queue").get_data(as_text=True)
    assert 'href="/agent/queue?tab=team&amp;sort=number"' in default_tab
    assert re.search(r'href="[^"]*priority=3[^"]*sort=number|href="[^"]*sort=number[^"]*priority=3', html)


def test_queue_is_paginated_with_the_configured_page_size(client, app, world):
    app.config["PAGE_SIZE"] = 5
    created = [make_ticket(world.requester, category=world.printer, now=at(f"2026-03-0{1 + n // 4} 0{n % 4 + 6}:00"))
               for n in range(12)]
    sign_in(client, world.agent)

    first = client.get("/agent/queue")
    second = client.get(unescape(re.search(r'href="([^"]+)" rel="next"', first.get_data(as_text=True))[1]))
    third = client.get(unescape(re.search(r'href="([^"]+)" rel="next"', second.get_data(as_text=True))[1]))

    assert numbers_on(first) == [t.number for t in created[:5]]
    assert numbers_on(third) == [t.number for t in created[10:]]
    assert "12 Tickets" in first.get_data(as_text=True)
    assert 'rel="next"' not in third.get_data(as_text=True)


def test_queue_page_costs_the_same_number_of_queries_for_3_and_for_12_tickets(client, app, world):
    def count_queries(url: str) -> int:
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        db.session.expire_all()  # as in a fresh request: nothing cached in the session
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    for _ in range(3):
        make_ticket(world.requester, category=world.printer)
        make_ticket(world.citizen_office, category=world.lan)
    tickets.assign(world.agent, db.session.scalars(select(Ticket)).first(), world.colleague, at("2026-03-05 09:30"))
    sign_in(client, world.agent)
    few = count_queries("/agent/queue?tab=open")
    for _ in range(9):
        make_ticket(world.citizen_office, category=world.lan)
    many = count_queries("/agent/queue?tab=open")

    assert few == many


# --- the ticket page ----------------------------------------------------------------------------

def test_ticket_page_shows_all_facts_the_thread_and_the_full_history(client, world):
    ticket = make_ticket(world.requester, category=world.printer, subject="Drucker 3. OG",
                         description="Papierstau im Fach 2", impact=2, urgency=1)
    tickets.reply(world.agent, ticket, body="Geheimer Hinweis fürs Team", internal=True, now=at("2026-03-05 09:20"))
    tickets.change_priority(world.agent, ticket, 1, at("2026-03-05 09:25"), reason="Wahllokal betroffen")
    sign_in(client, world.agent)

    html = client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)

    for text in ("Landkreis Ludwigslust-Parchim", "Rita Richter", "rita@lup.example", "03871 722-100", "Portal",
                 "Hardware &gt; Drucker", "P1 kritisch", "manuell überschrieben", "Service Desk",
                 "Papierstau im Fach 2", "05.03.2026 10:00", "Interne Notiz", "Geheimer Hinweis fürs Team",
                 "Wahllokal betroffen", "hat eine interne Notiz geschrieben"):
        assert text in html, text
    assert 'class="internal"' in html  # the note (and the internal routing line) look different


def test_unknown_ticket_number_is_404(client, world):
    sign_in(client, world.agent)

    assert client.get("/agent/tickets/KSM-2026-999999").status_code == 404


def test_take_assigns_me_opens_the_ticket_and_sends_no_email(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/take")

    assert response.status_code == 302
    ticket = fresh(ticket)
    assert ticket.assignee_id == world.agent.id and ticket.status == "open"
    assert outbox("assigned") == []
    assert [(e.old_value, e.new_value) for e in history(ticket, "status")][-1] == ("new", "open")


def test_assigning_a_colleague_queues_an_assigned_email_to_them(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/assign", {"assignee_id": str(world.colleague.id)})

    assert response.status_code == 302
    assert fresh(ticket).assignee_id == world.colleague.id
    assert [m.recipient for m in outbox("assigned")] == [world.colleague.email]


def test_assigning_someone_outside_the_team_is_refused(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/assign", {"assignee_id": str(world.network_agent.id)})

    assert response.status_code == 422
    assert "gehört nicht zum Team" in response.get_data(as_text=True)
    assert fresh(ticket).assignee_id is None


def test_public_reply_answers_the_requester_by_email(client, world, frozen_now):
    frozen_now(at("2026-03-05 09:45"))
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/reply",
                                {"body": "Bitte starten Sie den Drucker neu.", "visibility": "public"})

    assert response.status_code == 302
    ticket = fresh(ticket)
    assert ticket.first_responded_at == at("2026-03-05 09:45")
    assert ticket.status == "open"
    mails = outbox("public_reply", world.requester.email)
    assert len(mails) == 1 and "Bitte starten Sie den Drucker neu." in mails[0].body_text
    page = client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert '<li class="staff"' in page and "Bitte starten Sie den Drucker neu." in page


def test_reply_can_set_the_status_and_keeps_files(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(
        f"/agent/tickets/{ticket.number}/reply",
        {"body": "Welches Modell ist es?", "visibility": "public", "new_status": "pending",
         "attachments": (io.BytesIO(b"Anleitung"), "anleitung.txt")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 302
    assert fresh(ticket).status == "pending"
    assert "anleitung.txt" in client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)


def test_internal_note_sends_no_email_and_is_marked_on_the_page(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    before = len(outbox(recipient=world.requester.email))
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/reply",
                                {"body": "Treiber ist veraltet, nicht erwähnen.", "visibility": "internal"})

    assert response.status_code == 302
    assert len(outbox(recipient=world.requester.email)) == before
    ticket = fresh(ticket)
    assert ticket.first_responded_at is None and ticket.status == "new"
    page = client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    note = re.search(r'<li class="internal"[^>]*>(.*?)</li>', page, re.S)
    assert note and "Interne Notiz" in note.group(1) and "Treiber ist veraltet" in note.group(1)


def test_status_changes_to_pending_and_resolved_are_recorded(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    assert client.post_form(f"/agent/tickets/{ticket.number}/status", {"status": "pending"}).status_code == 302
    assert client.post_form(f"/agent/tickets/{ticket.number}/status", {"status": "resolved"}).status_code == 302

    ticket = fresh(ticket)
    assert ticket.status == "resolved" and ticket.resolved_at is not None
    assert [(e.old_value, e.new_value) for e in history(ticket, "status")] == [("new", "pending"), ("pending", "resolved")]
    assert len(outbox("status_changed", world.requester.email)) == 2


def test_priority_override_is_recorded_with_its_reason(client, world):
    ticket = make_ticket(world.requester, category=world.printer, impact=3, urgency=3)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/priority",
                                {"priority": "1", "reason": "Ganzes Bürgeramt steht"})

    assert response.status_code == 302
    ticket = fresh(ticket)
    assert ticket.priority == 1 and ticket.priority_overridden is True
    line = history(ticket, "priority")[-1]
    assert (line.old_value, line.new_value, line.note) == ("4", "1", "Ganzes Bürgeramt steht")
    assert "manuell überschrieben" in client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)


def test_priority_override_without_reason_is_refused(client, world):
    ticket = make_ticket(world.requester, category=world.printer, impact=3, urgency=3)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/priority", {"priority": "1", "reason": ""})

    assert response.status_code == 422
    assert "Bitte begründen Sie" in response.get_data(as_text=True)
    assert fresh(ticket).priority == 4


def test_category_change_is_recorded(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/category", {"category_id": str(world.lan.id)})

    assert response.status_code == 302
    ticket = fresh(ticket)
    assert ticket.category_id == world.lan.id and ticket.team_id == world.desk.id
    assert history(ticket, "category")[-1].new_value == "Netzwerk"


def test_transfer_moves_the_ticket_to_the_other_queue_and_drops_a_non_member_assignee(client, world):
    ticket = make_ticket(world.requester, category=world.printer, subject="Eigentlich ein Netzproblem")
    tickets.assign(world.agent, ticket, world.agent, at("2026-03-05 09:10"))
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/transfer",
                                {"team_id": str(world.network.id), "note": "Port am Switch tot"})

    assert response.status_code == 302
    ticket = fresh(ticket)
    assert ticket.team_id == world.network.id and ticket.assignee_id is None
    assert history(ticket, "team")[-1].note == "Port am Switch tot"
    assert ticket.number not in client.get("/agent/queue?tab=team").get_data(as_text=True)
    client.post_form("/logout")
    sign_in(client, world.network_agent)
    assert numbers_on(client.get("/agent/queue?tab=unassigned")) == [ticket.number]


def test_empty_reply_shows_a_message_keeps_nothing_and_changes_nothing(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    events_before = len(history(ticket))
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/reply",
                                {"body": "   ", "visibility": "public", "new_status": "pending"})

    assert response.status_code == 422
    assert "Bitte füllen Sie das Feld „Nachricht“ aus." in response.get_data(as_text=True)
    ticket = fresh(ticket)
    assert ticket.status == "new" and len(history(ticket)) == events_before
    assert outbox("public_reply") == []


def test_refused_reply_keeps_the_typed_text(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/reply",
                                {"body": "Mein langer Text", "visibility": "public", "new_status": "closed"})

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Dieser Statuswechsel ist nicht möglich." in html
    assert "Mein langer Text</textarea>" in html
    assert fresh(ticket).status == "new"
    assert outbox("public_reply") == []


def test_unknown_status_is_refused_with_a_message(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post_form(f"/agent/tickets/{ticket.number}/status", {"status": "erledigt"})

    assert response.status_code == 422
    assert "Unbekannter Status." in response.get_data(as_text=True)
    assert fresh(ticket).status == "new" and history(ticket, "status") == []


def test_actions_without_csrf_token_are_refused(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    sign_in(client, world.agent)

    response = client.post(f"/agent/tickets/{ticket.number}/take", data={})

    assert response.status_code == 400
    assert fresh(ticket).assignee_id is None


# --- filing on behalf of a requester ------------------------------------------------------------

def test_agent_files_a_ticket_for_a_requester_who_phoned(client, world, frozen_now):
    frozen_now(at("2026-03-05 11:00"))
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", {
        "requester_id": str(world.citizen_office.id), "channel": "phone", "category_id": str(world.lan.id),
        "impact": "1", "urgency": "2", "subject": "Kein Netz im Standesamt",
        "description": "Telefonisch gemeldet: alle PCs offline.",
    })

    ticket = db.session.scalars(select(Ticket)).one()
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/agent/tickets/{ticket.number}")
    assert ticket.channel == "phone"
    assert ticket.created_by_id == world.agent.id and ticket.requester_id == world.citizen_office.id
    assert ticket.tenant_id == world.schwerin.id and ticket.team_id == world.network.id and ticket.priority == 2
    assert [m.recipient for m in outbox("ticket_created")] == [world.citizen_office.email]
    assert "Erfasst von Anna Agentin" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_filing_without_a_requester_shows_the_message_and_keeps_the_input(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", {
        "requester_id": "", "channel": "phone", "category_id": str(world.lan.id), "impact": "1", "urgency": "2",
        "subject": "Kein Netz", "description": "alle offline",
    })

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Bitte wählen Sie die anfragende Person einer Behörde." in html
    assert 'value="Kein Netz"' in html
    assert db.session.scalars(select(Ticket)).all() == []


def test_staff_cannot_be_chosen_as_requester(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", {
        "requester_id": str(world.colleague.id), "channel": "phone", "category_id": str(world.lan.id),
        "impact": "1", "urgency": "2", "subject": "Test", "description": "Test",
    })

    assert response.status_code == 422
    assert db.session.scalars(select(Ticket)).all() == []


# --- attachments --------------------------------------------------------------------------------

def test_staff_download_internal_files(client, world):
    ticket = make_ticket(world.requester, category=world.printer)
    tickets.reply(world.agent, ticket, body="Log vom Server", internal=True, now=at("2026-03-05 09:30"),
                  uploads=[Upload("server.log", "text/plain", b"ERROR 42")])
    sign_in(client, world.colleague)
    page = client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    link = re.search(r'href="(/agent/attachments/\d+)">server.log', page)

    response = client.get(link.group(1))
    data = response.get_data()
    response.close()

    assert response.status_code == 200
    assert data == b"ERROR 42"
    assert "attachment" in response.headers["Content-Disposition"]
