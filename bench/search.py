"""Time the full-text search on PostgreSQL with 1,000,000 tickets: 1-word and 3-word queries, staff and requester.

Run:  .venv/bin/python bench/search.py [--tickets 1000000] [--repeat 40] [--explain] [--keep] [--reuse NAME]

A throw-away PostgreSQL database (HELPDESK_TEST_PG_URL, dropped at the end unless --keep) is migrated and
filled with set-based SQL (INSERT … SELECT generate_series): 100 tenants, 50,000 requesters, N tickets whose
subjects and descriptions are drawn from a vocabulary of German help-desk words (a few common, most rare,
like real text), one comment on every second ticket (every fifth of them internal). Then every search
document is built the way the migration backfills existing tickets (helpdesk.services.search.reindex_all,
set-based batches), and `search.search` is timed: p50 / p95 over --repeat queries per kind, each query with
other words. `--explain` prints EXPLAIN (ANALYZE, BUFFERS) of the first statements of one query per kind; `--keep` leaves
the database in place, `--reuse NAME` times a kept one again (and keeps it).
Goal (issue 9): the search page p95 ≤ 50 ms.
"""
from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402

from helpdesk import create_app  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from tests.support import PG_ADMIN_URL, app_config as _config, create_database, drop_database, postgres_unreachable  # noqa: E402

# Words of tickets; the first ones are common (chosen often), the long tail is rare, like real text.
COMMON = ["Drucker", "Passwort", "Netzwerk", "Fehler", "Anmeldung", "Monitor", "Outlook", "Zugang"]
RARE = [
    "Papierstau", "Toner", "Scanner", "Fachverfahren", "Einwohnermeldeamt", "Kfz-Zulassung", "Bürgerbüro",
    "Rathaus", "Standesamt", "Gewerbeamt", "WLAN", "VPN", "Zertifikat", "Laufwerk", "Freigabe", "Postfach",
    "Kalender", "Telefonanlage", "Headset", "Webcam", "Dockingstation", "Tastatur", "Maus", "Bildschirm",
    "Lizenz", "Update", "Virenscanner", "Firewall", "Switch", "Router", "Kabel", "Steckdose", "Beamer",
    "Sitzungssaal", "Ratsinformationssystem", "Haushaltsplan", "Kassenautomat", "Quittung", "Barcode",
    "Etikettendrucker", "Ausweisleser", "Signaturkarte", "Kartenleser", "Personalausweis", "Reisepass",
    "Meldebescheinigung", "Friedhofsverwaltung", "Bauantrag", "Geoinformationssystem", "Kataster",
    "Schulverwaltung", "Kita-Portal", "Elterngeld", "Wohngeld", "Sozialamt", "Jobcenter", "Archiv",
    "Digitalisierung", "E-Akte", "Dokumentenmanagement", "Schnittstelle", "Datenbank", "Sicherung",
    "Wiederherstellung", "Speicherplatz", "Kontingent", "Verteiler", "Weiterleitung", "Abwesenheitsnotiz",
    "Terminbuchung", "Wartezeit", "Fehlermeldung", "Absturz", "Neustart", "Treiber", "Installation",
]
FILLER = ["seit", "heute", "morgen", "wieder", "nicht", "langsam", "kaputt", "geht", "bitte", "dringend",
          "funktioniert", "Büro", "Etage", "Kollegin", "Kollege", "Raum", "zweiten", "dritten", "Rechner"]


def _seed(connection, tickets: int) -> None:
    """Fill tenants, people, a team, a category, tickets and comments with set-based SQL."""
    words = COMMON + RARE
    connection.execute(text("SELECT setseed(0.42)"))
    connection.execute(text(
        "INSERT INTO tenant (slug, name, active, created_at) "
        "SELECT 'gemeinde' || g, 'Gemeinde ' || (ARRAY['Nord','Süd','Ost','West','Mitte'])[1 + g % 5] || ' ' || g, "
        "true, now() FROM generate_series(1, 100) g"))
    connection.execute(text(
        "INSERT INTO team (slug, name, is_fallback, active) VALUES ('service-desk', 'Service Desk', true, true)"))
    connection.execute(text("INSERT INTO category (name, position, active) VALUES ('Hardware', 1, true)"))
    connection.execute(text(
        "INSERT INTO \"user\" (email, name, password_hash, role, tenant_id, locale, active, created_at, session_version) "
        "VALUES ('agent@ksm.example', 'Agentin', 'x', 'agent', NULL, 'de', true, now(), 1)"))
    connection.execute(text(
        "INSERT INTO \"user\" (email, name, password_hash, role, tenant_id, locale, active, created_at, session_version) "
        "SELECT 'person' || g || '@gemeinde' || (1 + g % 100) || '.example', "
        "(ARRAY['Anna','Bernd','Carla','Dieter','Erika','Frank','Gabi','Heinz'])[1 + g % 8] || ' ' || "
        "(ARRAY['Schulz','Meier','Krüger','Schmidt','Wagner','Becker','Hoffmann','Koch','Richter','Wolf'])"
        "[1 + (g / 8) % 10] || g, 'x', 'requester', 1 + g % 100, 'de', true, now(), 1 "
        "FROM generate_series(1, 50000) g"))
    # A word from the vocabulary, skewed: half of the draws from the 8 common words, half from the long tail.
    pick = ("(CASE WHEN random() < 0.5 THEN (CAST(:common AS text[]))[1 + floor(random() * :nc)::int] "
            "ELSE (CAST(:all AS text[]))[1 + floor(random() * :na)::int] END)")
    filler = "(CAST(:filler AS text[]))[1 + floor(random() * :nf)::int]"
    params = {"common": COMMON, "nc": len(COMMON), "all": words, "na": len(words), "filler": FILLER,
              "nf": len(FILLER)}
    step = 100_000
    for low in range(1, tickets + 1, step):
        high = min(tickets, low + step - 1)
        connection.execute(text(
            "INSERT INTO ticket (number, tenant_id, requester_id, created_by_id, category_id, team_id, channel, "
            "impact, urgency, priority, priority_overridden, status, subject, description, created_at, updated_at, "
            "reopen_count, sla_breached, sla_check_failures) "
            "SELECT 'KSM-' || (2017 + g % 10) || '-' || lpad(g::text, 7, '0'), 1 + (r + 1) % 100, 2 + r, 2 + r, 1, 1, "
            "'web', 2, 2, 3, false, (ARRAY['new','open','closed','closed','closed'])[1 + g % 5], "
            f"{pick} || ' ' || {filler} || ' ' || {pick}, "
            f"{filler} || ' ' || {pick} || ' ' || {filler} || ' ' || {pick} || ' ' || {filler} || ' ' || {pick} "
            f"|| '. ' || {filler} || ' ' || {pick} || ' ' || {filler} || ' ' || {filler} || ' ' || {pick} || '.', "
            "now() - (g || ' minutes')::interval, now(), 0, false, 0 "
            "FROM (SELECT g, ((g::bigint * 7919) % 50000)::int AS r FROM generate_series(CAST(:low AS integer), CAST(:high AS integer)) g) s"
        ), {**params, "low": low, "high": high})
        connection.execute(text(
            "INSERT INTO comment (ticket_id, author_id, body, is_internal, created_at) "
            f"SELECT g, 1, {filler} || ' ' || {pick} || ' ' || {filler} || ' ' || {pick} || ' ' || {filler}, "
            "g % 10 = 0, now() FROM generate_series(CAST(:low AS integer), CAST(:high AS integer)) g WHERE g % 2 = 0"
        ), {**params, "low": low, "high": high})
        print(f"  seeded tickets up to {high:,}", flush=True)


def _percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return f"p50 {statistics.median(samples) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def _queries(kind: str, count: int, rnd: random.Random, numbers: int) -> list[str]:
    words = COMMON + RARE
    if kind == "1 common word":
        return [rnd.choice(COMMON) for _ in range(count)]
    if kind == "1 rare word":
        return [rnd.choice(RARE) for _ in range(count)]
    if kind == "3 words":
        return [" ".join(rnd.sample(words, 2) + [rnd.choice(FILLER)]) for _ in range(count)]
    if kind == "prefix (4 letters)":
        return [rnd.choice(RARE)[:4] for _ in range(count)]
    if kind == "ticket number part":
        return [f"{rnd.randrange(1, numbers):07d}"[-6:] for _ in range(count)]
    raise ValueError(kind)


def main() -> None:
    """Seed, index, time, report; drop the database unless asked to keep it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", metavar="NAME")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    reason = postgres_unreachable()
    if reason:
        sys.exit(f"PostgreSQL unreachable: {reason}")

    from flask_migrate import upgrade

    from helpdesk.models import User
    from helpdesk.services import queues, search

    if args.reuse:
        name, url = args.reuse, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.reuse}"
    else:
        name, url = create_database("bench_search")
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    app = create_app(_config(url, tmp))
    try:
        with app.app_context():
            if not args.reuse:
                upgrade(directory=str(ROOT / "migrations"))
                started = time.perf_counter()
                with db.engine.begin() as connection:
                    _seed(connection, args.tickets)
                print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - started:.0f} s")
                started = time.perf_counter()
                with db.engine.begin() as connection:
                    batches = search.reindex_all(connection)
                print(f"built the search documents in {batches} batches in {time.perf_counter() - started:.0f} s "
                      "(what the migration does for existing tickets)")
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                    connection.execute(text("VACUUM ANALYZE"))
            with db.engine.connect() as connection:
                size = connection.execute(text(
                    "SELECT pg_size_pretty(pg_total_relation_size('ticket_search')), "
                    "pg_size_pretty(pg_relation_size('ix_ticket_search_internal_document')), "
                    "pg_size_pretty(pg_relation_size('ix_ticket_number_trgm'))")).one()
            print(f"ticket_search {size[0]} (GIN full document {size[1]}), trigram index on numbers {size[2]}")
            agent = db.session.scalar(db.select(User).where(User.role == "agent"))
            requester = db.session.get(User, 2 + (4242 * 7919) % 50000)
            rnd = random.Random(7)
            kinds = ["1 common word", "1 rare word", "3 words", "prefix (4 letters)", "ticket number part"]
            for who, user in (("agent", agent), ("requester", requester)):
                for kind in kinds:
                    queries = _queries(kind, args.repeat, rnd, args.tickets)
                    search.search(user, queries[0])  # warm the cache once
                    samples, found = [], 0
                    for query in queries:
                        started = time.perf_counter()
                        hits = search.search(user, query)
                        samples.append(time.perf_counter() - started)
                        found += len(hits)
                        db.session.rollback()
                    print(f"{who:9} {kind:20} {_percentiles(samples)}   ({found / len(queries):.1f} hits/page)")
                    if args.explain and who == "agent":
                        _explain(user, queries[0])
            # The agent queue's text filter (all open tickets, by priority) goes through the same index.
            for kind in ("1 common word", "1 rare word", "3 words"):
                queries = _queries(kind, args.repeat, rnd, args.tickets)
                samples = []
                for query in queries:
                    started = time.perf_counter()
                    queues.queue_page(agent, "open", queues.QueueFilters.clean(text=query), "priority",
                                      after=None, before=None, per_page=25)
                    samples.append(time.perf_counter() - started)
                    db.session.rollback()
                print(f"{'queue':9} {kind:20} {_percentiles(samples)}   (tab 'Alle offenen', text filter)")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if args.keep or args.reuse:
            print(f"kept database {name} (drop it with tests.support.drop_database)")
        else:
            drop_database(name)


def _explain(user, query: str) -> None:
    """Print EXPLAIN ANALYZE of the statements one search sends."""
    from helpdesk.services import search

    statements = []

    def collect(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", collect)
    try:
        search.search(user, query)
    finally:
        event.remove(db.engine, "before_cursor_execute", collect)
    connection = db.session.connection().connection.driver_connection
    for statement, parameters in statements:
        if "ts_rank" not in statement and "ILIKE" not in statement.upper():
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            print(f"--- EXPLAIN {query!r}")
            print("\n".join(row[0] for row in cursor.fetchall()))
    db.session.rollback()


if __name__ == "__main__":
    main()
