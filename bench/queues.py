"""Time the agent queues (every tab and sort, a deep page, a tenant filter) at 1M tickets / 50k open on PostgreSQL.

Run:  .venv/bin/python bench/queues.py [--tickets 1000000] [--open 50000] [--repeat 5] [--keep]

A throw-away PostgreSQL database (dropped at the end unless --keep) is migrated and filled with set-based
SQL: 100 tenants, 5 teams, 1,000 requesters, N tickets of which M open. For each URL the app's SQL of one
request is captured and re-run with EXPLAIN ANALYZE; printed: the summed SQL execution time, the request
time in process (Flask test client, p50 of --repeat) and whether a plan sorted tickets ("SORT").
"Before" is measured too: the old OFFSET page and exact COUNT(*) (services.queues.queue_query, as
db.paginate ran it) with the queue indexes of migration 0012 dropped.
"""
from __future__ import annotations

import argparse
import json
import re
import runpy
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event, func, select, text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from helpdesk import create_app  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from helpdesk.models import Team, User  # noqa: E402
from helpdesk.services import accounts, queues  # noqa: E402
from tests.conftest import HelpdeskClient  # noqa: E402
from tests.support import app_config, create_database, drop_database, postgres_unreachable  # noqa: E402

PASSWORD = "correct horse battery"
# The indexes of migration 0012 (dropped for the "before" figures).
INDEXES = runpy.run_path(str(ROOT / "migrations/versions/0012_a8queue00012_queue_indexes_for_open_tickets.py"))["INDEXES"]


def _seed(tickets: int, open_tickets: int) -> None:
    """Fill tenants, teams, requesters and tickets with set-based SQL (one INSERT … SELECT generate_series)."""
    s = db.session
    s.execute(text("INSERT INTO tenant (slug, name, active, created_at) SELECT 'g' || g, 'Gemeinde ' || g, true, "
                   "now() FROM generate_series(1, 100) g"))
    for n in range(1, 6):
        s.add(Team(slug=f"team{n}", name=f"Team {n}", is_fallback=n == 1, active=True))
    s.commit()
    s.execute(text(
        "INSERT INTO \"user\" (email, name, password_hash, role, tenant_id, locale, active, created_at, session_version) "
        "SELECT 'p' || g || '@x.example', 'Person ' || g, '!', 'requester', (SELECT min(id) FROM tenant) + g % 100, "
        "'de', true, now(), 1 FROM generate_series(1, 1000) g"))
    team1 = s.scalar(select(Team).where(Team.slug == "team1"))
    agent = accounts.save_user(None, email="agent@ksm.example", name="Anna Agentin", role="agent",
                               teams=[team1], password=PASSWORD)
    colleague = accounts.save_user(None, email="carl@ksm.example", name="Carl Kollege", role="agent",
                                   teams=[team1], password=PASSWORD)
    s.commit()
    # Every (tickets/open)-th ticket is open; open ones: 40 % assigned (1,000 of them to the agent),
    # 85 % with a due date. Created over ~3 years, one a minute or so.
    s.execute(text("""
        INSERT INTO ticket (number, tenant_id, requester_id, created_by_id, team_id, assignee_id, channel, impact,
            urgency, priority, priority_overridden, status, subject, description, created_at, updated_at,
            resolved_at, reopen_count, sla_due_at, sla_breached, sla_check_failures)
        SELECT 'KSM-' || (2023 + g / 400000) || '-' || lpad(g::text, 7, '0'),
               t0 + g % 100, u0 + g % 1000, u0 + g % 1000, m0 + g % 5,
               CASE WHEN g % :step = 0 AND (g / :step) % 5 < 2
                    THEN (CASE WHEN (g / :step) % 50 = 0 THEN :agent ELSE :colleague END) END,
               'web', 1 + g % 3, 1 + (g / 3) % 3, 1 + (g * 7) % 4, false,
               CASE WHEN g % :step = 0 THEN (ARRAY['new','open','pending'])[1 + (g / :step) % 3]
                    ELSE (ARRAY['resolved','closed','closed'])[1 + g % 3] END,
               'Anliegen ' || g, 'Beschreibung', ts, ts + interval '1 hour' * (g % 97),
               CASE WHEN g % :step <> 0 THEN ts + interval '2 hours' END, 0,
               CASE WHEN g % :step = 0 AND g % 7 <> 0 THEN ts + interval '1 hour' * (g % 500) END, false, 0
        FROM (SELECT g, timestamptz '2023-01-01' + interval '95 seconds' * g AS ts,
                     (SELECT min(id) FROM tenant) AS t0, (SELECT min(id) FROM "user") AS u0,
                     (SELECT min(id) FROM team) AS m0 FROM generate_series(1, :n) g) src
    """), {"n": tickets, "step": tickets // open_tickets, "agent": agent.id, "colleague": colleague.id})
    s.commit()
    s.execute(text("ANALYZE"))
    s.commit()


def _explain(statement: str, parameters) -> tuple[float, bool]:
    """Return the execution time (ms) of a statement and whether its plan sorts tickets."""
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        plan = cursor.fetchone()[0][0]
    flat = json.dumps(plan)
    sorts = bool(re.search(r'"Node Type": "Sort"', flat)) and "ticket." in flat
    return plan["Execution Time"], sorts


def _measure_url(client, url: str, repeat: int) -> tuple[float, float, bool]:
    """Return (SQL ms summed over the request's ticket statements, request p50 ms, any sort)."""
    captured = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if "FROM ticket" in statement:
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert client.get(url).status_code == 200, url
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    results = [_explain(statement, parameters) for statement, parameters in captured]
    db.session.rollback()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    return sum(r[0] for r in results), statistics.median(times), any(r[1] for r in results)


def _old_sql(user: User, tab: str, sort: str, page: int, tenant_id: int | None = None) -> tuple[float, bool]:
    """Return the SQL ms of the old queue page: ORDER BY … LIMIT 25 OFFSET …, plus COUNT(*) of the whole tab."""
    filters = queues.QueueFilters(tenant_id=tenant_id)
    query = queues.queue_query(user, tab, filters, sort)
    total = 0.0
    sorted_ = False
    dialect = postgresql.dialect()
    for statement in (query.limit(25).offset((page - 1) * 25),
                      select(func.count()).select_from(query.order_by(None).subquery())):
        sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        ms, sorts = _explain(sql, None)
        total += ms
        sorted_ = sorted_ or sorts
    return total, sorted_


def main() -> None:
    """Build the data set, measure before and after, print a table, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if reason := postgres_unreachable():
        sys.exit(f"PostgreSQL needed: {reason}")
    name, url = create_database("bench_queues")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = create_app({**app_config(url, Path(tmp)), "PAGE_SIZE": 25, "RATELIMIT_ENABLED": False})
            app.test_client_class = HelpdeskClient
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
                started = time.perf_counter()
                _seed(args.tickets, args.open)
                print(f"seeded {args.tickets:,} tickets ({args.open:,} open) in {time.perf_counter() - started:.0f} s")
                client = app.test_client()
                client.login(db.session.scalar(select(User).where(User.email == "agent@ksm.example")))
                agent = db.session.scalar(select(User).where(User.email == "agent@ksm.example"))
                tenant_id = db.session.scalar(text("SELECT min(id) + 7 FROM tenant"))
                print(f"{'after (keyset, capped count, indexes)':60} {'SQL ms':>8} {'req ms':>8}")
                for tab in queues.TABS:
                    for sort in queues.SORTS:
                        sql, request, sorts = _measure_url(client, f"/agent/queue?tab={tab}&sort={sort}", args.repeat)
                        print(f"  page 1 tab={tab:10} sort={sort:10}{'':24} {sql:8.1f} {request:8.1f}"
                              f"{'  SORT' if sorts else ''}")
                # A deep page: follow "Weiter" 199 times and measure the 200th page.
                page_url = "/agent/queue?tab=open&sort=priority"
                for _ in range(199):
                    found = re.search(r'href="([^"]+)" rel="next"', client.get(page_url).get_data(as_text=True))
                    if not found:
                        break
                    page_url = found[1].replace("&amp;", "&")
                for label, target in (("page 200 tab=open sort=priority", page_url),
                                      ("tenant filter tab=open sort=priority", f"/agent/queue?tab=open&tenant={tenant_id}"),
                                      ("tenant filter tab=all sort=-created",
                                       f"/agent/queue?tab=all&sort=-created&tenant={tenant_id}")):
                    sql, request, sorts = _measure_url(client, target, args.repeat)
                    print(f"  {label:58} {sql:8.1f} {request:8.1f}{'  SORT' if sorts else ''}")

                print(f"{'before (OFFSET + exact COUNT, without the 0012 indexes)':60} {'SQL ms':>8}")
                for index_name, _columns, _condition in INDEXES:
                    db.session.execute(text(f"DROP INDEX {index_name}"))
                db.session.commit()
                for tab in queues.TABS:
                    for sort in queues.SORTS:
                        sql, sorts = _old_sql(agent, tab, sort, 1)
                        print(f"  page 1 tab={tab:10} sort={sort:10}{'':24} {sql:8.1f}{'  SORT' if sorts else ''}")
                for label, page, tab, sort, tenant in (("page 200 tab=open sort=priority", 200, "open", "priority", None),
                                                       ("tenant filter tab=open sort=priority", 1, "open", "priority",
                                                        tenant_id),
                                                       ("tenant filter tab=all sort=-created", 1, "all", "-created",
                                                        tenant_id)):
                    sql, sorts = _old_sql(agent, tab, sort, page, tenant)
                    print(f"  {label:58} {sql:8.1f}{'  SORT' if sorts else ''}")
                db.session.remove()
                db.engine.dispose()
    finally:
        if args.keep:
            print(f"kept database {name}: {url}")
        else:
            drop_database(name)


if __name__ == "__main__":
    main()
