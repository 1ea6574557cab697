"""The administration area: tenants, accounts, teams, catalog, routing rules, outbox, and who may enter."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Category, OutboxMessage, RoutingRule, Team, Tenant, User
from helpdesk.services.accounts import check_password
from tests.builders import make_category, make_rule, make_team, make_tenant, make_ticket, make_user


@pytest.fixture
def admin(app):
    """An administrator (KSM) with the Service Desk as fallback team."""
    make_team("service-desk", "Service Desk", fallback=True)
    return make_user("admin", name="Ada Admin", email="admin@ksm.example")


def sign_in(client, user) -> None:
    """Log in and take the CSRF token from a /manage page (the logout form of every page carries one).

    The shared client reads it from /account, whose language form still warns about WTForms tuple choices;
    a refused user gets the token from the 403 page, which has the same layout.
    """
    client.login(user)
    page = client.get("/manage/").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def admin_client(client, admin):
    """A client logged in as the administrator."""
    sign_in(client, admin)
    return client


def text_of(response) -> str:
    """Return the page's text with HTML entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def count(model, *where) -> int:
    """Count the rows of a model."""
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- overview ---------------------------------------------------------------------------------

def test_overview_shows_counts_and_links_to_every_section(admin_client):
    make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    page = admin_client.get("/manage/")
    body = text_of(page)
    assert page.status_code == 200
    for section in ("Mandanten", "Konten", "Teams", "Servicekatalog", "Routing-Regeln", "Postausgang"):
        assert section in body
    for url in ("/manage/tenants", "/manage/users", "/manage/teams", "/manage/categories", "/manage/rules",
                "/manage/outbox"):
        assert f'href="{url}"' in body


# --- tenants ----------------------------------------------------------------------------------

def test_admin_creates_and_edits_a_tenant(admin_client):
    response = admin_client.post_form(
        "/manage/tenants/new", {"slug": "lup", "name": "Landkreis Ludwigslust-Parchim", "active": "y"}
    )
    assert response.status_code == 302
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "lup"))
    assert tenant.name == "Landkreis Ludwigslust-Parchim" and tenant.active

    response = admin_client.post_form(f"/manage/tenants/{tenant.id}", {"slug": "lup", "name": "Landkreis LUP"})
    assert response.status_code == 302
    db.session.refresh(tenant)
    assert tenant.name == "Landkreis LUP" and not tenant.active
    assert "Landkreis LUP" in text_of(admin_client.get("/manage/tenants"))


def test_duplicate_tenant_slug_is_refused_with_a_message_and_nothing_is_saved(admin_client):
    make_tenant("schwerin", "Landeshauptstadt Schwerin")
    response = admin_client.post_form("/manage/tenants/new", {"slug": "schwerin", "name": "Schwerin 2", "active": "y"})
    assert response.status_code == 422
    assert "Das Kürzel „schwerin“ ist bereits vergeben." in text_of(response)
    assert 'value="Schwerin 2"' in text_of(response)  # the input is kept
    assert count(Tenant) == 1


@pytest.mark.parametrize("slug", ["Schwerin", "sch werin", "-lup", "lüp", ""])
def test_tenant_slug_must_be_lowercase_letters_digits_and_hyphens(admin_client, slug):
    response = admin_client.post_form("/manage/tenants/new", {"slug": slug, "name": "Gemeinde", "active": "y"})
    assert response.status_code == 422
    assert "Kürzel" in text_of(response)
    assert count(Tenant) == 0


def test_tenant_without_name_is_refused(admin_client):
    response = admin_client.post_form("/manage/tenants/new", {"slug": "lup", "name": "  ", "active": "y"})
    assert response.status_code == 422
    assert "Bitte geben Sie den Namen des Mandanten an." in text_of(response)


# --- users ------------------------------------------------------------------------------------

def test_admin_creates_a_requester_who_can_log_in(admin_client, app):
    tenant = make_tenant("lup")
    response = admin_client.post_form("/manage/users/new", {
        "name": "Rita Requester", "email": "Rita@LUP.example", "role": "requester", "tenant": str(tenant.id),
        "password": "ein langes Passwort", "active": "y",
    })
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "rita@lup.example"))
    assert user.tenant == tenant and user.role == "requester" and user.active
    assert check_password(user, "ein langes Passwort")


def test_admin_creates_an_agent_in_two_teams_and_edits_without_changing_the_password(admin_client):
    network = make_team("netz", "Netzwerk")
    printers = make_team("drucker", "Drucker")
    response = admin_client.post_form("/manage/users/new", {
        "name": "Anton Agent", "email": "anton@ksm.example", "role": "agent", "tenant": "",
        "teams": [str(network.id), str(printers.id)], "password": "ein langes Passwort", "active": "y",
    })
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "anton@ksm.example"))
    assert {t.slug for t in user.teams} == {"netz", "drucker"}

    response = admin_client.post_form(f"/manage/users/{user.id}", {
        "name": "Anton A. Agent", "email": "anton@ksm.example", "role": "team_lead", "tenant": "",
        "teams": [str(network.id)], "password": "", "active": "y",
    })
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.name == "Anton A. Agent" and user.role == "team_lead"
    assert [t.slug for t in user.teams] == ["netz"]
    assert check_password(user, "ein langes Passwort")


def test_invalid_email_is_shown_at_the_email_field(admin_client):
    tenant = make_tenant()
    response = admin_client.post_form("/manage/users/new", {
        "name": "Kaputt", "email": "kein-at-zeichen", "role": "requester", "tenant": str(tenant.id),
        "password": "ein langes Passwort", "active": "y",
    })
    body = text_of(response)
    assert response.status_code == 422
    email_field = body[body.index('name="email"'):]
    assert "Ungültige E-Mail-Adresse" in email_field[:email_field.index("</div>")]
    assert count(User) == 1  # only the admin


def test_tenant_role_without_tenant_is_refused_at_the_tenant_field(admin_client):
    response = admin_client.post_form("/manage/users/new", {
        "name": "Ohne Mandant", "email": "ohne@example.org", "role": "tenant_manager", "tenant": "",
        "password": "ein langes Passwort", "active": "y",
    })
    body = text_of(response)
    assert response.status_code == 422
    tenant_field = body[body.index('name="tenant"'):]
    assert "Behördenkonten brauchen einen Mandanten." in tenant_field[:tenant_field.index("</div>")]
    assert count(User) == 1


def test_ksm_role_with_a_tenant_is_refused(admin_client):
    tenant = make_tenant()
    response = admin_client.post_form("/manage/users/new", {
        "name": "KSM mit Mandant", "email": "ksm@example.org", "role": "agent", "tenant": str(tenant.id),
        "password": "ein langes Passwort", "active": "y",
    })
    assert response.status_code == 422
    assert "KSM-Konten gehören zu keinem Mandanten." in text_of(response)


def test_new_account_needs_a_long_enough_password(admin_client):
    response = admin_client.post_form("/manage/users/new", {
        "name": "Kurz", "email": "kurz@ksm.example", "role": "agent", "password": "kurz", "active": "y",
    })
    assert response.status_code == 422
    assert "mindestens 10 Zeichen" in text_of(response)


def test_admin_cannot_take_away_their_own_admin_role(admin_client, admin):
    response = admin_client.post_form(f"/manage/users/{admin.id}", {
        "name": admin.name, "email": admin.email, "role": "agent", "active": "y",
    })
    assert response.status_code == 422
    db.session.refresh(admin)
    assert admin.role == "admin"


def test_user_list_filters_by_role_tenant_and_text(admin_client):
    lup = make_tenant("lup", "Landkreis LUP")
    schwerin = make_tenant("sn", "Schwerin")
    make_user(tenant=lup, name="Berta Beispiel")
    make_user(tenant=schwerin, name="Carl Carlsen")
    make_user("agent", name="Doris Dienst")

    body = text_of(admin_client.get("/manage/users", query_string={"role": "requester"}))
    assert "Berta Beispiel" in body and "Carl Carlsen" in body and "Doris Dienst" not in body
    body = text_of(admin_client.get("/manage/users", query_string={"tenant": str(lup.id)}))
    assert "Berta Beispiel" in body and "Carl Carlsen" not in body
    body = text_of(admin_client.get("/manage/users", query_string={"text": "carl"}))
    assert "Carl Carlsen" in body and "Berta Beispiel" not in body


def test_user_list_is_paginated(admin_client, app):
    app.config["PAGE_SIZE"] = 2
    for n in range(4):
        make_user("agent", name=f"Zora {n}")
    first = text_of(admin_client.get("/manage/users", query_string={"text": "zora"}))
    assert "Seite 1 von 2" in first and "Zora 0" in first and "Zora 3" not in first
    second = text_of(admin_client.get("/manage/users", query_string={"text": "zora", "page": 2}))
    assert "Zora 3" in second


# --- teams ------------------------------------------------------------------------------------

def test_admin_creates_and_edits_a_team_with_lead(admin_client):
    lead = make_user("team_lead", name="Lena Leitung")
    response = admin_client.post_form("/manage/teams/new", {
        "slug": "netz", "name": "Netzwerk & Infrastruktur", "email": "Netz@KSM.example", "lead": str(lead.id),
        "active": "y",
    })
    assert response.status_code == 302
    team = db.session.scalar(select(Team).where(Team.slug == "netz"))
    assert team.lead == lead and team.email == "netz@ksm.example" and not team.is_fallback

    response = admin_client.post_form(f"/manage/teams/{team.id}", {
        "slug": "netz", "name": "Netzwerk", "email": "", "lead": "", "active": "y",
    })
    assert response.status_code == 302
    db.session.refresh(team)
    assert team.name == "Netzwerk" and team.email is None and team.lead is None
    body = text_of(admin_client.get("/manage/teams"))
    assert "Netzwerk" in body and "Service Desk" in body and "Standardteam" in body


def test_team_lead_must_be_ksm_staff(admin_client):
    requester = make_user(tenant=make_tenant())
    response = admin_client.post_form("/manage/teams/new", {
        "slug": "netz", "name": "Netzwerk", "lead": str(requester.id), "active": "y",
    })
    assert response.status_code == 422
    assert "Die Teamleitung muss ein aktives KSM-Konto sein." in text_of(response)
    assert count(Team) == 1


def test_team_email_is_validated_and_duplicate_slug_refused(admin_client):
    response = admin_client.post_form("/manage/teams/new", {"slug": "netz", "name": "Netz", "email": "kaputt@",
                                                           "active": "y"})
    assert response.status_code == 422 and "Ungültige E-Mail-Adresse" in text_of(response)
    response = admin_client.post_form("/manage/teams/new", {"slug": "service-desk", "name": "SD 2", "active": "y"})
    assert response.status_code == 422
    assert "Das Kürzel „service-desk“ ist bereits vergeben." in text_of(response)
    assert count(Team) == 1


def test_fallback_flag_moves_from_one_team_to_the_other(admin_client):
    desk = db.session.scalar(select(Team).where(Team.slug == "service-desk"))
    response = admin_client.post_form("/manage/teams/new", {
        "slug": "neuer-desk", "name": "Neuer Service Desk", "is_fallback": "y", "active": "y",
    })
    assert response.status_code == 302
    new_desk = db.session.scalar(select(Team).where(Team.slug == "neuer-desk"))
    db.session.refresh(desk)
    assert new_desk.is_fallback and not desk.is_fallback

    response = admin_client.post_form(f"/manage/teams/{desk.id}", {
        "slug": "service-desk", "name": "Service Desk", "is_fallback": "y", "active": "y",
    })
    assert response.status_code == 302
    db.session.refresh(desk)
    db.session.refresh(new_desk)
    assert desk.is_fallback and not new_desk.is_fallback
    assert count(Team, Team.is_fallback.is_(True)) == 1


# --- categories -------------------------------------------------------------------------------

def test_admin_builds_a_two_level_catalog_shown_as_a_tree(admin_client):
    response = admin_client.post_form("/manage/categories/new", {"name": "Hardware", "parent": "", "position": "10",
                                                                 "active": "y"})
    assert response.status_code == 302
    hardware = db.session.scalar(select(Category).where(Category.name == "Hardware"))
    response = admin_client.post_form("/manage/categories/new", {
        "name": "Drucker", "parent": str(hardware.id), "position": "1", "description": "Drucken, Scannen",
        "active": "y",
    })
    assert response.status_code == 302
    printer = db.session.scalar(select(Category).where(Category.name == "Drucker"))
    assert printer.parent == hardware and printer.description == "Drucken, Scannen"

    response = admin_client.post_form(f"/manage/categories/{printer.id}", {
        "name": "Drucker & Scanner", "parent": str(hardware.id), "position": "2",
    })
    assert response.status_code == 302
    db.session.refresh(printer)
    assert printer.name == "Drucker & Scanner" and printer.position == 2 and not printer.active
    body = text_of(admin_client.get("/manage/categories"))
    assert body.index("Hardware") < body.index("Drucker & Scanner")


def test_third_catalog_level_is_refused(admin_client):
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    response = admin_client.post_form("/manage/categories/new", {
        "name": "Laserdrucker", "parent": str(printer.id), "position": "0", "active": "y",
    })
    assert response.status_code == 422
    assert "nur zwei Ebenen" in text_of(response)
    assert count(Category) == 2


def test_category_with_children_cannot_become_a_subcategory(admin_client):
    hardware = make_category("Hardware")
    make_category("Drucker", parent=hardware)
    software = make_category("Software")
    response = admin_client.post_form(f"/manage/categories/{hardware.id}", {
        "name": "Hardware", "parent": str(software.id), "position": "0", "active": "y",
    })
    assert response.status_code == 422
    db.session.refresh(hardware)
    assert hardware.parent is None


def test_category_name_must_be_unique_under_its_parent(admin_client):
    hardware = make_category("Hardware")
    make_category("Drucker", parent=hardware)
    make_category("Software")
    response = admin_client.post_form("/manage/categories/new", {"name": "drucker", "parent": str(hardware.id),
                                                                 "position": "0", "active": "y"})
    assert response.status_code == 422
    assert "Unter „Hardware“ gibt es bereits eine Kategorie" in text_of(response)
    response = admin_client.post_form("/manage/categories/new", {"name": "Software", "parent": "", "position": "0",
                                                                 "active": "y"})
    assert response.status_code == 422
    response = admin_client.post_form("/manage/categories/new", {"name": "", "parent": "", "position": "0"})
    assert response.status_code == 422 and "Bitte geben Sie einen Namen an." in text_of(response)
    assert count(Category) == 3


# --- routing rules ----------------------------------------------------------------------------

def test_admin_creates_a_rule_and_the_list_says_which_tickets_it_catches(admin_client):
    network = make_team("netz", "Netzwerk")
    hardware = make_category("Hardware")
    response = admin_client.post_form("/manage/rules/new", {
        "name": "Hardware zum Netz", "team": str(network.id), "tenant": "", "category": str(hardware.id),
        "priority": "", "position": "10", "active": "y",
    })
    assert response.status_code == 302
    rule = db.session.scalar(select(RoutingRule))
    assert (rule.team, rule.category, rule.tenant, rule.priority, rule.position) == (network, hardware, None, None, 10)
    body = text_of(admin_client.get("/manage/rules"))
    assert "Mandant: alle · Kategorie: Hardware (inkl. Unterkategorien) · Priorität: alle → Team Netzwerk" in body


def test_rule_edit_changes_its_conditions(admin_client):
    network = make_team("netz", "Netzwerk")
    tenant = make_tenant("sn", "Schwerin")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    rule = make_rule(network, category=hardware)
    response = admin_client.post_form(f"/manage/rules/{rule.id}", {
        "name": "Drucker Schwerin P1", "team": str(network.id), "tenant": str(tenant.id),
        "category": str(printer.id), "priority": "1", "position": "5", "active": "y",
    })
    assert response.status_code == 302
    body = text_of(admin_client.get("/manage/rules"))
    assert "Mandant: Schwerin · Kategorie: Hardware > Drucker · Priorität: P1 → Team Netzwerk" in body


def test_rule_needs_an_active_team(admin_client):
    closed = make_team("alt", "Altes Team")
    closed.active = False
    db.session.commit()
    response = admin_client.post_form("/manage/rules/new", {"name": "Ohne Team", "team": "", "position": "1",
                                                            "active": "y"})
    assert response.status_code == 422
    assert "Bitte wählen Sie das Team" in text_of(response)
    response = admin_client.post_form("/manage/rules/new", {"name": "Inaktiv", "team": str(closed.id),
                                                            "position": "1", "active": "y"})
    assert response.status_code == 422
    assert "ist nicht aktiv" in text_of(response)
    assert count(RoutingRule) == 0


def test_of_two_matching_rules_the_lower_position_wins(admin_client):
    network = make_team("netz", "Netzwerk")
    printers = make_team("drucker", "Arbeitsplatz & Drucker")
    tenant = make_tenant("lup")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    for name, team, position in (("Hardware allgemein", network, "20"), ("Drucker zuerst", printers, "10")):
        response = admin_client.post_form("/manage/rules/new", {
            "name": name, "team": str(team.id), "category": str(hardware.id), "position": position, "active": "y",
        })
        assert response.status_code == 302

    result = admin_client.get("/manage/rules/test", query_string={
        "tenant": tenant.id, "category": printer.id, "priority": 3,
    })
    body = text_of(result)
    assert result.status_code == 200
    assert "Team: Arbeitsplatz & Drucker" in body and "Drucker zuerst" in body

    ticket = make_ticket(make_user(tenant=tenant), category=printer)
    assert ticket.team == printers


def test_route_test_without_matching_rule_names_the_fallback_team(admin_client):
    tenant = make_tenant()
    other = make_category("Sonstiges")
    body = text_of(admin_client.get("/manage/rules/test", query_string={
        "tenant": tenant.id, "category": other.id, "priority": 4,
    }))
    assert "Team: Service Desk" in body and "Keine Regel passt" in body


def test_route_test_asks_for_missing_values(admin_client):
    response = admin_client.get("/manage/rules/test", query_string={"tenant": "", "category": "", "priority": ""})
    assert response.status_code == 422
    assert "Bitte wählen Sie einen Mandanten." in text_of(response)


def test_rule_delete_removes_the_rule(admin_client):
    rule = make_rule(make_team("netz", "Netzwerk"), name="Weg damit")
    response = admin_client.post_form(f"/manage/rules/{rule.id}/delete")
    assert response.status_code == 302
    assert count(RoutingRule) == 0
    assert "Regel „Weg damit“ gelöscht." in text_of(admin_client.get("/manage/rules"))


def test_rule_delete_needs_post_with_csrf(admin_client):
    rule = make_rule(make_team("netz", "Netzwerk"))
    assert admin_client.get(f"/manage/rules/{rule.id}/delete").status_code == 405
    assert admin_client.post(f"/manage/rules/{rule.id}/delete").status_code == 400
    assert count(RoutingRule) == 1


# --- outbox -----------------------------------------------------------------------------------

def test_outbox_lists_queued_emails_and_shows_their_full_text(admin_client):
    requester = make_user(tenant=make_tenant(), email="rita@lup.example")
    ticket = make_ticket(requester, category=make_category("Hardware"), subject="Bildschirm flackert")
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id))

    body = text_of(admin_client.get("/manage/outbox"))
    assert "rita@lup.example" in body and message.subject in body and "wartet auf Versand" in body
    detail = text_of(admin_client.get(f"/manage/outbox/{message.id}"))
    assert message.body_text.strip().splitlines()[0] in detail
    assert ticket.number in detail


def test_outbox_filters_by_status(admin_client):
    requester = make_user(tenant=make_tenant(), email="rita@lup.example")
    make_ticket(requester, category=make_category())
    failed = make_user(tenant=make_tenant(), email="fehler@lup.example")
    make_ticket(failed, category=make_category())
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "fehler@lup.example"))
    message.status, message.last_error = "failed", "SMTPRecipientsRefused: 550"
    db.session.commit()

    body = text_of(admin_client.get("/manage/outbox", query_string={"status": "failed"}))
    assert "fehler@lup.example" in body and "SMTPRecipientsRefused: 550" in body
    assert "rita@lup.example" not in body


def test_retry_puts_a_failed_email_back_in_line(admin_client, frozen_now):
    requester = make_user(tenant=make_tenant())
    make_ticket(requester, category=make_category())
    message = db.session.scalar(select(OutboxMessage))
    message.status, message.attempts, message.last_error = "failed", 12, "ConnectionRefusedError"
    db.session.commit()

    response = admin_client.post_form(f"/manage/outbox/{message.id}/retry")
    assert response.status_code == 302
    db.session.refresh(message)
    assert message.status == "pending" and message.next_attempt_at == frozen_now()
    assert "erneut versendet" in text_of(admin_client.get(response.headers["Location"]))


def test_sent_email_is_not_sent_again(admin_client):
    requester = make_user(tenant=make_tenant())
    make_ticket(requester, category=make_category())
    message = db.session.scalar(select(OutboxMessage))
    message.status = "sent"
    db.session.commit()
    response = admin_client.post_form(f"/manage/outbox/{message.id}/retry", follow_redirects=True)
    assert "bereits versendet" in text_of(response)
    db.session.refresh(message)
    assert message.status == "sent"


# --- access -----------------------------------------------------------------------------------

GET_URLS = [
    "/manage/", "/manage/tenants", "/manage/tenants/new", "/manage/tenants/{tenant}", "/manage/users",
    "/manage/users/new", "/manage/users/{user}", "/manage/teams", "/manage/teams/new", "/manage/teams/{team}",
    "/manage/categories", "/manage/categories/new", "/manage/categories/{category}", "/manage/rules",
    "/manage/rules/new", "/manage/rules/{rule}", "/manage/rules/test", "/manage/outbox",
    "/manage/outbox/{message}",
]
POST_URLS = [
    "/manage/tenants/new", "/manage/tenants/{tenant}", "/manage/users/new", "/manage/users/{user}",
    "/manage/teams/new", "/manage/teams/{team}", "/manage/categories/new", "/manage/categories/{category}",
    "/manage/rules/new", "/manage/rules/{rule}", "/manage/rules/{rule}/delete", "/manage/outbox/{message}/retry",
]


@pytest.fixture
def objects(app):
    """One of each administered object, for URLs with ids."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    tenant = make_tenant("lup")
    category = make_category("Hardware")
    requester = make_user(tenant=tenant)
    make_ticket(requester, category=category)
    return {
        "tenant": tenant.id, "user": requester.id, "team": team.id, "category": category.id,
        "rule": make_rule(team).id, "message": db.session.scalar(select(OutboxMessage.id)),
    }


@pytest.mark.parametrize("role", ["agent", "requester", "tenant_manager", "team_lead", "service_manager"])
def test_every_manage_url_is_forbidden_for_everyone_but_admins(client, objects, role):
    tenant = db.session.get(Tenant, objects["tenant"]) if role in ("requester", "tenant_manager") else None
    sign_in(client, make_user(role, tenant=tenant))
    for url in GET_URLS:
        assert client.get(url.format(**objects)).status_code == 403, url
    for url in POST_URLS:
        assert client.post_form(url.format(**objects), {"name": "x", "slug": "x"}).status_code == 403, url
    assert count(RoutingRule) == 1 and count(Tenant) == 1


def test_every_manage_url_sends_anonymous_visitors_to_login(client, objects):
    for url in GET_URLS:
        response = client.get(url.format(**objects))
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
    for url in POST_URLS:
        response = client.post_form(url.format(**objects), {"name": "x", "slug": "x"})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
    assert count(RoutingRule) == 1 and count(Tenant) == 1


def test_every_manage_page_renders_for_an_admin(client, objects):
    sign_in(client, make_user("admin"))
    for url in GET_URLS:
        assert client.get(url.format(**objects)).status_code == 200, url



@pytest.mark.parametrize("slug", ["dashboard", "whatif", "sla"])
def test_tenant_slug_that_would_hide_a_report_page_is_refused(admin_client, slug):
    response = admin_client.post_form("/manage/tenants/new", {"slug": slug, "name": "Gemeinde", "active": "y"})

    assert response.status_code == 422
    assert "reserviert" in html.unescape(response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(Tenant)) == 0
