"""Time the contract what-if (replay of a year of one tenant's histories) on SQLite and PostgreSQL.

Run:  .venv/bin/python bench/whatif.py [--backend sqlite|postgresql|both] [--tickets 100000]
                                       [--other 20000] [--repeat 3] [--profile] [--keep] [--reuse NAME]

Seeds like bench/report.py (one tenant with N tickets over 2025, another with M, clocks computed
in the DE-MV calendar), then writes each ticket's history lines as the services would: the
priority from the matrix at creation, the agent's first public reply, new -> open, a requester
message and a second agent reply for the tickets with a next-update clock, open -> resolved and
resolved -> closed (about 4.5 lines per ticket, bulk inserts). Then it times
`whatif.what_if` under the tenant's own contract and under a looser 24/7 proposal for the year
2025 and for June, and prints the median of --repeat runs; --profile prints the ten most
expensive functions of one yearly run. Goal (issue 9): a year answered in the browser, <= 5 s.
`--keep` leaves the PostgreSQL database; `--reuse NAME` times a kept one (history lines are
written if it has none yet; `--drop` drops it at the end).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from bench.report import NOW, analyze, seed_base, seed_tickets  # noqa: E402
from helpdesk import create_app  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from tests.support import PG_ADMIN_URL, app_config as _config, create_database, drop_database, postgres_unreachable  # noqa: E402

CHUNK = 10000


def seed_events(base: dict) -> int:
    """Write the clock-relevant history lines of every seeded ticket (bulk); return how many."""
    from helpdesk.models import SlaClock, Ticket, TicketEvent

    agent = base["agent"].id
    next_updates = dict(db.session.execute(
        select(SlaClock.ticket_id, SlaClock.started_at).where(SlaClock.target == "next_update")).all())
    next_decided = dict(db.session.execute(
        select(SlaClock.ticket_id, SlaClock.decided_at).where(SlaClock.target == "next_update")).all())
    rows, count = [], 0
    tickets = db.session.execute(select(
        Ticket.id, Ticket.requester_id, Ticket.created_at, Ticket.priority, Ticket.first_responded_at,
        Ticket.resolved_at, Ticket.closed_at).order_by(Ticket.id)).all()

    def line(ticket_id, at, kind, actor=None, field=None, old=None, new=None):
        rows.append({"ticket_id": ticket_id, "actor_id": actor, "created_at": at, "kind": kind, "field": field,
                     "old_value": old, "new_value": new, "is_internal": False})

    for t in tickets:
        line(t.id, t.created_at, "created", t.requester_id, new="web")
        line(t.id, t.created_at, "field", None, "priority", None, str(t.priority))
        line(t.id, t.first_responded_at, "reply", agent)
        line(t.id, t.first_responded_at, "field", agent, "status", "new", "open")
        if t.id in next_updates:
            line(t.id, next_updates[t.id], "reply", t.requester_id)
            line(t.id, next_decided[t.id], "reply", agent)
        if t.resolved_at is not None:
            line(t.id, t.resolved_at, "field", agent, "status", "open", "resolved")
        if t.closed_at is not None:
            line(t.id, t.closed_at, "field", None, "status", "resolved", "closed")
        if len(rows) >= CHUNK:
            db.session.execute(insert(TicketEvent), rows)
            count += len(rows)
            rows.clear()
    if rows:
        db.session.execute(insert(TicketEvent), rows)
        count += len(rows)
    db.session.commit()
    return count


def _base_of_seeded() -> dict:
    """Return what seed_events and the timing need from a database bench/report.py seeded."""
    from helpdesk.models import SlaPolicy, Tenant, User

    policy = db.session.scalar(select(SlaPolicy).join(Tenant, Tenant.id == SlaPolicy.tenant_id)
                               .where(Tenant.slug == "amt-bench"))
    return {"agent": db.session.scalar(select(User).where(User.role == "agent")), "versions": [policy.current_version]}


def bench_one(backend: str, n: int, other: int, repeat: int, profile: bool, keep: bool = False,
              reuse: str | None = None, drop: bool = False) -> list[dict]:
    """Create, migrate and seed a fresh database, then time the what-if."""
    from flask_migrate import upgrade

    from helpdesk.models import Tenant
    from helpdesk.services import reports, whatif

    tmp = Path(tempfile.mkdtemp(prefix="whatif-bench-"))
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.sqlite'}"
    elif reuse:
        pg_name, url = reuse, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{reuse}"
        keep = not drop
    else:
        pg_name, url = create_database("helpdesk_bench")
    results = []
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
            from helpdesk.models import TicketEvent

            if reuse:
                base = _base_of_seeded()
                events = db.session.scalar(select(func.count()).select_from(TicketEvent)) or seed_events(base)
            else:
                base = seed_base()
                seed_tickets(base, 0, n, rng, "BENCH")
                if other:
                    seed_tickets(base, 1, other, rng, "NACHBAR")
                events = seed_events(base)
            seed_seconds = time.perf_counter() - began
            calendar_id = str(base["versions"][0].policy.calendar_id)
            looser = {p: {t: (m * 2 if m else None) for t, m in row.items()}
                      for p, row in base["versions"][0].targets.items()}
            analyze()
            print(f"  seeded {n + other} tickets, {events} history lines in {seed_seconds:.0f} s", flush=True)
            tenant_id = db.session.scalar(select(Tenant.id).where(Tenant.slug == "amt-bench"))
            db.session.commit()
            cases = []
            for label, period in (("year 2025", reports.period_bounds("year", 2025)),
                                  ("month 2025-06", reports.period_bounds("month", 2025, 6))):
                cases.append((f"{label}, own contract", period, lambda: whatif.current_proposal(
                    db.session.get(Tenant, tenant_id))))
                cases.append((f"{label}, 2x targets 24/7", period,
                              lambda: whatif.make_proposal(looser, whatif.AROUND_THE_CLOCK)))
                cases.append((f"{label}, 2x targets, own cal.", period,
                              lambda: whatif.make_proposal(looser, calendar_id)))
            for label, (start, end, period_label), make in cases:
                runs = []
                for _ in range(repeat):
                    db.session.expunge_all()
                    began = time.perf_counter()
                    result = whatif.what_if(db.session.get(Tenant, tenant_id), start, end, make(), now=NOW,
                                            label=period_label)
                    runs.append(time.perf_counter() - began)
                    db.session.rollback()
                fr = result.row("first_response")
                results.append({"backend": backend, "label": label, "median_s": statistics.median(runs),
                                "min_s": min(runs), "replayed": result.tickets_replayed,
                                "real": fr.real.rate, "proposed": fr.proposed.rate})
            if profile:
                start, end, period_label = reports.period_bounds("year", 2025)
                profiler = cProfile.Profile()
                proposal = whatif.make_proposal(looser, calendar_id)
                profiler.enable()
                whatif.what_if(db.session.get(Tenant, tenant_id), start, end, proposal, now=NOW)
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
                print(out.getvalue())
            db.session.remove()
            db.engine.dispose()
    finally:
        if pg_name and keep:
            print(f"  kept PostgreSQL database {pg_name}")
        elif pg_name:
            drop_database(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every backend and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="postgresql")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--other", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", metavar="NAME")
    parser.add_argument("--drop", action="store_true")
    args = parser.parse_args(argv)
    if args.reuse:
        args.backend = "postgresql"
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and (reason := postgres_unreachable()):
        print(f"Note: PostgreSQL skipped, not reachable at {PG_ADMIN_URL} ({reason})")
        backends.remove("postgresql")
    rows = []
    for backend in backends:
        print(f"running {backend}: {args.tickets} tickets of one tenant in 2025 (+{args.other}) ...", flush=True)
        rows += bench_one(backend, args.tickets, args.other, args.repeat, args.profile,
                          keep=args.keep and backend == "postgresql", reuse=args.reuse, drop=args.drop)
    print(f"\nmedian of {args.repeat} runs; first-response compliance real -> proposed")
    header = f"{'backend':<11}{'what':<34}{'median s':>9}{'min s':>8}{'replayed':>10}  first response %"
    print(header)
    print("-" * len(header))
    for r in rows:
        rates = f"{r['real'] or 0:.1f} -> {r['proposed'] or 0:.1f}"
        print(f"{r['backend']:<11}{r['label']:<34}{r['median_s']:>9.2f}{r['min_s']:>8.2f}{r['replayed']:>10}  {rates}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
