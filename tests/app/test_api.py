"""The JSON API under /api/v1: every endpoint per role, tenant isolation, errors, idempotency, rate limit."""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Attachment, Comment, IdempotencyRecord, OutboxMessage, Ticket
from helpdesk.services import api_tokens, tickets
from tests.builders import at, make_category, make_policy, make_rule, make_team, make_tenant, make_ticket, make_user

NOW = at("2026-03-05 09:00")


@pytest.fixture
def world(app, frozen_now):
    """Two authorities with tickets, two teams with a routing rule, an agent; a token per person."""
    frozen_now(NOW)
    desk = make_team("service-desk", "Service Desk", fallback=True)
    printers = make_team("drucker", "Arbeitsplatz & Drucker")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    other = make_category("Sonstiges")
    make_rule(printers, category=hardware, name="Hardware an Drucker-Team")
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    schwerin = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    requester = make_user(tenant=lup, name="Erika Muster", email="erika@lup.example")
    colleague = make_user(tenant=lup, name="Max Kollege", email="max@lup.example")
    manager = make_user("tenant_manager", tenant=lup, name="Petra Leitung")
    foreigner = make_user(tenant=schwerin, name="Sven Schwerin", email="sven@schwerin.example")
    agent = make_user("agent", teams=[desk, printers], name="Anna Agentin")
    own = make_ticket(requester, category=printer, subject="Drucker im Bürgerbüro", now=NOW - timedelta(hours=3))
    colleagues = make_ticket(colleague, category=other, subject="Frage zum Fachverfahren", now=NOW - timedelta(hours=2))
    foreign = make_ticket(foreigner, category=other, subject="Schweriner Ticket", now=NOW - timedelta(hours=1))
    w = SimpleNamespace(desk=desk, printers=printers, hardware=hardware, printer=printer, other=other, lup=lup,
                        schwerin=schwerin, requester=requester, colleague=colleague, manager=manager,
                        foreigner=foreigner, agent=agent, own=own, colleagues=colleagues, foreign=foreign)
    w.headers = {}
    for name in ("requester", "colleague", "manager", "foreigner", "agent"):
        _token, secret = api_tokens.create_token(getattr(w, name), name=f"{name} token", expires_at=None, now=NOW)
        w.headers[name] = {"Authorization": f"Bearer {secret}"}
    return w


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"]
    return body


def _numbers(response) -> set[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {t["number"] for t in response.get_json()["items"]}


def _ticket_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket))


# --- reading tickets per role ---------------------------------------------------------------------


def test_requester_lists_only_own_tickets(client, world):
    assert _numbers(client.get("/api/v1/tickets", headers=world.headers["requester"])) == {world.own.number}


def test_tenant_manager_lists_the_whole_authority_but_never_a_foreign_ticket(client, world):
    numbers = _numbers(client.get("/api/v1/tickets", headers=world.headers["manager"]))
    assert numbers == {world.own.number, world.colleagues.number}


def test_tenant_filter_for_a_foreign_tenant_returns_nothing_to_a_tenant_user(client, world):
    response = client.get("/api/v1/tickets?tenant=schwerin", headers=world.headers["manager"])
    assert _numbers(response) == set()


def test_agent_lists_all_tenants_and_filters_by_tenant_slug_or_id(client, world):
    assert len(_numbers(client.get("/api/v1/tickets", headers=world.headers["agent"]))) == 3
    by_slug = _numbers(client.get("/api/v1/tickets?tenant=schwerin", headers=world.headers["agent"]))
    by_id = _numbers(client.get(f"/api/v1/tickets?tenant={world.schwerin.id}", headers=world.headers["agent"]))
    assert by_slug == by_id == {world.foreign.number}
    assert _numbers(client.get("/api/v1/tickets?tenant=unbekannt", headers=world.headers["agent"])) == set()


def test_ticket_list_filters_by_status_priority_team_category_and_updated_since(client, world):
    headers = world.headers["agent"]
    tickets.change_status(world.agent, world.foreign, "pending", NOW)
    assert _numbers(client.get("/api/v1/tickets?status=pending", headers=headers)) == {world.foreign.number}
    assert _numbers(client.get(f"/api/v1/tickets?team={world.printers.id}", headers=headers)) == {world.own.number}
    # A top-level category also finds tickets filed under its subcategories.
    assert _numbers(client.get(f"/api/v1/tickets?category={world.hardware.id}", headers=headers)) == {world.own.number}
    assert _numbers(client.get(f"/api/v1/tickets?priority={world.own.priority}", headers=headers)) >= {world.own.number}
    since = (NOW - timedelta(minutes=90)).isoformat()
    assert _numbers(client.get("/api/v1/tickets", query_string={"updated_since": since}, headers=headers)) == {
        world.foreign.number}


def test_ticket_list_pages_with_an_opaque_cursor_without_gaps_or_repeats(client, world):
    for n in range(4):
        make_ticket(world.requester, category=world.other, subject=f"Weitere Störung {n}", now=NOW - timedelta(minutes=n))
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/tickets", query_string=query, headers=world.headers["agent"]).get_json()
        seen += [t["number"] for t in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 7
    updated = [t.updated_at for t in db.session.scalars(select(Ticket).where(Ticket.number.in_(seen)))]
    assert len(updated) == 7
    ascending = client.get("/api/v1/tickets?sort=updated&limit=1", headers=world.headers["agent"]).get_json()
    assert ascending["items"][0]["number"] == world.own.number


def test_ticket_list_rejects_a_limit_above_100_and_a_forged_cursor_naming_the_field(client, world):
    body = _problem(client.get("/api/v1/tickets?limit=101", headers=world.headers["agent"]), 422)
    assert "limit" in body["errors"]
    body = _problem(client.get("/api/v1/tickets?cursor=bm9wZQ", headers=world.headers["agent"]), 422)
    assert "cursor" in body["errors"]
    body = _problem(client.get("/api/v1/tickets?updated_since=2026-03-05T09:00:00", headers=world.headers["agent"]), 422)
    assert "updated_since" in body["errors"]


def test_get_ticket_shows_it_to_its_requester_and_hides_foreign_ones_as_404(client, world):
    response = client.get(f"/api/v1/tickets/{world.own.number}", headers=world.headers["requester"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["subject"] == "Drucker im Bürgerbüro" and body["team"]["name"] == "Arbeitsplatz & Drucker"
    assert body["tenant"]["slug"] == "lup" and body["requester"]["email"] == "erika@lup.example"
    for who, number in (("requester", world.colleagues.number), ("requester", world.foreign.number),
                        ("manager", world.foreign.number), ("foreigner", world.own.number)):
        _problem(client.get(f"/api/v1/tickets/{number}", headers=world.headers[who]), 404)
    _problem(client.get("/api/v1/tickets/KSM-2026-999999", headers=world.headers["agent"]), 404)


def test_tenant_user_cannot_reach_comments_attachments_or_sla_of_a_foreign_ticket(client, world):
    for suffix in ("comments", "attachments", "sla"):
        _problem(client.get(f"/api/v1/tickets/{world.foreign.number}/{suffix}", headers=world.headers["manager"]), 404)
    _problem(client.post(f"/api/v1/tickets/{world.foreign.number}/comments", json={"body": "Hallo"},
                         headers=world.headers["manager"]), 404)
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0


# --- creating tickets -----------------------------------------------------------------------------


def test_requester_creates_a_ticket_for_themselves_through_the_api(client, world):
    response = client.post("/api/v1/tickets", headers=world.headers["requester"], json={
        "subject": "Monitor flackert", "description": "Seit dem Update.", "category_id": world.printer.id,
        "impact": 2, "urgency": 1, "requester_email": "max@lup.example"})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/tickets/{body['number']}"
    ticket = db.session.scalars(select(Ticket).where(Ticket.number == body["number"])).one()
    assert ticket.requester == world.requester and ticket.channel == "api" and ticket.priority == 2


def test_agent_creates_a_ticket_for_a_named_requester_and_must_name_one(client, world):
    data = {"subject": "Netzwerk gestört", "description": "Kein Zugriff.", "category_id": world.other.id}
    body = _problem(client.post("/api/v1/tickets", json=data, headers=world.headers["agent"]), 422)
    assert "requester_email" in body["errors"]
    body = _problem(client.post("/api/v1/tickets", json={**data, "requester_id": world.agent.id},
                                headers=world.headers["agent"]), 422)
    assert "requester_id" in body["errors"]
    response = client.post("/api/v1/tickets", json={**data, "requester_email": "SVEN@schwerin.example"},
                           headers=world.headers["agent"])
    assert response.status_code == 201
    assert response.get_json()["tenant"]["slug"] == "schwerin"
    assert response.get_json()["requester"]["name"] == "Sven Schwerin"


def test_invalid_create_answers_422_problem_naming_each_field(client, world):
    body = _problem(client.post("/api/v1/tickets", json={"subject": "", "impact": 7, "bogus": 1},
                                headers=world.headers["requester"]), 422)
    assert {"subject", "description", "category_id", "impact", "bogus"} <= set(body["errors"])
    assert "subject" in body["detail"]
    body = _problem(client.post("/api/v1/tickets", json={"subject": "x", "description": "y", "category_id": 999999},
                                headers=world.headers["requester"]), 422)
    assert list(body["errors"]) == ["category_id"]
    _problem(client.post("/api/v1/tickets", data="{kaputt", content_type="application/json",
                         headers=world.headers["requester"]), 400)
    assert _ticket_count() == 3


def test_a_ticket_created_via_the_api_is_routed_timed_and_emailed_like_one_from_the_browser(client, world):
    make_policy(world.lup)
    data = {"subject": "Drucker druckt nicht", "description": "Papierstau.", "category_id": world.printer.id,
            "impact": 1, "urgency": 2}
    via_api = client.post("/api/v1/tickets", json=data, headers=world.headers["requester"])
    assert via_api.status_code == 201
    api_ticket = db.session.scalars(select(Ticket).where(Ticket.number == via_api.get_json()["number"])).one()

    browser = world.requester
    client.login(browser)
    page = client.get("/portal/tickets/new").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post_form("/portal/tickets/new", {"category": str(world.printer.id), "impact": "1",
                                                        "urgency": "2", "subject": data["subject"],
                                                        "description": data["description"]})
    assert response.status_code == 302
    web_ticket = db.session.scalars(select(Ticket).where(Ticket.channel == "web").order_by(Ticket.id.desc())).first()

    assert api_ticket.team == web_ticket.team == world.printers
    assert api_ticket.priority == web_ticket.priority
    assert api_ticket.first_response_due_at is not None
    assert api_ticket.first_response_due_at == web_ticket.first_response_due_at
    assert api_ticket.resolution_due_at == web_ticket.resolution_due_at
    assert api_ticket.sla_version_id == web_ticket.sla_version_id is not None
    kinds = {t.id: db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.ticket_id == t.id)).all()
             for t in (api_ticket, web_ticket)}
    assert kinds[api_ticket.id] == kinds[web_ticket.id] == ["ticket_created"]
    assert via_api.get_json()["first_response_due_at"] is not None


# --- idempotency ----------------------------------------------------------------------------------


def test_two_posts_with_the_same_idempotency_key_create_one_ticket(client, world):
    data = {"subject": "Server down", "description": "Ping schlägt fehl.", "category_id": world.other.id}
    headers = {**world.headers["requester"], "Idempotency-Key": "monitoring-4711"}
    first = client.post("/api/v1/tickets", json=data, headers=headers)
    second = client.post("/api/v1/tickets", json=data, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["number"] == second.get_json()["number"]
    assert first.headers["Location"] == second.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _ticket_count() == 4
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "ticket_created")) == 4


def test_reusing_an_idempotency_key_with_another_body_is_refused(client, world):
    data = {"subject": "Server down", "description": "Ping schlägt fehl.", "category_id": world.other.id}
    headers = {**world.headers["requester"], "Idempotency-Key": "k-1"}
    assert client.post("/api/v1/tickets", json=data, headers=headers).status_code == 201
    body = _problem(client.post("/api/v1/tickets", json={**data, "subject": "Anders"}, headers=headers), 422)
    assert body["detail"] == "Idempotency-Key reused with a different request"
    assert "Idempotency-Key" in body["errors"]
    assert _ticket_count() == 4


def test_idempotency_keys_belong_to_one_user(client, world):
    data = {"subject": "Server down", "description": "Ping schlägt fehl.", "category_id": world.other.id}
    for who in ("requester", "colleague"):
        response = client.post("/api/v1/tickets", json=data, headers={**world.headers[who], "Idempotency-Key": "same"})
        assert response.status_code == 201
    assert _ticket_count() == 5


def test_a_refused_create_does_not_use_up_the_idempotency_key(client, world):
    headers = {**world.headers["requester"], "Idempotency-Key": "retry-after-fix"}
    data = {"subject": "Server down", "description": "Ping schlägt fehl.", "category_id": 999999}
    _problem(client.post("/api/v1/tickets", json=data, headers=headers), 422)
    assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    # The same key with the same (still invalid) body is evaluated again, not replayed.
    _problem(client.post("/api/v1/tickets", json=data, headers=headers), 422)


def test_idempotent_comment_is_added_once(client, world):
    headers = {**world.headers["requester"], "Idempotency-Key": "comment-1"}
    url = f"/api/v1/tickets/{world.own.number}/comments"
    first = client.post(url, json={"body": "Noch da?"}, headers=headers)
    second = client.post(url, json={"body": "Noch da?"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 1


# --- updating tickets -----------------------------------------------------------------------------


def test_requester_and_tenant_manager_may_not_patch_a_ticket(client, world):
    for who in ("requester", "manager"):
        body = _problem(client.patch(f"/api/v1/tickets/{world.own.number}", json={"status": "resolved"},
                                     headers=world.headers[who]), 403)
        assert body["detail"]
    db.session.refresh(world.own)
    assert world.own.status == "new"


def test_agent_patches_category_team_assignee_priority_and_status(client, world):
    response = client.patch(f"/api/v1/tickets/{world.foreign.number}", headers=world.headers["agent"], json={
        "category_id": world.printer.id, "team_id": world.printers.id, "assignee_id": world.agent.id,
        "priority": 1, "reason": "Ganze Dienststelle betroffen", "status": "pending"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["category"]["id"] == world.printer.id and body["team"]["id"] == world.printers.id
    assert body["assignee"]["name"] == "Anna Agentin" and body["priority"] == 1 and body["status"] == "pending"
    assert body["priority_overridden"] is True
    response = client.patch(f"/api/v1/tickets/{world.foreign.number}", json={"assignee_id": None},
                            headers=world.headers["agent"])
    assert response.get_json()["assignee"] is None


def test_refused_patch_answers_422_naming_the_field(client, world):
    body = _problem(client.patch(f"/api/v1/tickets/{world.own.number}", json={"status": "closed"},
                                 headers=world.headers["agent"]), 422)
    assert list(body["errors"]) == ["status"]
    body = _problem(client.patch(f"/api/v1/tickets/{world.own.number}", json={"team_id": 999999},
                                 headers=world.headers["agent"]), 422)
    assert list(body["errors"]) == ["team_id"]
    body = _problem(client.patch(f"/api/v1/tickets/{world.own.number}", json={"assignee_id": world.requester.id},
                                 headers=world.headers["agent"]), 422)
    assert list(body["errors"]) == ["assignee_id"]
    body = _problem(client.patch(f"/api/v1/tickets/{world.own.number}", json={"priority": 9},
                                 headers=world.headers["agent"]), 422)
    assert list(body["errors"]) == ["priority"]


# --- comments -------------------------------------------------------------------------------------


def test_internal_notes_are_for_staff_only(client, world):
    url = f"/api/v1/tickets/{world.own.number}/comments"
    assert client.post(url, json={"body": "Intern: Techniker informiert", "internal": True},
                       headers=world.headers["agent"]).status_code == 201
    assert client.post(url, json={"body": "Wir kümmern uns."}, headers=world.headers["agent"]).status_code == 201
    _problem(client.post(url, json={"body": "Geheim", "internal": True}, headers=world.headers["requester"]), 403)

    seen_by_requester = client.get(url, headers=world.headers["requester"]).get_json()
    seen_by_manager = client.get(url, headers=world.headers["manager"]).get_json()
    seen_by_agent = client.get(url, headers=world.headers["agent"]).get_json()
    assert [c["body"] for c in seen_by_requester] == [c["body"] for c in seen_by_manager] == ["Wir kümmern uns."]
    assert [c["internal"] for c in seen_by_agent] == [True, False]
    assert seen_by_agent[1]["author"]["name"] == "Anna Agentin"


def test_requester_reply_via_the_api_reopens_a_pending_ticket(client, world):
    tickets.change_status(world.agent, world.own, "pending", NOW)
    response = client.post(f"/api/v1/tickets/{world.own.number}/comments", json={"body": "Hier die Info."},
                           headers=world.headers["requester"])
    assert response.status_code == 201 and response.get_json()["internal"] is False
    db.session.refresh(world.own)
    assert world.own.status == "open"


def test_empty_comment_is_refused_naming_body(client, world):
    body = _problem(client.post(f"/api/v1/tickets/{world.own.number}/comments", json={"body": ""},
                                headers=world.headers["requester"]), 422)
    assert "body" in body["errors"]


# --- attachments ----------------------------------------------------------------------------------


def test_upload_list_and_download_an_attachment(client, world):
    url = f"/api/v1/tickets/{world.own.number}/attachments"
    response = client.post(url, headers=world.headers["requester"],
                           data={"file": (io.BytesIO(b"log line 1\n"), "fehler.log")}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    item = response.get_json()[0]
    assert item["filename"] == "fehler.log" and item["size"] == 11 and item["internal"] is False
    listed = client.get(url, headers=world.headers["manager"]).get_json()
    assert [a["id"] for a in listed] == [item["id"]]
    download = client.get(item["content_url"], headers=world.headers["requester"])
    assert download.status_code == 200 and download.data == b"log line 1\n"
    download.close()
    _problem(client.get(item["content_url"], headers=world.headers["foreigner"]), 404)
    _problem(client.get(item["content_url"]), 401)


def test_internal_attachment_is_hidden_from_tenant_users(client, world):
    url = f"/api/v1/tickets/{world.own.number}/attachments"
    response = client.post(url, headers=world.headers["agent"], content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"intern"), "intern.txt"), "internal": "true"})
    assert response.status_code == 201
    item = response.get_json()[0]
    assert client.get(url, headers=world.headers["requester"]).get_json() == []
    _problem(client.get(item["content_url"], headers=world.headers["requester"]), 404)
    download = client.get(item["content_url"], headers=world.headers["agent"])
    assert download.data == b"intern"
    download.close()
    _problem(client.post(url, headers=world.headers["requester"], content_type="multipart/form-data",
                         data={"file": (io.BytesIO(b"x"), "x.txt"), "internal": "true"}), 403)


def test_oversized_or_missing_file_is_refused_as_a_problem(app, client, world):
    app.config["MAX_ATTACHMENT_BYTES"] = 10
    url = f"/api/v1/tickets/{world.own.number}/attachments"
    body = _problem(client.post(url, headers=world.headers["requester"], content_type="multipart/form-data",
                                data={"file": (io.BytesIO(b"x" * 11), "gross.bin")}), 422)
    assert "file" in body["errors"]
    body = _problem(client.post(url, headers=world.headers["requester"], content_type="multipart/form-data",
                                data={"internal": "false"}), 422)
    assert "file" in body["errors"]
    app.config["MAX_CONTENT_LENGTH"] = 100
    _problem(client.post(url, headers=world.headers["requester"], content_type="multipart/form-data",
                         data={"file": (io.BytesIO(b"x" * 500), "riesig.bin")}), 413)
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


# --- catalog, teams, SLA --------------------------------------------------------------------------


def test_categories_and_teams_are_listed_for_every_role(client, world):
    for who in ("requester", "manager", "agent"):
        categories = client.get("/api/v1/categories", headers=world.headers[who]).get_json()
        assert {"Hardware > Drucker", "Sonstiges"} <= {c["full_name"] for c in categories}
        teams = client.get("/api/v1/teams", headers=world.headers[who]).get_json()
        assert [t["name"] for t in teams] == ["Arbeitsplatz & Drucker", "Service Desk"]


def test_sla_state_shows_targets_due_used_and_policy_version(client, world, frozen_now):
    make_policy(world.lup)
    frozen_now(at("2026-03-05 09:00"))
    ticket = make_ticket(world.requester, category=world.printer, impact=1, urgency=1, now=at("2026-03-05 09:00"))
    frozen_now(at("2026-03-05 09:20"))
    body = client.get(f"/api/v1/tickets/{ticket.number}/sla", headers=world.headers["requester"]).get_json()
    assert body["policy_version"] == 1 and body["breached"] is False and body["paused"] is False
    assert body["state"] in ("ok", "warning")
    first = next(t for t in body["targets"] if t["target"] == "first_response")
    assert first["target_seconds"] == 30 * 60 and first["used_seconds"] == 20 * 60
    assert first["running"] is True and first["policy_version"] == 1 and first["outcome"] is None
    assert body["due"]["first_response"] == first["due_at"]

    frozen_now(at("2026-03-05 10:00"))
    body = client.get(f"/api/v1/tickets/{ticket.number}/sla", headers=world.headers["agent"]).get_json()
    assert body["state"] == "breached"


def test_sla_state_of_a_tenant_without_contract_says_none(client, world):
    body = client.get(f"/api/v1/tickets/{world.foreign.number}/sla", headers=world.headers["foreigner"]).get_json()
    assert body["policy_version"] is None and body["state"] == "none" and body["targets"] == []


# --- authentication, errors, rate limit, documents ------------------------------------------------


def test_a_browser_session_cookie_does_not_authenticate_the_api(client, world):
    client.login(world.agent)
    body = _problem(client.get("/api/v1/tickets"), 401)
    assert client.get("/api/v1/tickets").headers["WWW-Authenticate"].startswith("Bearer")
    assert body["detail"]
    # ... and an API POST needs no CSRF token, because only the bearer token counts.
    response = client.post(f"/api/v1/tickets/{world.own.number}/comments", json={"body": "Per API"},
                           headers=world.headers["agent"])
    assert response.status_code == 201


def test_unknown_api_urls_and_methods_answer_problems_while_the_site_keeps_html(client, world):
    _problem(client.get("/api/v1/gibt-es-nicht", headers=world.headers["agent"]), 404)
    response = client.delete(f"/api/v1/tickets/{world.own.number}", headers=world.headers["agent"])
    _problem(response, 405)
    assert "PATCH" in response.headers["Allow"]
    assert client.get("/gibt-es-nicht").mimetype == "text/html"


def test_rate_limit_per_token_answers_429_problem_with_retry_after(app, client, world):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert client.get("/api/v1/teams", headers=world.headers["requester"]).status_code == 200
    response = client.get("/api/v1/teams", headers=world.headers["requester"])
    body = _problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 0
    assert body["detail"]
    # Another token has its own budget.
    assert client.get("/api/v1/teams", headers=world.headers["manager"]).status_code == 200


def test_openapi_document_is_generated_with_paths_schemas_and_bearer_auth(client, app):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = json.loads(response.get_data(as_text=True))
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/tickets", "/api/v1/tickets/{number}", "/api/v1/tickets/{number}/comments",
            "/api/v1/tickets/{number}/attachments", "/api/v1/attachments/{attachment_id}/content",
            "/api/v1/categories", "/api/v1/teams", "/api/v1/tickets/{number}/sla"} <= set(spec["paths"])
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/tickets"])
    assert "patch" in spec["paths"]["/api/v1/tickets/{number}"]
    assert {"Ticket", "TicketCreate", "TicketPage", "Comment", "Problem", "SlaState"} <= set(spec["components"]["schemas"])
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    error = spec["components"]["responses"]["UNPROCESSABLE_ENTITY"]["content"]
    assert "application/problem+json" in error


def test_docs_page_lists_every_operation_from_the_spec_without_scripts(client, app):
    response = client.get("/api/v1/docs")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in ("GET /api/v1/tickets", "POST /api/v1/tickets", "PATCH /api/v1/tickets/{number}",
                 "GET /api/v1/tickets/{number}/sla", "TicketCreate", "Idempotency-Key", "updated_since"):
        assert text in page, text
    assert "<script>" not in page and "cdn" not in page.lower()


def test_a_key_whose_request_created_nothing_yet_gets_409_not_a_second_ticket(client, world):
    from helpdesk.services import idempotency

    data = {"subject": "Server down", "description": "Ping schlägt fehl.", "category_id": world.other.id}
    fingerprint = idempotency.fingerprint("POST", "/api/v1/tickets", data)
    idempotency.claim(world.requester, "crashed", fingerprint, NOW, resource_type="ticket")
    db.session.commit()  # a claim that names no created ticket: its request is still running
    idempotency.release()

    response = client.post("/api/v1/tickets", json=data, headers={**world.headers["requester"], "Idempotency-Key": "crashed"})

    _problem(response, 409)
    assert _ticket_count() == 3


def _crash_before_the_answer_is_stored(monkeypatch, send):
    """Send a request whose process dies right after the create committed, before its answer was stored."""
    from helpdesk.services import idempotency

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed before the answer was stored")

    with monkeypatch.context() as patch:
        patch.setattr(idempotency, "complete", killed)
        assert send().status_code == 500


def test_a_retry_after_a_crash_before_the_answer_was_stored_gets_the_ticket_created_first(client, world, monkeypatch):
    data = {"subject": "Server down", "description": "Ping schlägt fehl.", "category_id": world.other.id}
    headers = {**world.headers["requester"], "Idempotency-Key": "crash-ticket"}
    _crash_before_the_answer_is_stored(monkeypatch, lambda: client.post("/api/v1/tickets", json=data, headers=headers))
    assert _ticket_count() == 4
    created = db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()

    retry = client.post("/api/v1/tickets", json=data, headers=headers)

    assert retry.status_code == 201, retry.get_data(as_text=True)
    assert retry.get_json()["number"] == created.number
    assert retry.headers["Location"] == f"/api/v1/tickets/{created.number}"
    assert retry.get_json() == client.get(retry.headers["Location"], headers=world.headers["requester"]).get_json()
    again = client.post("/api/v1/tickets", json=data, headers=headers)
    assert again.status_code == 201 and again.get_json() == retry.get_json()
    assert _ticket_count() == 4


def test_a_retry_after_a_crash_gets_the_comment_and_the_files_created_first(client, world, monkeypatch):
    comments = f"/api/v1/tickets/{world.own.number}/comments"
    headers = {**world.headers["requester"], "Idempotency-Key": "crash-comment"}
    _crash_before_the_answer_is_stored(monkeypatch, lambda: client.post(comments, json={"body": "Noch da?"}, headers=headers))
    retry = client.post(comments, json={"body": "Noch da?"}, headers=headers)
    assert retry.status_code == 201, retry.get_data(as_text=True)
    assert retry.get_json() == client.get(comments, headers=world.headers["requester"]).get_json()[0]
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 1

    files = f"/api/v1/tickets/{world.own.number}/attachments"
    headers = {**world.headers["requester"], "Idempotency-Key": "crash-upload"}

    def upload():
        return client.post(files, headers=headers, content_type="multipart/form-data",
                           data={"file": [(io.BytesIO(b"eins"), "a.log"), (io.BytesIO(b"zwei"), "b.log")]})

    _crash_before_the_answer_is_stored(monkeypatch, upload)
    retry = upload()
    assert retry.status_code == 201, retry.get_data(as_text=True)
    assert [a["filename"] for a in retry.get_json()] == ["a.log", "b.log"]
    assert retry.get_json() == client.get(files, headers=world.headers["requester"]).get_json()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 2
