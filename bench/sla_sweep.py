"""Time the SLA sweep against N open tickets of which a fixed number are due; it must stay flat in N.

Run:  .venv/bin/python bench/sla_sweep.py [--backend sqlite|postgresql|both] [--sizes 10000,100000]
                                          [--due 200] [--repeat 3] [--explain] [--no-analyze]
                                          [--profile] [--batch 100]
e.g.  .venv/bin/python bench/sla_sweep.py --backend postgresql --sizes 100000 --due 1000 --profile

For each backend and size a fresh database is created and migrated (SQLite file in a temp dir;
a throw-away PostgreSQL database, dropped at the end), one tenant with a contract is seeded and
N open tickets with two running clocks each are bulk inserted. D of them have their next check
in the past (both clocks started Monday 07:00 Berlin, so at "now", Tuesday 15:00 Berlin, the
75 %, 100 % and 150 % levels of both clocks are due), the other N - D are checked later. Then
`sla.sweep(now)` is timed with the D tickets due (--repeat times, the due tickets re-armed in
between) and each time once more with nothing due. See bench/README.md for the figures.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, event, func, insert, select, text, update  # noqa: E402

from helpdesk import create_app  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from tests.support import PG_ADMIN_URL, app_config as _config, create_database, drop_database, postgres_unreachable  # noqa: E402

CHUNK = 5000
UTC = timezone.utc
# Tuesday 2026-03-10 15:00 Berlin (CET, UTC+1): inside opening hours, after every due moment.
NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
# Monday 2026-03-09 07:00 Berlin: the due tickets' clocks started at opening time.
DUE_START = datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
MV_HOURS = {"0": [["07:00", "16:00"]], "1": [["07:00", "16:00"]], "2": [["07:00", "16:00"]],
            "3": [["07:00", "16:00"]], "4": [["07:00", "13:00"]]}
TARGETS = {
    "1": {"first_response": 30, "next_update": 60, "resolution": 240},
    "2": {"first_response": 60, "next_update": 120, "resolution": 480},
    "3": {"first_response": 60, "next_update": 120, "resolution": 480},
    "4": {"first_response": 480, "next_update": None, "resolution": 4800},
}
DUE_PRIORITY = 2  # 60 min first response, 480 min resolution: 17 h used by NOW -> all levels due
IDLE_PRIORITY = 4  # 480 / 4800 min, started within the last hour: next check hours ahead


class StatementCounter:
    """Count the SQL statements sent through an engine while active, and the database time per statement kind."""

    def __init__(self, engine):
        self.count = 0
        self.engine = engine
        self.seconds: dict[str, list[float]] = {}  # first words of a statement -> [count, seconds]
        self._began = 0.0

    def _on_execute(self, *_args):
        self.count += 1
        self._began = time.perf_counter()

    def _after_execute(self, _conn, _cursor, statement, *_args):
        kind = " ".join(statement.split()[:4])[:60]
        entry = self.seconds.setdefault(kind, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - self._began

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        event.listen(self.engine, "after_cursor_execute", self._after_execute)
        return self

    def __exit__(self, *_exc):
        event.remove(self.engine, "before_cursor_execute", self._on_execute)
        event.remove(self.engine, "after_cursor_execute", self._after_execute)

    def top(self, n: int = 8) -> list[str]:
        """Return the statement kinds that took the most database time, as printable lines."""
        rows = sorted(self.seconds.items(), key=lambda item: -item[1][1])[:n]
        return [f"{seconds:8.2f} s {count:6d} x  {kind}" for kind, (count, seconds) in rows]


def seed(n: int, due: int) -> dict:
    """Seed one tenant with a contract, its people and n open tickets (due of them due); return ids."""
    import sla
    from helpdesk.models import Category, SlaClock, Team, Tenant, Ticket
    from helpdesk.services import accounts, sla_admin
    from helpdesk.services.sla import DEFAULT_LEVELS, business_calendar

    tenant = Tenant(slug="amt-bench", name="Amt Bench")
    db.session.add(tenant)
    db.session.commit()
    password = "correct horse battery"
    lead = accounts.save_user(None, email="lead@ksm.example", name="Lea Lead", role="team_lead", password=password)
    agent = accounts.save_user(None, email="agent@ksm.example", name="Alex Agent", role="agent", password=password)
    accounts.save_user(None, email="sm@ksm.example", name="Sam Service", role="service_manager", password=password)
    requester = accounts.save_user(None, email="req@amt.example", name="Rita Requester", role="requester",
                                   tenant=tenant, password=password)
    accounts.save_user(None, email="chef@amt.example", name="Toni Tenant", role="tenant_manager",
                       tenant=tenant, password=password)
    team = Team(slug="bench", name="Team Bench", lead=lead, members=[lead, agent])
    category = Category(name="Drucker")
    db.session.add_all([team, category])
    db.session.commit()
    calendar = sla_admin.save_calendar(None, name="Kalender MV", timezone="Europe/Berlin", hours=MV_HOURS,
                                       holiday_region="DE-MV", closures=[], now=DUE_START)
    version = sla_admin.save_policy(tenant, name="Vertrag Bench", calendar=calendar, compliance_goal=95,
                                    targets=TARGETS, levels=DEFAULT_LEVELS, actor=None, now=DUE_START)
    cal = business_calendar(calendar)

    def clock_values(priority: int, started: datetime) -> dict:
        """Return the due times per target and the 75 % moment of the first response."""
        values = {}
        for target in ("first_response", "resolution"):
            clock = sla.TargetClock.start(timedelta(minutes=TARGETS[str(priority)][target]), started)
            values[target] = clock.due_at(cal)
            if target == "first_response":
                values["next_check"] = clock.moment_reaching(0.75, cal)
        return values

    due_every = n / due if due else 0
    due_indices = {int(i * due_every) for i in range(due)}
    cache: dict[tuple[int, datetime], dict] = {}
    ids = {"tenant": tenant.id, "team": team.id, "version": version.id, "agent": agent.id}
    base = dict(
        tenant_id=tenant.id, requester_id=requester.id, created_by_id=requester.id, category_id=category.id,
        team_id=team.id, assignee_id=agent.id, channel="web", impact=2, urgency=2, priority_overridden=False,
        status="open", subject="Drucker druckt nicht", description="Seit heute früh kein Ausdruck.",
        first_responded_at=None, resolved_at=None, closed_at=None, reopen_count=0, sla_version_id=version.id,
        next_update_due_at=None, sla_breached=False,
    )
    plan: list[tuple[int, datetime]] = []  # (priority, clock start) per ticket, in insert order
    rows = []
    for i in range(n):
        if i in due_indices:
            priority, started = DUE_PRIORITY, DUE_START
        else:
            priority, started = IDLE_PRIORITY, NOW - timedelta(minutes=i % 60, seconds=i % 7)
        key = (priority, started)
        if key not in cache:
            cache[key] = clock_values(priority, started)
        values = cache[key]
        next_check = values["next_check"]
        plan.append(key)
        rows.append({
            **base, "number": f"BENCH-{i + 1:07d}", "priority": priority,
            "created_at": started, "updated_at": started,
            "first_response_due_at": values["first_response"], "resolution_due_at": values["resolution"],
            "sla_due_at": min(values["first_response"], values["resolution"]), "sla_next_check_at": next_check,
        })
        if len(rows) >= CHUNK:
            db.session.execute(insert(Ticket), rows)
            rows = []
    if rows:
        db.session.execute(insert(Ticket), rows)
    db.session.commit()
    ticket_ids = list(db.session.scalars(select(Ticket.id).order_by(Ticket.number)))
    assert len(ticket_ids) == n
    rows = []
    for ticket_id, (priority, started) in zip(ticket_ids, plan):
        values = cache[(priority, started)]
        for target in ("first_response", "resolution"):
            rows.append({
                "ticket_id": ticket_id, "tenant_id": tenant.id, "target": target, "cycle": 1,
                "policy_version_id": version.id, "priority": priority,
                "target_seconds": TARGETS[str(priority)][target] * 60, "started_at": started,
                "running_since": started, "used_seconds": 0, "paused_at": None, "paused_seconds": 0,
                "stopped_at": None, "due_at": values[target], "breached_at": None, "outcome": None,
                "decided_at": None,
            })
        if len(rows) >= CHUNK:
            db.session.execute(insert(SlaClock), rows)
            rows = []
    if rows:
        db.session.execute(insert(SlaClock), rows)
    db.session.commit()
    return ids


SWEPT_TABLES = ("ticket", "sla_clock", "escalation", "outbox_message", "ticket_event")


def prepare_postgresql(run_analyze: bool) -> None:
    """Vacuum and analyze after the bulk load, as autovacuum would, then switch autovacuum off.

    Autovacuum's reads would otherwise count into the buffers measured for the sweep;
    rearm() vacuums explicitly between two sweeps instead.
    """
    if db.engine.dialect.name != "postgresql":
        return
    db.session.close()  # give the only pooled connection back first
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if run_analyze:
            connection.exec_driver_sql("VACUUM ANALYZE")
        for table in SWEPT_TABLES:
            connection.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")


def pg_blocks() -> int | None:
    """Return the shared buffers this PostgreSQL database has touched so far (None on SQLite).

    Unlike wall time, the count does not suffer when other processes load the machine, so it
    shows whether the database does more work per due ticket as the tables grow.
    """
    if db.engine.dialect.name != "postgresql":
        return None
    db.session.execute(text("SELECT pg_stat_force_next_flush()"))
    db.session.commit()  # the backend flushes its counters when it goes idle
    db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
    blocks = db.session.scalar(text(
        "SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()"))
    db.session.commit()
    return int(blocks)


def rearm(due_ids: list[int], first_check: datetime) -> None:
    """Undo a sweep of the due tickets (escalations, emails, history, breaches) so it can run again."""
    from helpdesk.models import Escalation, OutboxMessage, SlaClock, Ticket, TicketEvent

    for start in range(0, len(due_ids), 500):
        chunk = due_ids[start:start + 500]
        db.session.execute(delete(Escalation).where(Escalation.ticket_id.in_(chunk)))
        db.session.execute(delete(OutboxMessage).where(OutboxMessage.ticket_id.in_(chunk)))
        db.session.execute(delete(TicketEvent).where(TicketEvent.ticket_id.in_(chunk)))
        db.session.execute(update(SlaClock).where(SlaClock.ticket_id.in_(chunk)).values(breached_at=None))
        db.session.execute(update(Ticket).where(Ticket.id.in_(chunk))
                           .values(sla_next_check_at=first_check, sla_breached=False))
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # Clear the dead rows left behind, as autovacuum would between two real bursts.
        db.session.close()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM " + ", ".join(SWEPT_TABLES))


def explain(now: datetime) -> None:
    """Print the plans of the queries the sweep runs per batch of due tickets."""
    from helpdesk.models import Escalation, SlaClock, Ticket

    dialect = db.engine.dialect
    prefix = "EXPLAIN " if dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    batch = list(db.session.scalars(select(Ticket.id).order_by(Ticket.id).limit(100)))
    statements = {
        "batch of due tickets (sweep)": select(Ticket).where(Ticket.sla_next_check_at <= now)
        .order_by(Ticket.sla_next_check_at, Ticket.id).limit(100).with_for_update(skip_locked=True),
        "clocks of a batch": select(SlaClock).where(SlaClock.ticket_id.in_(batch))
        .order_by(SlaClock.ticket_id, SlaClock.target, SlaClock.cycle),
        "fired levels of a batch": select(Escalation.ticket_id, Escalation.target, Escalation.cycle,
                                          Escalation.percent).where(Escalation.ticket_id.in_(batch)),
    }
    for label, statement in statements.items():
        compiled = statement.compile(dialect=dialect)
        params = compiled.construct_params()
        processors = compiled._bind_processors  # apply UTCDateTime & co. as a real execution would
        params = {k: processors[k](v) if k in processors else v for k, v in params.items()}
        if compiled.positiontup:
            params = tuple(params[name] for name in compiled.positiontup)
        plan = db.session.connection().exec_driver_sql(prefix + str(compiled), params).all()
        print(f"    EXPLAIN {label}:")
        for row in plan:
            print("      " + (row[0] if dialect.name == "postgresql" else str(row[-1])))
        db.session.rollback()


def bench_one(backend: str, n: int, due: int, *, repeat: int, show_plan: bool, run_analyze: bool,
              batch: int | None = None) -> dict:
    """Create, migrate and seed a fresh database, then time the busy and the idle sweep."""
    from flask_migrate import upgrade

    from helpdesk.models import Escalation, OutboxMessage, SlaClock, Ticket
    from helpdesk.services import sla

    tmp = Path(tempfile.mkdtemp(prefix="sla-bench-"))
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.sqlite'}"
    else:
        pg_name, url = create_database("helpdesk_bench")
    try:
        config = _config(url, tmp)
        if pg_name:
            # One connection only, so the sweep and pg_blocks() see the same backend's counters.
            config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "pool_size": 1, "max_overflow": 0}
        app = create_app(config)
        logging.getLogger("helpdesk").setLevel(logging.WARNING)  # one INFO line per queued email otherwise
        with app.app_context():
            logging.disable(logging.INFO)  # alembic's per-revision lines
            try:
                upgrade(directory=str(ROOT / "migrations"))
            finally:
                logging.disable(logging.NOTSET)
            began = time.perf_counter()
            seed(n, due)
            seed_seconds = time.perf_counter() - began
            prepare_postgresql(run_analyze)
            counts = {
                "tickets": db.session.scalar(select(func.count()).select_from(Ticket)),
                "clocks": db.session.scalar(select(func.count()).select_from(SlaClock)),
                "due": db.session.scalar(
                    select(func.count()).select_from(Ticket).where(Ticket.sla_next_check_at <= NOW)),
            }
            db.session.commit()
            due_ids = list(db.session.scalars(select(Ticket.id).where(Ticket.sla_next_check_at <= NOW)))
            first_check = db.session.scalar(select(func.min(Ticket.sla_next_check_at)))
            db.session.commit()
            runs = []
            for attempt in range(repeat):
                if attempt:
                    rearm(due_ids, first_check)
                outbox_before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
                db.session.commit()
                blocks_before = pg_blocks()
                db.session.expunge_all()
                with StatementCounter(db.engine) as statements:
                    began, cpu_began = time.perf_counter(), time.process_time()
                    result = sla.sweep(NOW, limit=max(500, 2 * due), batch_size=batch)
                    sweep_seconds = time.perf_counter() - began
                    cpu_seconds = time.process_time() - cpu_began
                blocks = pg_blocks() - blocks_before if blocks_before is not None else None
                outbox_rows = db.session.scalar(select(func.count()).select_from(OutboxMessage)) - outbox_before
                escalation_rows = db.session.scalar(select(func.count()).select_from(Escalation))
                still_due = db.session.scalar(
                    select(func.count()).select_from(Ticket).where(Ticket.sla_next_check_at <= NOW))
                db.session.commit()
                began = time.perf_counter()
                idle = sla.sweep(NOW)
                idle_seconds = time.perf_counter() - began
                assert idle["tickets"] == 0 and still_due == 0, (idle, still_due)
                runs.append({"sweep_s": sweep_seconds, "cpu_s": cpu_seconds, "blocks": blocks,
                             "idle_ms": idle_seconds * 1000, "top": statements.top()})
            if show_plan:
                print(f"  {backend}, N={n}:")
                explain(NOW)
            db.session.remove()
            db.engine.dispose()
    finally:
        if pg_name:
            drop_database(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)
    sweeps = sorted(r["sweep_s"] for r in runs)
    return {
        "backend": backend, "n": counts["tickets"], "clocks": counts["clocks"], "due": counts["due"],
        "seed_s": seed_seconds, "sweep_s": statistics.median(sweeps), "sweep_min_s": sweeps[0],
        "sweep_max_s": sweeps[-1], "runs": len(runs), "checked": result["tickets"],
        "escalations": result["escalations"], "escalation_rows": escalation_rows, "outbox": outbox_rows,
        "statements": statements.count, "idle_ms": statistics.median(r["idle_ms"] for r in runs),
        "cpu_s": statistics.median(r["cpu_s"] for r in runs), "all_runs": runs,
        "blocks": runs[0]["blocks"],  # the first sweep: on the freshly vacuumed database, repeatable to ~3 %
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every backend × size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated numbers of open tickets")
    parser.add_argument("--due", type=int, default=200, help="tickets whose check is due (fixed over sizes)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="sweeps per database (due tickets re-armed in between); the median is shown")
    parser.add_argument("--explain", action="store_true", help="print the plans of the per-batch queries")
    parser.add_argument("--profile", action="store_true", help="print the statements that took the most time")
    parser.add_argument("--batch", type=int, default=None,
                        help="due tickets per sweep transaction (default: the app's SLA_SWEEP_BATCH_SIZE)")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="skip VACUUM ANALYZE after the bulk load on PostgreSQL (plans on stale statistics)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(size < args.due for size in sizes) or args.due < 1 or args.repeat < 1:
        parser.error("--due and --repeat must be at least 1 and every size at least --due")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        reason = postgres_unreachable()
        if reason:
            print(f"Note: PostgreSQL skipped, not reachable at {PG_ADMIN_URL} ({reason}); set HELPDESK_TEST_PG_URL")
            backends.remove("postgresql")
    results = []
    for backend in backends:
        for size in sizes:
            print(f"running {backend} with {size} open tickets, {args.due} due ...", flush=True)
            result = bench_one(backend, size, args.due, repeat=args.repeat,
                               show_plan=args.explain, run_analyze=args.analyze, batch=args.batch)
            print(f"  seeded {result['n']} tickets + {result['clocks']} clocks in {result['seed_s']:.1f} s; "
                  f"sweep checked {result['checked']} tickets, fired {result['escalations']} escalations, "
                  f"wrote {result['outbox']} outbox rows, {result['statements']} SQL statements "
                  f"({result['statements'] / max(result['checked'], 1):.1f} per ticket)", flush=True)
            for number, run in enumerate(result["all_runs"], 1):
                blocks = "" if run["blocks"] is None else f", {run['blocks']} buffers"
                print(f"    sweep {number}: {run['sweep_s']:.2f} s wall, {run['cpu_s']:.2f} s python CPU{blocks}, "
                      f"idle sweep {run['idle_ms']:.1f} ms", flush=True)
                if args.profile:
                    print("      database time by statement (until the rows are fetched):")
                    for line in run["top"]:
                        print("      " + line)
            results.append(result)
    print()
    print(f"sweep s = wall time, median of {args.repeat} sweep(s) per database (min-max in brackets); "
          "py cpu s = this process's CPU time in the sweep; blk/due = PostgreSQL shared buffers touched per "
          "due ticket in the first sweep; idle = a second sweep with nothing due")
    header = (f"{'backend':<11}{'N open':>8}{'due':>5}{'checked':>8}{'escal.':>7}{'outbox':>7}"
              f"{'sweep s':>9}{'(min-max)':>13}{'ms/due':>8}{'py cpu s':>9}{'blk/due':>8}{'idle ms':>8}"
              f"{'seed s':>8}")
    print(header)
    print("-" * len(header))
    for r in results:
        spread = f"({r['sweep_min_s']:.2f}-{r['sweep_max_s']:.2f})"
        per_due = r["sweep_s"] * 1000 / r["checked"]
        blocks = "-" if r["blocks"] is None else f"{r['blocks'] / r['checked']:.0f}"
        print(f"{r['backend']:<11}{r['n']:>8}{r['due']:>5}{r['checked']:>8}{r['escalations']:>7}{r['outbox']:>7}"
              f"{r['sweep_s']:>9.2f}{spread:>13}{per_due:>8.1f}{r['cpu_s']:>9.2f}{blocks:>8}"
              f"{r['idle_ms']:>8.1f}{r['seed_s']:>8.1f}")
    for backend in backends:
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["n"])
        if len(rows) > 1 and rows[-1]["n"] > rows[0]["n"]:
            small, large = rows[0], rows[-1]
            line = (f"{backend}: N x {large['n'] / small['n']:.0f} -> sweep wall time x "
                    f"{large['sweep_s'] / small['sweep_s']:.2f} "
                    f"(fastest run x {large['sweep_min_s'] / small['sweep_min_s']:.2f}), "
                    f"python CPU x {large['cpu_s'] / small['cpu_s']:.2f}")
            if small["blocks"]:
                line += f", buffers touched x {large['blocks'] / small['blocks']:.2f}"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
