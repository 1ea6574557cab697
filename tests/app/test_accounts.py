"""Signing in and out, throttling, the session cookie, one's own password and language."""
from __future__ import annotations

import html
import re

import pytest
from flask import g

from helpdesk.extensions import db
from tests.builders import PASSWORD, make_team, make_tenant, make_user

WRONG = "E-Mail-Adresse oder Passwort ist falsch."


@pytest.fixture
def requester(app):
    """An employee of an authority (a fallback team exists, as in every installation)."""
    make_team("service-desk", "Service Desk", fallback=True)
    return make_user(tenant=make_tenant("lup"), name="Anna Schulz", email="anna@lup.example")


def text(response) -> str:
    """Return the page text."""
    return response.get_data(as_text=True)


def attempt(client, email: str, password: str, url: str = "/login"):
    """Submit the login form once."""
    return client.post_form(url, {"email": email, "password": password})


def fresh(client, url: str):
    """GET a page as a new request sees it.

    The `app` fixture keeps one app context pushed, and Flask reuses it for every test request, so
    `g` outlives a request: drop what Flask-Babel (the locale) and Flask-Login (the user) cached there.
    """
    g.pop("_flask_babel", None)
    g.pop("_login_user", None)
    return client.get(url)


def page_token(client, url: str = "/account") -> str:
    """Return the CSRF token of a page's first form."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text(client.get(url))).group(1)


def test_login_leads_to_the_start_page_and_logout_ends_the_session(client, requester):
    response = client.login(requester)
    assert response.headers["Location"].endswith("/portal/tickets")
    assert client.get("/account").status_code == 200

    response = client.post("/logout", data={"csrf_token": page_token(client)})

    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert "Sie wurden abgemeldet." in text(client.get("/login"))
    assert client.get("/account").status_code == 302


def test_logout_by_get_is_not_allowed(client, requester):
    client.login(requester)

    assert client.get("/logout").status_code == 405
    assert client.get("/account").status_code == 200


def test_wrong_password_is_refused_with_a_message(client, requester):
    response = attempt(client, requester.email, "falsches Passwort")

    assert response.status_code == 200
    assert WRONG in text(response)
    assert client.get("/account").status_code == 302


def test_unknown_email_gets_the_same_message_as_a_wrong_password(client, requester):
    response = attempt(client, "niemand@lup.example", PASSWORD)

    assert response.status_code == 200 and WRONG in text(response)


def test_sixth_attempt_after_five_failures_is_refused_even_with_the_right_password(client, requester):
    for _ in range(5):
        assert attempt(client, requester.email, "falsches Passwort").status_code == 200

    response = attempt(client, requester.email, PASSWORD)

    assert response.status_code == 429
    assert "Zu viele Versuche" in text(response)
    assert "Bitte warten Sie einige Minuten" in text(response)
    assert client.get("/account").status_code == 302


def test_failures_on_one_account_do_not_lock_out_a_colleague(client, requester):
    colleague = make_user(tenant=requester.tenant, email="klaus@lup.example")
    for _ in range(5):
        attempt(client, requester.email, "falsches Passwort")

    client.login(colleague)


def test_successful_logins_do_not_count_towards_the_limit(client, requester):
    for _ in range(6):
        client.login(requester)
        client.post("/logout", data={"csrf_token": page_token(client)})

    client.login(requester)


def test_session_cookie_is_http_only_and_same_site_lax(client, requester):
    response = client.post_form("/login", {"email": requester.email, "password": PASSWORD, "remember": "y"})

    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in ("session", "remember_token"):
        assert "HttpOnly" in cookies[name]
        assert "SameSite=Lax" in cookies[name]


def test_password_change_with_a_wrong_current_password_is_refused(client, requester):
    client.login(requester)

    response = client.post_form("/account", {"pw-current_password": "falsches Passwort",
                                             "pw-new_password": "ein neues Passwort",
                                             "pw-confirm": "ein neues Passwort"})

    assert response.status_code == 422
    assert "Das aktuelle Passwort ist falsch." in text(response)


def test_password_change_to_a_too_short_password_is_refused(client, requester):
    client.login(requester)

    response = client.post_form("/account", {"pw-current_password": PASSWORD, "pw-new_password": "kurz",
                                             "pw-confirm": "kurz"})

    assert response.status_code == 422
    assert "Mindestens 10 Zeichen." in text(response)


def test_password_change_with_a_mistyped_repetition_is_refused(client, requester):
    client.login(requester)

    response = client.post_form("/account", {"pw-current_password": PASSWORD, "pw-new_password": "ein neues Passwort",
                                             "pw-confirm": "ein anderes Passwort"})

    assert response.status_code == 422
    assert "Die Passwörter stimmen nicht überein." in text(response)


def test_after_a_password_change_only_the_new_password_works(client, requester):
    client.login(requester)

    response = client.post_form("/account", {"pw-current_password": PASSWORD, "pw-new_password": "ein neues Passwort",
                                             "pw-confirm": "ein neues Passwort"}, follow_redirects=True)
    assert "Ihr Passwort wurde geändert." in text(response)
    client.post("/logout", data={"csrf_token": page_token(client)})

    assert WRONG in text(attempt(client, requester.email, PASSWORD))
    client.login(requester, password="ein neues Passwort")


def test_language_switch_to_english_is_stored_on_the_user(client, requester):
    client.login(requester)

    response = client.post_form("/account/language", {"lang-locale": "en", "next": "/account"})

    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    db.session.refresh(requester)
    assert requester.locale == "en"
    assert '<html lang="en">' in text(fresh(client, "/account"))


def test_chosen_language_applies_again_at_the_next_login(client, requester):
    requester.locale = "en"
    db.session.commit()

    client.login(requester)

    assert '<html lang="en">' in text(fresh(client, "/account"))


def test_language_can_be_switched_before_login(client, requester):
    response = client.post_form("/account/language", {"lang-locale": "en"})

    assert response.status_code == 302
    assert '<html lang="en">' in text(fresh(client, "/login"))


@pytest.mark.parametrize("target", ["http://evil.example/", "//evil.example/", "/\\evil.example/",
                                    "/\t/evil.example/", "https:evil.example"])
def test_login_ignores_a_next_parameter_pointing_to_another_site(client, requester, target):
    response = client.post_form("/login", {"email": requester.email, "password": PASSWORD},
                                query_string={"next": target})

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/portal/tickets")
    assert "evil" not in response.headers["Location"]


def test_login_follows_a_next_parameter_within_the_site(client, requester):
    response = client.post_form("/login", {"email": requester.email, "password": PASSWORD},
                                query_string={"next": "/account"})

    assert response.headers["Location"].endswith("/account")


def test_inactive_user_cannot_log_in(client, requester):
    requester.active = False
    db.session.commit()

    response = attempt(client, requester.email, PASSWORD)

    assert response.status_code == 200 and WRONG in text(response)
    assert client.get("/account").status_code == 302


def test_user_deactivated_while_signed_in_is_signed_out(client, requester):
    client.login(requester)
    requester.active = False
    db.session.commit()

    assert fresh(client, "/account").status_code == 302


def test_login_without_csrf_token_is_refused(client, requester):
    response = client.post("/login", data={"email": requester.email, "password": PASSWORD})

    assert response.status_code == 400
    assert client.get("/account").status_code == 302


# --- password policy -------------------------------------------------------------------------------

GUESSABLE = "Dieses Passwort ist zu leicht zu erraten"


def change_to(client, new: str):
    """Try to change one's own password to `new`."""
    return client.post_form("/account", {"pw-current_password": PASSWORD, "pw-new_password": new, "pw-confirm": new})


@pytest.mark.parametrize("password, reason", [
    ("1234567890", "Es gehört zu den hundert häufigsten Passwörtern."),
    ("iloveyou2026", "Es ähnelt einem häufig verwendeten Passwort."),
    ("passwort123", "Es enthält ein Wort, das Angreifer zuerst versuchen, etwa „Passwort“"),
    ("Michael1234", "Häufige Vor- und Nachnamen sind leicht zu erraten."),
    ("qwertzuiop", "Es ist ein sehr häufiges Passwort."),
    ("aaaaaaaaaaaa", "Wiederholungen wie „aaa“ sind leicht zu erraten."),
])
def test_a_common_password_is_refused_with_the_reason_in_german(client, requester, password, reason):
    client.login(requester)

    response = change_to(client, password)

    assert response.status_code == 422
    page = html.unescape(text(response))
    assert GUESSABLE in page and reason in page
    db.session.refresh(requester)
    client.post("/logout", data={"csrf_token": page_token(client)})
    client.login(requester)  # the old password still works


@pytest.mark.parametrize("password", ["anna.schulz1", "AnnaSchulz2026", "Schulz.Anna.lup"])
def test_a_password_made_of_ones_own_name_or_email_is_refused(client, requester, password):
    client.login(requester)

    response = change_to(client, password)

    assert response.status_code == 422
    assert "Es enthält Ihren Namen, Ihre E-Mail-Adresse" in html.unescape(text(response))


def test_a_password_made_of_the_services_name_is_refused(client, requester):
    client.login(requester)

    response = change_to(client, "Helpdesk2026!")

    assert response.status_code == 422
    assert GUESSABLE in html.unescape(text(response))


def test_a_long_passphrase_is_accepted(client, requester):
    client.login(requester)

    response = change_to(client, "Kaffeetasse-Regen-Blau")

    assert response.status_code == 302


def test_an_admin_cannot_give_an_account_a_guessable_password(client, requester):
    from helpdesk.services import accounts
    from helpdesk.services.errors import DomainError

    with pytest.raises(DomainError, match=GUESSABLE):
        accounts.save_user(None, email="neu@lup.example", name="Neu Mann", role="requester",
                           tenant=requester.tenant, password="1234567890")
    with pytest.raises(DomainError, match="Es enthält Ihren Namen"):
        accounts.save_user(requester, email=requester.email, name=requester.name, role="requester",
                           tenant=requester.tenant, password="anna.schulz1")


def test_the_administration_refuses_a_guessable_password_with_the_reason(app, requester):
    admin = make_user("admin", name="Ada Admin", email="admin@ksm.example")
    browser = app.test_client()
    browser.login(admin)
    browser._token = re.search(r'name="csrf_token" value="([^"]+)"', text(browser.get("/manage/"))).group(1)

    response = browser.post_form("/manage/users/new", {
        "name": "Erika Muster", "email": "erika.muster@lup.example", "role": "requester",
        "tenant": str(requester.tenant_id), "password": "ErikaMuster2026", "active": "y"})

    assert response.status_code == 422
    assert "Es enthält Ihren Namen, Ihre E-Mail-Adresse" in html.unescape(text(response))


def test_the_command_line_refuses_a_guessable_password_with_the_reason(app, requester):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "neu@lup.example", "--name", "Neu Mann", "--role", "requester",
              "--tenant", "lup"], env={"HELPDESK_PASSWORD": "1234567890"})

    assert result.exit_code != 0
    assert GUESSABLE in result.output and "Es gehört zu den hundert häufigsten Passwörtern." in result.output


def test_every_zxcvbn_warning_has_a_german_sentence():
    import inspect

    import zxcvbn.feedback

    from helpdesk.services.accounts import ZXCVBN_WARNINGS

    source = inspect.getsource(zxcvbn.feedback)
    warnings = set(re.findall(r"warning = _\((['\"])(.+?)\1\)", source)) | set(
        re.findall(r"'warning': _\((['\"])(.+?)\1\)", source))
    english = {text.replace("\\'", "'") for _, text in warnings}
    assert english, "zxcvbn's feedback module changed shape"
    missing = {text for text in english if not any(key.startswith(text) for key in ZXCVBN_WARNINGS)}
    assert not missing


def test_the_demo_and_test_passwords_meet_the_policy(app):
    from helpdesk.demo import PASSWORD as DEMO_PASSWORD
    from helpdesk.services import accounts

    accounts.validate_password(DEMO_PASSWORD, user_inputs=["admin@ksm.example", "Ada Admin"])
    accounts.validate_password(PASSWORD, user_inputs=["anna@lup.example", "Anna Schulz"])


# --- language --------------------------------------------------------------------------------------

def test_language_chosen_on_the_login_page_is_kept_after_login(client, requester):
    assert requester.locale == "de"
    client.post_form("/account/language", {"lang-locale": "en"})

    client.login(requester)

    assert '<html lang="en">' in text(fresh(client, "/account"))
    db.session.refresh(requester)
    assert requester.locale == "en"


def test_a_language_left_in_the_session_by_the_previous_user_does_not_change_the_next_users(app, requester):
    colleague = make_user(tenant=requester.tenant, email="klaus@lup.example", locale="en")
    browser = app.test_client()
    browser.login(colleague)
    browser.post("/logout", data={"csrf_token": page_token(browser)})

    browser.login(requester)

    assert '<html lang="de">' in text(fresh(browser, "/account"))
    db.session.refresh(requester)
    assert requester.locale == "de"


def test_language_switch_ignores_a_referer_of_another_site(client, requester):
    response = client.post_form("/account/language", {"lang-locale": "en"},
                                headers={"Referer": "https://evil.example/phish"})

    assert response.status_code == 302
    assert "evil" not in response.headers["Location"]


def test_language_switch_returns_to_the_page_it_came_from_on_this_site(client, requester):
    response = client.post_form("/account/language", {"lang-locale": "en"},
                                headers={"Referer": "http://localhost/login?next=%2Faccount"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Faccount"
