"""Queues that do not depend on the backlog: keyset pages, a capped count, fixed statement counts, index plans."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import event, select, update

from helpdesk.extensions import db
from helpdesk.models import Ticket
from helpdesk.services import queues, tickets
from helpdesk.services.attachments import Upload
from tests.builders import at, make_category, make_team, make_tenant, make_ticket, make_user

NUMBER = re.compile(r"KSM-\d{4}-\d{6}")


@pytest.fixture
def desk(app):
    """A fallback team with two agents, a tenant with a requester and a manager, a category."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    return {
        "team": team,
        "tenant": tenant,
        "category": make_category("Drucker"),
        "agent": make_user("agent", teams=[team], email="agent@ksm.example"),
        "colleague": make_user("agent", teams=[team], email="carl@ksm.example"),
        "requester": make_user(tenant=tenant, email="rita@lup.example"),
        "manager": make_user("tenant_manager", tenant=tenant, email="chefin@lup.example"),
    }


def numbers_on(html: str) -> list[str]:
    """Return the ticket numbers on a page in order of first appearance."""
    seen: list[str] = []
    for number in NUMBER.findall(html):
        if number not in seen:
            seen.append(number)
    return seen


def link(html: str, rel: str) -> str | None:
    """Return the "Weiter" (next) or "Zurück" (prev) link of a list page, if it has one."""
    found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
    return unescape(found[1]) if found else None


def sign_in(client, user) -> None:
    """Log the user in."""
    client.login(user)


def file_tickets(desk, count: int, start: str = "2026-03-02 08:00") -> list[Ticket]:
    """File `count` tickets with ties: pairs share a filing moment, three priorities, some without a due date."""
    filed = []
    for n in range(count):
        level = (1, 2, 3)[n % 3]
        filed.append(make_ticket(desk["requester"], category=desk["category"], impact=level, urgency=2,
                                 subject=f"Anliegen {n}", now=at(start) + timedelta(hours=n // 2)))
    # Equal due dates (ties) for some, none for others (no running clock): the "due" sort's two segments.
    for n, ticket in enumerate(filed):
        due = None if n % 4 == 3 else at("2026-03-10 12:00") + timedelta(hours=n % 2)
        db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(sla_due_at=due))
    db.session.commit()
    return filed


def expected_order(sort: str) -> list[str]:
    """Return the numbers of all open tickets in the order a sort promises, computed here in Python."""
    rows = db.session.scalars(select(Ticket).where(Ticket.status.in_(("new", "open", "pending")))).all()
    keys = {
        "priority": lambda t: (t.priority, t.created_at, t.id),
        "due": lambda t: (t.sla_due_at is None, t.sla_due_at or t.created_at, t.priority, t.id),
        "created": lambda t: (t.created_at, t.id),
        "updated": lambda t: (t.updated_at, t.id),
        "number": lambda t: (t.number, t.id),
    }
    ordered = sorted(rows, key=keys[sort.lstrip("-")], reverse=sort.startswith("-"))
    return [t.number for t in ordered]


def walk(client, url: str, rel: str, limit: int = 20) -> list[list[str]]:
    """Follow the next (or prev) links from a page; return the numbers of every page visited."""
    pages = []
    for _ in range(limit):
        html = client.get(url).get_data(as_text=True)
        pages.append(numbers_on(html))
        url = link(html, rel)
        if url is None:
            return pages
    raise AssertionError("the pages never ended")


# --- keyset pages --------------------------------------------------------------------------------

@pytest.mark.parametrize("sort", ["priority", "-priority", "due", "-due", "created", "-updated", "number"])
def test_next_pages_visit_every_open_ticket_once_in_sort_order_and_previous_goes_back(client, app, desk, sort):
    app.config["PAGE_SIZE"] = 3
    filed = file_tickets(desk, 11)
    tickets.change_status(desk["agent"], filed[4], "resolved", at("2026-03-06 10:00"))  # not in the open tab
    tickets.change_priority(desk["agent"], filed[0], 4, at("2026-03-06 11:00"), reason="doch nicht eilig")
    sign_in(client, desk["agent"])

    forward = walk(client, f"/agent/queue?tab=open&sort={sort}", "next")

    assert [number for page in forward for number in page] == expected_order(sort)
    assert [len(page) for page in forward] == [3, 3, 3, 1]
    # From the last page "Zurück" walks back over the same pages, the first one without a "Zurück".
    html = client.get(f"/agent/queue?tab=open&sort={sort}").get_data(as_text=True)
    for _ in range(3):
        html = client.get(link(html, "next")).get_data(as_text=True)
    backward = walk(client, link(html, "prev"), "prev")
    assert backward == forward[-2::-1]


def test_first_page_has_no_previous_link_and_last_page_no_next_link(client, app, desk):
    app.config["PAGE_SIZE"] = 5
    file_tickets(desk, 5)
    sign_in(client, desk["agent"])

    html = client.get("/agent/queue?tab=open").get_data(as_text=True)

    assert len(numbers_on(html)) == 5
    assert link(html, "next") is None and link(html, "prev") is None
    assert "5 Tickets" in html


def test_changing_sort_or_tab_starts_again_on_the_first_page(client, app, desk):
    app.config["PAGE_SIZE"] = 2
    file_tickets(desk, 5)
    sign_in(client, desk["agent"])
    second = client.get(link(client.get("/agent/queue?tab=open").get_data(as_text=True), "next"))
    html = second.get_data(as_text=True)

    # Every link to another tab or sort order, not the "Weiter"/"Zurück" links themselves.
    sort_links = re.findall(r'href="([^"]*sort=[^"]*)"(?! rel=)', html)
    tab_links = re.findall(r'<a href="([^"]*tab=[^"]*)"(?! rel=)', html)

    assert sort_links and tab_links
    assert not [url for url in sort_links + tab_links if "after=" in url or "before=" in url]


@pytest.mark.parametrize("cursor", ["kaputt", "eyJ4IjoxfQ", "W10", "WyJwcmlvcml0eSIsMSwiMjAyNiIsMV0",
                                    "WyJudW1iZXIiLCJLU00iLDFd" + "A" * 500])
def test_a_damaged_or_foreign_cursor_is_refused_with_a_clear_message(client, desk, cursor):
    file_tickets(desk, 2)
    sign_in(client, desk["agent"])

    response = client.get(f"/agent/queue?tab=open&sort=priority&after={cursor}")

    assert response.status_code == 400
    assert "Der Link zum Blättern ist ungültig." in response.get_data(as_text=True)


def test_a_cursor_of_another_sort_is_refused(client, app, desk):
    app.config["PAGE_SIZE"] = 1
    file_tickets(desk, 2)
    sign_in(client, desk["agent"])
    next_url = link(client.get("/agent/queue?tab=open&sort=created").get_data(as_text=True), "next")

    response = client.get(next_url.replace("sort=created", "sort=number"))

    assert response.status_code == 400


# --- capped count --------------------------------------------------------------------------------

def test_count_stops_at_the_cap_and_says_more_than(client, app, desk, monkeypatch):
    monkeypatch.setattr(queues, "COUNT_CAP", 3)
    app.config["PAGE_SIZE"] = 2
    filed = file_tickets(desk, 5)
    sign_in(client, desk["agent"])
    urgent = filed[0].priority  # filed[0] and filed[3] (impact 1)

    assert "mehr als 3 Tickets" in client.get("/agent/queue?tab=open").get_data(as_text=True)
    assert "2 Tickets" in client.get(f"/agent/queue?tab=open&priority={urgent}").get_data(as_text=True)


def test_count_under_the_cap_is_exact_with_thousands_separator(client, app, desk, monkeypatch):
    monkeypatch.setattr(queues, "COUNT_CAP", 1000)
    app.config["PAGE_SIZE"] = 2
    file_tickets(desk, 3)
    sign_in(client, desk["agent"])

    html = client.get("/agent/queue?tab=open").get_data(as_text=True)

    assert "3 Tickets" in html and "mehr als" not in html


def test_tenant_manager_list_of_the_authority_pages_by_keyset_with_capped_count(client, app, desk, monkeypatch):
    monkeypatch.setattr(queues, "COUNT_CAP", 4)
    app.config["PAGE_SIZE"] = 2
    filed = file_tickets(desk, 5)
    sign_in(client, desk["manager"])

    pages = walk(client, "/portal/tickets?scope=tenant&status=all", "next")

    assert sorted(number for page in pages for number in page) == sorted(t.number for t in filed)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert "mehr als 4 Tickets" in client.get("/portal/tickets?scope=tenant&status=all").get_data(as_text=True)


# --- a fixed number of statements ----------------------------------------------------------------

def count_statements(client, url: str) -> int:
    """Return how many SQL statements one request costs (a fresh session, as in a new request)."""
    statements = []

    def listener(*args):
        statements.append(args[2])

    db.session.expire_all()
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(statements)


QUEUE_URLS = [f"/agent/queue?tab={tab}&sort={sort}" for tab in queues.TABS for sort in ("priority", "-due")]


def test_queue_pages_cost_the_same_statements_for_3_and_for_60_tickets(client, app, desk):
    app.config["PAGE_SIZE"] = 100  # every ticket on the first page: an N+1 would show
    other_team = make_team("netz", "Netz")
    other_tenant = make_tenant("sn", "Schwerin")
    citizen = make_user(tenant=other_tenant, email="sven@sn.example")

    def add(count: int) -> None:
        # Every third: mine, unassigned in my team, moved to another team (each tab shows some).
        for n in range(count):
            ticket = make_ticket(desk["requester"] if n % 2 else citizen, category=desk["category"], impact=1 + n % 3)
            if n % 3 == 0:
                tickets.assign(desk["agent"], ticket, desk["agent"], at("2026-03-05 09:30"))
            elif n % 3 == 2:
                tickets.transfer(desk["agent"], ticket, other_team.id, at("2026-03-05 09:40"), note="Netz bitte")

    add(3)
    sign_in(client, desk["agent"])
    few = {url: count_statements(client, url) for url in QUEUE_URLS}
    add(57)
    many = {url: count_statements(client, url) for url in QUEUE_URLS}

    assert many == few
    # A deeper page (after a cursor) costs no more than the first one.
    app.config["PAGE_SIZE"] = 10
    second = link(client.get("/agent/queue?tab=all").get_data(as_text=True), "next")
    assert count_statements(client, second) == count_statements(client, "/agent/queue?tab=all")


def test_tenant_manager_list_costs_the_same_statements_for_3_and_for_60_tickets(client, app, desk):
    app.config["PAGE_SIZE"] = 25
    file_tickets(desk, 3)
    sign_in(client, desk["manager"])
    few = count_statements(client, "/portal/tickets?scope=tenant&status=all")
    file_tickets(desk, 57, start="2026-03-03 08:00")

    assert count_statements(client, "/portal/tickets?scope=tenant&status=all") == few


def test_agent_ticket_page_costs_the_same_statements_for_3_and_for_60_comments_files_and_events(client, desk):
    ticket = make_ticket(desk["requester"], category=desk["category"])

    def add(count: int) -> None:
        for n in range(count):
            author = (desk["agent"], desk["colleague"], desk["requester"])[n % 3]
            tickets.reply(author, ticket, body=f"Nachricht {n}", internal=n % 3 == 1, now=at("2026-03-05 10:00"),
                          uploads=[Upload(f"log{n}.txt", "text/plain", b"x")] if n % 2 else [])
            if n % 4 == 0:
                tickets.change_priority(desk["agent"], ticket, 1 + n // 4 % 4, at("2026-03-05 10:05"), reason="neu bewertet")

    add(3)
    sign_in(client, desk["agent"])
    url = f"/agent/tickets/{ticket.number}"
    few = count_statements(client, url)
    add(57)

    assert count_statements(client, url) == few
    html = client.get(url).get_data(as_text=True)
    assert "Nachricht 56" in html and "log55.txt" in html


# --- index plans (PostgreSQL) --------------------------------------------------------------------

def test_every_tab_and_sort_reads_an_index_in_order_without_sorting_the_tickets(client, app, desk, backend):
    """With sorting and sequential scans priced out, no plan may still need a Sort: an index serves the order."""
    if backend != "postgresql":
        pytest.skip("the plan check reads PostgreSQL's EXPLAIN")
    app.config["PAGE_SIZE"] = 2
    file_tickets(desk, 5)
    sign_in(client, desk["agent"])
    captured: list[tuple[str, object]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if "FROM ticket" in statement and "LIMIT" in statement and "count(" not in statement:
            captured.append((statement, parameters))

    # "mine" is left out: one agent's own open tickets (bounded by a workload, not by the backlog) are
    # found by ix_ticket_assignee_status_updated and sorted in memory.
    urls = [f"/agent/queue?tab={tab}&sort={sort}" for tab in queues.TABS if tab != "mine" for sort in queues.SORTS]
    urls += [f"/agent/queue?tab=open&sort=priority&tenant={desk['tenant'].id}",
             "/portal/tickets?scope=tenant&status=all", "/portal/tickets?scope=tenant&status=open"]
    failures = []
    manager = app.test_client()
    manager.login(desk["manager"])
    for url in urls:
        captured.clear()
        browser = manager if url.startswith("/portal") else client
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            html = browser.get(url).get_data(as_text=True)
            following = link(html, "next")
            if following:
                browser.get(following)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert captured, url
        with db.engine.connect() as connection:
            driver = connection.connection.driver_connection
            with driver.cursor() as cursor:
                for setting in ("enable_seqscan", "enable_sort", "enable_incremental_sort", "enable_bitmapscan"):
                    cursor.execute(f"SET {setting} = off")
                for statement, parameters in captured:
                    cursor.execute("EXPLAIN " + statement, parameters)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    if "Sort Key: ticket" in plan:
                        failures.append((url, plan))
    assert not failures, failures[0]
