"""Time the import of 1,000 realistic mails: directly through import_message, and fetched from dovecot.

Run:  .venv/bin/python bench/mail_import.py [--backend sqlite|postgresql|both] [--mails 1000]
                                            [--tickets 200] [--no-imap]

For each backend a fresh database is created and migrated (SQLite file in a temp dir; a throw-away
PostgreSQL database on HELPDESK_TEST_PG_URL, dropped at the end) and seeded through the services:
a Service Desk, 5 tenants with a contract, a mail domain and 20 requesters each, and --tickets open
tickets with the agent's public answer. Then two mailboxes of --mails messages each (different
Message-IDs) are imported:
  direct: `import_message(raw)` per message (parse, match, comment or ticket, commit);
  imap:   the messages APPENDed to a private dovecot on loopback (tests/mailserver.py), then
          `fetch_once` until the folder is empty (read, import, MOVE to "Verarbeitet").
The mix: 55 % replies to the tickets (reply address, quoted original, text + HTML, every fifth with
a PNG), 30 % new tickets from known requesters, 5 % from an unknown address of a tenant domain (new
account + ticket), 5 % from a foreign domain (held), 5 % out-of-office answers (ignored).
Prints messages per second for each mode (target from issue 10: at least 50/s), and for the direct
import the SQL statements per mail and the median and 95th percentile milliseconds per mail.
--profile FILE writes a cProfile of the direct import of the last backend (view with `python -m pstats`).
"""
from __future__ import annotations

import argparse
import cProfile
import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, select  # noqa: E402

from helpdesk import create_app  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from tests.support import app_config, create_database, drop_database, postgres_unreachable  # noqa: E402

TARGET_PER_SECOND = 50
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
QUOTE = """Sehr geehrte Frau {name},

vielen Dank für Ihre Meldung. Wir haben das Ticket {number} aufgenommen und an das Service Desk
weitergeleitet. Bitte starten Sie den Rechner einmal neu und prüfen Sie, ob der Fehler weiterhin
auftritt. Falls ja, senden Sie uns bitte einen Screenshot der Fehlermeldung.

Mit freundlichen Grüßen
Ihr KSM Helpdesk
"""


def seed(tickets_wanted: int, now):
    """Create teams, tenants, requesters and open tickets with an agent's answer; return what the mails need."""
    from helpdesk.models import TenantMailDomain
    from helpdesk.services import tickets
    from tests.builders import make_category, make_policy, make_team, make_tenant, make_ticket, make_user

    desk = make_team("service-desk", "Service Desk", fallback=True)
    agent = make_user("agent", teams=[desk], email="agent@ksm.example", name="Jonas Becker")
    category = make_category("Sonstiges")
    requesters, domains = [], []
    for t in range(5):
        tenant = make_tenant(f"amt{t}", f"Amt {t}")
        make_policy(tenant)
        domain = f"amt{t}.example"
        db.session.add(TenantMailDomain(tenant_id=tenant.id, domain=domain))
        db.session.commit()
        domains.append(domain)
        for r in range(20):
            requesters.append(make_user(tenant=tenant, email=f"person{r}@{domain}", name=f"Person {t}-{r}"))
    open_tickets = []
    for n in range(tickets_wanted):
        requester = requesters[n % len(requesters)]
        ticket = make_ticket(requester, category=category, subject=f"Drucker {n} druckt nicht",
                             now=now - timedelta(hours=3))
        tickets.reply(agent, ticket, body="Bitte starten Sie den Rechner neu.", now=now - timedelta(hours=2))
        open_tickets.append((ticket.number, requester.email, requester.name, ticket))
    from helpdesk.services.mail.addresses import reply_address, thread_message_id

    threads = [(number, email, name, reply_address(t), thread_message_id(t)) for number, email, name, t in open_tickets]
    return {"threads": threads, "requesters": [(u.email, u.name) for u in requesters], "domains": domains}


def _reply(rng, thread, n, now) -> EmailMessage:
    number, email, name, reply_to, thread_id = thread
    mail = EmailMessage()
    mail["From"] = f"{name} <{email}>"
    mail["To"] = reply_to
    mail["Subject"] = f"AW: [{number}] Drucker druckt nicht"
    mail["In-Reply-To"] = thread_id
    mail["References"] = thread_id
    quoted = "\n".join("> " + line for line in QUOTE.format(name=name, number=number).splitlines())
    text = (f"Hallo,\n\nder Neustart hat leider nicht geholfen (Versuch {n}). Die Meldung kommt weiterhin.\n\n"
            f"Viele Grüße\n{name}\n\nAm {format_datetime(now)} schrieb KSM Helpdesk <helpdesk@ksm.example>:\n{quoted}\n")
    mail.set_content(text)
    mail.add_alternative(f"<html><body><p>Hallo,</p><p>der Neustart hat leider nicht geholfen (Versuch {n}).</p>"
                         f"<blockquote type=\"cite\">{QUOTE.format(name=name, number=number)}</blockquote>"
                         "</body></html>", subtype="html")
    if n % 5 == 0:
        mail.add_attachment(PNG, maintype="image", subtype="png", filename=f"fehler{n}.png")
    return mail


def _new(sender: str, name: str, n: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"{name} <{sender}>"
    mail["To"] = "helpdesk@ksm.example"
    mail["Subject"] = f"Fachverfahren {n} startet nicht"
    mail.set_content(f"Guten Morgen,\n\nseit heute startet das Fachverfahren {n} nicht mehr.\n\nGruß\n{name}\n")
    return mail


def _out_of_office(sender: str, n: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "helpdesk@ksm.example"
    mail["Subject"] = f"Automatische Antwort: Ihr Anliegen {n}"
    mail["Auto-Submitted"] = "auto-replied"
    mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content("Ich bin bis Montag nicht im Haus.")
    return mail


def build_mails(world, count: int, now, seed_value: int) -> list[bytes]:
    """Return `count` raw messages of the module docstring's mix."""
    rng = random.Random(seed_value)
    mails = []
    for n in range(count):
        kind = rng.random()
        if kind < 0.55:
            mail = _reply(rng, rng.choice(world["threads"]), n, now)
        elif kind < 0.85:
            mail = _new(*rng.choice(world["requesters"]), n)
        elif kind < 0.90:
            mail = _new(f"neu{seed_value}-{n}@{rng.choice(world['domains'])}", f"Neue Person {n}", n)
        elif kind < 0.95:
            mail = _new(f"jemand{n}@fremd.example", f"Fremde Person {n}", n)
        else:
            mail = _out_of_office(rng.choice(world["requesters"])[0], n)
        mail["Date"] = format_datetime(now - timedelta(minutes=5))
        mail["Message-ID"] = make_msgid(idstring=f"b{seed_value}n{n}", domain="amt.example")
        mails.append(bytes(mail))
    return mails


def outcome_counts() -> dict:
    from helpdesk.models import InboundMail

    return dict(db.session.execute(select(InboundMail.status, func.count()).group_by(InboundMail.status)).all())


def run_backend(backend: str, args) -> list[tuple]:
    from flask_migrate import upgrade

    from helpdesk.clock import utcnow
    from helpdesk.services.mail.inbound import import_message

    tmp = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    pg_name = None
    rows = []
    try:
        if backend == "sqlite":
            url = f"sqlite:///{tmp / 'bench.sqlite'}"
        else:
            pg_name, url = create_database("bench_mail")
        app = create_app(app_config(url, tmp))
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            now = utcnow()
            began = time.perf_counter()
            world = seed(args.tickets, now)
            print(f"[{backend}] seeded {args.tickets} tickets in {time.perf_counter() - began:.1f} s", flush=True)

            mails = build_mails(world, args.mails, now, seed_value=1)
            statements = [0]

            def count(*_args):
                statements[0] += 1

            event.listen(db.engine, "before_cursor_execute", count)
            profile = cProfile.Profile() if args.profile else None
            durations = []
            began = time.perf_counter()
            for raw in mails:
                start = time.perf_counter()
                if profile:
                    profile.enable()
                import_message(raw, now=now, source="bench")
                if profile:
                    profile.disable()
                durations.append(time.perf_counter() - start)
            seconds = time.perf_counter() - began
            event.remove(db.engine, "before_cursor_execute", count)
            if profile:
                profile.dump_stats(args.profile)
            durations.sort()
            per_mail = statements[0] / len(mails)
            p50 = durations[len(durations) // 2] * 1000
            p95 = durations[int(len(durations) * 0.95)] * 1000
            rows.append((backend, "direct", len(mails), seconds, outcome_counts()))
            print(f"[{backend}] direct: {len(mails)} mails in {seconds:.1f} s, {per_mail:.1f} statements/mail, "
                  f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)

            if not args.no_imap:
                rows.append(run_imap(backend, app, world, args, now))
            db.session.remove()
            db.engine.dispose()
    finally:
        if pg_name:
            drop_database(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def run_imap(backend: str, app, world, args, now) -> tuple:
    from helpdesk.services.mail.imap import fetch_once
    from tests.mailserver import DovecotServer, Mailbox

    server = DovecotServer()
    server.start()
    try:
        mailbox = Mailbox(server)
        mailbox.configure(app)
        app.config["MAIL_IMPORT_THREADS"] = args.threads
        mails = build_mails(world, args.mails, now, seed_value=2)
        with server.client() as client:
            for raw in mails:
                client.append("INBOX", raw)
        before = sum(outcome_counts().values())
        began = time.perf_counter()
        runs = 0
        while runs < 10 * (args.mails // app.config["IMAP_BATCH_SIZE"] + 1):
            result = fetch_once(now)
            runs += 1
            if result.error:
                raise SystemExit(f"fetch failed: {result.error}")
            if result.moved == 0:
                break
        seconds = time.perf_counter() - began
        imported = sum(outcome_counts().values()) - before
        left = len(mailbox.messages("INBOX"))
        print(f"[{backend}] imap: {imported} mails in {seconds:.1f} s ({runs} runs, {left} left in INBOX)", flush=True)
        return backend, "imap", imported, seconds, outcome_counts()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--no-imap", action="store_true", help="only the direct import")
    parser.add_argument("--threads", type=int, default=3,
                        help="parallel imports per fetched chunk on PostgreSQL (HELPDESK_MAIL_IMPORT_THREADS)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the direct import to FILE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        if backend == "postgresql":
            reason = postgres_unreachable()
            if reason:
                print(f"[postgresql] skipped: {reason}")
                continue
        rows.extend(run_backend(backend, args))
    print()
    print(f"{'backend':<11} {'mode':<7} {'mails':>6} {'seconds':>8} {'mails/s':>8}  goal {TARGET_PER_SECOND}/s")
    for backend, mode, count, seconds, _outcomes in rows:
        rate = count / seconds if seconds else 0.0
        print(f"{backend:<11} {mode:<7} {count:>6} {seconds:>8.1f} {rate:>8.1f}  {'ok' if rate >= TARGET_PER_SECOND else 'MISS'}")
    if rows:
        print("outcomes (all mails so far, last backend):", Counter(rows[-1][4]))


if __name__ == "__main__":
    main()
