"""Forgotten passwords: a single-use, time-limited link by email; the page never tells whether an account exists."""
from __future__ import annotations

import re
import time
from datetime import timedelta

from sqlalchemy import select

from helpdesk.clock import utcnow
from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, User
from helpdesk.services.outbox import deliver_due
from tests.builders import PASSWORD, make_team, make_tenant, make_user

NEW_PASSWORD = "Kaffeemaschine im dritten Stock tropft"
_LINK = re.compile(r"http://[^\s]+/password/reset/[A-Za-z0-9._\-]+")


def setup_requester():
    make_team("service-desk", fallback=True)
    return make_user(tenant=make_tenant("lup"), name="Anna Schulz", email="anna@lup.example")


def reset_mails(address: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.recipient == address, OutboxMessage.kind == "password_reset")))


def ask_for_link(client, email: str):
    return client.post_form("/password/forgot", {"email": email})


def link_for(address: str) -> str:
    (mail,) = reset_mails(address)
    return _LINK.search(mail.body_text).group(0).removeprefix("http://127.0.0.1:5000")


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3] if link.startswith("http") else link


def test_the_login_page_offers_the_forgotten_password_form(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in page
    assert "Passwort vergessen?" in page


def test_the_answer_is_the_same_for_known_and_unknown_addresses(app, client):
    setup_requester()

    known = ask_for_link(client, "Anna@LUP.example")
    known_page = client.get(known.headers["Location"]).get_data(as_text=True)
    unknown = ask_for_link(client, "niemand@lup.example")
    unknown_page = client.get(unknown.headers["Location"]).get_data(as_text=True)

    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]
    assert "Wenn zu dieser Adresse ein Konto besteht" in known_page
    assert "Wenn zu dieser Adresse ein Konto besteht" in unknown_page
    assert len(reset_mails("anna@lup.example")) == 1
    assert reset_mails("niemand@lup.example") == []


def test_the_link_arrives_by_email_and_sets_a_new_password_once(app, client, smtp_server):
    user = setup_requester()
    other_browser = app.test_client()
    other_browser.login(user)

    ask_for_link(client, user.email)
    deliver_due(utcnow() + timedelta(minutes=1))
    (delivered,) = smtp_server.to("anna@lup.example")
    text = delivered.get_body(("plain",)).get_content()
    link = path_of(_LINK.search(text).group(0))

    form = client.get(link)
    assert form.status_code == 200 and "anna@lup.example" in form.get_data(as_text=True)
    saved = client.post_form(link, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/login")

    # The other browser is signed out, the old password no longer works, the new one does.
    assert other_browser.get("/account").status_code != 200
    assert app.test_client().post_form("/login", {"email": user.email, "password": PASSWORD}).status_code == 200
    client.login(user, password=NEW_PASSWORD)
    # The same link a second time is refused.
    again = app.test_client().get(link)
    assert again.status_code == 302 and again.headers["Location"].endswith("/password/forgot")


def test_a_weak_password_shows_the_form_again_and_the_link_stays_valid(app, client):
    user = setup_requester()
    ask_for_link(client, user.email)
    link = path_of(link_for(user.email))

    refused = client.post_form(link, {"new_password": "passwort123", "confirm": "passwort123"})

    assert refused.status_code == 422
    assert "zu leicht zu erraten" in refused.get_data(as_text=True)
    assert client.get(link).status_code == 200
    client.login(user)  # the old password still works


def test_a_tampered_or_expired_link_is_refused(app, client):
    user = setup_requester()
    ask_for_link(client, user.email)
    link = path_of(link_for(user.email))

    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(forged).headers["Location"].endswith("/password/forgot")
    assert client.post_form(forged, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    db.session.expire_all()
    client.login(user)  # unchanged

    app.config["PASSWORD_RESET_HOURS"] = 1 / 3600  # one second
    time.sleep(2.1)
    expired = client.get(link)
    assert expired.status_code == 302 and expired.headers["Location"].endswith("/password/forgot")


def test_no_link_for_a_deactivated_account(app, client):
    user = setup_requester()
    user.active = False
    db.session.commit()

    ask_for_link(client, user.email)

    assert reset_mails(user.email) == []


def test_a_caller_created_by_phone_can_set_a_first_password(app, client):
    make_team("service-desk", fallback=True)
    caller = make_user(tenant=make_tenant("lup"), name="Neu Anrufer", email="neu@lup.example")
    caller.password_hash = "!no-password"
    db.session.commit()

    ask_for_link(client, caller.email)
    link = path_of(link_for(caller.email))
    assert client.post_form(link, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302

    client.login(db.session.get(User, caller.id), password=NEW_PASSWORD)


def test_requests_for_one_address_are_throttled(app, client):
    setup_requester()
    statuses = [ask_for_link(client, "anna@lup.example").status_code for _ in range(6)]

    assert statuses[:5] == [302] * 5
    assert statuses[5] == 429
    assert len(reset_mails("anna@lup.example")) == 5
