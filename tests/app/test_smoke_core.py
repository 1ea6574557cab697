"""Ticket creation through the service layer: routing, numbering, priority, outbox."""
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, TicketEvent
from tests.builders import at, make_category, make_rule, make_team, make_tenant, make_ticket, make_user


def test_new_ticket_is_numbered_routed_prioritised_and_mailed(app):
    desk = make_team("service-desk", "Service Desk", fallback=True)
    printers = make_team("drucker", "Arbeitsplatz & Drucker")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    make_rule(printers, category=hardware)
    tenant = make_tenant("lup")
    requester = make_user(tenant=tenant)

    ticket = make_ticket(requester, category=printer, impact=1, urgency=1, now=at("2026-03-05 09:00"))
    second = make_ticket(requester, category=make_category("Sonstiges"), impact=3, urgency=3)

    assert ticket.number == "KSM-2026-000001" and second.number == "KSM-2026-000002"
    assert ticket.team == printers and second.team == desk
    assert (ticket.priority, second.priority) == (1, 4)
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)).one()
    assert mail.recipient == requester.email and "KSM-2026-000001" in mail.subject
    kinds = db.session.scalars(select(TicketEvent.field).where(TicketEvent.ticket_id == ticket.id)).all()
    assert {"priority", "team"} <= set(kinds)


def test_login_with_wrong_password_is_refused_and_right_one_works(client, app):
    make_team("service-desk", fallback=True)
    user = make_user(tenant=make_tenant())
    response = client.post_form("/login", {"email": user.email, "password": "wrong password!"})
    assert response.status_code == 200
    assert "falsch" in response.get_data(as_text=True)
    client.login(user)
