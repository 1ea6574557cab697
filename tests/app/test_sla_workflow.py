"""SLA bookkeeping on ticket events: DESIGN.md §2 through the ticket services."""
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import SlaClock, TicketEvent
from helpdesk.services import sla as sla_service
from helpdesk.services import tickets
from tests.builders import (
    TARGETS, make_calendar, make_category, make_policy, make_team, make_tenant, make_ticket, make_user,
)

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(text: str) -> datetime:
    """Parse a Berlin wall-clock time ('2026-03-05 09:00') into an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(ZoneInfo("UTC"))


def file(world, when: str, **kwargs):
    """File a P3 ticket (impact 2 × urgency 2) at a Berlin wall-clock time."""
    return make_ticket(world["requester"], category=world["category"], now=berlin(when), **kwargs)


def clock(ticket, target: str, cycle: int = 1) -> SlaClock:
    return db.session.scalar(select(SlaClock).where(
        SlaClock.ticket_id == ticket.id, SlaClock.target == target, SlaClock.cycle == cycle))


def test_new_ticket_gets_due_times_in_business_time(world):
    ticket = file(world, "2026-03-05 15:30")  # Thursday
    assert ticket.priority == 3
    assert ticket.first_response_due_at == berlin("2026-03-06 07:30")  # 1 h: 30 min Thu + 30 min Fri
    assert ticket.resolution_due_at == berlin("2026-03-09 08:30")  # 8 h: 0.5 Thu + 6 Fri + 1.5 Mon
    assert ticket.sla_next_check_at is not None


def test_ticket_filed_friday_afternoon_is_due_monday_morning(world):
    ticket = file(world, "2026-03-06 12:30")  # Friday, closes 13:00
    assert ticket.first_response_due_at == berlin("2026-03-09 07:30")


def test_ticket_filed_at_night_starts_its_clock_at_the_next_opening(world):
    ticket = file(world, "2026-03-05 22:00")
    assert ticket.first_response_due_at == berlin("2026-03-06 08:00")


def test_first_public_reply_meets_first_response_and_internal_note_does_not(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.reply(world["agent"], ticket, body="Wir prüfen intern.", internal=True, now=berlin("2026-03-05 09:20"))
    assert clock(ticket, "first_response").outcome is None
    assert ticket.first_response_due_at == berlin("2026-03-05 10:00")

    tickets.reply(world["agent"], ticket, body="Wir kümmern uns.", now=berlin("2026-03-05 09:45"))
    first = clock(ticket, "first_response")
    assert first.outcome == "met" and first.used_seconds == 45 * 60
    assert ticket.first_response_due_at is None


def test_late_first_reply_is_breached_at_the_due_moment(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.reply(world["agent"], ticket, body="Entschuldigung für die Wartezeit.", now=berlin("2026-03-05 11:00"))
    first = clock(ticket, "first_response")
    assert first.outcome == "breached"
    assert first.breached_at == berlin("2026-03-05 10:00")
    assert ticket.sla_breached is True


def test_pending_pauses_the_resolution_clock_and_the_answer_resumes_it(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.reply(world["agent"], ticket, body="Welche Druckernummer?", new_status="pending",
                  now=berlin("2026-03-05 10:00"))
    resolution = clock(ticket, "resolution")
    assert resolution.running_since is None and resolution.used_seconds == 3600
    assert ticket.resolution_due_at is None

    tickets.reply(world["requester"], ticket, body="Drucker 2.OG-04", now=berlin("2026-03-09 09:00"))
    assert ticket.status == "open"
    # 7 h of 8 h left from Monday 09:00: Monday closes 16:00.
    assert ticket.resolution_due_at == berlin("2026-03-09 16:00")
    kinds = set(db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)))
    assert {"sla_paused", "sla_resumed"} <= kinds


def test_reopening_continues_the_resolution_clock_from_the_time_used(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.change_status(world["agent"], ticket, "resolved", berlin("2026-03-05 11:00"))
    resolution = clock(ticket, "resolution")
    assert resolution.outcome == "met" and resolution.used_seconds == 2 * 3600

    tickets.reopen(world["requester"], ticket, berlin("2026-03-05 12:00"), reason="Geht doch nicht.")
    resolution = clock(ticket, "resolution")
    assert resolution.outcome is None
    # 6 h left from Thursday 12:00: 4 h Thursday, 2 h Friday.
    assert ticket.resolution_due_at == berlin("2026-03-06 09:00")


def test_requester_message_starts_next_update_clock_and_next_reply_meets_it(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.reply(world["agent"], ticket, body="Wir schauen es uns an.", now=berlin("2026-03-05 09:10"))
    assert clock(ticket, "next_update") is None

    tickets.reply(world["requester"], ticket, body="Gibt es etwas Neues?", now=berlin("2026-03-05 13:00"))
    update = clock(ticket, "next_update")
    assert update is not None and update.cycle == 1
    assert ticket.next_update_due_at == berlin("2026-03-05 15:00")

    tickets.reply(world["agent"], ticket, body="Techniker ist unterwegs.", now=berlin("2026-03-05 14:00"))
    assert clock(ticket, "next_update").outcome == "met"
    tickets.reply(world["requester"], ticket, body="Danke, noch eine Frage.", now=berlin("2026-03-05 14:30"))
    assert clock(ticket, "next_update", cycle=2) is not None


def test_priority_change_moves_the_due_time_and_keeps_elapsed_time(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.change_priority(world["agent"], ticket, 1, berlin("2026-03-05 09:10"), reason="Ganzes Amt betroffen")
    assert ticket.first_response_due_at == berlin("2026-03-05 09:30")  # P1: 30 min from creation
    assert ticket.resolution_due_at == berlin("2026-03-05 13:00")  # P1: 4 h
    assert clock(ticket, "first_response").priority == 1


def test_policy_edit_leaves_running_tickets_on_their_version(world):
    old = file(world, "2026-03-05 09:00")
    old_version, old_due = old.sla_version_id, old.first_response_due_at
    looser = {p: dict(v) for p, v in TARGETS.items()}
    looser["3"]["first_response"] = 240
    version = make_policy(world["tenant"], targets=looser, calendar=make_calendar())
    assert version.version == 2

    new = file(world, "2026-03-05 09:00")
    db.session.refresh(old)
    assert old.sla_version_id == old_version and old.first_response_due_at == old_due
    assert new.sla_version_id == version.id
    assert new.first_response_due_at == berlin("2026-03-05 13:00")


def test_resolving_decides_every_open_clock(world):
    ticket = file(world, "2026-03-05 09:00")
    tickets.change_status(world["agent"], ticket, "resolved", berlin("2026-03-05 09:30"))
    assert clock(ticket, "first_response").outcome == "met"
    assert clock(ticket, "resolution").outcome == "met"
    assert ticket.sla_next_check_at is None


def test_ticket_of_a_tenant_without_contract_has_no_clocks(app):
    make_team("service-desk", fallback=True)
    tenant = make_tenant()
    ticket = make_ticket(make_user(tenant=tenant), category=make_category())
    assert ticket.sla_version_id is None and ticket.first_response_due_at is None
    assert sla_service.clock_rows(ticket) == []
