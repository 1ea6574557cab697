"""The service level report through /api/v1: the numbers of the report service, periods, who sees what."""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from helpdesk.extensions import db
from helpdesk.services import api_tokens, reports, tickets
from helpdesk.services import sla as sla_service
from tests.builders import make_category, make_policy, make_rule, make_team, make_tenant, make_ticket, make_user

BERLIN = ZoneInfo("Europe/Berlin")
MARCH_ARGS = {"kind": "month", "year": 2026, "number": 3}


def berlin(text: str) -> datetime:
    """Parse a Berlin wall-clock time into an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(ZoneInfo("UTC"))


NOW = berlin("2026-04-10 09:00")


@pytest.fixture
def world(app, frozen_now):
    """Two tenants with contracts and March tickets (met, breached, never answered); a token per person."""
    frozen_now(NOW)
    desk = make_team("service-desk", "Service Desk", fallback=True)
    printers = make_team("arbeitsplatz", "Arbeitsplatz & Drucker")
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    access = make_category("Zugang")
    make_rule(printers, category=printer)
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    schwerin = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    make_policy(lup)
    make_policy(schwerin)
    w = SimpleNamespace(
        desk=desk, printers=printers, lup=lup, schwerin=schwerin,
        agent=make_user("agent", teams=[desk, printers], email="agent@ksm.example"),
        lead=make_user("team_lead", teams=[printers], email="lead@ksm.example"),
        sm=make_user("service_manager", email="sm@ksm.example"),
        anna=make_user(tenant=lup, email="anna@lup.example"),
        max=make_user(tenant=schwerin, email="max@schwerin.example"),
        boss=make_user("tenant_manager", tenant=lup, email="leitung@lup.example"),
        foreign_boss=make_user("tenant_manager", tenant=schwerin, email="leitung@schwerin.example"),
    )

    def answer(ticket, when):
        tickets.reply(w.agent, ticket, body="Wir kümmern uns.", now=berlin(when))

    def resolve(ticket, when):
        tickets.change_status(w.agent, ticket, "resolved", berlin(when))

    # Met everything: first response after 30 min, resolved after 2 h.
    met = make_ticket(w.anna, category=printer, subject="Drucker druckt nicht", now=berlin("2026-03-05 09:00"))
    answer(met, "2026-03-05 09:30")
    resolve(met, "2026-03-05 11:00")
    # Breached both: first response after 2 h, resolution after 9 business hours.
    late = make_ticket(w.anna, category=access, subject="Kein Zugang zum Fachverfahren", now=berlin("2026-03-05 09:00"))
    answer(late, "2026-03-05 11:00")
    resolve(late, "2026-03-06 09:00")
    # Never answered: the sweep records the first-response breach; it stays in the backlog.
    silent = make_ticket(w.anna, category=hardware, subject="Monitor flackert", now=berlin("2026-03-16 09:00"))
    sla_service.check_ticket(silent, berlin("2026-03-16 11:00"))
    db.session.commit()
    # Another tenant's ticket: never part of the first tenant's numbers.
    foreign = make_ticket(w.max, category=access, subject="Fremdes Ticket", now=berlin("2026-03-05 09:00"))
    answer(foreign, "2026-03-05 09:15")
    w.tickets = SimpleNamespace(met=met, late=late, silent=silent, foreign=foreign)
    w.headers = {}
    for name in ("agent", "lead", "sm", "anna", "boss", "foreign_boss"):
        _token, secret = api_tokens.create_token(getattr(w, name), name=f"{name} token", expires_at=None, now=NOW)
        w.headers[name] = {"Authorization": f"Bearer {secret}"}
    return w


def _report(client, world, who: str, slug: str = "lup", **query):
    return client.get(f"/api/v1/tenants/{slug}/report", query_string=query, headers=world.headers[who])


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json(force=True)


def _same_moment(text: str | None, moment: datetime | None) -> bool:
    if text is None or moment is None:
        return text is None and moment is None
    return datetime.fromisoformat(text) == moment


def _compliance(part: reports.Compliance) -> dict:
    return {"met": part.met, "breached": part.breached, "rate": part.rate}


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def assert_document_matches(body: dict, report: reports.ServiceLevelReport) -> None:
    """Every number of the JSON document equals the one of the report service."""
    assert _same_moment(body["period"]["start"], report.start)
    assert _same_moment(body["period"]["end"], report.end)
    assert body["period"]["label"] == report.label
    assert body["goal"] == report.goal
    assert (body["opened"], body["resolved"], body["backlog"]) == (report.opened, report.resolved, report.backlog)
    for target in ("first_response", "next_update", "resolution"):
        assert body["compliance"][target] == _compliance(report.compliance[target]), target
        assert body["compliance_by_priority"][target] == {
            str(priority): _compliance(part) for priority, part in report.compliance_by_priority[target].items()}
    assert body["first_response"] == {"median_seconds": _seconds(report.first_response_median),
                                      "p90_seconds": _seconds(report.first_response_p90)}
    assert body["resolution"] == {"median_seconds": _seconds(report.resolution_median),
                                  "p90_seconds": _seconds(report.resolution_p90)}
    assert body["by_category"] == report.by_category
    assert body["by_team"] == report.by_team
    assert len(body["breaches"]) == len(report.breaches)
    for got, expected in zip(body["breaches"], report.breaches):
        assert {k: got[k] for k in ("number", "subject", "priority", "target", "team", "assignee")} == {
            k: expected[k] for k in ("number", "subject", "priority", "target", "team", "assignee")}
        assert _same_moment(got["due_at"], expected["due_at"])
        assert _same_moment(got["breached_at"], expected["breached_at"])
    assert [row["label"] for row in body["trend"]] == [row["label"] for row in report.trend]
    for got, expected in zip(body["trend"], report.trend):
        assert (got["opened"], got["resolved"], got["breaches"]) == (
            expected["opened"], expected["resolved"], expected["breaches"])
        assert got["first_response_rate"] == expected["first_response_rate"]
        assert got["resolution_rate"] == expected["resolution_rate"]
        assert got["compliance"]["next_update"] == _compliance(expected["next_update_compliance"])
        assert _same_moment(got["start"], expected["start"])


# --- the numbers ----------------------------------------------------------------------------------


def test_march_report_as_json_has_the_numbers_of_the_report_service(client, world):
    response = _report(client, world, "sm", **MARCH_ARGS)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    start, end, label = reports.period_bounds("month", 2026, 3)
    report = reports.service_level_report(world.lup, start, end, label=label)
    assert_document_matches(body, report)
    assert body["tenant"] == {"id": world.lup.id, "slug": "lup", "name": "Landkreis Ludwigslust-Parchim"}
    assert body["period"]["label"] == "März 2026" and body["team_ids"] is None
    assert body["period"]["start"] == "2026-02-28T23:00:00+00:00"
    assert body["period"]["end"] == "2026-03-31T22:00:00+00:00"
    # The known histories: three tickets opened, two resolved, the silent one still open.
    assert (body["opened"], body["resolved"], body["backlog"]) == (3, 2, 1)
    assert body["goal"] == 95.0
    assert body["compliance"]["first_response"] == {"met": 1, "breached": 2, "rate": pytest.approx(100 / 3)}
    assert body["compliance"]["resolution"] == {"met": 1, "breached": 1, "rate": 50.0}
    numbers = sorted((b["number"], b["target"]) for b in body["breaches"])
    assert numbers == sorted([(world.tickets.late.number, "first_response"), (world.tickets.late.number, "resolution"),
                              (world.tickets.silent.number, "first_response")])
    assert world.tickets.foreign.number not in {b["number"] for b in body["breaches"]}
    assert len(body["trend"]) == 12 and body["trend"][-1]["opened"] == 3
    assert body["first_response"]["median_seconds"] is not None


def test_without_a_period_the_report_covers_the_previous_month_like_the_browser(client, world):
    default = _report(client, world, "boss")
    explicit = _report(client, world, "boss", **MARCH_ARGS)

    assert default.status_code == 200 and explicit.status_code == 200
    assert default.get_json() == explicit.get_json()
    assert default.get_json()["period"]["label"] == "März 2026"


@pytest.mark.parametrize("query, label, bounds", [
    ({"kind": "quarter", "year": 2026, "number": 1}, "Q1 2026", ("quarter", 2026, 1)),
    ({"kind": "year", "year": 2026}, "2026", ("year", 2026)),
    ({"kind": "custom", "start": "2026-03-01", "end": "2026-03-10"}, "01.03.2026–10.03.2026", None),
])
def test_quarter_year_and_custom_periods_match_the_report_service(client, world, query, label, bounds):
    response = _report(client, world, "sm", **query)

    assert response.status_code == 200, response.get_data(as_text=True)
    if bounds is None:
        start, end, expected_label = reports.period_bounds(
            "custom", 2026, None, datetime(2026, 3, 1).date(), datetime(2026, 3, 10).date())
    else:
        start, end, expected_label = reports.period_bounds(*bounds)
    assert expected_label == label
    assert_document_matches(response.get_json(), reports.service_level_report(world.lup, start, end, label=label))


def test_custom_period_until_the_tenth_leaves_out_the_silent_ticket(client, world):
    body = _report(client, world, "sm", kind="custom", start="2026-03-01", end="2026-03-10").get_json()

    assert body["opened"] == 2
    assert world.tickets.silent.number not in {b["number"] for b in body["breaches"]}


def test_team_lead_gets_only_the_tickets_of_their_teams(client, world):
    body = _report(client, world, "lead", **MARCH_ARGS).get_json()

    start, end, label = reports.period_bounds("month", 2026, 3)
    report = reports.service_level_report(world.lup, start, end, team_ids=[world.printers.id], label=label)
    assert body["team_ids"] == [world.printers.id]
    assert_document_matches(body, report)
    assert body["opened"] == 1 and body["breaches"] == []


# --- who sees what --------------------------------------------------------------------------------


def test_tenant_manager_reads_the_own_tenant(client, world):
    response = _report(client, world, "boss", **MARCH_ARGS)

    assert response.status_code == 200
    assert response.get_json()["tenant"]["slug"] == "lup"


def test_tenant_manager_of_another_tenant_gets_404(client, world):
    body = _problem(_report(client, world, "foreign_boss", **MARCH_ARGS), 404)

    assert "Ludwigslust" not in str(body)
    assert _report(client, world, "foreign_boss", slug="schwerin", **MARCH_ARGS).status_code == 200


@pytest.mark.parametrize("who", ["anna", "agent"])
def test_requesters_and_agents_get_403(client, world, who):
    _problem(_report(client, world, who, **MARCH_ARGS), 403)
    _problem(_report(client, world, who, slug="gibt-es-nicht", **MARCH_ARGS), 403)


def test_unknown_tenant_is_404_even_for_the_service_manager(client, world):
    _problem(_report(client, world, "sm", slug="gibt-es-nicht"), 404)


def test_report_without_a_token_is_401(client, world):
    response = client.get("/api/v1/tenants/lup/report")

    _problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- invalid periods ------------------------------------------------------------------------------


@pytest.mark.parametrize("query, field", [
    ({"kind": "week", "year": 2026}, "kind"),
    ({"kind": "month", "year": "zwanzig", "number": 3}, "year"),
    ({"kind": "month", "year": 1999, "number": 3}, "year"),
    ({"kind": "month", "number": 3}, "year"),
    ({"kind": "month", "year": 2026}, "number"),
    ({"kind": "quarter", "year": 2026, "number": 5}, "number"),
    ({"kind": "custom", "start": "2026-03-10"}, "end"),
    ({"kind": "custom", "start": "2026-03-10", "end": "2026-03-01"}, "end"),
    ({"kind": "custom", "start": "2020-01-01", "end": "2026-03-01"}, "end"),
    ({"kind": "custom", "start": "10.03.2026", "end": "2026-03-11"}, "start"),
    ({"year": 2026, "number": 3}, "kind"),
])
def test_invalid_period_is_422_naming_the_field(client, world, query, field):
    body = _problem(_report(client, world, "sm", **query), 422)

    assert field in body["errors"], body
    assert body["detail"]


# --- the OpenAPI document -------------------------------------------------------------------------


def test_openapi_document_describes_the_report_path_with_query_and_response_schema(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()

    operation = spec["paths"]["/api/v1/tenants/{slug}/report"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(parameters) == {"kind", "year", "number", "start", "end"}
    assert parameters["kind"]["schema"]["enum"] == ["month", "quarter", "year", "custom"]
    assert {"200", "401", "403", "404", "422"} <= set(operation["responses"])
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/ServiceLevelReport")
    schema = spec["components"]["schemas"]["ServiceLevelReport"]
    assert {"tenant", "period", "compliance", "compliance_by_priority", "breaches", "trend"} <= set(schema["properties"])
    assert set(spec["components"]["schemas"]["ComplianceByPriority"]["properties"]) == {"1", "2", "3", "4"}
