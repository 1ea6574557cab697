"""Resolved tickets close by themselves after the configured number of days."""
from datetime import timedelta

from sqlalchemy import select

from helpdesk import worker
from helpdesk.extensions import db
from helpdesk.models import Ticket, TicketEvent
from helpdesk.services import tickets
from tests.builders import at, make_category, make_team, make_tenant, make_ticket, make_user


def test_worker_closes_tickets_resolved_longer_than_the_configured_days(app, frozen_now):
    team = make_team("service-desk", fallback=True)
    agent = make_user("agent", teams=[team])
    requester = make_user(tenant=make_tenant())
    category = make_category()
    old = make_ticket(requester, category=category, now=at("2026-03-01 09:00"))
    recent = make_ticket(requester, category=category, now=at("2026-03-01 09:00"))
    reopened = make_ticket(requester, category=category, now=at("2026-03-01 09:00"))
    tickets.change_status(agent, old, "resolved", at("2026-03-02 10:00"))
    tickets.change_status(agent, recent, "resolved", at("2026-03-08 10:00"))
    tickets.change_status(agent, reopened, "resolved", at("2026-03-02 10:00"))
    tickets.reopen(requester, reopened, at("2026-03-03 10:00"), reason="Fehler tritt wieder auf")
    app.config["AUTO_CLOSE_DAYS"] = 7
    frozen_now(at("2026-03-10 00:00"))

    worker.run_job(app, worker.close_resolved)

    statuses = {t.number: db.session.get(Ticket, t.id).status for t in (old, recent, reopened)}
    assert statuses == {old.number: "closed", recent.number: "resolved", reopened.number: "open"}
    closed = db.session.get(Ticket, old.id)
    assert closed.closed_at == at("2026-03-10 00:00")
    line = db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == old.id, TicketEvent.field == "status", TicketEvent.new_value == "closed")).one()
    assert (line.note_code, line.note_params) == ("auto_closed", {"days": 7})


def test_auto_close_is_idempotent(app, frozen_now):
    make_team("service-desk", fallback=True)
    agent = make_user("agent")
    requester = make_user(tenant=make_tenant())
    ticket = make_ticket(requester, category=make_category(), now=at("2026-03-01 09:00"))
    tickets.change_status(agent, ticket, "resolved", at("2026-03-01 10:00"))
    assert tickets.auto_close_resolved(at("2026-03-01 10:00") + timedelta(days=8), 7) == 1
    assert tickets.auto_close_resolved(at("2026-03-01 10:00") + timedelta(days=9), 7) == 0
