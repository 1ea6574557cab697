"""The requester lookup of the agent's intake form: type-ahead endpoint, no-JS search step, new callers."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import event, select

from helpdesk.extensions import db
from helpdesk.models import Ticket, User
from helpdesk.services import accounts, people
from tests.builders import make_category, make_team, make_tenant, make_user


@pytest.fixture
def world(app):
    """Two authorities with requesters, an inactive one, a KSM agent and a catalog entry."""
    desk = make_team("service-desk", "Service Desk", fallback=True)
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    schwerin = make_tenant("sn", "Landeshauptstadt Schwerin")
    closed = make_tenant("alt", "Amt Altkreis")
    closed.active = False
    agent = make_user("agent", teams=[desk], name="Anna Agentin", email="anna.agentin@ksm.example")
    rita = make_user(tenant=lup, name="Rita Richter", email="rita.richter@lup.example")
    sven = make_user(tenant=schwerin, name="Sven Stadt", email="sven@schwerin.example")
    manager = make_user("tenant_manager", tenant=schwerin, name="Mara Managerin", email="mara@schwerin.example")
    gone = make_user(tenant=lup, name="Rita Ruhestand", email="ruhestand@lup.example")
    gone.active = False
    old = make_user(tenant=closed, name="Rita Altamt", email="rita@alt.example")
    db.session.commit()
    return SimpleNamespace(desk=desk, lup=lup, schwerin=schwerin, closed=closed, agent=agent, rita=rita, sven=sven,
                           manager=manager, gone=gone, old=old, lan=make_category("Netzwerk"))


def sign_in(client, user) -> None:
    """Log in and take the CSRF token from the intake form."""
    client.login(user)
    page = client.get("/agent/tickets/new").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def lookup(client, **args) -> list[str]:
    """Return the names the type-ahead endpoint answers."""
    response = client.get("/agent/people", query_string=args)
    assert response.status_code == 200
    return [person["name"] for person in response.get_json()["people"]]


def ticket_form(world, **fields) -> dict:
    """Return a complete intake form with the given fields changed."""
    return {"channel": "phone", "category_id": str(world.lan.id), "impact": "2", "urgency": "2",
            "subject": "Kein Netz", "description": "Telefonisch: alle PCs offline.", **fields}


def add_requesters(tenant, count: int) -> None:
    """Store many requesters at once (no password hashing: they never log in here)."""
    db.session.add_all(User(email=f"bulk{tenant.id}-{n}@example.org", name=f"Bulk Person {n:04d}", role="requester",
                            tenant=tenant, password_hash="!") for n in range(count))
    db.session.commit()


# --- the type-ahead endpoint ---------------------------------------------------------------------

def test_lookup_finds_requesters_by_part_of_the_name(client, world):
    sign_in(client, world.agent)

    assert lookup(client, q="richt") == ["Rita Richter"]
    assert lookup(client, q="RITA") == ["Rita Richter"]  # not the inactive person, not the closed authority


def test_lookup_finds_requesters_by_part_of_the_email_address(client, world):
    sign_in(client, world.agent)

    assert lookup(client, q="schwerin.exa") == ["Mara Managerin", "Sven Stadt"]


def test_lookup_finds_requesters_by_authority_and_narrows_with_more_words(client, world):
    sign_in(client, world.agent)

    assert lookup(client, q="Landeshauptstadt") == ["Mara Managerin", "Sven Stadt"]
    assert lookup(client, q="schwerin sven") == ["Sven Stadt"]
    assert lookup(client, q="a", tenant=str(world.schwerin.id)) == []  # too short to search
    assert lookup(client, q="ma", tenant=str(world.schwerin.id)) == ["Mara Managerin"]


def test_lookup_never_offers_staff_and_shows_only_name_email_and_authority(client, world):
    sign_in(client, world.agent)

    response = client.get("/agent/people?q=anna")
    assert response.get_json() == {"people": [], "more": False}
    person = client.get("/agent/people?q=sven").get_json()["people"][0]
    assert person == {"id": world.sven.id, "name": "Sven Stadt", "email": "sven@schwerin.example",
                      "tenant_id": world.schwerin.id, "tenant": "Landeshauptstadt Schwerin"}


def test_lookup_answers_at_most_20_people_and_says_there_are_more(client, world):
    add_requesters(world.lup, 30)
    sign_in(client, world.agent)

    body = client.get("/agent/people?q=bulk").get_json()

    assert len(body["people"]) == 20 and body["more"] is True
    assert [p["name"] for p in body["people"]] == [f"Bulk Person {n:04d}" for n in range(20)]


def test_lookup_treats_wildcards_and_odd_input_as_plain_text(client, world):
    sign_in(client, world.agent)

    assert lookup(client, q="%%") == []
    assert lookup(client, q="__") == []
    assert lookup(client, q="r" * 5000) == []
    # An authority id that does not parse filters nothing; prefix hits come first.
    assert lookup(client, q="ri", tenant="²") == lookup(client, q="ri", tenant="abc") == [
        "Rita Richter", "Mara Managerin", "Sven Stadt"]


@pytest.mark.parametrize("role", ["requester", "tenant_manager"])
def test_tenant_users_are_refused_on_the_lookup(client, world, role):
    user = world.rita if role == "requester" else world.manager
    client.login(user)

    response = client.get("/agent/people?q=sven")

    assert response.status_code == 403
    assert "sven@schwerin.example" not in response.get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_the_login_instead_of_the_lookup(client, world):
    response = client.get("/agent/people?q=sven")

    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- the form without JavaScript -----------------------------------------------------------------

def test_the_intake_form_lists_nobody_until_a_search_and_asks_for_the_description_before_triage(client, world):
    sign_in(client, world.agent)

    html = client.get("/agent/tickets/new").get_data(as_text=True)

    assert "Rita Richter" not in html and "Sven Stadt" not in html
    assert html.index('name="description"') < html.index('name="category_id"') < html.index('name="impact"')
    assert html.index('name="description"') < html.index('name="urgency"')


def test_the_search_step_shows_matches_as_choices_and_keeps_what_was_typed(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(world, action="search", q="sven",
                                                                  description="Alles offline seit 8 Uhr"))

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'name="requester_id" value="{world.sven.id}"' in html and "Rita Richter" not in html
    assert 'value="sven"' in html and "Alles offline seit 8 Uhr" in html
    assert db.session.scalars(select(Ticket)).all() == []


def test_the_search_step_also_works_as_a_plain_link(client, world):
    sign_in(client, world.agent)

    html = client.get(f"/agent/tickets/new?q=rita&tenant={world.lup.id}").get_data(as_text=True)

    assert f'value="{world.rita.id}"' in html and "Rita Ruhestand" not in html and "Rita Altamt" not in html


def test_a_search_without_matches_offers_the_new_caller_filled_in(client, world):
    sign_in(client, world.agent)

    html = client.post_form("/agent/tickets/new", ticket_form(world, action="search", q="neu@lup.example",
                                                              tenant=str(world.lup.id))).get_data(as_text=True)

    assert "Keine Person gefunden." in html
    assert re.search(r'name="new_email"[^>]*value="neu@lup.example"', html)


def test_a_search_of_one_letter_asks_for_more(client, world):
    sign_in(client, world.agent)

    html = client.post_form("/agent/tickets/new", ticket_form(world, action="search", q="r")).get_data(as_text=True)

    assert "Bitte geben Sie mindestens 2 Zeichen ein." in html


def test_the_chosen_person_files_the_ticket(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(world, requester_id=str(world.sven.id)))

    ticket = db.session.scalars(select(Ticket)).one()
    assert response.status_code == 302
    assert ticket.requester_id == world.sven.id and ticket.tenant_id == world.schwerin.id


@pytest.mark.parametrize("bad", ["999999", "abc", "²", "-1", "99999999999999"])
def test_a_bad_chosen_id_gives_the_form_again_with_a_german_message(client, world, bad):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(world, requester_id=bad, subject="Drucker"))

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert ("Diese Person kann nicht gewählt werden." in html
            or "Bitte wählen Sie die anfragende Person einer Behörde." in html)
    assert 'value="Drucker"' in html
    assert db.session.scalars(select(Ticket)).all() == []


@pytest.mark.parametrize("who", ["agent", "gone", "old"])
def test_staff_inactive_people_and_closed_authorities_cannot_be_chosen(client, world, who):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(world, requester_id=str(getattr(world, who).id)))

    assert response.status_code == 422
    assert "Diese Person kann nicht gewählt werden." in response.get_data(as_text=True)
    assert db.session.scalars(select(Ticket)).all() == []


def test_a_refused_ticket_keeps_the_chosen_person_checked(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(world, requester_id=str(world.rita.id), subject=" "))

    assert response.status_code == 422
    assert re.search(rf'value="{world.rita.id}" checked', response.get_data(as_text=True))


# --- new callers ---------------------------------------------------------------------------------

def test_a_new_caller_is_created_in_the_chosen_authority_and_gets_the_ticket(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(
        world, requester_id="new", new_name="  Nina   Neu ", new_email="Nina.Neu@LUP.example",
        new_tenant_id=str(world.lup.id)))

    assert response.status_code == 302
    caller = accounts.find_user_by_email("nina.neu@lup.example")
    ticket = db.session.scalars(select(Ticket)).one()
    assert caller.name == "Nina Neu" and caller.role == "requester" and caller.tenant_id == world.lup.id
    assert ticket.requester_id == caller.id and ticket.tenant_id == world.lup.id
    assert not accounts.check_password(caller, "")  # no password: an administrator sets one if needed


def test_a_new_caller_with_a_known_address_is_refused_with_the_existing_person_named(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(
        world, requester_id="new", new_name="Sven Zwei", new_email="SVEN@schwerin.example",
        new_tenant_id=str(world.lup.id)))

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Diese E-Mail-Adresse ist bereits vergeben: Sven Stadt (Landeshauptstadt Schwerin)." in html
    assert db.session.scalars(select(Ticket)).all() == []
    assert db.session.scalar(select(User).where(User.name == "Sven Zwei")) is None


@pytest.mark.parametrize("fields, message", [
    ({"new_name": "", "new_email": "x@lup.example"}, "Bitte geben Sie den Namen der anrufenden Person an."),
    ({"new_name": "X", "new_email": ""}, "Bitte geben Sie die E-Mail-Adresse der anrufenden Person an."),
    ({"new_name": "X", "new_email": "kein-at"}, "Ungültige E-Mail-Adresse"),
    ({"new_name": "X", "new_email": "x@lup.example", "new_tenant_id": ""}, "Bitte wählen Sie die Behörde"),
])
def test_a_new_caller_needs_a_name_an_address_and_an_authority(client, world, fields, message):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(
        world, requester_id="new", **{"new_tenant_id": str(world.lup.id), **fields}))

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalars(select(Ticket)).all() == []


def test_a_refused_ticket_does_not_leave_the_new_caller_behind(client, world):
    sign_in(client, world.agent)

    response = client.post_form("/agent/tickets/new", ticket_form(
        world, requester_id="new", new_name="Nina Neu", new_email="nina@lup.example",
        new_tenant_id=str(world.lup.id), category_id="999999"))

    assert response.status_code == 422
    assert accounts.find_user_by_email("nina@lup.example") is None


# --- cost does not grow with the number of requesters ------------------------------------------

def _statements(client, method: str, url: str, data: dict | None = None) -> tuple[int, int]:
    """Return the SQL statements a request issues and the size of its answer."""
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    db.session.expire_all()  # as in a fresh request: nothing cached in the session
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client.get(url) if method == "GET" else client.post_form(url, data)
        assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(statements), len(response.get_data())


def test_the_form_and_filing_cost_the_same_statements_and_bytes_with_5_and_with_500_requesters(client, world):
    sign_in(client, world.agent)
    add_requesters(world.lup, 2)
    few = (_statements(client, "GET", "/agent/tickets/new"),
           _statements(client, "POST", "/agent/tickets/new", ticket_form(world, requester_id=str(world.sven.id))),
           _statements(client, "GET", "/agent/tickets/new?q=sven"))
    add_requesters(world.schwerin, 495)
    many = (_statements(client, "GET", "/agent/tickets/new"),
            _statements(client, "POST", "/agent/tickets/new", ticket_form(world, requester_id=str(world.sven.id))),
            _statements(client, "GET", "/agent/tickets/new?q=sven"))

    assert few == many


# --- the administration's user list --------------------------------------------------------------

def test_the_user_list_searches_name_and_email_and_counts_only_up_to_a_cap(client, app, world, monkeypatch):
    monkeypatch.setattr(people, "COUNT_CAP", 3)
    app.config["PAGE_SIZE"] = 2
    add_requesters(world.lup, 6)
    client.login(make_user("admin", name="Ada Admin"))

    first = client.get("/manage/users?text=bulk").get_data(as_text=True)
    second = client.get("/manage/users?text=BULK&page=2").get_data(as_text=True)
    by_email = client.get("/manage/users?text=rita.richter%40").get_data(as_text=True)

    assert "Bulk Person 0000" in first and "Bulk Person 0002" not in first
    assert "mehr als 3 Konten" in first and "page=2" in first
    assert "Bulk Person 0002" in second and "page=1" in second and "page=3" in second
    assert "Rita Richter" in by_email and "Sven Stadt" not in by_email
