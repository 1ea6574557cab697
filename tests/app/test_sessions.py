"""Sessions end when they should: logout, password change, deactivation; production cookies and transport."""
from __future__ import annotations

import re

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from helpdesk import create_app
from helpdesk.extensions import db
from tests.builders import PASSWORD, make_team, make_tenant, make_user
from tests.conftest import _empty_all_tables, free_port, make_app

NEW_PASSWORD = "ein ganz neues Kennwort"


@pytest.fixture
def requester(app):
    """An employee of an authority (a fallback team exists, as in every installation)."""
    make_team("service-desk", "Service Desk", fallback=True)
    return make_user(tenant=make_tenant("lup"), name="Anna Schulz", email="anna@lup.example")


@pytest.fixture
def admin(app):
    """An administrator."""
    return make_user("admin", name="Ada Admin", email="admin@ksm.example")


def signed_in(app, user, *, remember: bool = False):
    """Return a new client logged in as `user` (with "Angemeldet bleiben" when `remember`)."""
    client = app.test_client()
    data = {"email": user.email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post_form("/login", data)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    client._token = None
    return client


def remember_cookie(client) -> str:
    """Return the value of the client's remember cookie."""
    cookie = client.get_cookie("remember_token")
    assert cookie is not None and cookie.value, "no remember cookie"
    return cookie.value


def client_with_remember_cookie(app, value: str):
    """Return a new client that carries only this remember cookie (a copy taken from another browser)."""
    client = app.test_client()
    client.set_cookie("remember_token", value)
    return client


def is_signed_in(client) -> bool:
    """Tell whether the client's next request is served as a logged-in user."""
    return client.get("/account").status_code == 200


def logout(client):
    """Press "Abmelden"."""
    return client.post_form("/logout")


def change_password(client, current: str = PASSWORD, new: str = NEW_PASSWORD):
    """Change one's own password on "Mein Konto"."""
    return client.post_form("/account", {"pw-current_password": current, "pw-new_password": new, "pw-confirm": new})


def admin_saves(client, user, **changes):
    """Save a user's form in the administration with some fields changed."""
    form = {"name": user.name, "email": user.email, "role": user.role, "tenant": str(user.tenant_id or ""),
            "password": "", "active": "y"}
    form.update(changes)
    if form.get("active") is None:
        form.pop("active")
    page = client.get("/manage/").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post_form(f"/manage/users/{user.id}", form)


# --- logout ------------------------------------------------------------------------------------

def test_a_copied_remember_cookie_no_longer_logs_in_after_logout(app, requester):
    browser = signed_in(app, requester, remember=True)
    stolen = remember_cookie(browser)
    assert is_signed_in(client_with_remember_cookie(app, stolen))

    assert logout(browser).status_code == 302

    assert not is_signed_in(browser)
    assert not is_signed_in(client_with_remember_cookie(app, stolen))


def test_a_copied_session_cookie_no_longer_logs_in_after_logout(app, requester):
    browser = signed_in(app, requester)
    stolen = browser.get_cookie("session").value

    logout(browser)

    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert not is_signed_in(thief)


def test_logging_in_again_after_logout_works_with_and_without_remember(app, requester):
    browser = signed_in(app, requester, remember=True)
    logout(browser)

    again = signed_in(app, requester, remember=True)

    assert is_signed_in(again)
    assert is_signed_in(client_with_remember_cookie(app, remember_cookie(again)))


# --- password change -----------------------------------------------------------------------------

def test_a_password_change_logs_out_every_other_session_but_not_the_current_one(app, requester):
    laptop = signed_in(app, requester)
    phone = signed_in(app, requester, remember=True)
    old_phone_cookie = remember_cookie(phone)

    response = change_password(laptop)

    assert response.status_code == 302
    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not is_signed_in(client_with_remember_cookie(app, old_phone_cookie))


def test_the_current_session_gets_a_working_remember_cookie_after_a_password_change(app, requester):
    laptop = signed_in(app, requester, remember=True)
    old_cookie = remember_cookie(laptop)

    change_password(laptop)

    new_cookie = remember_cookie(laptop)
    assert new_cookie != old_cookie
    assert is_signed_in(client_with_remember_cookie(app, new_cookie))
    assert not is_signed_in(client_with_remember_cookie(app, old_cookie))


def test_a_refused_password_change_keeps_the_other_sessions(app, requester):
    laptop = signed_in(app, requester)
    phone = signed_in(app, requester, remember=True)

    response = change_password(laptop, current="falsches Passwort")

    assert response.status_code == 422
    assert is_signed_in(phone)


# --- the administration ------------------------------------------------------------------------

def test_an_admin_setting_a_new_password_logs_the_user_out_everywhere(app, requester, admin):
    browser = signed_in(app, requester, remember=True)
    cookie = remember_cookie(browser)
    admin_client = signed_in(app, admin)

    response = admin_saves(admin_client, requester, password=NEW_PASSWORD)

    assert response.status_code == 302
    assert not is_signed_in(browser)
    assert not is_signed_in(client_with_remember_cookie(app, cookie))
    assert is_signed_in(admin_client)


def test_an_admin_editing_a_user_without_a_new_password_keeps_the_users_sessions(app, requester, admin):
    browser = signed_in(app, requester, remember=True)
    admin_client = signed_in(app, admin)

    assert admin_saves(admin_client, requester, phone="0385 123").status_code == 302

    assert is_signed_in(browser)


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_old_cookies(app, requester, admin):
    browser = signed_in(app, requester, remember=True)
    cookie = remember_cookie(browser)
    admin_client = signed_in(app, admin)

    assert admin_saves(admin_client, requester, active=None).status_code == 302
    assert not is_signed_in(client_with_remember_cookie(app, cookie))
    assert admin_saves(admin_client, requester, active="y").status_code == 302

    assert not is_signed_in(browser)
    assert not is_signed_in(client_with_remember_cookie(app, cookie))
    assert is_signed_in(signed_in(app, requester))


def test_an_admin_changing_their_own_password_in_the_administration_stays_signed_in(app, admin):
    admin_client = signed_in(app, admin)
    other_browser = signed_in(app, admin, remember=True)

    assert admin_saves(admin_client, admin, password=NEW_PASSWORD).status_code == 302

    assert is_signed_in(admin_client)
    assert not is_signed_in(other_browser)


def test_a_session_from_before_the_upgrade_without_a_version_is_not_accepted(app, requester):
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["_user_id"] = str(requester.id)  # what Flask-Login stored before session versions existed
        session["_fresh"] = True

    assert not is_signed_in(browser)


# --- production: cookies and transport -----------------------------------------------------------

@pytest.fixture
def production(monkeypatch, backend, database_url, tmp_path, redis_limits):
    """Return a function that builds the app as HELPDESK_ENV=production would, with shared limits in Redis."""
    url = database_url(backend)  # migrated by a development app, before production is switched on
    monkeypatch.setenv("HELPDESK_ENV", "production")
    contexts = []

    def build(**overrides):
        settings = {"RATELIMIT_STORAGE_URI": redis_limits.url,
                    "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": redis_limits.prefix}, **overrides}
        app = make_app(url, tmp_path, **settings)
        context = app.app_context()
        context.push()  # the test client forgets cached users on `g` of the app context
        contexts.append(context)
        _empty_all_tables()
        return app

    yield build
    for context in reversed(contexts):
        db.session.remove()
        db.engine.dispose()
        context.pop()


def set_cookies(response) -> dict[str, str]:
    """Return the Set-Cookie headers of a response by cookie name."""
    return {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}


def test_production_sends_session_and_remember_cookies_only_over_https(production):
    app = production()
    make_team("service-desk", "Service Desk", fallback=True)
    user = make_user(tenant=make_tenant("lup"), email="anna@lup.example")

    response = app.test_client().post_form("/login", {"email": user.email, "password": PASSWORD, "remember": "y"})

    assert response.status_code == 302
    cookies = set_cookies(response)
    for name in ("session", "remember_token"):
        assert "Secure" in cookies[name].split("; "), cookies[name]
        assert "HttpOnly" in cookies[name]


def test_production_sends_strict_transport_security_for_at_least_a_year(production):
    response = production().test_client().get("/login")

    header = response.headers.get("Strict-Transport-Security", "")
    max_age = re.search(r"max-age=(\d+)", header)
    assert max_age and int(max_age.group(1)) >= 365 * 24 * 3600, header


def test_development_sends_no_strict_transport_security_and_plain_cookies(client):
    response = client.get("/login")

    assert "Strict-Transport-Security" not in response.headers
    assert "Secure" not in set_cookies(response)["session"].split("; ")


def test_behind_one_proxy_the_forwarded_client_address_and_scheme_are_honoured(production):
    app = production(PROXY_COUNT="1")  # HELPDESK_PROXY_COUNT=1
    seen = {}

    @app.get("/_probe")
    def probe():
        from flask import request

        seen.update(addr=request.remote_addr, scheme=request.scheme)
        return "ok"

    app.test_client().get("/_probe", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
                          environ_base={"REMOTE_ADDR": "10.0.0.2"})

    assert seen == {"addr": "203.0.113.7", "scheme": "https"}
    assert isinstance(app.wsgi_app, ProxyFix)


def test_without_a_proxy_count_forwarded_headers_are_ignored(production):
    app = production()
    seen = {}

    @app.get("/_probe")
    def probe():
        from flask import request

        seen.update(addr=request.remote_addr, scheme=request.scheme)
        return "ok"

    app.test_client().get("/_probe", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
                          environ_base={"REMOTE_ADDR": "10.0.0.2"})

    assert seen == {"addr": "10.0.0.2", "scheme": "http"}


def test_a_proxy_count_that_is_not_a_number_stops_the_start_with_a_message(production):
    with pytest.raises(RuntimeError, match="HELPDESK_PROXY_COUNT"):
        production(PROXY_COUNT="zwei")


# --- production: shared rate limit storage ---------------------------------------------------------

@pytest.mark.parametrize("storage", [None, "", "memory://"])
def test_production_refuses_to_start_without_shared_rate_limit_storage(monkeypatch, tmp_path, storage):
    from tests.support import app_config

    monkeypatch.setenv("HELPDESK_ENV", "production")
    settings = {**app_config(f"sqlite:///{tmp_path / 'x.sqlite'}", tmp_path), "RATELIMIT_STORAGE_URI": storage}

    with pytest.raises(RuntimeError, match="HELPDESK_RATELIMIT_STORAGE_URI") as refusal:
        create_app(settings)
    assert "redis://" in str(refusal.value)


def test_while_redis_is_unreachable_logins_are_still_answered_and_throttled_per_process(production):
    from helpdesk.extensions import limiter

    app = production(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    make_team("service-desk", "Service Desk", fallback=True)
    user = make_user(tenant=make_tenant("lup"), email="anna@lup.example")
    client = app.test_client()
    try:
        statuses = [client.post_form("/login", {"email": user.email, "password": "falsch"}).status_code
                    for _ in range(6)]
    finally:
        limiter._storage_dead = False  # the one limiter object outlives this app: later apps start healthy

    assert statuses == [200] * 5 + [429]
