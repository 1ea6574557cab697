"""The background worker: one list of periodic jobs, each run inside an app context."""
from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from helpdesk import clock
from helpdesk.extensions import db

log = logging.getLogger(__name__)


def deliver_outbox() -> None:
    """Send the emails whose time has come."""
    from helpdesk.services.outbox import deliver_due

    counts = deliver_due(clock.utcnow())
    if any(counts.values()):
        log.info("outbox: %s", counts)


def sweep_sla() -> None:
    """Record breaches and fire escalation levels of the tickets whose check time has come."""
    from helpdesk.services.sla import sweep

    counts = sweep(clock.utcnow())
    if counts["tickets"]:
        log.info("sla sweep: %s", counts)


def close_resolved() -> None:
    """Close resolved tickets after the configured number of days."""
    from flask import current_app

    from helpdesk.services.tickets import auto_close_resolved

    closed = auto_close_resolved(clock.utcnow(), current_app.config["AUTO_CLOSE_DAYS"])
    if closed:
        log.info("auto-close: %d tickets closed", closed)


def send_monthly_reports() -> None:
    """Queue last month's service level report to contact managers on their first business day."""
    from helpdesk.services.monthly import send_monthly_reports as send

    counts = send(clock.utcnow())
    if counts["queued"]:
        log.info("monthly reports: %s", counts)


# (id, function, config key with the interval in seconds)
def purge_idempotency_keys() -> None:
    """Forget stored API answers after the retry window (HELPDESK_IDEMPOTENCY_KEEP_HOURS)."""
    from datetime import timedelta

    from flask import current_app

    from helpdesk.services.idempotency import purge

    removed = purge(clock.utcnow() - timedelta(hours=current_app.config["IDEMPOTENCY_KEEP_HOURS"]))
    if removed:
        log.info("idempotency: %d old keys removed", removed)


def fetch_mailbox() -> None:
    """Import the mail waiting in the IMAP mailbox (only when HELPDESK_IMAP_HOST is set)."""
    from flask import current_app

    from helpdesk.services.mail.imap import fetch_once

    if not current_app.config.get("IMAP_HOST"):
        return
    result = fetch_once(clock.utcnow())
    if result.error or result.moved or result.failed:
        log.info("mailbox: %s", result.as_dict())


JOBS = [
    ("sla-sweep", sweep_sla, "WORKER_SLA_SECONDS"),
    # Before the outbox, so `run_once` also delivers the reports it queues.
    ("monthly-reports", send_monthly_reports, "WORKER_MONTHLY_SECONDS"),
    # Before the outbox, so `run_once` also sends the confirmations of tickets that came by mail.
    ("mail-fetch", fetch_mailbox, "WORKER_IMAP_SECONDS"),
    ("outbox", deliver_outbox, "WORKER_OUTBOX_SECONDS"),
    ("auto-close", close_resolved, "WORKER_AUTOCLOSE_SECONDS"),
    ("idempotency-purge", purge_idempotency_keys, "WORKER_AUTOCLOSE_SECONDS"),
]


def run_job(app: Flask, job) -> None:
    """Run one job in a fresh app context; a failure is logged and rolled back, never fatal."""
    with app.app_context():
        try:
            job()
        except Exception:  # noqa: BLE001 - the scheduler must keep running
            db.session.rollback()
            log.exception("job %s failed", getattr(job, "__name__", job))
        finally:
            db.session.remove()


def run_once(app: Flask) -> None:
    """Run every job once (tests and `flask worker --once`)."""
    for _job_id, job, _key in JOBS:
        run_job(app, job)


def quiet_scheduler_logs() -> None:
    """Keep APScheduler's INFO lines out of the log; its warnings and errors stay.

    It logs "Running job …" and "Job … executed successfully" at INFO for every run (the outbox
    every 15 s); only a missed run or a crash is news. The jobs log what they did themselves.
    """
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def run_forever(app: Flask) -> None:
    """Start the blocking scheduler with every job of JOBS."""
    quiet_scheduler_logs()
    scheduler = BlockingScheduler(timezone="UTC")
    for job_id, job, key in JOBS:
        scheduler.add_job(
            run_job, "interval", seconds=app.config[key], args=[app, job], id=job_id,
            max_instances=1, coalesce=True, next_run_time=clock.utcnow(),
        )
    log.info("worker started with jobs: %s", ", ".join(j[0] for j in JOBS))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("worker stopped")
