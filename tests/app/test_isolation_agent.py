"""The agent workspace is KSM-only: tenant users get 403 on every /agent URL; staff see every tenant."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Attachment, Comment, OutboxMessage, Ticket, TicketEvent
from helpdesk.services import tickets
from helpdesk.services.attachments import Upload
from tests.builders import at, make_category, make_team, make_tenant, make_ticket, make_user

SECRET_SUBJECT = "Kennwort-Reset für Kämmerei"
SECRET_NOTE = "Interner Hinweis: Konto war kompromittiert"

# (method, url template, form data); {number}, {public_file}, {internal_file}, {team}, {agent}, {category} are filled in.
AGENT_URLS = [
    ("GET", "/agent/", None),
    ("GET", "/agent/queue", None),
    ("GET", "/agent/queue?tab=all&text=Kennwort", None),
    ("GET", "/agent/tickets/{number}", None),
    ("POST", "/agent/tickets/{number}/reply", {"body": "Hallo", "visibility": "internal", "new_status": "resolved"}),
    ("POST", "/agent/tickets/{number}/take", {}),
    ("POST", "/agent/tickets/{number}/assign", {"assignee_id": "{agent}"}),
    ("POST", "/agent/tickets/{number}/status", {"status": "resolved"}),
    ("POST", "/agent/tickets/{number}/priority", {"priority": "1", "reason": "weil"}),
    ("POST", "/agent/tickets/{number}/category", {"category_id": "{category}"}),
    ("POST", "/agent/tickets/{number}/transfer", {"team_id": "{team}", "note": "weg damit"}),
    ("GET", "/agent/tickets/new", None),
    ("POST", "/agent/tickets/new", {"requester_id": "{requester}", "channel": "phone", "category_id": "{category}",
                                    "impact": "1", "urgency": "1", "subject": "Untergeschoben", "description": "x"}),
    ("GET", "/agent/attachments/{public_file}", None),
    ("GET", "/agent/attachments/{internal_file}", None),
]


@pytest.fixture
def world(app):
    """A ticket of Schwerin with a public file and an internal note with an internal file."""
    desk = make_team("service-desk", "Service Desk", fallback=True)
    network = make_team("netz", "Netzwerk & Infrastruktur")
    schwerin = make_tenant("sn", "Landeshauptstadt Schwerin")
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    category = make_category("Zugang")
    other_category = make_category("Hardware")
    agent = make_user("agent", teams=[desk], name="Anna Agentin")
    requester = make_user(tenant=schwerin, name="Rita Richter")
    manager = make_user("tenant_manager", tenant=schwerin, name="Mara Managerin")
    lup_requester = make_user(tenant=lup, name="Lutz Land")
    ticket = make_ticket(requester, category=category, subject=SECRET_SUBJECT,
                         uploads=[Upload("screenshot.png", "image/png", b"\x89PNG public")])
    tickets.reply(agent, ticket, body=SECRET_NOTE, internal=True, now=at("2026-03-05 09:30"),
                  uploads=[Upload("audit.log", "text/plain", b"internal bytes")])
    files = {a.filename: a.id for a in db.session.scalars(select(Attachment))}
    lup_ticket = make_ticket(lup_requester, category=category, subject="Drucker in Hagenow")
    return SimpleNamespace(
        agent=agent, requester=requester, manager=manager, ticket=ticket, lup_ticket=lup_ticket,
        values={"number": ticket.number, "public_file": files["screenshot.png"], "internal_file": files["audit.log"],
                "team": network.id, "agent": agent.id, "category": other_category.id, "requester": requester.id},
    )


def _fill(template, values: dict):
    if template is None:
        return None
    if isinstance(template, str):
        return template.format(**values)
    return {key: _fill(value, values) for key, value in template.items()}


def _state() -> tuple:
    """Return counts and the ticket fields an attack would change."""
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    db.session.expire_all()
    rows = db.session.execute(select(Ticket.id, Ticket.status, Ticket.priority, Ticket.team_id, Ticket.assignee_id,
                                     Ticket.category_id).order_by(Ticket.id)).all()
    return (count(Ticket), count(Comment), count(TicketEvent), count(OutboxMessage), [tuple(r) for r in rows])


def _sign_in(client, user) -> None:
    """Log in and take the CSRF token from the refusal page (its logout form carries one)."""
    client.login(user)
    page = client.get("/agent/").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("role", ["requester", "tenant_manager"])
@pytest.mark.parametrize(("method", "url", "data"), AGENT_URLS, ids=[f"{m} {u}" for m, u, _ in AGENT_URLS])
def test_tenant_users_are_refused_on_every_agent_url(client, world, role, method, url, data):
    user = world.requester if role == "requester" else world.manager
    _sign_in(client, user)
    before = _state()

    url, data = _fill(url, world.values), _fill(data, world.values)
    response = client.get(url) if method == "GET" else client.post_form(url, data)
    body = response.get_data()
    response.close()

    assert response.status_code == 403
    text = body.decode("utf-8", "replace")
    for secret in (SECRET_SUBJECT, SECRET_NOTE, "audit.log", "internal bytes", "PNG public", world.ticket.number):
        assert secret not in text
    assert _state() == before


@pytest.mark.parametrize(("method", "url", "data"), [u for u in AGENT_URLS if u[0] == "GET"],
                         ids=[u for m, u, _ in AGENT_URLS if m == "GET"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, world, method, url, data):
    response = client.get(_fill(url, world.values))

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["agent", "team_lead", "service_manager", "admin"])
def test_staff_see_tickets_of_every_tenant(client, world, role):
    staff = world.agent if role == "agent" else make_user(role, name=f"KSM {role}")
    _sign_in(client, staff)

    queue = client.get("/agent/queue?tab=open").get_data(as_text=True)

    assert world.ticket.number in queue and world.lup_ticket.number in queue
    assert "Landeshauptstadt Schwerin" in queue and "Landkreis Ludwigslust-Parchim" in queue
    for ticket in (world.ticket, world.lup_ticket):
        page = client.get(f"/agent/tickets/{ticket.number}")
        assert page.status_code == 200 and ticket.subject in page.get_data(as_text=True)
    internal = client.get(f"/agent/attachments/{world.values['internal_file']}")
    data = internal.get_data()
    internal.close()
    assert internal.status_code == 200 and data == b"internal bytes"
