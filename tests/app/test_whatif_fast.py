"""The fast what-if (set-based history load, plain records, fast replay) gives the figures of a
straightforward recomputation: every ticket's history read through the ORM, mapped by the
documented rules, replayed by the reference replay and counted one clock at a time."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

import sla
from helpdesk.extensions import db
from helpdesk.models import SlaPolicy, Ticket, TicketEvent
from helpdesk.models.users import STAFF_ROLES
from helpdesk.services import whatif
from helpdesk.services.reports import Compliance, period_bounds
from tests.builders import make_calendar, make_category, make_policy, make_team, make_tenant, make_ticket, make_user
from tests.unit.sla.reference_replay import reference_replay

UTC = timezone.utc
NOW = datetime(2026, 4, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def data(app):
    """Two tenants; 36 tickets of the first with random histories written as history lines, some noise."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    calendar = make_calendar("MV")
    tenant, other = make_tenant("lup", "Landkreis"), make_tenant("sn", "Schwerin")
    make_policy(tenant, calendar=calendar)
    make_policy(other, calendar=calendar)
    category = make_category("Sonstiges")
    agent = make_user("agent", teams=[team], email="agent@ksm.example")
    lead = make_user("team_lead", teams=[team], email="lead@ksm.example")
    people = [make_user(tenant=tenant, email=f"p{i}@lup.example") for i in range(3)]
    stranger = make_user(tenant=other, email="x@sn.example")
    rng = random.Random(20260301)
    tickets = []
    for n in range(36):
        created = datetime(2026, 1, 20, 7, 0, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 80 * 24 * 60))
        ticket = make_ticket(rng.choice(people), category=category, impact=rng.randint(1, 3),
                             urgency=rng.randint(1, 3), now=created, subject=f"Fall {n}")
        tickets.append(ticket)
        at, status = created, "new"
        for _ in range(rng.randint(0, 8)):
            at += timedelta(minutes=rng.choice((0, 1, 30, 90, 300, 1500, 4000)))
            if at >= NOW:
                break
            roll = rng.random()
            line = dict(ticket_id=ticket.id, created_at=at)
            if roll < 0.25:
                line.update(kind="reply", actor_id=rng.choice((agent.id, lead.id)), is_internal=rng.random() < 0.2)
            elif roll < 0.4:
                line.update(kind="reply", actor_id=rng.choice(people).id, is_internal=False)
            elif roll < 0.45:
                line.update(kind="reply", actor_id=None, is_internal=False)  # author gone: not counted
            elif roll < 0.55:
                line.update(kind="field", field="priority", old_value=str(ticket.priority),
                            new_value=str(rng.randint(1, 4)))
            elif roll < 0.6:
                line.update(kind="field", field="team", old_value="A", new_value="B")  # not clock-relevant
            else:
                new = rng.choice(("open", "pending", "resolved", "closed", "open"))
                line.update(kind="field", field="status", old_value=status, new_value=new)
                status = new
            db.session.add(TicketEvent(**line))
        ticket.resolved_at = at if status in ("resolved", "closed") else None
    other_ticket = make_ticket(stranger, category=category, now=datetime(2026, 2, 3, 9, tzinfo=UTC))
    db.session.add(TicketEvent(ticket_id=other_ticket.id, created_at=datetime(2026, 2, 3, 10, tzinfo=UTC),
                               kind="reply", actor_id=agent.id, is_internal=False))
    db.session.commit()
    return {"tenant": tenant, "calendar": calendar, "tickets": tickets}


def straightforward(tenant, start, end, proposal, now):
    """Recount the what-if the plain way: ORM objects, HistoryEvents, reference replay, one clock at a time."""
    targets = proposal.target_times()
    overall = {t: Compliance() for t in sla.TARGETS}
    tickets: dict = {}
    replayed = 0
    for ticket in db.session.scalars(select(Ticket).where(Ticket.tenant_id == tenant.id)):
        if not (ticket.created_at < end and (ticket.resolved_at is None or ticket.resolved_at >= start)):
            continue
        replayed += 1
        lines = sorted(db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)),
                       key=lambda e: (e.created_at, e.id))
        initial, events = None, []
        for e in lines:
            if e.kind == "field" and e.field == "priority":
                if initial is None:
                    initial = int(e.new_value)
                else:
                    events.append(sla.HistoryEvent.priority_change(e.created_at, int(e.new_value)))
            elif e.kind == "field" and e.field == "status":
                events.append(sla.HistoryEvent.status(e.created_at, e.old_value, e.new_value))
            elif e.kind == "reply" and not e.is_internal and e.actor is not None:
                events.append(sla.HistoryEvent.public_response(e.created_at) if e.actor.role in STAFF_ROLES
                              else sla.HistoryEvent.requester_message(e.created_at))
        history = [sla.HistoryEvent.created(ticket.created_at, initial or ticket.priority), *events]
        for outcome in reference_replay(history, targets, proposal.calendar, now=max(now, history[-1].at)):
            moment = outcome.decided_at or outcome.breached_at
            if moment is None or not start <= moment < end:
                continue
            if outcome.breached_at is not None:
                part = Compliance(0, 1)
            elif outcome.outcome == "met":
                part = Compliance(1, 0)
            else:
                continue
            overall[outcome.target] += part
            key = (outcome.target, outcome.priority)
            tickets.setdefault(key, [Compliance(), set()])
            tickets[key][0] += part
            tickets[key][1].add(ticket.id)
    return overall, tickets, replayed


@pytest.mark.parametrize("period", [("month", 2026, 2), ("month", 2026, 3), ("quarter", 2026, 1)])
def test_the_fast_what_if_gives_the_figures_of_a_straightforward_recount(data, period):
    tenant = data["tenant"]
    start, end, label = period_bounds(*period)
    own = whatif.current_proposal(tenant)
    targets = db.session.scalar(select(SlaPolicy).where(SlaPolicy.tenant_id == tenant.id)).current_version.targets
    tighter = whatif.make_proposal({p: {t: (m // 3 if m else None) for t, m in row.items()}
                                    for p, row in targets.items()}, whatif.AROUND_THE_CLOCK)
    for proposal in (own, tighter):
        result = whatif.what_if(tenant, start, end, proposal, now=NOW, label=label)
        overall, per_priority, replayed = straightforward(tenant, start, end, proposal, NOW)
        assert result.tickets_replayed == replayed
        for target in sla.TARGETS:
            assert result.row(target).proposed == overall[target], (label, target)
            for priority in (1, 2, 3, 4):
                expected, ids = per_priority.get((target, priority), [Compliance(), set()])
                row = result.row(target, priority)
                assert row.proposed == expected and row.tickets == len(ids), (label, target, priority)
    # The data set is not trivial: both outcomes occur, and the tighter contract breaches more.
    quarter = whatif.what_if(tenant, *period_bounds("quarter", 2026, 1)[:2], tighter, now=NOW)
    assert quarter.row("first_response").proposed.met and quarter.row("first_response").proposed.breached
    assert quarter.row("resolution").proposed.breached


def test_the_histories_keep_their_shape_for_callers(data):
    tenant = data["tenant"]
    start, end, _label = period_bounds("quarter", 2026, 1)
    events, versions = whatif.histories(tenant, start, end)
    assert set(events) == set(versions) and len(events) >= 20
    for history in events.values():
        assert history[0].kind == "created" and all(isinstance(e, sla.HistoryEvent) for e in history)
        assert [e.at for e in history] == sorted(e.at for e in history)
