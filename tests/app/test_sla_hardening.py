"""The SLA sweep under faults: long recipient lists, a ticket whose check fails, stale warnings."""
import logging

import pytest
from sqlalchemy import func, insert, select

from helpdesk.extensions import db
from helpdesk.models import Escalation, OutboxMessage, SlaClock, Ticket, TicketEvent
from helpdesk.services import tickets
from helpdesk.services import sla as sla_service
from tests.app.test_sla_workflow import berlin, file
from tests.builders import make_policy, make_user

TICKET_COLUMNS = [c.key for c in Ticket.__table__.columns if c.key not in ("id", "number")]
CLOCK_COLUMNS = [c.key for c in SlaClock.__table__.columns if c.key not in ("id", "ticket_id")]


def escalation_mails(ticket):
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == "escalation", OutboxMessage.ticket_id == ticket.id).order_by(OutboxMessage.id)))


def levels_of(ticket, *, skipped):
    return sorted(db.session.scalars(select(Escalation.percent).where(
        Escalation.ticket_id == ticket.id, Escalation.target == "first_response",
        Escalation.skipped.is_(skipped))))


def copy_ticket(ticket, count: int) -> list[int]:
    """Insert `count` copies of a filed ticket with its clocks in bulk (1,000 through the service take long)."""
    source = db.session.execute(select(*[Ticket.__table__.c[k] for k in TICKET_COLUMNS])
                                .where(Ticket.id == ticket.id)).mappings().one()
    db.session.execute(insert(Ticket), [
        {**source, "number": f"{ticket.number}-{i:04d}"} for i in range(count)])
    ids = list(db.session.scalars(select(Ticket.id).where(Ticket.number.like(f"{ticket.number}-%"))))
    clocks = db.session.execute(select(*[SlaClock.__table__.c[k] for k in CLOCK_COLUMNS])
                                .where(SlaClock.ticket_id == ticket.id)).mappings().all()
    db.session.execute(insert(SlaClock), [{**clock, "ticket_id": i} for i in ids for clock in clocks])
    db.session.commit()
    return ids


# --- defect 1: one ticket must not stall the sweep ------------------------------------------------


def test_escalating_an_unassigned_ticket_to_twenty_long_addresses_is_recorded_with_a_bounded_note(world):
    make_policy(world["tenant"], levels=[
        {"percent": 75, "recipients": ["assignee", "service_manager"], "business_hours_only": True},
        {"percent": 100, "recipients": ["team_lead"], "business_hours_only": False},
    ])
    for n in range(20):
        make_user("agent", teams=[world["team"]],
                  email=f"mitarbeiterin.mit.langem.namen.{n:02d}@ksm-rechenzentrum.example")
        make_user("service_manager", email=f"servicemanagement.langer.name.{n:02d}@ksm-rechenzentrum.example")
    ticket = file(world, "2026-03-05 09:00")

    assert sla_service.sweep(berlin("2026-03-05 09:46"))["escalations"] == 1

    note = db.session.scalar(select(TicketEvent.note).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "sla_escalation"))
    assert note.startswith("75 % → lead@ksm.example, servicemanagement.langer.name.")
    assert len(note) <= 500 and note.endswith(")") and "… (+" in note
    recorded = db.session.scalar(select(Escalation.recipients).where(Escalation.ticket_id == ticket.id))
    assert len(recorded) <= 1000 and not recorded.endswith("@")
    # Everyone named by the level is told, whatever fits into the note: the lead and 20 service managers.
    assert len(escalation_mails(ticket)) == 21


def test_a_failing_ticket_is_postponed_and_1000_due_tickets_behind_it_are_swept_in_one_run(
        world, monkeypatch, caplog, backend):
    if backend != "postgresql":
        pytest.skip("1,000 tickets take half a minute per backend: run where issue 8 found the stall, PostgreSQL "
                    "(test_sla_sweep's crash test checks the same isolation on SQLite)")
    poisoned = file(world, "2026-03-05 08:59")  # due first: it comes first in every sweep
    template = file(world, "2026-03-05 09:00")
    healthy = [template.id, *copy_ticket(template, 999)]
    real_check = sla_service.check_ticket

    def check_or_fail(ticket, now):
        if ticket.id == poisoned.id:
            raise RuntimeError("value too long for type character varying(500)")
        return real_check(ticket, now)

    monkeypatch.setattr(sla_service, "check_ticket", check_or_fail)
    # Alembic's fileConfig in migrations/env.py disables the loggers that existed when the tests migrated.
    monkeypatch.setattr(sla_service.log, "disabled", False)
    now = berlin("2026-03-05 09:46")  # 75 % of the 1 h first response of every ticket
    with caplog.at_level(logging.ERROR, logger="helpdesk.services.sla"):
        counts = sla_service.sweep(now, budget_seconds=None)  # isolation is tested here, not speed

    assert counts["tickets"] == 1000 and counts["failed"] == 1
    warned = db.session.scalar(select(func.count(func.distinct(Escalation.ticket_id))).where(
        Escalation.ticket_id.in_(healthy), Escalation.percent == 75, Escalation.skipped.is_(False)))
    assert warned == 1000
    assert db.session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.id.in_(healthy), Ticket.sla_next_check_at <= now)) == 0
    assert poisoned.number in caplog.text
    db.session.expire_all()
    first_try = db.session.get(Ticket, poisoned.id)
    retry_at, failures = first_try.sla_next_check_at, first_try.sla_check_failures
    assert retry_at > now and failures == 1
    assert levels_of(first_try, skipped=False) == []

    # Before its next check the failing ticket is left alone; then it is retried and backs off further.
    assert sla_service.sweep(now + (retry_at - now) / 2)["failed"] == 0
    assert sla_service.sweep(retry_at)["failed"] == 1
    db.session.expire_all()
    second_try = db.session.get(Ticket, poisoned.id)
    assert second_try.sla_check_failures == 2
    assert second_try.sla_next_check_at - retry_at > retry_at - now

    # Once the fault is gone the ticket gets its escalation and the failure count starts afresh.
    monkeypatch.setattr(sla_service, "check_ticket", real_check)
    assert sla_service.sweep(second_try.sla_next_check_at)["failed"] == 0
    db.session.expire_all()
    repaired = db.session.get(Ticket, poisoned.id)
    assert repaired.sla_check_failures == 0 and levels_of(repaired, skipped=False) == [75]


# --- defect 5: no stale warning after a breach ----------------------------------------------------


def test_a_warning_is_not_sent_after_the_breach_emails_of_a_ticket_due_at_night(world):
    ticket = file(world, "2026-03-05 14:00")  # first response due 15:00, 150 % at 15:30
    tickets.assign(world["lead"], ticket, world["agent"], berlin("2026-03-05 14:01"))
    sla_service.sweep(berlin("2026-03-06 03:00"))  # the worker comes back at night
    sla_service.sweep(berlin("2026-03-06 07:00"))  # business hours: warnings would go out now
    sla_service.sweep(berlin("2026-03-06 08:00"))

    subjects = [m.subject for m in escalation_mails(ticket)]
    assert len(subjects) == 1 and "150" in subjects[0]
    assert levels_of(ticket, skipped=False) == [150]
    assert levels_of(ticket, skipped=True) == [75, 100]


def test_a_warning_waiting_for_the_morning_is_skipped_when_the_breach_fires_in_the_same_check(world):
    ticket = file(world, "2026-03-05 15:00")  # 75 % at 15:45, used up at closing, breached at 07:00
    tickets.assign(world["lead"], ticket, world["agent"], berlin("2026-03-05 15:01"))
    sla_service.sweep(berlin("2026-03-05 16:30"))  # closed: the warning waits, no breach yet
    assert escalation_mails(ticket) == []
    sla_service.sweep(berlin("2026-03-06 07:01"))  # open again, and breached since 07:00

    assert [m.recipient for m in escalation_mails(ticket)] == ["lead@ksm.example"]
    assert levels_of(ticket, skipped=False) == [100]
    assert levels_of(ticket, skipped=True) == [75]


def test_skipped_levels_are_shown_in_the_ticket_history(world, client, frozen_now):
    ticket = file(world, "2026-03-05 09:00")
    sla_service.sweep(berlin("2026-03-05 15:00"))  # down all day: only the 150 % level is sent
    kinds = [e.kind for e in db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind.like("sla_escalation%"),
        TicketEvent.new_value == "first_response").order_by(TicketEvent.id))]
    assert kinds.count("sla_escalation") == 1 and kinds.count("sla_escalation_skipped") == 2
    frozen_now(berlin("2026-03-05 15:01"))
    client.login(world["agent"])
    page = client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "übersprungen" in page and "75 %" in page


# --- default recipients ---------------------------------------------------------------------------


def test_the_warning_of_an_unassigned_ticket_of_a_ten_member_team_goes_only_to_the_lead(world):
    for n in range(8):
        make_user("agent", teams=[world["team"]], email=f"agent{n}@ksm.example")
    assert len(world["team"].members) == 10  # the lead, the world's agent and 8 more
    ticket = file(world, "2026-03-05 09:00")

    sla_service.sweep(berlin("2026-03-05 09:46"))

    assert [m.recipient for m in escalation_mails(ticket)] == ["lead@ksm.example"]


def test_breach_goes_to_the_lead_and_service_managers_and_overdue_also_to_the_tenant_contact(world):
    manager = make_user("service_manager", email="sm@ksm.example")
    contact = make_user("tenant_manager", tenant=world["tenant"], email="leitung@lup.example")
    ticket = file(world, "2026-03-05 09:00")
    tickets.assign(world["lead"], ticket, world["agent"], berlin("2026-03-05 09:01"))

    sla_service.sweep(berlin("2026-03-05 10:01"))
    breach = {m.recipient for m in escalation_mails(ticket)}
    assert breach == {"lead@ksm.example", manager.email}
    sla_service.sweep(berlin("2026-03-05 10:31"))
    overdue = {m.recipient for m in escalation_mails(ticket) if "150" in m.subject}
    assert overdue == {"lead@ksm.example", manager.email, contact.email}


def test_a_recipient_list_too_long_for_its_column_ends_with_how_many_were_left_out():
    addresses = [f"person{n:02d}@example.org" for n in range(40)]
    text = sla_service.bounded_list(addresses, 100)
    shown = text.count("@")
    assert len(text) <= 100 and text.startswith("person00@example.org, ") and text.endswith(f" … (+{40 - shown})")
    assert sla_service.bounded_list(addresses[:2], 100) == "person00@example.org, person01@example.org"
