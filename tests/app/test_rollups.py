"""Per-month report rollups (issue 9): always equal to a recount from the raw rows, and what reads them."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from helpdesk.extensions import db
from helpdesk.models import SlaClock, Ticket
from helpdesk.services import reports, tickets
from helpdesk.services import sla as sla_service
from helpdesk.services.reporting import rollups
from tests.app.test_reports import _random_histories, assert_matches_recount, berlin, recount, world  # noqa: F401
from tests.builders import make_ticket

BERLIN = ZoneInfo("Europe/Berlin")
TARGETS = ("first_response", "next_update", "resolution")


def raw_recount() -> dict:
    """Recount every rollup row in plain Python from all tickets and clocks (independent of the service)."""
    def month(moment):
        local = moment.astimezone(BERLIN)
        return date(local.year, local.month, 1)

    rows: dict = defaultdict(lambda: [0, 0, 0, 0, 0])
    all_tickets = {t.id: t for t in db.session.scalars(select(Ticket))}
    for t in all_tickets.values():
        base = (t.tenant_id, t.team_id, t.category_id or 0, 0, "")
        key = lambda m: (base[0], m, *base[1:])  # noqa: E731
        rows[key(month(t.created_at))][0] += 1
        if t.status in ("resolved", "closed") and t.resolved_at is not None:
            rows[key(month(t.resolved_at))][1] += 1
        # In the backlog from the month it was opened until the month it was resolved.
        rows[key(month(t.created_at))][4] += 1
        if t.status in ("resolved", "closed"):
            rows[key(max(month(t.created_at), month(t.resolved_at or t.created_at)))][4] -= 1
    for c in db.session.scalars(select(SlaClock)):
        if c.target not in TARGETS or not (c.breached_at is not None or c.outcome == "met"):
            continue
        t = all_tickets[c.ticket_id]
        key = (c.tenant_id, month(c.decided_at or c.breached_at), t.team_id, t.category_id or 0, c.priority, c.target)
        rows[key][3 if c.breached_at is not None else 2] += 1
    return {key: tuple(values) for key, values in rows.items() if any(values)}


def stored() -> dict:
    return rollups.stored(db.session.connection())


def _more_random_work(world, seed: int) -> None:
    """On top of the shared random histories: batched sweeps, auto-close and late edits across months."""
    rng = random.Random(seed * 7919)
    open_tickets = list(db.session.scalars(select(Ticket).order_by(Ticket.id)))
    when = berlin("2026-04-25 09:00")
    for ticket in rng.sample(open_tickets, min(8, len(open_tickets))):
        when += timedelta(hours=rng.choice([1, 5, 30]))
        if ticket.status in ("new", "open", "pending"):
            tickets.change_priority(world["agent"], ticket, rng.choice([1, 2, 3, 4]), when, reason="Neu bewertet")
        elif ticket.status == "resolved":
            tickets.reopen(db.session.get(type(world["anna"]), ticket.requester_id), ticket, when, reason="Doch nicht")
    sla_service.sweep(berlin("2026-05-04 10:00"), budget_seconds=None)  # the batched sweep decides breaches
    tickets.auto_close_resolved(berlin("2026-06-01 09:00"), days=7)
    db.session.commit()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_rollups_equal_a_recount_from_raw_rows_after_random_edits_reopenings_and_priority_changes(world, seed):
    _random_histories(world, seed, count=30)
    assert stored() == raw_recount()
    _more_random_work(world, seed)
    assert stored() == raw_recount()
    # ... and what the migration's backfill computes from the same rows (set-based on PostgreSQL).
    before = stored()
    rollups.rebuild(db.session.connection())
    assert stored() == before
    db.session.rollback()


def test_reports_of_whole_months_read_from_rollups_equal_the_raw_counts(world):
    _random_histories(world, 5, count=30)
    _more_random_work(world, 5)
    periods = [reports.period_bounds("month", 2026, 3), reports.period_bounds("month", 2026, 4),
               reports.period_bounds("month", 2026, 5), reports.period_bounds("quarter", 2026, 2),
               reports.period_bounds("year", 2026)]
    for start, end, _label in periods:
        for team_ids in (None, [world["printers"].id]):
            fast = reports.service_level_report(world["lup"], start, end, team_ids=team_ids)
            raw = reports.service_level_report(world["lup"], start, end, team_ids=team_ids, use_rollups=False)
            assert (fast.opened, fast.resolved, fast.backlog) == (raw.opened, raw.resolved, raw.backlog)
            assert fast.by_team == raw.by_team and fast.by_category == raw.by_category
            assert fast.compliance == raw.compliance and fast.compliance_by_priority == raw.compliance_by_priority
            assert fast.trend == raw.trend
            assert_matches_recount(fast, recount(world["lup"], start, end, team_ids=team_ids))
            assert (reports.tenant_overview(start, end, team_ids=team_ids)
                    == reports.tenant_overview(start, end, team_ids=team_ids, use_rollups=False))


def test_a_rolled_back_change_leaves_the_rollups_as_they_were(world):
    ticket = make_ticket(world["anna"], category=world["printer"], now=berlin("2026-03-03 09:00"))
    before = stored()
    assert before == raw_recount() and before
    tickets.change_status(world["agent"], ticket, "open", berlin("2026-03-03 09:10"))
    ticket.status = "resolved"
    ticket.resolved_at = berlin("2026-03-03 10:00")
    db.session.flush()
    assert stored() != before  # the flush moved the figures inside the transaction ...
    db.session.rollback()
    assert stored() == raw_recount()  # ... and the rollback took them back with the change


def test_the_monthly_report_reads_the_trend_in_one_statement_whatever_the_number_of_tickets(world):
    def statements() -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            start, end, _label = reports.period_bounds("month", 2026, 4)
            report = reports.service_level_report(world["lup"], start, end)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert report.trend[-1]["opened"] == report.opened
        return len(seen)

    _random_histories(world, 3, count=6)
    few = statements()
    _random_histories(world, 4, count=30)
    many = statements()
    assert many == few
    # The raw trend costs three grouped statements; the rollups answer the trend and the counts in two.
    start, end, _label = reports.period_bounds("month", 2026, 4)
    seen = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        reports.service_level_report(world["lup"], start, end, use_rollups=False)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert few < len(seen)
