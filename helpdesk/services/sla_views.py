"""Read models for managers: which tickets are at risk or breached right now."""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy.orm import joinedload

from helpdesk.extensions import db
from helpdesk.models import Ticket, User
from helpdesk.services import reports
from helpdesk.services import sla as sla_service
from helpdesk.services.permissions import ticket_scope

RISK_STATES = ("warning", "breached")


def situation_teams(user: User) -> list[int] | None:
    """Return the teams whose tickets the user's SLA situation may show (None: every team).

    The reports decide (reports.report_scope): team leads their teams, contact managers their own
    tenant (ticket_scope), service managers and admins everything; other roles get Forbidden.
    """
    own_tenant = user.tenant if user.role == "tenant_manager" else None
    return reports.report_scope(user, own_tenant)


def sla_situation(user: User, now: datetime, *, team_id: int | None = None, tenant_id: int | None = None,
                  limit: int = 300) -> dict:
    """Return open tickets at risk or breached (soonest due first) with counts per team and tenant.

    Scoped like the reports (situation_teams). Reads the `limit` running tickets due soonest through
    the index on (status, sla_due_at): those at risk are always at the front, so the page never scans
    all open tickets.
    """
    team_ids = situation_teams(user)
    query = (
        ticket_scope(user)
        .where(Ticket.status.in_(("new", "open")), Ticket.sla_due_at.is_not(None))
        .options(joinedload(Ticket.tenant), joinedload(Ticket.team), joinedload(Ticket.assignee))
        .order_by(Ticket.sla_due_at, Ticket.id)
        .limit(limit)
    )
    if team_ids is not None:
        query = query.where(Ticket.team_id.in_(team_ids))
    if team_id:
        query = query.where(Ticket.team_id == team_id)
    if tenant_id:
        query = query.where(Ticket.tenant_id == tenant_id)
    tickets = list(db.session.scalars(query).unique())
    states = sla_service.badges(tickets, now)
    rows = [(t, states[t.id]) for t in tickets if states[t.id]["state"] in RISK_STATES]
    per_team: Counter = Counter()
    per_tenant: Counter = Counter()
    for ticket, badge in rows:
        per_team[(ticket.team.name, badge["state"])] += 1
        per_tenant[(ticket.tenant.name, badge["state"])] += 1

    def table(counter: Counter) -> list[dict]:
        names = sorted({name for name, _state in counter})
        return sorted(
            ({"name": n, "breached": counter[(n, "breached")], "warning": counter[(n, "warning")]} for n in names),
            key=lambda r: (-r["breached"], -r["warning"], r["name"]),
        )

    return {
        "breached": [(t, b) for t, b in rows if b["state"] == "breached"],
        "warning": [(t, b) for t, b in rows if b["state"] == "warning"],
        "per_team": table(per_team),
        "per_tenant": table(per_tenant),
        "truncated": len(tickets) == limit,
    }
