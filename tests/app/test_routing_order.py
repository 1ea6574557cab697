"""Routing rule order: a rule hidden behind a broader one is flagged, and admins reorder rules."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import RoutingRule
from helpdesk.services import routing
from tests.builders import make_category, make_rule, make_team, make_tenant, make_ticket, make_user


@pytest.fixture
def admin_client(client, app):
    """A client logged in as an administrator, with the Service Desk as fallback team."""
    make_team("service-desk", "Service Desk", fallback=True)
    client.login(make_user("admin", email="admin@ksm.example"))
    page = client.get("/manage/").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client


@pytest.fixture
def catalog(app):
    """Hardware with its subcategory Drucker, a tenant and two teams."""
    hardware = make_category("Hardware")
    return {
        "hardware": hardware,
        "printer": make_category("Drucker", parent=hardware),
        "tenant": make_tenant("lup", "Landkreis Ludwigslust-Parchim"),
        "network": make_team("netz", "Netzwerk"),
        "printers": make_team("drucker", "Arbeitsplatz & Drucker"),
    }


def text_of(response) -> str:
    """Return the page's text with HTML entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def routed_team(client, catalog) -> str:
    """Ask the "which team would get this?" test for a printer ticket of the tenant."""
    body = text_of(client.get("/manage/rules/test", query_string={
        "tenant": catalog["tenant"].id, "category": catalog["printer"].id, "priority": 3,
    }))
    return re.search(r"Team: ([^<\n]+)", body).group(1).strip()


def test_a_rule_after_a_broader_one_is_flagged_on_the_rules_page(admin_client, catalog):
    make_rule(catalog["network"], category=catalog["hardware"], position=10, name="Hardware allgemein")
    make_rule(catalog["printers"], category=catalog["printer"], tenant=catalog["tenant"], position=20,
              name="Drucker LUP")
    body = text_of(admin_client.get("/manage/rules"))
    assert "Greift nie" in body
    assert "„Hardware allgemein“" in body.split("Drucker LUP", 1)[1]


def test_saving_a_rule_behind_a_broader_one_saves_it_and_warns(admin_client, catalog):
    make_rule(catalog["network"], category=catalog["hardware"], position=10, name="Hardware allgemein")
    response = admin_client.post_form("/manage/rules/new", {
        "name": "Drucker", "team": str(catalog["printers"].id), "category": str(catalog["printer"].id),
        "position": "20", "active": "y",
    })
    assert response.status_code == 302
    assert db.session.scalar(select(RoutingRule).where(RoutingRule.name == "Drucker")) is not None
    body = text_of(admin_client.get("/manage/rules"))
    assert "Die Regel „Drucker“ greift nie" in body and "„Hardware allgemein“ (Reihenfolge 10)" in body


def test_an_earlier_rule_with_an_extra_condition_does_not_flag_the_later_one(admin_client, catalog):
    make_rule(catalog["printers"], category=catalog["printer"], position=10, name="Drucker")
    make_rule(catalog["network"], category=catalog["hardware"], tenant=catalog["tenant"], position=20,
              name="Hardware LUP")
    make_rule(catalog["network"], category=catalog["hardware"], position=30, name="Hardware allgemein")
    body = text_of(admin_client.get("/manage/rules"))
    assert "Greift nie" not in body


def test_saving_the_narrower_rule_first_gives_no_warning(admin_client, catalog):
    for name, team, category, position in (("Drucker", "printers", "printer", "10"),
                                           ("Hardware allgemein", "network", "hardware", "20")):
        response = admin_client.post_form("/manage/rules/new", {
            "name": name, "team": str(catalog[team].id), "category": str(catalog[category].id),
            "position": position, "active": "y",
        })
        assert response.status_code == 302
    body = text_of(admin_client.get("/manage/rules"))
    assert "greift nie" not in body.lower()


def test_an_inactive_earlier_rule_hides_nothing(admin_client, catalog):
    broad = make_rule(catalog["network"], category=catalog["hardware"], position=10, name="Hardware allgemein")
    broad.active = False
    db.session.commit()
    make_rule(catalog["printers"], category=catalog["printer"], position=20, name="Drucker")
    assert "Greift nie" not in text_of(admin_client.get("/manage/rules"))


def test_a_broader_rule_that_hides_later_ones_says_so_when_saved(admin_client, catalog):
    make_rule(catalog["printers"], category=catalog["printer"], position=20, name="Drucker")
    response = admin_client.post_form("/manage/rules/new", {
        "name": "Alles an Netzwerk", "team": str(catalog["network"].id), "position": "10", "active": "y",
    })
    assert response.status_code == 302
    body = text_of(admin_client.get("/manage/rules"))
    assert "Die Regel „Alles an Netzwerk“ verdeckt die späteren Regeln: „Drucker“" in body


def test_moving_a_rule_up_changes_which_team_a_test_ticket_gets(admin_client, catalog):
    make_rule(catalog["network"], category=catalog["hardware"], position=10, name="Hardware allgemein")
    printers = make_rule(catalog["printers"], category=catalog["printer"], position=20, name="Drucker")
    assert routed_team(admin_client, catalog) == "Netzwerk"

    response = admin_client.post_form(f"/manage/rules/{printers.id}/move", {"direction": "up"},
                                      follow_redirects=True)
    assert response.status_code == 200
    body = text_of(response)
    assert "Regel „Drucker“ nach oben verschoben." in body

    assert routed_team(admin_client, catalog) == "Arbeitsplatz & Drucker"
    assert body.index("Drucker</a>") < body.index("Hardware allgemein</a>")
    assert "Greift nie" not in body
    ticket = make_ticket(make_user(tenant=catalog["tenant"]), category=catalog["printer"])
    assert ticket.team == catalog["printers"]


def test_moving_a_rule_down_past_the_broader_one_flags_it(admin_client, catalog):
    printers = make_rule(catalog["printers"], category=catalog["printer"], position=10, name="Drucker")
    make_rule(catalog["network"], category=catalog["hardware"], position=20, name="Hardware allgemein")
    assert routed_team(admin_client, catalog) == "Arbeitsplatz & Drucker"
    assert admin_client.post_form(f"/manage/rules/{printers.id}/move", {"direction": "down"}).status_code == 302
    assert routed_team(admin_client, catalog) == "Netzwerk"
    assert "Greift nie" in text_of(admin_client.get("/manage/rules"))


def test_rules_with_the_same_position_move_in_the_order_shown(admin_client, catalog):
    # Equal positions are tried by creation order; moving must still swap the two.
    first = make_rule(catalog["network"], category=catalog["hardware"], position=50, name="Hardware allgemein")
    second = make_rule(catalog["printers"], category=catalog["printer"], position=50, name="Drucker")
    assert routed_team(admin_client, catalog) == "Netzwerk"
    admin_client.post_form(f"/manage/rules/{second.id}/move", {"direction": "up"})
    assert routed_team(admin_client, catalog) == "Arbeitsplatz & Drucker"
    db.session.expire_all()
    assert [r.id for r in routing.ordered_rules()] == [second.id, first.id]


def test_the_first_rule_cannot_move_further_up(admin_client, catalog):
    first = make_rule(catalog["network"], category=catalog["hardware"], position=10, name="Hardware allgemein")
    make_rule(catalog["printers"], category=catalog["printer"], position=20, name="Drucker")
    response = admin_client.post_form(f"/manage/rules/{first.id}/move", {"direction": "up"}, follow_redirects=True)
    assert response.status_code == 200
    assert "steht schon ganz oben" in text_of(response)
    assert routed_team(admin_client, catalog) == "Netzwerk"


def test_moving_needs_post_with_csrf_and_a_direction(admin_client, catalog):
    rule = make_rule(catalog["network"], position=10)
    assert admin_client.get(f"/manage/rules/{rule.id}/move").status_code == 405
    assert admin_client.post(f"/manage/rules/{rule.id}/move", data={"direction": "up"}).status_code == 400
    assert admin_client.post_form(f"/manage/rules/{rule.id}/move", {"direction": "sideways"}).status_code == 400
    assert admin_client.post_form("/manage/rules/2147483647/move", {"direction": "up"}).status_code == 404


def test_the_rules_page_offers_move_buttons_as_forms(admin_client, catalog):
    rule = make_rule(catalog["network"], position=10, name="Eins")
    make_rule(catalog["printers"], position=20, name="Zwei")
    page = admin_client.get("/manage/rules").get_data(as_text=True)
    assert f'action="/manage/rules/{rule.id}/move"' in page
    assert 'name="direction" value="down"' in page and 'name="direction" value="up"' in page


@pytest.mark.parametrize("role", ["agent", "team_lead", "service_manager"])
def test_only_admins_may_move_rules(client, catalog, role):
    rule = make_rule(catalog["network"], position=10)
    client.login(make_user(role, teams=[catalog["network"]]))
    assert client.post_form(f"/manage/rules/{rule.id}/move", {"direction": "up"}).status_code == 403
