"""Administration of business calendars and SLA contracts: forms, versions, errors and who may enter."""
from __future__ import annotations

import html
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Calendar, CalendarClosure, SlaPolicy, SlaPolicyVersion, Ticket
from tests.builders import (
    TARGETS, at, make_calendar, make_category, make_policy, make_team, make_tenant, make_ticket, make_user,
)

WEEK = {"day0": "07:00-16:00", "day1": "07:00-16:00", "day2": "07:00-16:00", "day3": "07:00-16:00",
        "day4": "07:00-13:00", "day5": "", "day6": ""}


@pytest.fixture
def admin(app):
    """An administrator (KSM)."""
    return make_user("admin", name="Ada Admin", email="admin@ksm.example")


def sign_in(client, user) -> None:
    """Log in and take the CSRF token from a /manage page (a refused user finds it on the 403 page)."""
    client.login(user)
    page = client.get("/manage/").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def admin_client(client, admin, frozen_now):
    """A client logged in as the administrator, with the clock frozen on 5 March 2026."""
    sign_in(client, admin)
    return client


def text_of(response) -> str:
    """Return the page's text with HTML entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def error_at(response, field: str) -> str:
    """Return the error text shown right at a form field ('' when none)."""
    match = re.search(rf'<div id="{field}-error">(.*?)</div>', response.get_data(as_text=True), re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).strip() if match else ""


def count(model, *where) -> int:
    """Count the rows of a model."""
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def contract_form(calendar, /, **overrides) -> dict:
    """The contract form as a browser sends it: the builders' targets and the default escalation levels."""
    data = {"name": "Servicevertrag LUP", "calendar": str(calendar.id), "compliance_goal": "95",
            "level0_percent": "75", "level0_assignee": "y", "level0_business_hours_only": "y",
            "level1_percent": "100", "level1_team_lead": "y",
            "level2_percent": "150", "level2_service_manager": "y", "level2_tenant_contact": "y"}
    for priority, row in TARGETS.items():
        for target, minutes in row.items():
            data[f"p{priority}_{target}"] = "" if minutes is None else str(minutes)
    data.update(overrides)
    return data


def policy_of(tenant) -> SlaPolicy | None:
    """Load a tenant's contract fresh from the database."""
    db.session.expire_all()
    return db.session.scalar(select(SlaPolicy).where(SlaPolicy.tenant_id == tenant.id))


# --- calendars --------------------------------------------------------------------------------

def test_admin_creates_a_calendar_with_two_intervals_on_monday_and_a_closure_day(admin_client):
    response = admin_client.post_form("/manage/calendars/new", {
        "name": "KSM Schwerin", "timezone": "Europe/Berlin", **WEEK, "day0": "07:00-12:00, 13:00-16:00",
        "holiday_region": "DE-MV", "closures": "24.12.2026 Heiligabend",
    })

    assert response.status_code == 302
    calendar = db.session.scalar(select(Calendar).where(Calendar.name == "KSM Schwerin"))
    assert calendar.hours == {
        "0": [["07:00", "12:00"], ["13:00", "16:00"]], "1": [["07:00", "16:00"]], "2": [["07:00", "16:00"]],
        "3": [["07:00", "16:00"]], "4": [["07:00", "13:00"]],
    }
    assert calendar.holiday_region == "DE-MV" and calendar.timezone == "Europe/Berlin"
    closures = db.session.scalars(select(CalendarClosure).where(CalendarClosure.calendar_id == calendar.id)).all()
    assert [(c.day, c.name) for c in closures] == [(date(2026, 12, 24), "Heiligabend")]

    listing = text_of(admin_client.get("/manage/calendars"))
    assert "KSM Schwerin" in listing and "Mecklenburg-Vorpommern" in listing
    assert "Mo 07:00-12:00, 13:00-16:00; Di–Do 07:00-16:00; Fr 07:00-13:00" in listing


def test_edit_form_shows_the_stored_hours_and_closure_days(admin_client):
    calendar = make_calendar("KSM", closures=[(date(2026, 12, 24), "Heiligabend")])

    page = text_of(admin_client.get(f"/manage/calendars/{calendar.id}"))

    assert 'value="07:00-13:00"' in page
    assert "24.12.2026 Heiligabend" in page


def test_editing_a_calendar_keeps_its_closure_days_and_adds_new_ones(admin_client):
    calendar = make_calendar("KSM", closures=[(date(2026, 12, 24), "Heiligabend")])

    response = admin_client.post_form(f"/manage/calendars/{calendar.id}", {
        "name": "KSM", "timezone": "Europe/Berlin", **WEEK, "holiday_region": "DE-MV",
        "closures": "24.12.2026 Heiligabend\n31.12.2026 Silvester",
    })

    assert response.status_code == 302
    db.session.expire_all()
    rows = db.session.scalars(select(CalendarClosure).order_by(CalendarClosure.day)).all()
    assert [(c.day, c.name) for c in rows] == [(date(2026, 12, 24), "Heiligabend"), (date(2026, 12, 31), "Silvester")]


@pytest.mark.parametrize("monday, message", [
    ("16:00-07:00", "Das Ende muss nach dem Beginn liegen"),
    ("7 bis 16", "ist keine Zeitspanne wie 07:00-16:00"),
    ("07:00-12:00, 11:00-16:00", "überschneiden sich"),
])
def test_bad_interval_is_refused_at_its_weekday_and_nothing_is_saved(admin_client, monday, message):
    response = admin_client.post_form("/manage/calendars/new", {
        "name": "KSM", "timezone": "Europe/Berlin", **WEEK, "day0": monday, "holiday_region": "DE-MV",
    })

    assert response.status_code == 422
    assert message in error_at(response, "day0")
    assert f'value="{monday}"' in text_of(response)  # the input is kept
    assert count(Calendar) == 0


def test_every_bad_weekday_and_a_bad_closure_line_are_reported_together(admin_client):
    response = admin_client.post_form("/manage/calendars/new", {
        "name": "KSM", "timezone": "Europe/Berlin", **WEEK, "day1": "8-12", "day4": "13:00-07:00",
        "holiday_region": "DE-MV", "closures": "Heiligabend 2026",
    })

    assert response.status_code == 422
    assert error_at(response, "day1") and error_at(response, "day4")
    assert "TT.MM.JJJJ" in error_at(response, "closures")
    assert count(Calendar) == 0


def test_a_calendar_without_any_opening_hours_is_refused(admin_client):
    response = admin_client.post_form("/manage/calendars/new", {
        "name": "KSM", "timezone": "Europe/Berlin", **{f"day{d}": "" for d in range(7)}, "holiday_region": "",
    })

    assert response.status_code == 422
    assert "Mindestens ein Wochentag" in error_at(response, "day0")


def test_unknown_timezone_and_duplicate_name_are_refused_at_their_field(admin_client):
    make_calendar("KSM")

    duplicate = admin_client.post_form("/manage/calendars/new", {
        "name": "ksm", "timezone": "Europe/Berlin", **WEEK, "holiday_region": "DE-MV"})
    unknown_zone = admin_client.post_form("/manage/calendars/new", {
        "name": "Neu", "timezone": "Europe/Schwerin", **WEEK, "holiday_region": "DE-MV"})

    assert duplicate.status_code == 422 and "existiert bereits" in error_at(duplicate, "name")
    assert unknown_zone.status_code == 422 and "Unbekannte Zeitzone" in error_at(unknown_zone, "timezone")
    assert count(Calendar) == 1


def test_an_unknown_free_text_holiday_code_is_refused_at_the_code_field(admin_client):
    response = admin_client.post_form("/manage/calendars/new", {
        "name": "KSM", "timezone": "Europe/Berlin", **WEEK, "holiday_region": "other", "holiday_region_code": "XX-YY",
    })

    assert response.status_code == 422
    assert "Der Kalender ist ungültig" in error_at(response, "holiday_region_code")
    assert count(Calendar) == 0


def test_a_free_text_holiday_code_is_stored_and_shown_as_the_other_code(admin_client):
    response = admin_client.post_form("/manage/calendars/new", {
        "name": "Wien", "timezone": "Europe/Vienna", **WEEK, "holiday_region": "other", "holiday_region_code": "at-9",
    })

    assert response.status_code == 302
    calendar = db.session.scalar(select(Calendar))
    assert calendar.holiday_region == "AT-9"
    page = text_of(admin_client.get(f"/manage/calendars/{calendar.id}"))
    assert 'value="AT-9"' in page and "Neujahr" in page


def test_edit_page_lists_frauentag_and_reformationstag_for_mecklenburg_vorpommern(admin_client):
    calendar = make_calendar("KSM", region="DE-MV")

    page = text_of(admin_client.get(f"/manage/calendars/{calendar.id}"))

    assert "Gesetzliche Feiertage 2026 und 2027" in page
    for line in ("So, 08.03.2026", "Frauentag", "Sa, 31.10.2026", "Reformationstag", "Mo, 08.03.2027", "31.10.2027"):
        assert line in page


def test_brandenburg_has_reformationstag_but_no_frauentag(admin_client):
    calendar = make_calendar("Potsdam", region="DE-BB")

    page = text_of(admin_client.get(f"/manage/calendars/{calendar.id}"))

    assert "Reformationstag" in page and "Frauentag" not in page


# --- contracts --------------------------------------------------------------------------------

def test_contract_list_offers_to_create_a_missing_contract(admin_client):
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")

    page = text_of(admin_client.get("/manage/contracts"))

    assert "Landkreis Ludwigslust-Parchim" in page and "Vertrag anlegen" in page
    assert f'href="/manage/contracts/{tenant.id}"' in page


def test_new_contract_form_proposes_the_default_escalation_levels(admin_client):
    tenant = make_tenant()
    make_calendar("KSM")

    page = admin_client.get(f"/manage/contracts/{tenant.id}")
    body = text_of(page)

    assert page.status_code == 200
    assert "in Stunden und Minuten Geschäftszeit" in body
    for row, percent in enumerate(("75", "100", "150")):
        assert re.search(rf'name="level{row}_percent"[^>]*value="{percent}"', body)
    assert re.search(r'checked[^>]*name="level2_tenant_contact"|name="level2_tenant_contact"[^>]*checked', body)


def test_admin_creates_a_contract_for_a_tenant_as_version_1(admin_client, admin):
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    calendar = make_calendar("KSM")

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, compliance_goal="97,5"))

    assert response.status_code == 302 and response.headers["Location"].endswith("/manage/contracts")
    policy = policy_of(tenant)
    assert policy.name == "Servicevertrag LUP" and policy.calendar_id == calendar.id
    assert float(policy.compliance_goal) == 97.5
    version = policy.current_version
    assert version.version == 1 and version.created_by_id == admin.id
    assert version.targets == TARGETS
    assert version.levels == [
        {"percent": 75, "recipients": ["assignee"], "business_hours_only": True},
        {"percent": 100, "recipients": ["team_lead"], "business_hours_only": False},
        {"percent": 150, "recipients": ["service_manager", "tenant_contact"], "business_hours_only": False},
    ]
    listing = text_of(admin_client.get("/manage/contracts"))
    assert "Version 1" in listing and "97,5\xa0%" in listing and "KSM" in listing


def test_editing_targets_creates_version_2_and_the_list_shows_it(admin_client, frozen_now):
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    calendar = make_calendar("KSM")
    first = make_policy(tenant, calendar=calendar)
    frozen_now(at("2026-03-05 09:00"))

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, p1_resolution="180"))

    assert response.status_code == 302
    policy = policy_of(tenant)
    assert policy.current_version.version == 2
    assert policy.current_version.targets["1"]["resolution"] == 180
    assert db.session.get(SlaPolicyVersion, first.id).targets["1"]["resolution"] == 240  # v1 untouched
    listing = text_of(admin_client.get("/manage/contracts"))
    assert "Version 2" in listing and "05.03.2026" in listing
    page = text_of(admin_client.get(f"/manage/contracts/{tenant.id}"))
    assert "Gültig ist Version 2 vom 05.03.2026 10:00" in page
    assert "Laufende Tickets behalten die Version, unter der sie begonnen haben." in page
    assert "P1: 30 min / 1 h / 3 h" in page and "P1: 30 min / 1 h / 4 h" in page
    assert "Ada Admin" in page


def test_saving_unchanged_terms_creates_no_new_version(admin_client):
    tenant = make_tenant()
    calendar = make_calendar("KSM")
    admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar))

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}",
                                      contract_form(calendar, name="Neuer Name"), follow_redirects=True)

    assert "es gilt weiter Version 1" in text_of(response)
    policy = policy_of(tenant)
    assert policy.name == "Neuer Name"
    assert count(SlaPolicyVersion) == 1


def test_a_running_ticket_keeps_its_version_after_the_contract_changes(admin_client):
    make_team("service-desk", "Service Desk", fallback=True)
    tenant = make_tenant()
    calendar = make_calendar("KSM")
    first = make_policy(tenant, calendar=calendar)
    ticket = make_ticket(make_user(tenant=tenant), category=make_category())

    admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, p2_resolution="960"))

    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).sla_version_id == first.id
    assert policy_of(tenant).current_version.version == 2


@pytest.mark.parametrize("field, value, message", [
    ("p1_first_response", "0", "größer als 0"),
    ("p3_resolution", "zwei Tage", "„zwei Tage“ ist keine Dauer"),
    ("p2_next_update", "-5", "ist keine Dauer"),
    ("p2_resolution", "3 Wochen", "„Wochen“ ist keine Zeiteinheit"),
    ("p1_next_update", "0,01 h", "Bitte ganze Minuten angeben"),
    ("p4_first_response", "5000", "Erstreaktion darf nicht länger dauern als die Lösung"),
    ("p2_resolution", "", "alle Ziele außer der Folgeantwort"),
    ("p4_resolution", "600000", "Höchstens 500000 Minuten"),
])
def test_invalid_minutes_are_refused_at_their_field(admin_client, field, value, message):
    tenant = make_tenant()
    calendar = make_calendar("KSM")

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, **{field: value}))

    assert response.status_code == 422
    assert message in error_at(response, field)
    assert re.search(r'name="p1_resolution"[^>]*value="240"', text_of(response))  # the input is kept
    assert count(SlaPolicy) == 0


def test_contract_form_shows_the_targets_in_hours_and_minutes(admin_client):
    tenant = make_tenant()
    make_policy(tenant, calendar=make_calendar("KSM"))

    page = text_of(admin_client.get(f"/manage/contracts/{tenant.id}"))

    for field, shown in (("p1_first_response", "30 min"), ("p1_next_update", "1 h"), ("p1_resolution", "4 h"),
                         ("p2_resolution", "8 h"), ("p4_resolution", "80 h")):
        assert re.search(rf'name="{field}"[^>]*value="{shown}"', page), field
    assert not re.search(r'name="p1_resolution"[^>]*type="number"|type="number"[^>]*name="p1_resolution"', page)
    assert re.search(r'name="p4_next_update"[^>]*value=""', page)
    assert "P4: 8 h / – / 80 h" in page


def test_targets_typed_as_hours_days_and_clock_times_are_stored_as_minutes(admin_client):
    tenant = make_tenant()
    calendar = make_calendar("KSM")
    typed = {"p1_first_response": "30 min", "p1_next_update": "1 h", "p1_resolution": "3:30",
             "p2_first_response": "1 Std.", "p2_next_update": "2 hours", "p2_resolution": "1 Tag",
             "p3_resolution": "1 Tag 2 h", "p4_first_response": "1,5 h", "p4_resolution": "10 Tage"}

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, **typed))

    assert response.status_code == 302
    targets = policy_of(tenant).current_version.targets
    assert targets["1"] == {"first_response": 30, "next_update": 60, "resolution": 210}
    assert targets["2"] == {"first_response": 60, "next_update": 120, "resolution": 480}
    assert targets["3"]["resolution"] == 600
    assert targets["4"] == {"first_response": 90, "next_update": None, "resolution": 4800}
    page = text_of(admin_client.get(f"/manage/contracts/{tenant.id}"))
    assert re.search(r'name="p3_resolution"[^>]*value="10 h"', page)


def test_every_unreadable_target_is_refused_at_its_field_and_the_input_is_kept(admin_client):
    tenant = make_tenant()
    calendar = make_calendar("KSM")

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(
        calendar, p1_resolution="vier Stunden", p3_first_response="1 h 2 h"))

    assert response.status_code == 422
    assert "„vier Stunden“ ist keine Dauer. Beispiele: 4 h, 4:30, 90 min" in error_at(response, "p1_resolution")
    assert "ist keine Dauer" in error_at(response, "p3_first_response")
    assert re.search(r'name="p1_resolution"[^>]*value="vier Stunden"', text_of(response))
    assert count(SlaPolicy) == 0


def test_an_empty_next_update_means_no_revolving_target(admin_client):
    tenant = make_tenant()
    calendar = make_calendar("KSM")

    admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, p3_next_update=""))

    assert policy_of(tenant).current_version.targets["3"]["next_update"] is None


def test_an_escalation_row_without_percent_is_ignored(admin_client):
    tenant = make_tenant()
    calendar = make_calendar("KSM")

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(
        calendar, level0_percent="", level2_percent=" ", level1_percent="100 %"))

    assert response.status_code == 302
    assert policy_of(tenant).current_version.levels == [
        {"percent": 100, "recipients": ["team_lead"], "business_hours_only": False}]


@pytest.mark.parametrize("overrides, message", [
    ({"level1_team_lead": ""}, "Bitte wählen Sie, wer benachrichtigt wird"),
    ({"level1_percent": "75"}, "verschieden"),
    ({"level0_percent": "", "level1_percent": "", "level2_percent": ""}, "Mindestens eine Eskalationsstufe"),
])
def test_bad_escalation_levels_are_refused_at_the_levels(admin_client, overrides, message):
    tenant = make_tenant()
    calendar = make_calendar("KSM")

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, **overrides))

    assert response.status_code == 422
    assert message in error_at(response, "levels")
    assert count(SlaPolicy) == 0


@pytest.mark.parametrize("field, value, message", [
    ("compliance_goal", "120", "zwischen 0 und 100"),
    ("compliance_goal", "viel", "zwischen 0 und 100"),
    ("calendar", "", "Bitte wählen Sie einen Kalender"),
    ("name", " ", "Bitte geben Sie einen Namen an"),
])
def test_contract_fields_are_checked(admin_client, field, value, message):
    tenant = make_tenant()
    calendar = make_calendar("KSM")

    response = admin_client.post_form(f"/manage/contracts/{tenant.id}", contract_form(calendar, **{field: value}))

    assert response.status_code == 422
    assert message in error_at(response, field)
    assert count(SlaPolicy) == 0


def test_unknown_tenant_or_calendar_is_not_found(admin_client):
    assert admin_client.get("/manage/contracts/999").status_code == 404
    assert admin_client.get("/manage/calendars/999").status_code == 404


# --- who may enter ----------------------------------------------------------------------------

URLS = ["/manage/calendars", "/manage/calendars/new", "/manage/calendars/{calendar}", "/manage/contracts",
        "/manage/contracts/{tenant}"]
FORM_URLS = ["/manage/calendars/new", "/manage/calendars/{calendar}", "/manage/contracts/{tenant}"]


@pytest.mark.parametrize("role", ["agent", "team_lead", "service_manager", "requester", "tenant_manager"])
def test_only_administrators_may_open_or_post_the_sla_pages(client, role):
    tenant = make_tenant()
    calendar = make_calendar("KSM")
    make_policy(tenant, calendar=calendar)
    sign_in(client, make_user(role, tenant=tenant if role in ("requester", "tenant_manager") else None))
    ids = {"calendar": calendar.id, "tenant": tenant.id}

    for url in URLS:
        assert client.get(url.format(**ids)).status_code == 403, url
    for url in FORM_URLS:
        assert client.post_form(url.format(**ids), {"name": "Übernommen"}).status_code == 403, url
    assert db.session.scalar(select(Calendar.name)) == "KSM"
    assert count(SlaPolicyVersion) == 1


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    tenant = make_tenant()
    calendar = make_calendar("KSM")

    for url in URLS:
        response = client.get(url.format(calendar=calendar.id, tenant=tenant.id))
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
