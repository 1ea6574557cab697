"""The worker logs what happened, not that its scheduler ticked."""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.blocking import BlockingScheduler

from helpdesk import clock, worker
from helpdesk.services import tickets
from tests.builders import make_category, make_team, make_tenant, make_ticket, make_user


class _WatchedScheduler(BlockingScheduler):
    """The worker's real scheduler class, remembering itself and the jobs that ran."""

    instances: list["_WatchedScheduler"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ran: set[str] = set()
        self.all_ran = threading.Event()
        self.add_listener(self._job_done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        _WatchedScheduler.instances.append(self)

    def _job_done(self, event) -> None:
        self.ran.add(event.job_id)
        if self.ran >= {job_id for job_id, _job, _key in worker.JOBS}:
            self.all_ran.set()


def _run_every_job_once_through_the_scheduler(app, monkeypatch) -> None:
    """Start run_forever in a thread, wait until each job has run once, then stop the scheduler."""
    # Alembic's fileConfig (the migrations of the test databases) disables every logger that existed
    # before it; the worker process never runs migrations, so its loggers speak there.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("helpdesk") and isinstance(logger, logging.Logger):
            monkeypatch.setattr(logger, "disabled", False)
    _WatchedScheduler.instances.clear()
    monkeypatch.setattr(worker, "BlockingScheduler", _WatchedScheduler)
    thread = threading.Thread(target=worker.run_forever, args=(app,), daemon=True)
    thread.start()
    for _ in range(100):  # bounded: the scheduler appears within milliseconds
        if _WatchedScheduler.instances:
            break
        threading.Event().wait(0.05)
    scheduler = _WatchedScheduler.instances[0]
    assert scheduler.all_ran.wait(20), f"only {scheduler.ran} ran"
    scheduler.shutdown(wait=True)
    thread.join(10)
    assert not thread.is_alive()


def _info_lines(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.INFO]


def test_a_worker_round_with_nothing_to_do_logs_nothing_at_info(app, caplog, monkeypatch):
    caplog.set_level(logging.INFO)

    _run_every_job_once_through_the_scheduler(app, monkeypatch)

    lines = [line for line in _info_lines(caplog) if not line.startswith("helpdesk.worker: worker st")]
    assert lines == []


def test_a_job_that_did_something_says_what_it_did(app, caplog, monkeypatch):
    # The scheduler runs on the real clock, so the ticket was resolved two weeks before it.
    two_weeks_ago = clock.utcnow() - timedelta(days=14)
    team = make_team("service-desk", fallback=True)
    agent = make_user("agent", teams=[team])
    ticket = make_ticket(make_user(tenant=make_tenant()), category=make_category(), now=two_weeks_ago)
    tickets.change_status(agent, ticket, "resolved", two_weeks_ago + timedelta(hours=1))
    caplog.set_level(logging.INFO)

    _run_every_job_once_through_the_scheduler(app, monkeypatch)

    lines = _info_lines(caplog)
    assert "helpdesk.worker: auto-close: 1 tickets closed" in lines
    assert not any(line.startswith("apscheduler") for line in lines)
