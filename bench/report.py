"""Time the service level report of a tenant with 100,000 tickets in a year, on SQLite and PostgreSQL.

Run:  .venv/bin/python bench/report.py [--backend sqlite|postgresql|both] [--tickets 100000]
                                       [--other 20000] [--repeat 5] [--explain] [--keep] [--reuse NAME]

For each backend a fresh database is created and migrated (SQLite file in a temp dir; a throw-away
PostgreSQL database on HELPDESK_TEST_PG_URL, dropped at the end). One tenant gets N tickets spread
over the business hours of 2025, another tenant M tickets (so the tenant filter has to work), both
with bulk core inserts of Ticket and SlaClock rows whose outcomes look like real ones: first
response and resolution clocks for every ticket, next-update clocks for some, about 5 % of the
clocks breached, the tickets of the last days still open (some of them breached while running).
Durations are business time of the DE-MV calendar (helpdesk.services.sla's own calendar code).
Then `service_level_report` (with its 12-month trend) is timed for the year 2025 and for two
months, plus the all-tenants overview of a month; the median of --repeat runs is printed.
Requirement (issue 4): a monthly report under 0.5 s on PostgreSQL; issue 9: 200 ms at 1M tickets
(`--other 900000`). `--keep` leaves the PostgreSQL database in place and prints its name;
`--reuse NAME` times an already seeded one (so query changes can be compared on the same data;
drop it afterwards with `--reuse NAME --drop`).
"""
from __future__ import annotations

import argparse
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, insert, select  # noqa: E402

from helpdesk import create_app  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from tests.support import PG_ADMIN_URL, app_config as _config, create_database, drop_database, postgres_unreachable  # noqa: E402

CHUNK = 5000
UTC = timezone.utc
YEAR_START = datetime(2024, 12, 31, 23, 0, tzinfo=UTC)  # 2025-01-01 00:00 Berlin
YEAR_END = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # Monday 10:00 Berlin, after the year
OPEN_FROM = datetime(2025, 12, 18, 0, 0, tzinfo=UTC)  # half of the tickets filed since then are still open
MV_HOURS = {"0": [["07:00", "16:00"]], "1": [["07:00", "16:00"]], "2": [["07:00", "16:00"]],
            "3": [["07:00", "16:00"]], "4": [["07:00", "13:00"]]}
TARGETS = {
    "1": {"first_response": 30, "next_update": 60, "resolution": 240},
    "2": {"first_response": 60, "next_update": 120, "resolution": 480},
    "3": {"first_response": 60, "next_update": 120, "resolution": 480},
    "4": {"first_response": 480, "next_update": None, "resolution": 4800},
}
PRIORITY_WEIGHTS = {1: 3, 2: 12, 3: 60, 4: 25}
BREACH_SHARE = 0.05
CATALOG = {"Hardware": ["Drucker", "Monitor", "Notebook"], "Zugang": ["Passwort", "VPN"],
           "Fachverfahren": ["Einwohnerwesen", "Kfz-Zulassung"], "Netzwerk": ["WLAN"]}
TEAMS = ["Service Desk", "Arbeitsplatz & Drucker", "Netzwerk & Infrastruktur", "Fachverfahren", "Abrechnung"]


class StatementLog:
    """Collect the SQL statements (with parameters) sent through an engine while active."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, object]] = []

    def _on_execute(self, _conn, _cursor, statement, parameters, _context, _many):
        self.statements.append((statement, parameters))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *_exc):
        event.remove(self.engine, "before_cursor_execute", self._on_execute)


def seed_base() -> dict:
    """Create the tenants with contracts, teams, catalog and people; return what the tickets need."""
    from helpdesk.models import Category, Team, Tenant
    from helpdesk.services import accounts, sla_admin
    from helpdesk.services.sla import DEFAULT_LEVELS, business_calendar

    password = "correct horse battery"
    tenants = [Tenant(slug="amt-bench", name="Amt Bench"), Tenant(slug="amt-nachbar", name="Amt Nachbar")]
    db.session.add_all(tenants)
    db.session.commit()
    agent = accounts.save_user(None, email="agent@ksm.example", name="Alex Agent", role="agent", password=password)
    requesters = [accounts.save_user(None, email=f"req@{t.slug}.example", name=f"Rita {t.name}", role="requester",
                                     tenant=t, password=password) for t in tenants]
    teams = [Team(slug=f"team{i}", name=name, members=[agent], is_fallback=i == 0) for i, name in enumerate(TEAMS)]
    db.session.add_all(teams)
    leaves = []
    for parent_name, children in CATALOG.items():
        parent = Category(name=parent_name)
        db.session.add(parent)
        leaves += [Category(name=child, parent=parent) for child in children]
    db.session.add_all(leaves)
    db.session.commit()
    calendar = sla_admin.save_calendar(None, name="Kalender MV", timezone="Europe/Berlin", hours=MV_HOURS,
                                       holiday_region="DE-MV", closures=[], now=YEAR_START)
    versions = [sla_admin.save_policy(t, name=f"Vertrag {t.name}", calendar=calendar, compliance_goal=95,
                                      targets=TARGETS, levels=DEFAULT_LEVELS, actor=None, now=YEAR_START)
                for t in tenants]
    return {
        "tenants": tenants, "requesters": requesters, "versions": versions, "agent": agent,
        # Each catalog entry goes to one team, as routing rules would send it.
        "routes": [(leaf.id, teams[1 + i % (len(teams) - 1)].id if i % 3 else teams[0].id)
                   for i, leaf in enumerate(leaves)],
        "cal": business_calendar(calendar),
    }


def _clock(rng, cal, target_seconds: int, started: datetime) -> dict:
    """Return a decided clock: about 5 % breached; business time used in the calendar."""
    breached = rng.random() < BREACH_SHARE
    used = int(target_seconds * (rng.uniform(1.05, 3.0) if breached else rng.betavariate(1.6, 3.5)))
    decided = cal.add(started, timedelta(seconds=max(used, 60)))
    breached_at = cal.next_open(cal.add(started, timedelta(seconds=target_seconds))) if breached else None
    return {"used_seconds": used, "decided_at": decided, "breached_at": breached_at,
            "outcome": "breached" if breached else "met", "stopped_at": decided, "running_since": None}


def seed_tickets(base: dict, tenant_index: int, n: int, rng: random.Random, prefix: str) -> tuple[int, int]:
    """Bulk insert n tickets of one tenant over 2025 with their clocks; return (tickets, clocks)."""
    from helpdesk.models import SlaClock, Ticket

    cal = base["cal"]
    tenant, requester = base["tenants"][tenant_index], base["requesters"][tenant_index]
    version = base["versions"][tenant_index]
    year_seconds = (YEAR_END - YEAR_START).total_seconds()
    priorities = list(PRIORITY_WEIGHTS)
    weights = list(PRIORITY_WEIGHTS.values())
    moments = sorted(cal.next_open(YEAR_START + timedelta(seconds=rng.uniform(0, year_seconds))) for _ in range(n))
    tickets, plans = [], []
    for i, created in enumerate(moments):
        priority = rng.choices(priorities, weights)[0]
        category_id, team_id = base["routes"][rng.randrange(len(base["routes"]))]
        targets = {k: (v * 60 if v else None) for k, v in TARGETS[str(priority)].items()}
        first = _clock(rng, cal, targets["first_response"], created)
        still_open = created >= OPEN_FROM and rng.random() < 0.5
        clocks = [("first_response", 1, created, targets["first_response"], first)]
        if targets["next_update"] and rng.random() < 0.15:
            started = cal.add(first["decided_at"], timedelta(minutes=rng.randint(10, 600)))
            clocks.append(("next_update", 1, started, targets["next_update"], _clock(rng, cal, targets["next_update"], started)))
        if still_open:
            due = cal.add(created, timedelta(seconds=targets["resolution"]))
            breached_at = cal.next_open(due) if due < NOW else None
            resolution = {"used_seconds": 0, "decided_at": None, "breached_at": breached_at, "outcome": None,
                          "stopped_at": None, "running_since": created, "due_at": due}
        else:
            resolution = _clock(rng, cal, targets["resolution"], created)
        clocks.append(("resolution", 1, created, targets["resolution"], resolution))
        resolved_at = resolution["decided_at"]
        status = "open" if still_open else ("closed" if resolved_at < NOW - timedelta(days=7) else "resolved")
        tickets.append({
            "number": f"{prefix}-{i + 1:07d}", "tenant_id": tenant.id, "requester_id": requester.id,
            "created_by_id": requester.id, "category_id": category_id, "team_id": team_id,
            "assignee_id": base["agent"].id, "channel": "web", "impact": 2, "urgency": 2, "priority": priority,
            "priority_overridden": False, "status": status, "subject": "Drucker druckt nicht",
            "description": "Seit heute früh kein Ausdruck.", "created_at": created,
            "updated_at": resolved_at or first["decided_at"], "first_responded_at": first["decided_at"],
            "resolved_at": resolved_at,
            "closed_at": resolved_at + timedelta(days=7) if status == "closed" else None,
            "reopen_count": 0, "sla_version_id": version.id,
            "resolution_due_at": resolution.get("due_at"), "sla_due_at": resolution.get("due_at"),
            "sla_breached": any(c[4]["breached_at"] is not None for c in clocks),
        })
        plans.append((priority, clocks))
    for start in range(0, len(tickets), CHUNK):
        db.session.execute(insert(Ticket), tickets[start:start + CHUNK])
    db.session.commit()
    ids = list(db.session.scalars(select(Ticket.id).where(Ticket.tenant_id == tenant.id).order_by(Ticket.number)))
    rows, count = [], 0
    for ticket_id, (priority, clocks) in zip(ids, plans):
        for target, cycle, started, target_seconds, c in clocks:
            rows.append({
                "ticket_id": ticket_id, "tenant_id": tenant.id, "target": target, "cycle": cycle,
                "policy_version_id": version.id, "priority": priority, "target_seconds": target_seconds,
                "started_at": started, "running_since": c["running_since"], "used_seconds": c["used_seconds"],
                "paused_at": None, "paused_seconds": 0, "stopped_at": c["stopped_at"],
                "due_at": c.get("due_at") or cal.add(started, timedelta(seconds=target_seconds)),
                "breached_at": c["breached_at"], "outcome": c["outcome"], "decided_at": c["decided_at"],
            })
        if len(rows) >= CHUNK:
            db.session.execute(insert(SlaClock), rows)
            count += len(rows)
            rows = []
    if rows:
        db.session.execute(insert(SlaClock), rows)
        count += len(rows)
    db.session.commit()
    return len(tickets), count


def analyze() -> None:
    """Vacuum and analyze after the bulk load, as autovacuum would (PostgreSQL); ANALYZE on SQLite."""
    db.session.close()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if db.engine.dialect.name == "postgresql" else "ANALYZE")


def time_it(label: str, call, repeat: int) -> dict:
    """Run `call` repeat times with a fresh session each; return cold, median and statement count."""
    runs = []
    statements = 0
    for _ in range(repeat):
        db.session.expunge_all()
        with StatementLog(db.engine) as log:
            began = time.perf_counter()
            call()
            runs.append(time.perf_counter() - began)
        statements = len(log.statements)
        db.session.rollback()
    return {"label": label, "first_s": runs[0], "median_s": statistics.median(runs), "min_s": min(runs),
            "statements": statements}


def explain(call) -> None:
    """Print each statement of one report run with its own time and, on PostgreSQL, its plan."""
    with StatementLog(db.engine) as log:
        call()
    db.session.rollback()
    pg = db.engine.dialect.name == "postgresql"
    connection = db.session.connection()
    for statement, parameters in log.statements:
        began = time.perf_counter()
        connection.exec_driver_sql(statement, parameters).all()
        took = (time.perf_counter() - began) * 1000
        first_line = " ".join(statement.split())[:110]
        print(f"    {took:8.1f} ms  {first_line}")
        if pg:
            plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            for row in plan:
                print("               " + row[0])
    db.session.rollback()


def bench_one(backend: str, n: int, other: int, repeat: int, show_plan: bool, keep: bool = False,
              reuse: str | None = None, drop: bool = False) -> dict:
    """Create, migrate and seed a fresh database (or reuse a kept one), then time the reports."""
    from flask_migrate import upgrade

    from helpdesk.models import SlaClock, Tenant, Ticket
    from helpdesk.services import reports

    tmp = Path(tempfile.mkdtemp(prefix="report-bench-"))
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.sqlite'}"
    elif reuse:
        pg_name, url = reuse, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{reuse}"
        keep = not drop
    else:
        pg_name, url = create_database("helpdesk_bench")
    try:
        app = create_app(_config(url, tmp))
        logging.getLogger("helpdesk").setLevel(logging.WARNING)
        with app.app_context():
            logging.disable(logging.INFO)
            try:
                upgrade(directory=str(ROOT / "migrations"))
            finally:
                logging.disable(logging.NOTSET)
            rng = random.Random(20250101)
            began = time.perf_counter()
            if reuse:
                seeded = (db.session.scalar(select(func.count()).select_from(Ticket).join(Tenant).where(
                    Tenant.slug == "amt-bench")), 0)
            else:
                base = seed_base()
                seeded = seed_tickets(base, 0, n, rng, "BENCH")
                if other:
                    seed_tickets(base, 1, other, rng, "NACHBAR")
                # The bulk inserts bypass the ORM: fill the per-month rollups as the migration does.
                reports.rebuild_rollups(db.session.connection())
                db.session.commit()
            seed_seconds = time.perf_counter() - began
            analyze()
            tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "amt-bench"))
            tenant_id = tenant.id
            breached = db.session.scalar(select(func.count()).select_from(SlaClock).where(
                SlaClock.tenant_id == tenant.id, SlaClock.breached_at.is_not(None)))
            total_clocks = db.session.scalar(select(func.count()).select_from(SlaClock).where(
                SlaClock.tenant_id == tenant.id))
            all_tickets = db.session.scalar(select(func.count()).select_from(Ticket))
            db.session.commit()
            periods = {
                "year 2025": reports.period_bounds("year", 2025),
                "month 2025-06": reports.period_bounds("month", 2025, 6),
                "month 2025-12": reports.period_bounds("month", 2025, 12),
            }
            results = []
            samples = {}
            for label, (start, end, period_label) in periods.items():
                def call(start=start, end=end, period_label=period_label):
                    report = reports.service_level_report(
                        db.session.get(Tenant, tenant_id), start, end, label=period_label)
                    samples[label] = report
                results.append(time_it(f"report {label}", call, repeat))
            june = periods["month 2025-06"]
            results.append(time_it("report 2025-06, no trend", lambda: reports.service_level_report(
                db.session.get(Tenant, tenant_id), june[0], june[1], with_trend=False), repeat))
            results.append(time_it("overview 2025-06", lambda: reports.tenant_overview(june[0], june[1]), repeat))
            results.append(time_it("tickets.csv 2025-06", lambda: reports.tickets_csv(
                db.session.get(Tenant, tenant_id), june[0], june[1]), max(1, repeat // 2)))
            if show_plan:
                print(f"  {backend}: statements of the monthly report (2025-06), each run once more:")
                explain(lambda: reports.service_level_report(db.session.get(Tenant, tenant_id), june[0], june[1]))
            db.session.remove()
            db.engine.dispose()
    finally:
        if pg_name and keep:
            print(f"  kept PostgreSQL database {pg_name}")
        elif pg_name:
            drop_database(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)
    year = samples["year 2025"]
    return {"backend": backend, "tickets": seeded[0], "clocks": total_clocks, "all_tickets": all_tickets,
            "breached_share": breached / total_clocks, "seed_s": seed_seconds, "results": results,
            "year": year, "month": samples["month 2025-06"]}


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every backend and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets of the reported tenant in 2025")
    parser.add_argument("--other", type=int, default=20_000, help="tickets of a second tenant")
    parser.add_argument("--repeat", type=int, default=5, help="runs per report; the median is shown")
    parser.add_argument("--explain", action="store_true", help="print each statement's time (and plan on PostgreSQL)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database (prints its name)")
    parser.add_argument("--reuse", metavar="NAME", help="time a kept PostgreSQL database instead of seeding one")
    parser.add_argument("--drop", action="store_true", help="with --reuse: drop that database at the end")
    args = parser.parse_args(argv)
    if args.reuse:
        args.backend = "postgresql"
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        reason = postgres_unreachable()
        if reason:
            print(f"Note: PostgreSQL skipped, not reachable at {PG_ADMIN_URL} ({reason}); set HELPDESK_TEST_PG_URL")
            backends.remove("postgresql")
    rows = []
    for backend in backends:
        print(f"running {backend}: {args.tickets} tickets of one tenant in 2025 (+{args.other} of another) ...",
              flush=True)
        result = bench_one(backend, args.tickets, args.other, args.repeat, args.explain,
                           keep=args.keep and backend == "postgresql", reuse=args.reuse, drop=args.drop)
        year, month = result["year"], result["month"]
        print(f"  seeded {result['all_tickets']} tickets, {result['clocks']} clocks of the tenant "
              f"({result['breached_share'] * 100:.1f} % breached) in {result['seed_s']:.0f} s")
        print(f"  year 2025: opened {year.opened}, resolved {year.resolved}, backlog {year.backlog}, "
              f"first response {year.compliance['first_response'].rate:.1f} %, "
              f"resolution {year.compliance['resolution'].rate:.1f} %, {year.breach_count} breaches; "
              f"June: opened {month.opened}, {month.breach_count} breaches", flush=True)
        rows += [(backend, r) for r in result["results"]]
    print()
    print(f"median of {args.repeat} runs (first run = cold caches of this process); statements per run")
    header = f"{'backend':<11}{'what':<28}{'median s':>10}{'min s':>8}{'first s':>9}{'stmts':>7}"
    print(header)
    print("-" * len(header))
    for backend, r in rows:
        print(f"{backend:<11}{r['label']:<28}{r['median_s']:>10.3f}{r['min_s']:>8.3f}{r['first_s']:>9.3f}"
              f"{r['statements']:>7}")
    pg_months = [r for backend, r in rows if backend == "postgresql" and r["label"].startswith("report month")]
    if pg_months:
        worst = max(r["median_s"] for r in pg_months)
        print(f"\nPostgreSQL monthly report: {worst:.3f} s (requirement: < 0.5 s) -> "
              f"{'OK' if worst < 0.5 else 'TOO SLOW'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
