"""What managers and agents see of the SLA: badges and the at-risk view, scoped per tenant."""
from helpdesk.services import sla as sla_service
from helpdesk.services import tickets
from tests.app.test_sla_workflow import berlin, file
from tests.builders import make_policy, make_tenant, make_ticket, make_user


def test_badge_counts_down_business_time_and_turns_to_warning_then_breached(world):
    ticket = file(world, "2026-03-05 09:00")  # first response due 10:00
    assert sla_service.badge(ticket, berlin("2026-03-05 09:10"))["state"] == "ok"
    warning = sla_service.badge(ticket, berlin("2026-03-05 09:50"))
    assert warning["state"] == "warning" and warning["remaining"].total_seconds() == 600
    assert sla_service.badge(ticket, berlin("2026-03-05 10:30"))["state"] == "breached"


def test_badge_of_pending_ticket_is_paused(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.reply(world["agent"], ticket, body="Rückfrage", new_status="pending", now=berlin("2026-03-05 09:05"))
    assert sla_service.badge(ticket, berlin("2026-03-05 12:00"))["state"] == "paused"


def test_manager_view_lists_breached_and_at_risk_tickets_of_all_tenants(world, client, frozen_now):
    manager = make_user("service_manager")
    late = file(world, "2026-03-05 08:00", subject="Fachverfahren steht")
    close = file(world, "2026-03-05 09:00", subject="Drucker klemmt")
    calm = file(world, "2026-03-05 09:40", subject="Neue Maus")
    frozen_now(berlin("2026-03-05 09:50"))
    client.login(manager)
    page = client.get("/reports/sla").get_data(as_text=True)
    assert late.number in page and close.number in page
    assert calm.number not in page
    assert page.index(late.number) < page.index(close.number)  # breached section comes first


def test_tenant_manager_sees_only_own_tenant_in_the_manager_view(world, client, frozen_now):
    other = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    make_policy(other)
    foreign = make_ticket(make_user(tenant=other), category=world["category"], now=berlin("2026-03-05 08:00"))
    own = file(world, "2026-03-05 08:00")
    frozen_now(berlin("2026-03-05 12:00"))
    client.login(make_user("tenant_manager", tenant=world["tenant"]))
    page = client.get("/reports/sla").get_data(as_text=True)
    assert own.number in page and foreign.number not in page


def test_requester_and_agent_may_not_open_the_manager_view(world, client):
    client.login(world["requester"])
    assert client.get("/reports/sla").status_code == 403


def test_agent_queue_shows_sla_badges_and_sorts_due_soonest_first(world, client, frozen_now):
    later = file(world, "2026-03-05 09:30", subject="Später fällig")
    sooner = file(world, "2026-03-05 09:00", subject="Früher fällig", impact=3, urgency=3)  # P4, 8 h
    urgent = file(world, "2026-03-05 09:20", subject="Bald fällig")
    frozen_now(berlin("2026-03-05 10:05"))
    client.login(world["agent"])
    page = client.get("/agent/queue?tab=open&sort=due").get_data(as_text=True)
    order = [page.index(t.number) for t in (urgent, later, sooner)]
    assert order == sorted(order)
    urgent_row = page[page.index(urgent.number):page.index(later.number)]
    assert "sla-warning" in urgent_row and "15 min" in urgent_row  # 45 of 60 minutes used
    assert "sla-ok" in page[page.index(later.number):]


def test_agent_ticket_page_shows_every_clock_with_due_time_and_history(world, client, frozen_now):
    ticket = file(world, "2026-03-05 09:00")
    tickets.reply(world["agent"], ticket, body="Rückfrage", new_status="pending", now=berlin("2026-03-05 09:30"))
    frozen_now(berlin("2026-03-05 11:00"))
    client.login(world["agent"])
    page = client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "Erstreaktion" in page and "Lösung" in page
    assert "eingehalten" in page  # first response met at 09:30
    assert "SLA-Uhr pausiert" in page and "pausiert" in page
