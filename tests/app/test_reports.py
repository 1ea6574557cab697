"""Service level reports: every number against a recount, period edges, who sees what, exports, charts."""
from __future__ import annotations

import csv
import io
import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Category, SlaClock, Team, Ticket
from helpdesk.services import charts, reports, tickets
from helpdesk.services import sla as sla_service
from helpdesk.services.errors import DomainError, Forbidden, NotFound
from tests.builders import make_category, make_policy, make_rule, make_team, make_tenant, make_ticket, make_user

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(text: str) -> datetime:
    """Parse a Berlin wall-clock time ('2026-03-05 09:00') into an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(ZoneInfo("UTC"))


MARCH = reports.period_bounds("month", 2026, 3)
APRIL = reports.period_bounds("month", 2026, 4)
MARCH_ARGS = "kind=month&year=2026&number=3"


@pytest.fixture
def world(app):
    """Two tenants with contracts, two teams, a catalog with a routing rule, and the people."""
    desk = make_team("service-desk", "Service Desk", fallback=True)
    printers = make_team("arbeitsplatz", "Arbeitsplatz & Drucker")
    lead = make_user("team_lead", teams=[printers], email="lead@ksm.example")
    printers.lead = lead
    db.session.commit()
    hardware = make_category("Hardware")
    printer = make_category("Drucker", parent=hardware)
    access = make_category("Zugang")
    make_rule(printers, category=printer)
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    schwerin = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    make_policy(lup)
    make_policy(schwerin)
    return {
        "desk": desk, "printers": printers, "lead": lead, "lup": lup, "schwerin": schwerin,
        "hardware": hardware, "printer": printer, "access": access,
        "agent": make_user("agent", teams=[desk, printers], email="agent@ksm.example"),
        "anna": make_user(tenant=lup, email="anna@lup.example"),
        "max": make_user(tenant=schwerin, email="max@schwerin.example"),
        "boss": make_user("tenant_manager", tenant=lup, email="leitung@lup.example"),
        "sm": make_user("service_manager", email="sm@ksm.example"),
    }


def _file(world, when: str, category: str, subject: str, requester: str = "anna", **kwargs) -> Ticket:
    return make_ticket(world[requester], category=world[category], now=berlin(when), subject=subject, **kwargs)


def _answer(world, ticket, when: str, **kwargs) -> None:
    tickets.reply(world["agent"], ticket, body="Wir kümmern uns.", now=berlin(when), **kwargs)


def _resolve(world, ticket, when: str) -> None:
    tickets.change_status(world["agent"], ticket, "resolved", berlin(when))


@pytest.fixture
def history(world):
    """Tickets with known histories (P3: first response 1 h, update 2 h, resolution 8 h; P1: 30 min / 4 h).

    Calendar Mo–Do 07–16, Fr 07–13. Drucker goes to "Arbeitsplatz & Drucker", the rest to the Service Desk.
    """
    t = {}
    # T7, opened in February, resolved in March: first response Feb (met), resolution 4 h (met) in March.
    t[7] = _file(world, "2026-02-27 10:00", "access", "Passwort gesperrt")
    _answer(world, t[7], "2026-02-27 10:30")
    _resolve(world, t[7], "2026-03-02 08:00")
    # T1 met everything: first response 30 min, resolution 2 h.
    t[1] = _file(world, "2026-03-05 09:00", "printer", "Drucker druckt nicht")
    _answer(world, t[1], "2026-03-05 09:30")
    _resolve(world, t[1], "2026-03-05 11:00")
    # T2 breached both: first response after 2 h (breached 10:00), resolution 9 h (breached Fri 08:00).
    t[2] = _file(world, "2026-03-05 09:00", "access", "Kein Zugang zum Fachverfahren")
    _answer(world, t[2], "2026-03-05 11:00")
    _resolve(world, t[2], "2026-03-06 09:00")
    # T3 paused: 45 min until the question, pending two days, 6 h more: 6 h 45 min used, met.
    t[3] = _file(world, "2026-03-09 09:00", "printer", "Toner leer")
    _answer(world, t[3], "2026-03-09 09:45", new_status="pending")
    tickets.reply(world["anna"], t[3], body="Modell HP 4250", now=berlin("2026-03-11 09:00"))  # next update starts
    _answer(world, t[3], "2026-03-11 10:00")  # next update met after 1 h
    _resolve(world, t[3], "2026-03-11 15:00")
    # T4 reopened: met after 2 h, reopened, resolved two days later: 18 h used, breached Wed 09:00.
    t[4] = _file(world, "2026-03-10 09:00", "access", "VPN bricht ab")
    _answer(world, t[4], "2026-03-10 09:30")
    _resolve(world, t[4], "2026-03-10 11:00")
    tickets.reopen(world["anna"], t[4], berlin("2026-03-10 12:00"), reason="Geht wieder nicht.")
    _resolve(world, t[4], "2026-03-12 10:00")
    # T5 reprioritised to P1 after 10 min: first response 20 min (met, P1), resolution 5 h of 4 h (breached).
    t[5] = _file(world, "2026-03-12 09:00", "printer", "Alle Drucker im Amt aus")
    tickets.change_priority(world["agent"], t[5], 1, berlin("2026-03-12 09:10"), reason="Ganzes Amt")
    _answer(world, t[5], "2026-03-12 09:20")
    _resolve(world, t[5], "2026-03-12 14:00")
    # T8 never answered: the sweep records the first-response breach at 10:00; it stays open.
    t[8] = _file(world, "2026-03-16 09:00", "hardware", "Monitor flackert")
    sla_service.check_ticket(t[8], berlin("2026-03-16 11:00"))
    db.session.commit()
    # T6 opened on the last afternoon of March, resolved on 1 April (after the switch to summer time).
    t[6] = _file(world, "2026-03-31 15:00", "printer", "Scanner speichert nicht")
    _answer(world, t[6], "2026-03-31 15:30")
    _resolve(world, t[6], "2026-04-01 09:00")
    # Another tenant's ticket in March: must never show up in the first tenant's numbers.
    t[10] = _file(world, "2026-03-05 09:00", "access", "Fremdes Ticket", requester="max")
    _answer(world, t[10], "2026-03-05 09:15")
    _resolve(world, t[10], "2026-03-05 10:00")
    return t


# --- the recount: the definitions of issue 4, written independently over all rows ------------

def _lower_median_and_p90(values: list[int]):
    values = sorted(values)
    if not values:
        return None, None
    return (timedelta(seconds=values[math.ceil(len(values) / 2) - 1]),
            timedelta(seconds=values[math.ceil(len(values) * 0.9) - 1]))


def recount(tenant, start, end, team_ids=None) -> dict:
    """Recount a report in Python from every ticket and clock of the tenant."""
    all_tickets = {t.id: t for t in db.session.scalars(select(Ticket).where(Ticket.tenant_id == tenant.id))
                   if team_ids is None or t.team_id in team_ids}
    categories = {c.id: c for c in db.session.scalars(select(Category))}
    teams = {t.id: t.name for t in db.session.scalars(select(Team))}
    clocks = [c for c in db.session.scalars(select(SlaClock).where(SlaClock.tenant_id == tenant.id))
              if c.ticket_id in all_tickets]

    def in_period(moment):
        return moment is not None and start <= moment < end

    def top(ticket):
        category = categories.get(ticket.category_id)
        return (category.parent or category).name if category else "Ohne Kategorie"

    counted = [c for c in clocks if in_period(c.decided_at or c.breached_at)
               and (c.breached_at is not None or c.outcome == "met")]
    result = {
        "opened": sum(in_period(t.created_at) for t in all_tickets.values()),
        "resolved": sum(in_period(t.resolved_at) for t in all_tickets.values()),
        "backlog": sum(t.created_at < end and (t.resolved_at is None or t.resolved_at >= end)
                       for t in all_tickets.values()),
        "compliance": {}, "by_priority": {}, "by_category": {}, "by_team": {},
        "breaches": sorted((all_tickets[c.ticket_id].number, c.target) for c in counted if c.breached_at),
    }
    for target in ("first_response", "next_update", "resolution"):
        mine = [c for c in counted if c.target == target]
        result["compliance"][target] = (sum(c.breached_at is None for c in mine), sum(c.breached_at is not None for c in mine))
        result["by_priority"][target] = {
            p: (sum(c.breached_at is None and c.priority == p for c in mine),
                sum(c.breached_at is not None and c.priority == p for c in mine)) for p in (1, 2, 3, 4)}
        decided = [c.used_seconds for c in clocks if c.target == target and in_period(c.decided_at)
                   and c.outcome in ("met", "breached")]
        result[f"{target}_durations"] = _lower_median_and_p90(decided)
    for key, name_of in (("by_category", top), ("by_team", lambda t: teams[t.team_id])):
        rows: dict = {}
        for ticket in all_tickets.values():
            row = rows.setdefault(name_of(ticket), [0, 0, 0, 0])
            row[0] += in_period(ticket.created_at)
            row[1] += in_period(ticket.resolved_at)
        for clock in counted:
            row = rows.setdefault(name_of(all_tickets[clock.ticket_id]), [0, 0, 0, 0])
            row[3 if clock.breached_at else 2] += 1
        result[key] = {name: tuple(values) for name, values in rows.items() if any(values)}
    return result


def assert_matches_recount(report, expected) -> None:
    assert report.opened == expected["opened"]
    assert report.resolved == expected["resolved"]
    assert report.backlog == expected["backlog"]
    for target, (met, breached) in expected["compliance"].items():
        assert (report.compliance[target].met, report.compliance[target].breached) == (met, breached), target
        for priority, (p_met, p_breached) in expected["by_priority"][target].items():
            part = report.compliance_by_priority[target][priority]
            assert (part.met, part.breached) == (p_met, p_breached), (target, priority)
    assert (report.first_response_median, report.first_response_p90) == expected["first_response_durations"]
    assert (report.resolution_median, report.resolution_p90) == expected["resolution_durations"]
    assert sorted((b["number"], b["target"]) for b in report.breaches) == expected["breaches"]
    for key in ("by_category", "by_team"):
        got = {r["name"]: (r["opened"], r["resolved"], r["met"], r["breached"]) for r in getattr(report, key)}
        assert got == expected[key], key


# --- the numbers ---------------------------------------------------------------------------

def test_march_report_counts_every_known_history_as_the_recount_does(history, world):
    start, end, label = MARCH
    report = reports.service_level_report(world["lup"], start, end, label=label)
    assert_matches_recount(report, recount(world["lup"], start, end))
    # The same figures written out from the stories above.
    assert label == "März 2026" and report.goal == 95.0 and report.tenant_name == "Landkreis Ludwigslust-Parchim"
    assert (report.opened, report.resolved, report.backlog) == (7, 6, 2)
    fr, nu, res = (report.compliance[t] for t in ("first_response", "next_update", "resolution"))
    assert (fr.met, fr.breached) == (5, 2) and fr.rate == pytest.approx(500 / 7)
    assert (nu.met, nu.breached) == (1, 0) and nu.rate == 100
    assert (res.met, res.breached) == (3, 3) and res.rate == 50
    assert report.compliance_by_priority["first_response"][1] == reports.Compliance(1, 0)  # T5 at its new P1
    assert report.compliance_by_priority["resolution"][1] == reports.Compliance(0, 1)
    assert report.compliance_by_priority["resolution"][3] == reports.Compliance(3, 2)
    assert report.compliance_by_priority["first_response"][2] == reports.Compliance(0, 0)
    assert report.compliance_by_priority["first_response"][2].rate is None
    # First response used: 20, 30, 30, 30, 45, 120 min; resolution 2, 4, 5, 6.75, 9, 18 h.
    assert report.first_response_median == timedelta(minutes=30)
    assert report.first_response_p90 == timedelta(minutes=120)
    assert report.resolution_median == timedelta(hours=5)  # lower middle of six values
    assert report.resolution_p90 == timedelta(hours=18)
    t = history
    assert [(b["number"], b["target"], b["breached_at"]) for b in report.breaches] == [
        (t[2].number, "first_response", berlin("2026-03-05 10:00")),
        (t[2].number, "resolution", berlin("2026-03-06 08:00")),
        (t[4].number, "resolution", berlin("2026-03-11 09:00")),
        (t[5].number, "resolution", berlin("2026-03-12 13:00")),
        (t[8].number, "first_response", berlin("2026-03-16 10:00")),
    ]
    assert report.breaches[0]["team"] == "Service Desk" and report.breaches[0]["assignee"] is None
    assert report.breaches_by_priority == {1: 1, 2: 0, 3: 4, 4: 0}
    by_category = {r["name"]: (r["opened"], r["resolved"], r["met"], r["breached"]) for r in report.by_category}
    assert by_category == {"Hardware": (5, 3, 7, 2), "Zugang": (2, 3, 2, 3)}
    by_team = {r["name"]: (r["opened"], r["resolved"], r["met"], r["breached"]) for r in report.by_team}
    assert by_team == {"Arbeitsplatz & Drucker": (4, 3, 7, 1), "Service Desk": (3, 3, 2, 4)}


def test_ticket_opened_in_one_month_and_resolved_in_the_next_counts_in_each_where_it_happened(history, world):
    march = reports.service_level_report(world["lup"], *MARCH[:2])
    april = reports.service_level_report(world["lup"], *APRIL[:2])
    assert_matches_recount(april, recount(world["lup"], *APRIL[:2]))
    # T6: opened and answered in March (backlog at the end of March), resolved in April.
    assert (april.opened, april.resolved, april.backlog) == (0, 1, 1)  # the backlog left is T8
    assert april.compliance["resolution"] == reports.Compliance(1, 0)
    assert april.compliance["first_response"] == reports.Compliance(0, 0)
    assert april.resolution_median == timedelta(hours=3)  # 15–16 on 31 March, 07–09 on 1 April
    assert march.backlog == 2
    # T7: opened in February, its resolution counts in March.
    february = reports.service_level_report(world["lup"], *reports.period_bounds("month", 2026, 2)[:2])
    assert (february.opened, february.resolved, february.backlog) == (1, 0, 1)
    assert february.compliance["first_response"] == reports.Compliance(1, 0)
    assert february.compliance["resolution"].total == 0


def test_quarter_year_and_custom_range_add_up_the_same_facts(history, world):
    for kind, year, number, start, end in (("quarter", 2026, 1, None, None), ("year", 2026, None, None, None),
                                           ("custom", 2026, None, date(2026, 3, 5), date(2026, 3, 11))):
        period_start, period_end, _label = reports.period_bounds(kind, year, number, start, end)
        report = reports.service_level_report(world["lup"], period_start, period_end)
        assert_matches_recount(report, recount(world["lup"], period_start, period_end))
    quarter = reports.service_level_report(world["lup"], *reports.period_bounds("quarter", 2026, 1)[:2])
    assert (quarter.opened, quarter.resolved, quarter.backlog) == (8, 6, 2)
    assert quarter.compliance["first_response"] == reports.Compliance(6, 2)


def test_trend_shows_twelve_months_ending_with_the_period_from_grouped_counts(history, world):
    report = reports.service_level_report(world["lup"], *MARCH[:2])
    assert len(report.trend) == 12
    assert report.trend[0]["long_label"] == "April 2025" and report.trend[-1]["long_label"] == "März 2026"
    feb, march = report.trend[-2], report.trend[-1]
    assert (feb["opened"], feb["resolved"], feb["first_response_rate"], feb["resolution_rate"], feb["breaches"]) \
        == (1, 0, 100, None, 0)
    assert (march["opened"], march["resolved"], march["breaches"]) == (7, 6, 5)
    assert march["first_response_rate"] == pytest.approx(500 / 7) and march["resolution_rate"] == 50
    assert all(row["opened"] == 0 for row in report.trend[:-2])
    # Each month of the trend equals that month's own report.
    for row in report.trend[-2:]:
        own = reports.service_level_report(world["lup"], row["start"], row["end"], with_trend=False)
        assert (own.opened, own.resolved, own.breach_count) == (row["opened"], row["resolved"], row["breaches"])


def test_trend_and_report_cost_a_fixed_number_of_queries(history, world, app):
    from sqlalchemy import event

    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        reports.service_level_report(world["lup"], *reports.period_bounds("year", 2026)[:2])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(statements) <= 14  # grouped queries: none per ticket, none per month


def test_team_lead_numbers_cover_only_their_teams_tickets(history, world, client):
    assert reports.report_scope(world["lead"], world["lup"]) == [world["printers"].id]
    start, end, _label = MARCH
    report = reports.service_level_report(world["lup"], start, end, team_ids=[world["printers"].id])
    assert_matches_recount(report, recount(world["lup"], start, end, team_ids=[world["printers"].id]))
    assert (report.opened, report.resolved, report.backlog, report.breach_count) == (4, 3, 1, 1)
    assert [r["name"] for r in report.by_team] == ["Arbeitsplatz & Drucker"]
    client.login(world["lead"])
    page = client.get(f"/reports/lup?{MARCH_ARGS}").get_data(as_text=True)
    assert "Sie sehen nur die Tickets Ihrer Teams." in page
    assert history[5].number in page and history[2].number not in page
    rows = _csv_rows(client.get(f"/reports/lup/tickets.csv?{MARCH_ARGS}"))
    assert {row[0] for row in rows[1:]} == {history[n].number for n in (1, 3, 5, 6)}


def test_team_lead_without_teams_sees_no_numbers(history, world):
    lonely = make_user("team_lead", email="lonely@ksm.example")
    team_ids = reports.report_scope(lonely, world["lup"])
    assert team_ids == []
    report = reports.service_level_report(world["lup"], *MARCH[:2], team_ids=team_ids)
    assert (report.opened, report.resolved, report.backlog, report.breach_count) == (0, 0, 0, 0)


# --- who sees what -------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", "/report.csv", "/tickets.csv", "/print"])
def test_tenant_manager_gets_404_for_another_tenants_report_csv_and_print(world, client, suffix):
    client.login(world["boss"])
    assert client.get(f"/reports/lup{suffix}?{MARCH_ARGS}").status_code == 200
    assert client.get(f"/reports/schwerin{suffix}?{MARCH_ARGS}").status_code == 404
    assert client.get(f"/reports/no-such-tenant{suffix}?{MARCH_ARGS}").status_code == 404


def test_requesters_and_agents_may_not_see_reports(world, client):
    for user in (world["anna"], world["agent"]):
        client.login(user)
        for url in ("/reports/", "/reports/lup", "/reports/lup/report.csv", "/reports/lup/print",
                    "/reports/dashboard", "/reports/no-such-tenant"):
            assert client.get(url).status_code == 403, (user.role, url)
        client.post_form("/logout")


def test_anonymous_visitor_is_sent_to_the_login(world, client):
    response = client.get("/reports/lup")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_report_scope_is_the_one_access_decision(world):
    assert reports.report_scope(world["sm"], world["schwerin"]) is None
    assert reports.report_scope(world["boss"], world["lup"]) is None
    with pytest.raises(NotFound):
        reports.report_scope(world["boss"], world["schwerin"])
    with pytest.raises(NotFound):
        reports.report_scope(world["boss"], None)
    with pytest.raises(Forbidden):
        reports.report_scope(world["agent"], world["lup"])
    with pytest.raises(Forbidden):
        reports.report_scope(world["anna"], world["lup"])


def test_tenant_manager_page_links_breaches_to_the_portal_and_staff_to_the_workspace(history, world, client):
    client.login(world["boss"])
    page = client.get(f"/reports/lup?{MARCH_ARGS}").get_data(as_text=True)
    assert f'/portal/tickets/{history[2].number}"' in page and "/agent/tickets/" not in page
    assert history[10].number not in page
    client.post_form("/logout")
    client.login(world["sm"])
    page = client.get(f"/reports/lup?{MARCH_ARGS}").get_data(as_text=True)
    assert f'/agent/tickets/{history[2].number}"' in page


def test_report_page_shows_the_numbers_and_the_charts(history, world, client):
    client.login(world["sm"])
    response = client.get(f"/reports/lup?{MARCH_ARGS}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Servicebericht Landkreis Ludwigslust-Parchim: März 2026" in page
    assert "71,4\xa0%" in page and "50,0\xa0%" in page  # first response 5/7, resolution 3/6
    assert page.count("<svg") == 3 and 'role="img"' in page
    assert "style=" not in page and "http://" not in page.replace("http://helpdesk.test", "")
    assert "Drucken / als PDF speichern" in page


def test_invalid_custom_range_is_refused_on_the_form(world, client):
    client.login(world["sm"])
    response = client.get("/reports/lup?kind=custom&start=2026-03-10&end=2026-03-01")
    assert response.status_code == 422
    assert "Das Ende darf nicht vor dem Beginn liegen." in response.get_data(as_text=True)
    response = client.get("/reports/lup?kind=quarter&year=2026&number=7")
    assert response.status_code == 422


def test_overview_with_an_impossible_month_is_refused_on_the_form(world, client):
    client.login(world["sm"])
    response = client.get("/reports/?kind=month&year=2026&number=13")
    assert response.status_code == 422
    assert "Bitte wählen Sie einen Monat (1 bis 12)." in response.get_data(as_text=True)


def test_tenant_without_contract_gets_a_report_without_goal(world, client):
    make_tenant("ohne", "Amt ohne Vertrag")
    client.login(world["sm"])
    page = client.get(f"/reports/ohne?{MARCH_ARGS}").get_data(as_text=True)
    assert "Für diesen Mandanten ist kein SLA-Vertrag hinterlegt." in page
    overview = client.get(f"/reports/?{MARCH_ARGS}").get_data(as_text=True)
    assert "kein Vertrag" in overview


def test_report_without_period_shows_the_previous_month(world, client, frozen_now):
    frozen_now(berlin("2026-04-10 12:00"))
    client.login(world["sm"])
    page = client.get("/reports/lup").get_data(as_text=True)
    assert "Servicebericht Landkreis Ludwigslust-Parchim: März 2026" in page


# --- overview ------------------------------------------------------------------------------

def test_overview_puts_tenants_side_by_side_and_sorts_on_the_server(history, world, client):
    rows = reports.tenant_overview(*MARCH[:2])
    by_slug = {r["slug"]: r for r in rows}
    assert (by_slug["lup"]["opened"], by_slug["lup"]["resolved"], by_slug["lup"]["backlog"],
            by_slug["lup"]["breaches"]) == (7, 6, 2, 5)
    assert by_slug["schwerin"]["first_response"] == reports.Compliance(1, 0)
    client.login(world["sm"])

    def order(sort):
        page = client.get(f"/reports/?{MARCH_ARGS}&sort={sort}").get_data(as_text=True)
        return page.index("Landkreis Ludwigslust-Parchim</a>") < page.index("Landeshauptstadt Schwerin</a>")

    assert order("name") is False  # "Landeshauptstadt" < "Landkreis"
    assert order("-name") is True
    assert order("-opened") is True and order("opened") is False
    assert order("-breaches") is True
    assert order("resolution") is True  # 50 % before 100 %
    assert order("'; drop table ticket; --") is False  # unknown: by name


def test_team_lead_overview_is_restricted_and_tenant_manager_is_sent_to_own_report(history, world, client):
    rows = reports.tenant_overview(*MARCH[:2], team_ids=[world["printers"].id])
    assert {r["slug"]: r["opened"] for r in rows} == {"lup": 4, "schwerin": 0}
    client.login(world["boss"])
    response = client.get(f"/reports/?{MARCH_ARGS}")
    assert response.status_code == 302 and "/reports/lup?" in response.headers["Location"]


# --- exports -------------------------------------------------------------------------------

def _csv_rows(response) -> list[list[str]]:
    data = response.get_data()
    assert data.startswith("\ufeff".encode("utf-8"))
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def test_ticket_csv_has_bom_semicolons_berlin_times_and_the_rows_behind_the_report(history, world, client):
    client.login(world["boss"])
    response = client.get(f"/reports/lup/tickets.csv?{MARCH_ARGS}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv_rows(response)
    assert rows[0][:6] == ["Nummer", "Erstellt", "Gelöst", "Priorität", "Kategorie", "Team"]
    numbers = [row[0] for row in rows[1:]]
    # Opened, resolved or with a result in March: all but the other tenant's.
    assert sorted(numbers) == sorted(history[n].number for n in (1, 2, 3, 4, 5, 6, 7, 8))
    row = {r[0]: r for r in rows[1:]}
    assert row[history[6].number][1:4] == ["31.03.2026 15:00", "01.04.2026 09:00", "P3"]
    assert row[history[2].number][4:] == ["Zugang", "Service Desk", "verletzt", "120,0", "verletzt", "540,0"]
    assert row[history[8].number][6:8] == ["verletzt", ""]  # still running: no time used yet
    assert row[history[8].number][4] == "Hardware"
    assert row[history[3].number][8:] == ["eingehalten", "405,0"]


def test_summary_csv_has_the_report_numbers(history, world, client):
    client.login(world["sm"])
    rows = _csv_rows(client.get(f"/reports/lup/report.csv?{MARCH_ARGS}"))
    values = {row[0]: row[1:] for row in rows if row}
    assert values["Mandant"] == ["Landkreis Ludwigslust-Parchim"]
    assert values["Zeitraum"][0] == "März 2026"
    assert values["Eröffnet"] == ["7"] and values["Gelöst"] == ["6"] and values["Offen am Periodenende"] == ["2"]
    assert values["Verletzungen"] == ["5"]
    assert ["Erstreaktion", "alle", "5", "2", "71,4"] in rows
    assert ["Lösung", "P1 kritisch", "0", "1", "0,0"] in rows
    assert ["Hardware", "5", "3", "7", "2", "77,8"] in rows


def test_print_version_names_tenant_period_and_generation_time_without_navigation(history, world, client,
                                                                                   frozen_now):
    frozen_now(berlin("2026-04-02 08:15"))
    client.login(world["boss"])
    page = client.get(f"/reports/lup/print?{MARCH_ARGS}").get_data(as_text=True)
    assert "Landkreis Ludwigslust-Parchim" in page and "März 2026" in page
    assert "02.04.2026 08:15" in page
    assert "Hauptnavigation" not in page and 'class="print-page"' in page
    assert "Drucken / als PDF speichern" in page
    assert "style=" not in page


# --- charts --------------------------------------------------------------------------------

def test_charts_escape_their_texts_and_need_no_style_attribute_or_external_url():
    svg = str(charts.bars("c1", ["<b>Jan</b>", "Feb & Mär"], [("Eröffnet", "#000", [3, 5])],
                          title='Tickets "je" Monat <script>', desc="A & B"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;Jan&lt;/b&gt;" in svg
    assert "Feb &amp; Mär" in svg and "<title id=\"c1-title\">" in svg and "<desc id=\"c1-desc\">A &amp; B</desc>" in svg
    assert 'aria-label="Tickets &#34;je&#34; Monat &lt;script&gt;"' in svg
    line = str(charts.compliance_trend("c2", ["Jan", "Feb", "Mär"], [("Lösung", "#111", [100.0, None, 50.0])], 95,
                                       title="Einhaltung", desc="Verlauf"))
    assert 'stroke-dasharray="6 4"' in line  # the goal
    for chart in (svg, line):
        assert "style=" not in chart and "http" not in chart and "url(" not in chart and "href" not in chart


# --- dashboard and periods ------------------------------------------------------------------

def test_dashboard_shows_risk_now_and_last_month_for_a_tenant_manager(history, world, client, frozen_now):
    frozen_now(berlin("2026-04-01 10:00"))
    client.login(world["boss"])
    page = client.get("/reports/dashboard").get_data(as_text=True)
    assert "Was jetzt gefährdet ist" in page and "So lief der März 2026" in page
    assert history[8].number in page  # still breached and open
    assert "Landeshauptstadt Schwerin" not in page


def test_dashboard_of_a_service_manager_compares_all_tenants(history, world, client, frozen_now):
    frozen_now(berlin("2026-04-01 10:00"))
    client.login(world["sm"])
    page = client.get("/reports/dashboard").get_data(as_text=True)
    assert "Landkreis Ludwigslust-Parchim" in page and "Landeshauptstadt Schwerin" in page
    assert page.index("Landkreis Ludwigslust-Parchim</a>") < page.index("Landeshauptstadt Schwerin</a>")  # most breaches first


def test_period_bounds_follow_berlin_local_dates_across_daylight_saving_time(app):
    start, end, label = reports.period_bounds("month", 2026, 3)
    assert (start, end, label) == (berlin("2026-03-01 00:00"), berlin("2026-04-01 00:00"), "März 2026")
    assert end - start == timedelta(days=31, hours=-1)
    assert reports.period_bounds("quarter", 2025, 4)[1:] == (berlin("2026-01-01 00:00"), "Q4 2025")
    assert reports.period_bounds("custom", 0, None, date(2026, 3, 1), date(2026, 3, 15))[1:] == \
        (berlin("2026-03-16 00:00"), "01.03.2026–15.03.2026")
    with pytest.raises(DomainError):
        reports.period_bounds("month", 2026, 13)
    with pytest.raises(DomainError):
        reports.period_bounds("week", 2026, 1)


def test_percentile_is_nearest_rank_with_the_lower_middle_as_median():
    assert reports.percentile([], 50) is None
    assert reports.percentile([40, 10, 30, 20], 50) == 20
    assert reports.percentile([10, 20, 30], 50) == 20
    assert reports.percentile(list(range(1, 11)), 90) == 9
    assert reports.percentile([5], 90) == 5


# --- numbers in the reader's language ----------------------------------------------------------

def test_percentages_are_written_the_way_the_readers_language_writes_them(app):
    from flask_babel import force_locale

    from helpdesk.formatting import number, percent

    with app.test_request_context():
        with force_locale("de"):
            assert (percent(87.5), percent(100), percent(25, 0), number(1234.5, 1)) == (
                "87,5\xa0%", "100,0\xa0%", "25\xa0%", "1.234,5")
        with force_locale("en"):
            assert (percent(87.5), percent(100), percent(25, 0), number(1234.5, 1)) == (
                "87.5%", "100.0%", "25%", "1,234.5")


def _report_page(client, user, url: str) -> str:
    client.login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_same_report_shows_a_decimal_comma_in_german_and_a_decimal_point_in_english(history, world, client):
    german = _report_page(client, world["sm"], f"/reports/lup?{MARCH_ARGS}")
    client.get("/logout")
    world["sm"].locale = "en"
    db.session.commit()
    english = _report_page(client, world["sm"], f"/reports/lup?{MARCH_ARGS}")

    assert "71,4\xa0%" in german and "50,0\xa0%" in german and "95,0\xa0%" in german
    assert "71.4%" in english and "50.0%" in english and "95.0%" in english  # first response, resolution, goal
    assert "71,4" not in english and "95,0" not in english
    # The charts too: axis, points and the goal in the legend.
    assert ">25\xa0%</text>" in german and ">25%</text>" in english
    assert "95.0%</text>" in english and "95,0\xa0%</text>" in german


def test_overview_dashboard_and_print_view_follow_the_readers_language(history, world, client, frozen_now):
    frozen_now(berlin("2026-04-01 10:00"))
    world["sm"].locale = "en"
    db.session.commit()
    client.login(world["sm"])
    for url in (f"/reports/?{MARCH_ARGS}", "/reports/dashboard", f"/reports/lup/print?{MARCH_ARGS}"):
        page = client.get(url).get_data(as_text=True)
        assert "71.4%" in page, url
        assert "71,4" not in page and "&nbsp;%" not in page, url


def test_csv_exports_stay_in_the_german_excel_format_for_english_readers_too(history, world, client):
    world["sm"].locale = "en"
    db.session.commit()
    client.login(world["sm"])
    rows = _csv_rows(client.get(f"/reports/lup/report.csv?{MARCH_ARGS}"))
    assert [row[2:] for row in rows if row[1:2] == ["all"]][0] == ["5", "2", "71,4"]
    row = {r[0]: r for r in _csv_rows(client.get(f"/reports/lup/tickets.csv?{MARCH_ARGS}"))}[history[2].number]
    assert (row[7], row[9]) == ("120,0", "540,0")  # minutes of business time used, with a decimal comma


# --- exact at scale: indexes and SQL percentiles give the recount's figures (issue 9) ------------

def _random_histories(world, seed: int, count: int = 24) -> None:
    """File tickets over March and April 2026 and run each through random real service calls."""
    import random

    rng = random.Random(seed)
    day = berlin("2026-03-02 07:30")
    for number in range(count):
        when = day + timedelta(days=rng.randrange(0, 50), minutes=rng.randrange(0, 8 * 60))
        category = rng.choice(["printer", "access", "hardware"])
        ticket = make_ticket(world[rng.choice(["anna", "anna", "max"])], category=world[category], now=when,
                             subject=f"Zufall {number}")
        for _step in range(rng.randrange(1, 7)):
            when += timedelta(minutes=rng.choice([5, 20, 45, 90, 240, 600, 1500, 4000]))
            if ticket.status == "closed":
                break
            action = rng.choice(["answer", "pending", "requester", "resolve", "reopen", "priority", "team",
                                 "category", "sweep"])
            if action == "answer":
                _answer(world, ticket, when.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M"))
            elif action == "pending" and ticket.status in ("new", "open"):
                tickets.reply(world["agent"], ticket, body="Rückfrage", now=when, new_status="pending")
            elif action == "requester" and ticket.status != "resolved":
                tickets.reply(db.session.get(type(world["anna"]), ticket.requester_id), ticket, body="Nachtrag", now=when)
            elif action == "resolve" and ticket.status in ("open", "pending"):
                tickets.change_status(world["agent"], ticket, "resolved", when)
            elif action == "reopen" and ticket.status == "resolved":
                tickets.reopen(db.session.get(type(world["anna"]), ticket.requester_id), ticket, when, reason="Wieder")
            elif action == "priority" and ticket.status not in ("resolved", "closed"):
                tickets.change_priority(world["agent"], ticket, rng.choice([1, 2, 3, 4]), when, reason="Lage")
            elif action == "team" and ticket.status != "closed":
                tickets.transfer(world["agent"], ticket, rng.choice([world["desk"], world["printers"]]).id, when)
            elif action == "category" and ticket.status != "closed":
                tickets.change_category(world["agent"], ticket, world[rng.choice(["printer", "access"])].id, when)
            elif action == "sweep":
                sla_service.check_ticket(ticket, when)
                db.session.commit()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reports_equal_a_recount_after_random_edits_reopenings_and_priority_changes(world, seed):
    _random_histories(world, seed)
    periods = [MARCH, APRIL, reports.period_bounds("quarter", 2026, 2), reports.period_bounds("year", 2026),
               reports.period_bounds("custom", 2026, start=date(2026, 3, 10), end=date(2026, 4, 9))]
    for start, end, label in periods:
        for tenant in (world["lup"], world["schwerin"]):
            report = reports.service_level_report(tenant, start, end)
            assert_matches_recount(report, recount(tenant, start, end)), label
        lead_view = reports.service_level_report(world["lup"], start, end, team_ids=[world["printers"].id])
        assert_matches_recount(lead_view, recount(world["lup"], start, end, team_ids=[world["printers"].id]))


def test_report_page_lists_the_first_breaches_but_counts_all_of_them(history, world):
    start, end, _label = MARCH
    full = reports.service_level_report(world["lup"], start, end)
    first = reports.service_level_report(world["lup"], start, end, breach_limit=2)
    assert full.breach_count == 5 and len(full.breaches) == 5
    assert first.breach_count == 5 and first.breaches == full.breaches[:2]
    assert first.breaches_cut and not full.breaches_cut
