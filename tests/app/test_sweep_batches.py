"""The SLA sweep in batches: statements per batch not per ticket, one rendering per level and language."""
from contextlib import contextmanager

import pytest
from flask import template_rendered
from sqlalchemy import event, select, text, update

from helpdesk.extensions import db
from helpdesk.models import Escalation, OutboxMessage, Ticket
from helpdesk.services import sla as sla_service
from tests.app.test_sla_hardening import copy_ticket
from tests.app.test_sla_workflow import berlin, file
from tests.builders import make_user


@contextmanager
def counted_statements():
    """Count the SQL statements sent to the database inside the block."""
    counter = {"n": 0}

    def listener(*_args):
        counter["n"] += 1

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield counter
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def due_tickets(world, when: str, count: int) -> list[int]:
    """File one ticket at `when` and copy it, so that `count` tickets reach their 75 % together."""
    template = file(world, when)
    return [template.id, *copy_ticket(template, count - 1)]


def warnings_sent(ticket_ids) -> int:
    return db.session.scalar(select(db.func.count()).select_from(Escalation).where(
        Escalation.ticket_id.in_(ticket_ids), Escalation.percent == 75, Escalation.skipped.is_(False)))


def test_sweeping_fifty_due_tickets_takes_no_more_statements_than_sweeping_ten(world):
    ten = due_tickets(world, "2026-03-05 09:00", 10)
    db.session.commit()
    with counted_statements() as for_ten:
        assert sla_service.sweep(berlin("2026-03-05 09:46")) == {"tickets": 10, "escalations": 10, "failed": 0}
    # Leave the first ten out of the second sweep.
    db.session.execute(update(Ticket).where(Ticket.id.in_(ten)).values(sla_next_check_at=None))
    db.session.commit()

    fifty = due_tickets(world, "2026-03-05 13:00", 50)
    db.session.commit()
    with counted_statements() as for_fifty:
        assert sla_service.sweep(berlin("2026-03-05 13:46")) == {"tickets": 50, "escalations": 50, "failed": 0}

    assert warnings_sent(fifty) == 50
    assert len(db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.ticket_id.in_(fifty), OutboxMessage.kind == "escalation")).all()) == 50
    # Today's sweep took 40-odd statements per ticket; batched, the count does not grow with the tickets.
    assert for_fifty["n"] <= for_ten["n"] + 3, (for_ten["n"], for_fifty["n"])


def test_due_tickets_beyond_one_batch_are_all_swept_in_the_same_run(world, app):
    app.config["SLA_SWEEP_BATCH_SIZE"] = 4
    ids = due_tickets(world, "2026-03-05 09:00", 10)

    assert sla_service.sweep(berlin("2026-03-05 09:46")) == {"tickets": 10, "escalations": 10, "failed": 0}
    assert warnings_sent(ids) == 10
    assert sla_service.sweep(berlin("2026-03-05 09:47")) == {"tickets": 0, "escalations": 0, "failed": 0}


def test_a_ticket_failing_inside_a_batch_is_postponed_and_the_rest_of_its_batch_is_swept(world, app, monkeypatch):
    app.config["SLA_SWEEP_BATCH_SIZE"] = 3
    ids = due_tickets(world, "2026-03-05 09:00", 6)
    poisoned = ids[1]  # in the first batch, between two healthy tickets
    real_check = sla_service.check_ticket

    def check_or_fail(ticket, now):
        if ticket.id == poisoned:
            raise RuntimeError("value too long for type character varying(500)")
        return real_check(ticket, now)

    monkeypatch.setattr(sla_service, "check_ticket", check_or_fail)
    now = berlin("2026-03-05 09:46")

    assert sla_service.sweep(now) == {"tickets": 5, "escalations": 5, "failed": 1}
    healthy = [i for i in ids if i != poisoned]
    assert warnings_sent(healthy) == 5 and warnings_sent([poisoned]) == 0
    db.session.expire_all()
    broken = db.session.get(Ticket, poisoned)
    assert broken.sla_check_failures == 1 and broken.sla_next_check_at > now


def rendered_escalations():
    """Return a list and a template_rendered receiver that appends each rendering of the escalation email."""
    names = []

    def record(_sender, template, **_extra):
        if template.name == "email/escalation.txt":
            names.append(template.name)

    return names, record


def test_an_escalation_is_rendered_once_per_language_and_every_recipient_gets_an_own_email(world, app):
    # The 150 % level goes to the team lead, the service managers and the tenant's contacts.
    managers = [make_user("service_manager", email="sm@ksm.example", name="Sam Service"),
                make_user("service_manager", email="sm.en@ksm.example", name="Kim Manager", locale="en")]
    contact = make_user("tenant_manager", tenant=world["tenant"], email="leitung@lup.example", name="Lea Leitung")
    filed = [file(world, "2026-03-05 09:00") for _ in range(3)]
    renders, record = rendered_escalations()
    template_rendered.connect(record, app)
    try:
        counts = sla_service.sweep(berlin("2026-03-05 10:31"))  # 150 % of the first response, 75/100 % skipped
    finally:
        template_rendered.disconnect(record, app)

    assert counts == {"tickets": 3, "escalations": 3, "failed": 0}
    assert len(renders) == 3 * 2  # one level per ticket, in German and in English; not once per recipient
    people = [world["lead"], *managers, contact]
    for ticket in filed:
        mails = {m.recipient: m for m in db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "escalation"))}
        assert set(mails) == {p.email for p in people}
        for person in people:
            mail = mails[person.email]
            assert ticket.number in mail.subject and f"{person.name}," in mail.body_text
            area = "portal" if person is contact else "agent"
            assert f"/{area}/tickets/{ticket.number}" in mail.body_text
            assert mail.dedupe_key == f"esc:{ticket.id}:first_response:1:150:{person.id}"
        assert "far exceeded" in mails["sm.en@ksm.example"].subject
        assert "Hello Kim Manager," in mails["sm.en@ksm.example"].body_text
        assert "deutlich überschritten" in mails["sm@ksm.example"].subject
    message_ids = db.session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.kind == "escalation")).all()
    assert len(message_ids) == 3 * 4 and len(set(message_ids)) == len(message_ids) and all(message_ids)


def test_a_level_recorded_by_another_worker_meanwhile_sends_no_second_email(world, monkeypatch):
    ticket = file(world, "2026-03-05 09:00")
    # Another worker recorded the 75 % level of this ticket after this one loaded it.
    real_record = sla_service._record_levels

    def other_worker_first(records):
        clock_id = records[0]["clock_id"]
        db.session.add(Escalation(ticket_id=ticket.id, clock_id=clock_id, target="first_response", cycle=1,
                                  percent=75, fired_at=berlin("2026-03-05 09:45"), recipients="lead@ksm.example"))
        db.session.flush()
        return real_record(records)

    monkeypatch.setattr(sla_service, "_record_levels", other_worker_first)
    assert sla_service.sweep(berlin("2026-03-05 09:46"))["escalations"] == 0
    assert db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "escalation")).all() == []
    assert db.session.scalar(select(db.func.count()).select_from(Escalation)) == 1


def test_the_sqlite_database_file_is_opened_in_wal_mode_with_a_busy_timeout(app, backend):
    if backend != "sqlite":
        pytest.skip("WAL is SQLite's journal mode")
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
