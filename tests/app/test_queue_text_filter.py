"""The queue's and the portal list's text filter page inside the search (issue 9): right tickets, right order."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from helpdesk.extensions import db
from helpdesk.services import queues, tickets
from tests.builders import at, make_category, make_policy, make_team, make_tenant, make_ticket, make_user


def _setup():
    desk = make_team("service-desk", "Service Desk", fallback=True)
    agent = make_user("agent", teams=[desk], email="agent@ksm.example")
    hardware = make_category("Hardware")
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    other = make_tenant("hgw", "Hansestadt Greifswald")
    make_policy(lup)
    anna = make_user(tenant=lup, email="anna@lup.example")
    bert = make_user(tenant=lup, email="bert@lup.example")
    olga = make_user(tenant=other, email="olga@hgw.example")
    return hardware, agent, anna, bert, olga


def test_text_filter_pages_through_exactly_the_matching_tickets_in_queue_order(app, monkeypatch):
    hardware, agent, anna, _bert, _olga = _setup()
    start = at("2026-03-02 08:00")
    matching = []
    for n in range(12):
        word = "Papierstau" if n % 3 == 0 else "Monitor"
        ticket = make_ticket(anna, category=hardware, subject=f"{word} im Raum {n}", now=start + timedelta(minutes=n))
        if n % 3 == 0:
            matching.append(ticket)
    noted = make_ticket(anna, category=hardware, subject="Tastatur klemmt", now=start + timedelta(minutes=30))
    tickets.reply(agent, noted, body="Vermutlich Papierstau im Drucker daneben", internal=True,
                  now=start + timedelta(minutes=31))
    matching.append(noted)
    monkeypatch.setattr(queues, "COUNT_CAP", 3)
    filters = queues.QueueFilters.clean(text="papierstau")
    seen, after = [], None
    for _ in range(10):
        page = queues.queue_page(agent, "open", filters, "created", after=after, per_page=2)
        seen += [t.id for t in page.items]
        assert page.total == 4 and page.total_capped  # capped count with the filter: "mehr als 3"
        after = page.next_cursor
        if after is None:
            break
    assert seen == [t.id for t in sorted(matching, key=lambda t: (t.created_at, t.id))]


def test_requesters_list_filter_finds_no_internal_note_words_and_no_other_tenant(client, app):
    hardware, agent, anna, bert, olga = _setup()
    mine = make_ticket(anna, category=hardware, subject="Drucker druckt streifig", now=at("2026-03-02 08:00"))
    tickets.reply(agent, mine, body="Trommeleinheit bestellt", internal=True, now=at("2026-03-02 08:30"))
    theirs = make_ticket(olga, category=hardware, subject="Trommeleinheit im Drucker defekt", now=at("2026-03-02 09:00"))
    client.login(anna)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        body = client.get("/portal/tickets?status=all&q=Trommeleinheit").get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert mine.number not in body and theirs.number not in body
    assert mine.number in client.get("/portal/tickets?status=all&q=streifig").get_data(as_text=True)
    if db.engine.dialect.name == "postgresql":
        # The words are checked per ticket inside the list's own query (EXISTS), no list of all matches.
        listing = [s for s in statements if "ticket_search" in s and "LIMIT" in s.upper()]
        assert listing and all("EXISTS" in s.upper() for s in listing)
