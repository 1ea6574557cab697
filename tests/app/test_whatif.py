"""Contract what-if: replayed ticket histories against the real service level report."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from helpdesk.extensions import db
from helpdesk.services import sla as sla_service
from helpdesk.services import tickets, whatif
from helpdesk.services.reports import period_bounds, service_level_report
from tests.builders import (
    MV_HOURS, TARGETS, make_calendar, make_category, make_policy, make_team, make_tenant, make_ticket, make_user,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def berlin(text: str) -> datetime:
    """Parse a Berlin wall-clock time into an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


NOW = berlin("2026-04-10 12:00")


@pytest.fixture
def world(app):
    """A tenant with the DESIGN.md contract, its people, and a second tenant with its own ticket."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    calendar = make_calendar("MV Standard")
    make_policy(tenant, calendar=calendar)
    other = make_tenant("sn", "Landeshauptstadt Schwerin")
    make_policy(other, calendar=calendar)
    return {
        "team": team, "tenant": tenant, "other": other, "calendar": calendar,
        "category": make_category("Sonstiges"),
        "requester": make_user(tenant=tenant, email="anna@lup.example"),
        "colleague": make_user(tenant=tenant, email="bernd@lup.example"),
        "other_requester": make_user(tenant=other, email="clara@sn.example"),
        "agent": make_user("agent", teams=[team], email="agent@ksm.example"),
        "manager": make_user("service_manager", email="sm@ksm.example"),
    }


def build_histories(world) -> dict:
    """File tickets with varied histories in Feb–Apr 2026, sweeping before each step like the worker."""
    agent, anna, bernd = world["agent"], world["requester"], world["colleague"]
    made: dict = {}

    def new(name, impact=2, urgency=2, requester=anna):
        def act(moment):
            made[name] = make_ticket(requester, category=world["category"], impact=impact, urgency=urgency,
                                     now=moment, subject=name)
        return act

    def answer(name, **kwargs):
        return lambda moment: tickets.reply(agent, made[name], body="Antwort", now=moment, **kwargs)

    def note(name):
        return lambda moment: tickets.reply(agent, made[name], body="intern", internal=True, now=moment)

    def writes(name, who=None):
        return lambda moment: tickets.reply(who or anna, made[name], body="Rückfrage", now=moment)

    def status(name, value):
        return lambda moment: tickets.change_status(agent, made[name], value, moment)

    def priority(name, value):
        return lambda moment: tickets.change_priority(agent, made[name], value, moment, reason="neu bewertet")

    def reopen(name):
        return lambda moment: tickets.reopen(anna, made[name], moment, reason="Geht doch nicht")

    steps = [
        # met everywhere
        ("2026-03-02 09:00", new("met")), ("2026-03-02 09:30", answer("met")),
        ("2026-03-02 11:00", status("met", "resolved")),
        # late first reply
        ("2026-03-02 09:05", new("late")), ("2026-03-02 09:10", note("late")),
        ("2026-03-02 11:00", answer("late")), ("2026-03-03 10:00", status("late", "resolved")),
        # waiting for the requester pauses the resolution clock over a weekend
        ("2026-03-05 09:00", new("paused")), ("2026-03-05 10:00", answer("paused", new_status="pending")),
        ("2026-03-09 09:00", writes("paused")), ("2026-03-09 14:00", answer("paused", new_status="resolved")),
        # resolved, reopened by the requester's message, resolved again; a next-update cycle in between
        ("2026-03-04 09:00", new("reopened")), ("2026-03-04 09:10", answer("reopened")),
        ("2026-03-04 10:00", status("reopened", "resolved")), ("2026-03-04 12:00", writes("reopened")),
        ("2026-03-04 13:00", answer("reopened")), ("2026-03-05 15:00", status("reopened", "resolved")),
        # reopened through the reopen button, then resolved late
        ("2026-03-10 09:00", new("button")), ("2026-03-10 09:20", answer("button")),
        ("2026-03-10 10:00", status("button", "resolved")), ("2026-03-11 09:00", reopen("button")),
        ("2026-03-13 12:00", status("button", "resolved")),
        # raised to P1: the first response is late under the shorter target
        ("2026-03-05 09:00", new("raised")), ("2026-03-05 09:20", priority("raised", 1)),
        ("2026-03-05 09:40", answer("raised")), ("2026-03-05 13:00", status("raised", "resolved")),
        # P1 breached, then lowered to P4: the breach stays
        ("2026-03-06 08:00", new("lowered", impact=1, urgency=1)), ("2026-03-06 09:00", priority("lowered", 4)),
        ("2026-03-06 09:10", answer("lowered")), ("2026-03-06 12:00", status("lowered", "resolved")),
        # next-update cycles: one met, one breached; a colleague's message also counts as the requester side
        ("2026-03-16 09:00", new("cycles")), ("2026-03-16 09:15", answer("cycles")),
        ("2026-03-16 10:00", writes("cycles")), ("2026-03-16 11:00", answer("cycles")),
        ("2026-03-16 11:30", writes("cycles", bernd)), ("2026-03-16 15:00", answer("cycles")),
        ("2026-03-17 10:00", status("cycles", "resolved")),
        # resolved without any public reply, then answered by a requester message (no next-update clock)
        ("2026-03-18 09:00", new("silent")), ("2026-03-18 10:00", status("silent", "resolved")),
        ("2026-03-18 11:00", writes("silent")), ("2026-03-19 09:00", answer("silent", new_status="resolved")),
        # P4 has no next-update target
        ("2026-03-19 09:00", new("low", impact=3, urgency=3)), ("2026-03-19 09:30", answer("low")),
        ("2026-03-19 10:00", writes("low")), ("2026-03-20 10:00", status("low", "resolved")),
        # across the period edge: filed and answered in February, resolved in March
        ("2026-02-27 12:00", new("edge")), ("2026-02-27 12:30", answer("edge")),
        ("2026-03-02 10:00", status("edge", "resolved")),
        # filed at the end of March, answered in April
        ("2026-03-31 15:00", new("april")), ("2026-04-01 07:30", answer("april")),
        # never answered: breached while still running
        ("2026-03-30 09:00", new("open")),
        # pending at the end of March and still waiting
        ("2026-03-26 09:00", new("waiting")), ("2026-03-26 09:30", answer("waiting", new_status="pending")),
        # another tenant's ticket never mixes in
        ("2026-03-03 09:00", new("other", requester=world["other_requester"])),
    ]
    for when, act in sorted(steps, key=lambda step: step[0]):
        moment = berlin(when)
        sla_service.sweep(moment)
        act(moment)
    sla_service.sweep(NOW)
    db.session.commit()
    return made


def scaled(factor: float) -> dict:
    return {p: {t: int(v * factor) if v else "" for t, v in row.items()} for p, row in TARGETS.items()}


PERIODS = [
    ("month", 2026, 3, None, None),
    ("month", 2026, 2, None, None),
    ("quarter", 2026, 1, None, None),
    ("custom", 0, None, datetime(2026, 3, 5).date(), datetime(2026, 3, 16).date()),
]


def test_what_if_under_the_current_contract_reproduces_the_real_report_exactly(world):
    build_histories(world)
    tenant = world["tenant"]
    for kind, year, number, first, last in PERIODS:
        start, end, label = period_bounds(kind, year, number, first, last)
        report = service_level_report(tenant, start, end, with_trend=False)
        result = whatif.what_if(tenant, start, end, whatif.current_proposal(tenant), now=NOW, label=label)
        for target, real in report.compliance.items():
            assert result.row(target).real == real, (label, target)
            assert result.row(target).proposed == real, (label, target)
            for priority, part in report.compliance_by_priority[target].items():
                assert result.row(target, priority).proposed == part, (label, target, priority)
                assert result.row(target, priority).real == part, (label, target, priority)
    march = service_level_report(tenant, *period_bounds("month", 2026, 3)[:2], with_trend=False)
    # The histories are varied enough that every target has both outcomes in March.
    for target in ("first_response", "next_update", "resolution"):
        assert march.compliance[target].met and march.compliance[target].breached, target


def test_histories_are_read_with_two_queries_whatever_the_number_of_tickets(world):
    build_histories(world)
    from sqlalchemy import event

    tenant = db.session.get(type(world["tenant"]), world["tenant"].id)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        start, end, _label = period_bounds("quarter", 2026, 1)
        events, _versions = whatif.histories(tenant, start, end)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(events) >= 14
    # Two reads; on PostgreSQL the read is prepared by transaction-local settings (SET LOCAL), not queries.
    assert len([s for s in statements if not s.lstrip().upper().startswith("SET ")]) == 2


def test_larger_targets_never_lower_a_compliance_figure(world):
    build_histories(world)
    tenant = world["tenant"]
    looser = whatif.make_proposal(scaled(2), str(world["calendar"].id))
    for kind, year, number, first, last in PERIODS:
        start, end, label = period_bounds(kind, year, number, first, last)
        result = whatif.what_if(tenant, start, end, looser, now=NOW, label=label)
        for row in result.rows:
            if row.real.rate is not None and row.proposed.rate is not None:
                assert row.proposed.rate >= row.real.rate, (label, row)
        assert any(row.delta and row.delta > 0 for row in result.rows) or kind == "month" and number == 2


def test_shorter_service_hours_never_lower_a_compliance_figure(world):
    # Fewer open hours count less business time, so every target is used up later.
    build_histories(world)
    tenant = world["tenant"]
    shorter = {d: ("08:00-12:00" if d < 5 else "") for d in range(7)}
    proposal = whatif.make_proposal({str(p): row for p, row in TARGETS.items()}, str(world["calendar"].id), shorter)
    start, end, label = period_bounds("month", 2026, 3)
    result = whatif.what_if(tenant, start, end, proposal, now=NOW, label=label)
    for row in result.rows:
        if row.real.rate is not None and row.proposed.rate is not None:
            assert row.proposed.rate >= row.real.rate, row
    assert "Servicezeiten" in result.calendar_label


def test_around_the_clock_counts_nights_and_weekends_as_business_time(world):
    build_histories(world)
    tenant = world["tenant"]
    proposal = whatif.make_proposal({str(p): row for p, row in TARGETS.items()}, whatif.AROUND_THE_CLOCK)
    start, end, label = period_bounds("month", 2026, 3)
    result = whatif.what_if(tenant, start, end, proposal, now=NOW, label=label)
    resolution = result.row("resolution")
    assert resolution.proposed.rate < resolution.real.rate
    assert resolution.delta < 0


def test_proposal_with_a_missing_target_is_refused_with_the_field(world):
    targets = {str(p): dict(row) for p, row in TARGETS.items()}
    targets["2"]["resolution"] = ""
    with pytest.raises(Exception) as refused:
        whatif.make_proposal(targets, str(world["calendar"].id))
    assert getattr(refused.value, "field", None) == "p2_resolution"


# --- the page ------------------------------------------------------------------------------------

def query(world, **changes) -> dict:
    """Return the page's query string for March 2026 with the current contract, changed as given."""
    args = {"tenant": world["tenant"].id, "kind": "month", "year": 2026, "month": 3, "quarter": 1,
            "calendar": world["calendar"].id}
    for p, row in TARGETS.items():
        for t, v in row.items():
            args[f"p{p}_{t}"] = v or ""
    for d in range(7):
        args[f"day{d}"] = ", ".join("-".join(i) for i in MV_HOURS.get(str(d), []))
    args.update(changes)
    return args


@pytest.mark.parametrize("role", ["requester", "tenant_manager", "agent", "team_lead"])
def test_only_service_managers_and_admins_may_use_the_what_if(world, client, role):
    user = make_user(role, tenant=world["tenant"] if role in ("requester", "tenant_manager") else None,
                     teams=[world["team"]] if role in ("agent", "team_lead") else None)
    client.login(user)
    assert client.get("/reports/whatif").status_code == 403
    assert client.get("/reports/whatif", query_string=query(world)).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login(world, client):
    response = client.get("/reports/whatif")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_service_manager_sees_the_form_with_the_previous_month(world, client, frozen_now):
    frozen_now(NOW)
    client.login(world["manager"])
    page = client.get("/reports/whatif")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Vertragssimulation" in text and "Landkreis Ludwigslust-Parchim" in text
    assert 'value="2026"' in text and '<option selected value="3">' in text


def test_choosing_a_tenant_starts_from_its_own_contract(world, client, frozen_now):
    build_histories(world)
    frozen_now(NOW)
    client.login(world["manager"])
    page = client.get("/reports/whatif", query_string={"tenant": world["tenant"].id})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "März 2026" in text
    assert re.search(r'name="p1_first_response"[^>]*value="30 min"', text)
    assert "+0,0 Pp." in text or "0,0 Pp." in text


def test_service_manager_compares_a_looser_contract_side_by_side(world, client, frozen_now):
    build_histories(world)
    frozen_now(NOW)
    client.login(world["manager"])
    args = query(world)
    for p, row in scaled(3).items():
        for t, v in row.items():
            args[f"p{p}_{t}"] = v
    page = client.get("/reports/whatif", query_string=args)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    start, end, _label = period_bounds("month", 2026, 3)
    real = service_level_report(world["tenant"], start, end, with_trend=False).compliance["first_response"]
    shown = f"{real.rate:.1f}".replace(".", ",") + "\xa0%"  # German: decimal comma, no-break space
    assert shown in text
    assert "delta-up" in text and "Pp." in text


def test_admin_may_use_the_what_if_too(world, client, frozen_now):
    frozen_now(NOW)
    client.login(make_user("admin", email="admin@ksm.example"))
    assert client.get("/reports/whatif", query_string=query(world)).status_code == 200


def test_invalid_proposal_is_shown_at_its_field_with_the_input_kept(world, client, frozen_now):
    frozen_now(NOW)
    client.login(world["manager"])
    page = client.get("/reports/whatif", query_string=query(world, p2_first_response="0", day0="7 bis 16",
                                                              own_hours="y"))
    assert page.status_code == 422
    text = page.get_data(as_text=True)
    assert "Zeiten sind ganze Minuten größer als 0" in text
    assert 'value="0"' in text


def test_invalid_hours_are_refused_when_own_hours_are_chosen(world, client, frozen_now):
    frozen_now(NOW)
    client.login(world["manager"])
    page = client.get("/reports/whatif", query_string=query(world, day0="7 bis 16", own_hours="y"))
    assert page.status_code == 422
    assert "keine Zeitspanne" in page.get_data(as_text=True)


def test_a_period_in_the_future_is_refused(world, client, frozen_now):
    frozen_now(NOW)
    client.login(world["manager"])
    page = client.get("/reports/whatif", query_string=query(world, month=6))
    assert page.status_code == 422
    assert "Vergangenheit" in page.get_data(as_text=True)


def test_the_replay_uses_the_time_of_the_request_for_running_clocks(world):
    build_histories(world)
    tenant = world["tenant"]
    start, end, _label = period_bounds("month", 2026, 3)
    earlier = whatif.what_if(tenant, start, end, whatif.current_proposal(tenant), now=berlin("2026-03-30 09:30"))
    later = whatif.what_if(tenant, start, end, whatif.current_proposal(tenant), now=NOW)
    # The unanswered ticket of 30 March breaches its first response at 10:00, only in the later look.
    assert later.row("first_response").proposed.breached == earlier.row("first_response").proposed.breached + 1
    assert earlier.start == start and timedelta(0) < later.end - later.start


# --- the form starts from the chosen tenant's contract ---------------------------------------------

class _FormFields(HTMLParser):
    """Collect what a browser would submit from the page's what-if form (GET)."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "y")
            elif kind != "submit":
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select:
            if "selected" in a or self._select not in self.fields:
                self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def submitted(page, **changes) -> dict:
    """Return the query string the browser sends when the form on `page` is submitted with `changes`."""
    text = page.get_data(as_text=True)
    form = text[text.index('class="card whatif-form"'):]
    form = form[:form.index("</form>")]
    parser = _FormFields()
    parser.feed("<form " + form)
    parser.fields.update({k: str(v) for k, v in changes.items()})
    return parser.fields


def shown_deltas(page) -> set[str]:
    """Return the differences shown in the result table."""
    return set(re.findall(r'<td class="delta">(.*?)</td>', page.get_data(as_text=True), re.S))


def test_picking_a_tenant_on_the_first_form_compares_its_own_contract_without_an_error(world, client, frozen_now):
    build_histories(world)
    frozen_now(NOW)
    client.login(world["manager"])
    first = client.get("/reports/whatif")

    page = client.get("/reports/whatif", query_string=submitted(first, tenant=world["tenant"].id))

    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True))
    assert 'role="alert"' not in text
    assert "Tatsächlich" in text and "März 2026" in text
    assert re.search(r'name="p1_first_response"[^>]*value="30 min"', text)
    assert re.search(r'name="p4_resolution"[^>]*value="80 h"', text)
    assert "Ausgangspunkt ist der aktuelle Vertrag von Landkreis Ludwigslust-Parchim" in text
    assert all("delta-up" not in d and "delta-down" not in d for d in shown_deltas(page))


def test_the_first_form_asks_for_the_tenant_before_showing_contract_fields(world, client, frozen_now):
    frozen_now(NOW)
    client.login(world["manager"])
    text = client.get("/reports/whatif").get_data(as_text=True)
    assert 'name="p1_first_response"' not in text
    assert "Wählen Sie einen Mandanten" in text


def test_submitting_the_prefilled_form_unchanged_reproduces_the_real_figures(world, client, frozen_now):
    build_histories(world)
    frozen_now(NOW)
    client.login(world["manager"])
    prefilled = client.get("/reports/whatif", query_string={"tenant": world["tenant"].id})

    again = client.get("/reports/whatif", query_string=submitted(prefilled))

    assert again.status_code == 200
    deltas = shown_deltas(again)
    assert any("+0,0" in d for d in deltas)
    assert all("delta-up" not in d and "delta-down" not in d for d in deltas)
    start, end, _label = period_bounds("month", 2026, 3)
    real = service_level_report(world["tenant"], start, end, with_trend=False).compliance["resolution"]
    row = re.search(r'data-target="resolution" data-priority="all">(.*?)</tr>', again.get_data(as_text=True), re.S)
    shown = f"{real.rate:.1f}".replace(".", ",") + "\xa0%"  # German: decimal comma, no-break space
    assert row.group(1).count(shown) == 2  # real and proposed


def test_an_edited_proposal_in_hours_is_kept_when_submitted_again(world, client, frozen_now):
    build_histories(world)
    frozen_now(NOW)
    client.login(world["manager"])
    prefilled = client.get("/reports/whatif", query_string={"tenant": world["tenant"].id})

    page = client.get("/reports/whatif", query_string=submitted(prefilled, p1_resolution="12 h", p2_resolution="2 Tage",
                                                                 p3_resolution="2 Tage", p4_resolution="20 Tage"))

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert re.search(r'name="p2_resolution"[^>]*value="2 Tage"', text)
    assert "delta-up" in text
    assert "Ausgangspunkt ist der aktuelle Vertrag" not in html.unescape(text)


def test_switching_the_tenant_starts_from_the_other_tenants_contract(world, client, frozen_now):
    frozen_now(NOW)
    other_targets = {p: dict(row) for p, row in TARGETS.items()}
    other_targets["1"] = {"first_response": 15, "next_update": 45, "resolution": 120}
    make_policy(world["other"], calendar=make_calendar("Schwerin"), targets=other_targets)
    client.login(world["manager"])
    lup = client.get("/reports/whatif", query_string={"tenant": world["tenant"].id})

    page = client.get("/reports/whatif", query_string=submitted(lup, tenant=world["other"].id))

    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True))
    assert re.search(r'name="p1_first_response"[^>]*value="15 min"', text)
    assert re.search(r'name="p1_resolution"[^>]*value="2 h"', text)
    assert re.search(r'<option selected value="\d+">Schwerin</option>', text)
    assert "Ausgangspunkt ist der aktuelle Vertrag von Landeshauptstadt Schwerin" in text


def test_a_tenant_without_a_contract_gets_empty_fields_and_a_hint_not_an_error(world, client, frozen_now):
    frozen_now(NOW)
    bare = make_tenant("ohne", "Gemeinde ohne Vertrag")
    client.login(world["manager"])

    page = client.get("/reports/whatif", query_string={"tenant": bare.id})

    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True))
    assert "hat noch keinen Vertrag" in text and 'role="alert"' not in text
    assert 'name="p1_first_response"' in text


def test_an_unreadable_proposed_target_is_refused_at_its_field(world, client, frozen_now):
    frozen_now(NOW)
    client.login(world["manager"])
    page = client.get("/reports/whatif", query_string=query(world, p3_resolution="acht Stunden"))
    assert page.status_code == 422
    assert "„acht Stunden“ ist keine Dauer" in html.unescape(page.get_data(as_text=True))


def test_a_tenant_id_beyond_the_database_range_is_refused_not_a_server_error(world, client, frozen_now):
    frozen_now(NOW)
    client.login(world["manager"])
    page = client.get("/reports/whatif", query_string={"tenant": "9" * 30})
    assert page.status_code == 422
    assert "Bitte wählen Sie einen Mandanten." in page.get_data(as_text=True)
