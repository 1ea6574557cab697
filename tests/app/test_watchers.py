"""Watchers: colleagues of the authority follow a ticket in the portal and by email, and nobody else."""
from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Attachment, TicketEvent, TicketWatcher
from helpdesk.services import tickets
from helpdesk.services.attachments import Upload
from helpdesk.services.errors import Forbidden
from helpdesk.services.outbox import deliver_due
from helpdesk.services.watchers import add_watchers, remove_watcher, watchers_of
from tests.builders import at, make_category, make_team, make_tenant, make_ticket, make_user

NOW = at("2026-03-05 09:00")


@pytest.fixture
def world(app):
    """An authority with a requester, two colleagues and a manager; another authority; an agent; one ticket."""
    desk = make_team("service-desk", "Service Desk", fallback=True)
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    other = make_tenant("hro", "Hansestadt Rostock")
    requester = make_user(tenant=tenant, name="Anna Schulz", email="anna@lup.example")
    ticket = make_ticket(requester, category=make_category("Sonstiges"), subject="Fachverfahren startet nicht",
                         uploads=[Upload("fehler.txt", "text/plain", b"Fehler 42")], now=NOW)
    return SimpleNamespace(
        tenant=tenant, other=other, requester=requester, ticket=ticket,
        agent=make_user("agent", teams=[desk], name="Jonas Becker", email="jonas@ksm.example"),
        colleague=make_user(tenant=tenant, name="Bernd Vogel", email="bernd@lup.example", locale="en"),
        bystander=make_user(tenant=tenant, name="Carla Brandt", email="carla@lup.example"),
        manager=make_user("tenant_manager", tenant=tenant, name="Dora Meyer", email="dora@lup.example"),
        stranger=make_user(tenant=other, name="Bernhard Fremd", email="bernhard@hro.example"),
        attachment=db.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).one(),
    )


def watch(world, *users, actor=None):
    added = add_watchers(world.ticket, list(users), actor=actor, now=NOW)
    db.session.commit()
    return added


def login(client, user):
    """Log in and take the CSRF token from a portal page."""
    client.login(user)
    page = client.get("/portal/tickets").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client


def watcher_ids(world) -> list[int]:
    db.session.expire_all()
    return list(db.session.scalars(select(TicketWatcher.user_id).where(TicketWatcher.ticket_id == world.ticket.id)
                                   .order_by(TicketWatcher.user_id)))


# --- seeing the ticket -----------------------------------------------------------------------------------

def test_watcher_sees_the_ticket_in_the_portal_list_page_and_files(world, client):
    watch(world, world.colleague)
    login(client, world.colleague)

    listing = client.get("/portal/tickets").get_data(as_text=True)
    page = client.get(f"/portal/tickets/{world.ticket.number}")

    assert world.ticket.number in listing
    assert page.status_code == 200 and "Fachverfahren startet nicht" in page.get_data(as_text=True)
    with client.get(f"/portal/attachments/{world.attachment.id}") as download:
        assert download.status_code == 200 and download.data == b"Fehler 42"


def test_colleague_who_does_not_watch_sees_nothing(world, client):
    watch(world, world.colleague)
    login(client, world.bystander)

    assert world.ticket.number not in client.get("/portal/tickets?status=all").get_data(as_text=True)
    assert client.get(f"/portal/tickets/{world.ticket.number}").status_code == 404
    with client.get(f"/portal/attachments/{world.attachment.id}") as download:
        assert download.status_code == 404
    assert client.get(f"/portal/tickets/{world.ticket.number}/people?q=bernd").status_code == 404
    assert client.post_form(f"/portal/tickets/{world.ticket.number}/watchers",
                            {"action": "add", "user_id": str(world.bystander.id)}).status_code == 404
    assert client.post_form(f"/portal/tickets/{world.ticket.number}/watchers/remove",
                            {"user_id": str(world.colleague.id)}).status_code == 404
    assert watcher_ids(world) == [world.colleague.id]


WATCHER_URLS = {
    "type-ahead": ("GET", "/portal/tickets/{number}/people?q=bern", None),
    "search step": ("POST", "/portal/tickets/{number}/watchers", {"action": "search", "q": "bern"}),
    "add": ("POST", "/portal/tickets/{number}/watchers", {"action": "add", "user_id": "{colleague}"}),
    "remove": ("POST", "/portal/tickets/{number}/watchers/remove", {"user_id": "{colleague}"}),
}


@pytest.mark.parametrize("url_name", WATCHER_URLS)
@pytest.mark.parametrize("role", ["requester of another tenant", "tenant manager of another tenant",
                                  "colleague requester"])
def test_watcher_urls_answer_404_to_users_who_may_not_see_the_ticket(world, client, url_name, role):
    visitor = {
        "requester of another tenant": lambda: make_user(tenant=world.other),
        "tenant manager of another tenant": lambda: make_user("tenant_manager", tenant=world.other),
        "colleague requester": lambda: world.bystander,
    }[role]()
    if url_name == "remove":
        watch(world, world.colleague)
    before = watcher_ids(world)
    login(client, visitor)
    method, template, data = WATCHER_URLS[url_name]
    url = template.format(number=world.ticket.number)
    data = {key: value.format(colleague=world.colleague.id) for key, value in (data or {}).items()}

    response = client.get(url) if method == "GET" else client.post_form(url, data)

    assert response.status_code == 404
    assert "bernd@lup.example" not in response.get_data(as_text=True)
    assert watcher_ids(world) == before


def test_a_watcher_row_pointing_into_another_tenant_shows_nothing(world, client):
    # Were a row ever written past the service (a bug, a hand edit), the tenant check of the scope still holds.
    db.session.add(TicketWatcher(ticket_id=world.ticket.id, user_id=world.stranger.id, created_at=NOW))
    db.session.commit()
    login(client, world.stranger)

    assert client.get(f"/portal/tickets/{world.ticket.number}").status_code == 404
    assert world.ticket.number not in client.get("/portal/tickets?status=all").get_data(as_text=True)


def test_watcher_who_is_removed_loses_access(world, client):
    watch(world, world.colleague)
    remove_watcher(world.ticket, world.colleague, actor=world.requester, now=NOW)
    db.session.commit()
    login(client, world.colleague)

    assert client.get(f"/portal/tickets/{world.ticket.number}").status_code == 404


def test_agent_sees_the_watchers_on_the_agent_ticket_page(world, client):
    watch(world, world.colleague)
    client.login(world.agent)

    page = client.get(f"/agent/tickets/{world.ticket.number}").get_data(as_text=True)

    assert "Beobachter" in page and "Bernd Vogel" in page and "bernd@lup.example" in page


# --- who can become a watcher ----------------------------------------------------------------------------

def test_only_active_people_of_the_tickets_authority_become_watchers(world):
    inactive = make_user(tenant=world.tenant, name="Ehemalige")
    inactive.active = False
    db.session.commit()

    added = watch(world, world.stranger, world.agent, inactive, world.requester, world.colleague, world.colleague)

    assert added == [world.colleague]
    assert watcher_ids(world) == [world.colleague.id]
    assert watch(world, world.colleague) == []  # already watching: nothing new, no second line
    lines = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == world.ticket.id,
                                                         TicketEvent.kind == "watcher_added")).all()
    assert [(line.new_value, line.is_internal) for line in lines] == [("Bernd Vogel", False)]


def test_a_colleague_cannot_add_watchers_to_someone_elses_ticket(world):
    with pytest.raises(Forbidden):
        add_watchers(world.ticket, [world.bystander], actor=world.colleague, now=NOW)
    db.session.rollback()
    assert watcher_ids(world) == []


def test_portal_refuses_a_watcher_of_another_authority(world, client):
    login(client, world.requester)

    response = client.post_form(f"/portal/tickets/{world.ticket.number}/watchers",
                                {"action": "add", "user_id": str(world.stranger.id)})

    assert response.status_code == 422
    assert "Bitte wählen Sie eine Person Ihrer Behörde." in response.get_data(as_text=True)
    assert "bernhard@hro.example" not in response.get_data(as_text=True)
    assert watcher_ids(world) == []


# --- emails ----------------------------------------------------------------------------------------------

def test_watcher_gets_public_replies_and_status_changes_but_no_internal_notes(world, smtp_server):
    watch(world, world.colleague)
    deliver_due(NOW)
    smtp_server.messages.clear()

    tickets.reply(world.agent, world.ticket, body="Interner Hinweis: Server neu starten.", internal=True,
                  now=NOW + timedelta(minutes=5))
    deliver_due(NOW + timedelta(minutes=6))
    assert smtp_server.to("bernd@lup.example") == [] and smtp_server.to("anna@lup.example") == []

    tickets.reply(world.agent, world.ticket, body="Wir haben den Dienst neu gestartet.",
                  now=NOW + timedelta(minutes=10))
    tickets.change_status(world.agent, world.ticket, "resolved", now=NOW + timedelta(minutes=11))
    deliver_due(NOW + timedelta(minutes=12))

    to_watcher = smtp_server.to("bernd@lup.example")
    to_requester = smtp_server.to("anna@lup.example")
    assert len(to_watcher) == 2 and len(to_requester) == 2
    reply_mail = to_watcher[0]
    text = reply_mail.get_body(preferencelist=("plain",)).get_content()
    assert "Wir haben den Dienst neu gestartet." in text
    assert "Server neu starten" not in text
    assert reply_mail["Subject"].startswith(f"[{world.ticket.number}] New reply")  # in the watcher's language
    assert f"/portal/tickets/{world.ticket.number}" in text
    assert reply_mail["Reply-To"] == to_requester[0]["Reply-To"]
    assert all("Server neu starten" not in m.get_body(preferencelist=("plain",)).get_content()
               for m in smtp_server.to("bernd@lup.example"))


def test_removed_or_deactivated_watchers_get_no_more_email(world, smtp_server):
    watch(world, world.colleague, world.bystander)
    remove_watcher(world.ticket, world.colleague, actor=world.colleague, now=NOW)
    world.bystander.active = False
    db.session.commit()

    tickets.reply(world.agent, world.ticket, body="Antwort", now=NOW + timedelta(minutes=5))
    deliver_due(NOW + timedelta(minutes=6))

    assert smtp_server.to("bernd@lup.example") == [] and smtp_server.to("carla@lup.example") == []
    assert len(smtp_server.to("anna@lup.example")) == 2  # confirmation and the reply


# --- the portal card -------------------------------------------------------------------------------------

def test_requester_finds_a_colleague_without_javascript_and_adds_them(world, client):
    login(client, world.requester)
    url = f"/portal/tickets/{world.ticket.number}/watchers"

    found = client.post_form(url, {"action": "search", "q": "bern"})
    text = found.get_data(as_text=True)
    assert found.status_code == 200
    assert "bernd@lup.example" in text
    assert "bernhard@hro.example" not in text  # another authority's Bernhard is not offered

    added = client.post_form(url, {"action": "add", "user_id": str(world.colleague.id)}, follow_redirects=True)

    assert added.status_code == 200
    assert "Bernd Vogel beobachtet das Ticket jetzt" in added.get_data(as_text=True)
    assert watcher_ids(world) == [world.colleague.id]
    assert "Beobachter hinzugefügt" in added.get_data(as_text=True)


def test_type_ahead_offers_only_colleagues_of_the_tickets_authority(world, client):
    login(client, world.requester)

    data = client.get(f"/portal/tickets/{world.ticket.number}/people?q=bern").get_json()

    assert [person["email"] for person in data["people"]] == ["bernd@lup.example"]


def test_tenant_manager_adds_and_removes_watchers(world, client):
    login(client, world.manager)
    base = f"/portal/tickets/{world.ticket.number}/watchers"

    assert client.post_form(base, {"action": "add", "user_id": str(world.bystander.id)}).status_code == 302
    assert watcher_ids(world) == [world.bystander.id]
    assert client.post_form(base + "/remove", {"user_id": str(world.bystander.id)}).status_code == 302
    assert watcher_ids(world) == []


def test_watcher_may_remove_themself_but_not_others(world, client):
    watch(world, world.bystander, world.colleague)
    login(client, world.bystander)  # German page (the colleague reads English)
    remove = f"/portal/tickets/{world.ticket.number}/watchers/remove"

    page = client.get(f"/portal/tickets/{world.ticket.number}").get_data(as_text=True)
    assert "Nicht mehr beobachten" in page and "Als Beobachter hinzufügen" not in page

    assert client.post_form(remove, {"user_id": str(world.colleague.id)}).status_code == 403
    assert client.post_form(f"/portal/tickets/{world.ticket.number}/watchers",
                            {"action": "add", "user_id": str(world.manager.id)}).status_code == 403
    assert client.get(f"/portal/tickets/{world.ticket.number}/people?q=dora").status_code == 403

    left = client.post_form(remove, {"user_id": str(world.bystander.id)})

    assert left.status_code == 302 and left.headers["Location"].endswith("/portal/tickets")
    assert watcher_ids(world) == [world.colleague.id]
    assert client.get(f"/portal/tickets/{world.ticket.number}").status_code == 404


def test_adding_and_removing_without_csrf_token_changes_nothing(world, client):
    watch(world, world.colleague)
    login(client, world.requester)

    added = client.post(f"/portal/tickets/{world.ticket.number}/watchers",
                        data={"action": "add", "user_id": str(world.bystander.id)})
    removed = client.post(f"/portal/tickets/{world.ticket.number}/watchers/remove",
                          data={"user_id": str(world.colleague.id)})

    assert added.status_code == 400 and removed.status_code == 400
    assert watcher_ids(world) == [world.colleague.id]


def test_adding_nobody_shows_the_form_again_with_a_message(world, client):
    login(client, world.requester)

    response = client.post_form(f"/portal/tickets/{world.ticket.number}/watchers", {"action": "add"})

    assert response.status_code == 422
    assert "Bitte wählen Sie eine Person Ihrer Behörde." in response.get_data(as_text=True)
    assert watchers_of(world.ticket) == []
