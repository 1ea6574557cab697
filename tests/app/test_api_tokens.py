"""Personal API tokens: created and revoked in "Mein Konto", shown once, stored hashed; 401 for bad tokens."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import ApiToken
from helpdesk.services import api_tokens
from helpdesk.services.errors import DomainError, NotFound
from tests.builders import at, make_tenant, make_user

NOW = at("2026-03-05 09:00")


@pytest.fixture
def people(app, frozen_now):
    frozen_now(NOW)
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    return make_user(tenant=tenant, name="Erika Muster"), make_user("agent", name="Anna Agentin")


def _text(response) -> str:
    return response.get_data(as_text=True)


def _login(client, user) -> None:
    client.login(user)
    page = _text(client.get("/account/tokens"))
    client._token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def _bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


# --- the token page -------------------------------------------------------------------------------


def test_account_page_links_to_the_api_tokens(client, people):
    client.login(people[0])
    page = _text(client.get("/account"))
    assert "API-Zugänge" in page and "/account/tokens" in page


def test_created_token_is_shown_once_stored_hashed_and_works(client, people):
    requester, _agent = people
    _login(client, requester)

    response = client.post_form("/account/tokens", {"name": "Fachverfahren Einwohnerwesen"})

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = _text(response)
    secret = re.search(r'value="(ksm_[A-Za-z0-9_\-]+)"', page).group(1)
    assert "nur dieses eine Mal angezeigt" in page
    token = db.session.scalars(select(ApiToken)).one()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (token.token_prefix, token.token_hash) and secret.startswith(token.token_prefix)
    assert token.user_id == requester.id and token.expires_at is None

    listing = _text(client.get("/account/tokens"))
    assert "Fachverfahren Einwohnerwesen" in listing and token.token_prefix in listing
    assert secret not in listing
    assert client.get("/api/v1/tickets", headers=_bearer(secret)).status_code == 200


def test_token_with_expiry_date_is_valid_through_that_berlin_day(client, people):
    _login(client, people[0])
    client.post_form("/account/tokens", {"name": "Kurzzeit", "expires_on": "2026-03-10"})
    token = db.session.scalars(select(ApiToken)).one()
    assert token.expires_at == at("2026-03-10 22:59:59")


def test_token_form_errors_are_shown_with_422(client, people):
    _login(client, people[0])
    response = client.post_form("/account/tokens", {"name": ""})
    assert response.status_code == 422 and "Bitte geben Sie einen Namen ein." in _text(response)
    response = client.post_form("/account/tokens", {"name": "Alt", "expires_on": "2026-03-01"})
    assert response.status_code == 422 and "Das Ablaufdatum muss in der Zukunft liegen." in _text(response)
    assert db.session.scalars(select(ApiToken)).all() == []


def test_revoked_token_is_refused_and_listed_as_revoked(client, people):
    requester, _agent = people
    token, secret = api_tokens.create_token(requester, name="Monitoring", expires_at=None, now=NOW)
    _login(client, requester)

    response = client.post_form(f"/account/tokens/{token.id}/revoke")

    assert response.status_code == 302
    page = _text(client.get(response.headers["Location"]))
    assert "wurde widerrufen" in page and "widerrufen am" in page
    response = client.get("/api/v1/tickets", headers=_bearer(secret))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_nobody_can_revoke_someone_elses_token(client, people):
    requester, agent = people
    token, secret = api_tokens.create_token(agent, name="Agent", expires_at=None, now=NOW)
    _login(client, requester)
    assert client.post_form(f"/account/tokens/{token.id}/revoke").status_code == 404
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 400  # no CSRF token
    db.session.refresh(token)
    assert token.revoked_at is None


def test_token_page_needs_a_login(client, people):
    response = client.get("/account/tokens")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- authenticating API requests ------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer ksm_doesnotexist", "Bearer nope"])
def test_missing_or_malformed_token_answers_401_problem(client, people, header):
    response = client.get("/api/v1/tickets", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json(force=True)["status"] == 401


def test_expired_token_answers_401(client, people, frozen_now):
    _token, secret = api_tokens.create_token(people[0], name="Kurz", expires_at=NOW + timedelta(hours=1), now=NOW)
    assert client.get("/api/v1/teams", headers=_bearer(secret)).status_code == 200
    frozen_now(NOW + timedelta(hours=1))
    assert client.get("/api/v1/teams", headers=_bearer(secret)).status_code == 401


def test_token_of_a_deactivated_user_answers_401(client, people):
    requester, _agent = people
    _token, secret = api_tokens.create_token(requester, name="Alt", expires_at=None, now=NOW)
    requester.active = False
    db.session.commit()
    assert client.get("/api/v1/teams", headers=_bearer(secret)).status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute(client, people, frozen_now):
    token, secret = api_tokens.create_token(people[0], name="Zähler", expires_at=None, now=NOW)
    client.get("/api/v1/teams", headers=_bearer(secret))
    db.session.refresh(token)
    assert token.last_used_at == NOW
    frozen_now(NOW + timedelta(seconds=30))
    client.get("/api/v1/teams", headers=_bearer(secret))
    db.session.refresh(token)
    assert token.last_used_at == NOW
    frozen_now(NOW + timedelta(minutes=2))
    client.get("/api/v1/teams", headers=_bearer(secret))
    db.session.refresh(token)
    assert token.last_used_at == NOW + timedelta(minutes=2)


def test_create_token_service_refuses_blank_names_and_past_expiry(people):
    with pytest.raises(DomainError) as error:
        api_tokens.create_token(people[0], name="  ", expires_at=None, now=NOW)
    assert error.value.field == "name"
    with pytest.raises(DomainError) as error:
        api_tokens.create_token(people[0], name="x", expires_at=NOW, now=NOW)
    assert error.value.field == "expires_at"
    with pytest.raises(NotFound):
        api_tokens.revoke_token(people[0], 4711, NOW)
