"""Time the requester lookup, the intake form and filing a ticket by phone with 50,000 requesters on PostgreSQL.

Run:  .venv/bin/python bench/people_lookup.py [--requesters 50000] [--repeat 40] [--explain] [--keep]

A throw-away PostgreSQL database (HELPDESK_TEST_PG_URL, dropped at the end unless --keep) is migrated and
filled with set-based SQL: 100 authorities, N requesters (first and last names from short lists plus a
number, so a first name matches N/8 people), a team and a category. Then, in process through Flask's test
client (no HTTP server: these are the app's own times), an agent calls GET /agent/people for several kinds
of query, GET /agent/tickets/new, POST /agent/tickets/new for a chosen requester and for a new caller, and
an admin GET /manage/users (page 1, a deep page, a text search). Prints p50 / p95 in ms and the SQL
statements per request. Goal (issue 9): create time independent of the number of requesters.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402

from helpdesk import create_app  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from helpdesk.models import Category, Team, Tenant  # noqa: E402
from helpdesk.services import accounts, people  # noqa: E402
from tests.conftest import HelpdeskClient  # noqa: E402
from tests.support import app_config, create_database, drop_database, postgres_unreachable  # noqa: E402

PASSWORD = "correct horse battery"
FIRST = ["Anna", "Bernd", "Carla", "Dieter", "Erika", "Frank", "Gabi", "Heinz"]
LAST = ["Schulz", "Meier", "Krüger", "Schmidt", "Wagner", "Becker", "Hoffmann", "Koch", "Richter", "Wolf"]


def _seed(requesters: int) -> None:
    """Fill authorities and requesters with set-based SQL, a team and a category with the ORM."""
    db.session.execute(text(
        "INSERT INTO tenant (slug, name, active, created_at) SELECT 'gemeinde' || g, "
        "'Gemeinde ' || (ARRAY['Nord','Süd','Ost','West','Mitte'])[1 + g % 5] || ' ' || g, true, now() "
        "FROM generate_series(1, 100) g"))
    db.session.execute(text(
        "INSERT INTO \"user\" (email, name, password_hash, role, tenant_id, locale, active, created_at, session_version) "
        "SELECT 'person' || g || '@gemeinde' || (1 + g % 100) || '.example', "
        "(CAST(:first AS text[]))[1 + g % 8] || ' ' || (CAST(:last AS text[]))[1 + (g / 8) % 10] || ' ' || g, '!', 'requester', "
        "(SELECT min(id) FROM tenant) + g % 100, 'de', true, now(), 1 FROM generate_series(1, :n) g"),
        {"first": FIRST, "last": LAST, "n": requesters})
    db.session.add(Team(slug="service-desk", name="Service Desk", is_fallback=True, active=True))
    db.session.add(Category(name="Netzwerk", position=1, active=True))
    db.session.commit()
    accounts.save_user(None, email="agent@ksm.example", name="Anna Agentin", role="agent", password=PASSWORD)
    accounts.save_user(None, email="admin@ksm.example", name="Ada Admin", role="admin", password=PASSWORD)
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def _client(app, email: str) -> HelpdeskClient:
    client = app.test_client()
    response = client.post_form("/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    page = client.get("/agent/tickets/new" if email.startswith("agent") else "/manage/users").get_data(as_text=True)
    client._token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client


def _measure(label: str, repeat: int, call) -> None:
    """Run `call` repeat times; print p50 / p95 in ms and the statements of one call."""
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    times = []
    for n in range(repeat):
        if n == 0:
            event.listen(db.engine, "before_cursor_execute", listener)
        db.session.expire_all()
        started = time.perf_counter()
        response = call(n)
        times.append((time.perf_counter() - started) * 1000)
        if n == 0:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert response.status_code in (200, 302), (label, response.status_code, response.get_data(as_text=True)[:300])
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"{label:<46} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   {len(statements):3d} SQL")


def main() -> None:
    """Build the data set, time every operation, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requesters", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of one lookup per kind")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    args = parser.parse_args()
    reason = postgres_unreachable()
    if reason:
        sys.exit(f"PostgreSQL unreachable: {reason}")
    name, url = create_database("bench_people")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = create_app(app_config(url, Path(tmp)))
            app.test_client_class = HelpdeskClient
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
                started = time.perf_counter()
                _seed(args.requesters)
                print(f"seeded {args.requesters:,} requesters in 100 authorities in {time.perf_counter() - started:.1f} s")
                _run(app, args)
                db.session.remove()
                db.engine.dispose()
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            drop_database(name)


def _run(app, args) -> None:
    agent = _client(app, "agent@ksm.example")
    tenant_ids = list(db.session.scalars(select(Tenant.id).order_by(Tenant.id)))
    category_id = db.session.scalar(select(Category.id))
    queries = {
        "2 letters ('an')": lambda n: "an",
        "first name ('erika', N/8 match)": lambda n: FIRST[n % 8].lower(),
        "name part ('schmidt 1234')": lambda n: f"{LAST[n % 10]} {1000 + n}",
        "email part ('person4711@')": lambda n: f"person{4711 + n}@",
        "authority + name ('nord 5 anna')": lambda n: f"nord {5 + 5 * (n % 19)} anna",
        "no match ('zzqx')": lambda n: f"zzqx{n}",
    }
    for label, q in queries.items():
        _measure(f"GET /agent/people {label}", args.repeat, lambda n, q=q: agent.get("/agent/people", query_string={"q": q(n)}))
    _measure("GET /agent/people?q=anna&tenant=…", args.repeat,
             lambda n: agent.get("/agent/people", query_string={"q": "anna", "tenant": tenant_ids[n % 100]}))
    _measure("GET /agent/tickets/new", args.repeat, lambda n: agent.get("/agent/tickets/new"))
    _measure("POST search step (q=schmidt)", args.repeat, lambda n: agent.post_form(
        "/agent/tickets/new", {"action": "search", "q": "schmidt", "subject": "x", "description": "y"}))
    form = {"channel": "phone", "category_id": str(category_id), "impact": "2", "urgency": "2",
            "subject": "Kein Netz", "description": "Telefonisch gemeldet: alle PCs offline."}
    first_requester = db.session.scalar(text("SELECT min(id) FROM \"user\" WHERE role = 'requester'"))
    _measure("POST /agent/tickets/new (chosen requester)", args.repeat, lambda n: agent.post_form(
        "/agent/tickets/new", {**form, "requester_id": str(first_requester + 97 * n)}))
    _measure("POST /agent/tickets/new (new caller)", args.repeat, lambda n: agent.post_form(
        "/agent/tickets/new", {**form, "requester_id": "new", "new_name": f"Neu Person {n}",
                               "new_email": f"neu{n}-{time.time_ns()}@gemeinde1.example",
                               "new_tenant_id": str(tenant_ids[n % 100])}))
    admin = _client(app, "admin@ksm.example")
    _measure("GET /manage/users (page 1)", args.repeat, lambda n: admin.get("/manage/users"))
    _measure("GET /manage/users?page=1000", args.repeat, lambda n: admin.get("/manage/users?page=1000"))
    _measure("GET /manage/users?text=person4711", args.repeat,
             lambda n: admin.get("/manage/users", query_string={"text": f"person{4711 + n}"}))
    _measure("GET /manage/users?text=anna", args.repeat, lambda n: admin.get("/manage/users?text=anna"))
    if args.explain:
        for label, q in queries.items():
            found = people.search_requesters  # the statement as the endpoint builds it
            statements = []
            listener = lambda conn, cursor, statement, params, context, many: statements.append((statement, params))  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            found(q(0))
            event.remove(db.engine, "before_cursor_execute", listener)
            statement, params = statements[-1]
            raw = db.session.connection().connection.driver_connection
            plan = raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
            print(f"\n--- {label}\n" + "\n".join(row[0] for row in plan))
            db.session.rollback()


if __name__ == "__main__":
    main()
