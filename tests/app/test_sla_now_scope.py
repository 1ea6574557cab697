"""Who sees which tickets on the SLA situation page (/reports/sla) and the manager dashboard."""
import pytest

from tests.app.test_sla_workflow import berlin
from tests.builders import make_category, make_policy, make_rule, make_team, make_tenant, make_ticket, make_user


@pytest.fixture
def situation(world, frozen_now):
    """Three breached tickets: one of the Service Desk, one of the network team, one of another tenant."""
    network = make_team("netz", "Netzwerk & Infrastruktur")
    cabling = make_category("Netzwerk")
    make_rule(network, category=cabling, position=10)
    other = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    make_policy(other)
    at = berlin("2026-03-05 08:00")
    tickets = {
        "desk": make_ticket(world["requester"], category=world["category"], now=at, subject="Drucker"),
        "network": make_ticket(world["requester"], category=cabling, now=at, subject="Switch"),
        "other_tenant": make_ticket(make_user(tenant=other), category=world["category"], now=at, subject="PC"),
    }
    assert tickets["network"].team == network and tickets["desk"].team == world["team"]
    frozen_now(berlin("2026-03-05 12:00"))  # every first response (1 h) is breached by now
    return {**world, **tickets, "network_team": network, "other_tenant_obj": other}


def visible(client, url: str, situation) -> set[str]:
    """Return which of the three tickets the page lists."""
    page = client.get(url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    return {name for name in ("desk", "network", "other_tenant") if situation[name].number in text}


@pytest.mark.parametrize("url", ["/reports/sla", "/reports/dashboard"])
def test_a_team_lead_sees_only_the_tickets_of_their_teams(client, situation, url):
    client.login(situation["lead"])
    assert visible(client, url, situation) == {"desk", "other_tenant"}


def test_a_team_lead_filtering_for_another_team_sees_nothing_of_it(client, situation):
    client.login(situation["lead"])
    url = f"/reports/sla?team={situation['network_team'].id}"
    assert visible(client, url, situation) == set()
    page = client.get("/reports/sla").get_data(as_text=True)
    assert "Netzwerk &amp; Infrastruktur" not in page  # neither as a filter option nor in the counts


def test_a_team_lead_of_the_network_team_sees_its_tickets_only(client, situation):
    lead = make_user("team_lead", teams=[situation["network_team"]])
    client.login(lead)
    assert visible(client, "/reports/sla", situation) == {"network"}


@pytest.mark.parametrize("role", ["service_manager", "admin"])
def test_service_managers_and_admins_see_every_team_and_tenant(client, situation, role):
    client.login(make_user(role))
    assert visible(client, "/reports/sla", situation) == {"desk", "network", "other_tenant"}


def test_a_contact_manager_sees_every_team_but_only_the_own_tenant(client, situation):
    client.login(make_user("tenant_manager", tenant=situation["tenant"]))
    assert visible(client, "/reports/sla", situation) == {"desk", "network"}
    assert visible(client, f"/reports/sla?tenant={situation['other_tenant_obj'].id}", situation) == set()


@pytest.mark.parametrize("role", ["requester", "agent"])
def test_requesters_and_agents_may_not_open_the_sla_situation(client, situation, role):
    user = situation["requester"] if role == "requester" else situation["agent"]
    client.login(user)
    assert client.get("/reports/sla").status_code == 403
