"""Tenant isolation of every portal URL: nobody reaches a ticket outside what they may see."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Attachment, Comment
from helpdesk.services import tickets
from helpdesk.services.attachments import Upload
from tests.builders import at, make_category, make_team, make_tenant, make_ticket, make_user

# (method, URL template, form data) for every portal URL that touches one ticket.
URLS = {
    "ticket page": ("GET", "/portal/tickets/{number}", None),
    "reply": ("POST", "/portal/tickets/{number}/reply", {"body": "Eine Nachricht"}),
    "reopen": ("POST", "/portal/tickets/{number}/reopen", {"reason": "Geht wieder nicht"}),
    "confirm": ("POST", "/portal/tickets/{number}/confirm", {}),
    "attachment download": ("GET", "/portal/attachments/{attachment_id}", None),
}
OUTSIDERS = ("requester of another tenant", "tenant manager of another tenant", "colleague requester")


@pytest.fixture
def resolved_ticket(app):
    """A resolved ticket with a file, filed by one requester of an authority."""
    desk = make_team("service-desk", fallback=True)
    agent = make_user("agent", teams=[desk])
    tenant = make_tenant()
    owner = make_user(tenant=tenant, name="Eigentümerin")
    ticket = make_ticket(owner, category=make_category(), subject="Vertrauliches Anliegen",
                         uploads=[Upload("vertraulich.pdf", "application/pdf", b"%PDF geheim")])
    tickets.change_status(agent, ticket, "resolved", now=at("2026-03-05 10:00"))
    attachment = db.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).one()
    return SimpleNamespace(ticket=ticket, tenant=tenant, attachment=attachment,
                           url_values={"number": ticket.number, "attachment_id": attachment.id})


def _visitor(role: str, tenant):
    other = make_tenant()
    return {
        "requester of another tenant": lambda: make_user(tenant=other),
        "tenant manager of another tenant": lambda: make_user("tenant_manager", tenant=other),
        "colleague requester": lambda: make_user(tenant=tenant),
        "tenant manager": lambda: make_user("tenant_manager", tenant=tenant),
    }[role]()


def _login(client, user) -> None:
    """Log in and take the CSRF token from a portal page (every page's logout form carries one)."""
    client.login(user)
    page = client.get("/portal/tickets").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _call(client, url_name: str, values: dict, **kwargs):
    method, template, data = URLS[url_name]
    url = template.format(**values)
    if method == "GET":
        return client.get(url, **kwargs)
    return client.post_form(url, data, **kwargs)


@pytest.mark.parametrize("url_name", URLS)
@pytest.mark.parametrize("role", OUTSIDERS)
def test_portal_url_answers_404_to_users_who_may_not_see_the_ticket(client, resolved_ticket, url_name, role):
    _login(client, _visitor(role, resolved_ticket.tenant))

    with _call(client, url_name, resolved_ticket.url_values) as response:
        assert response.status_code == 404
        assert "Vertrauliches Anliegen" not in response.get_data(as_text=True)

    db.session.refresh(resolved_ticket.ticket)
    assert resolved_ticket.ticket.status == "resolved"
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0


@pytest.mark.parametrize("url_name", URLS)
def test_portal_url_works_for_the_tenant_manager_of_the_same_authority(client, resolved_ticket, url_name):
    _login(client, _visitor("tenant manager", resolved_ticket.tenant))

    with _call(client, url_name, resolved_ticket.url_values, follow_redirects=True) as response:
        assert response.status_code == 200
        if url_name == "attachment download":
            assert response.data == b"%PDF geheim"
        else:
            assert "Vertrauliches Anliegen" in response.get_data(as_text=True)
