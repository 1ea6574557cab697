"""Pick the team for a new ticket and derive its priority from impact and urgency."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Category, RoutingRule, Team


def priority_for(impact: int, urgency: int, matrix: dict[str, int] | None = None) -> int:
    """Return P1..P4 for impact × urgency from the configured ITIL matrix."""
    matrix = matrix or current_app.config["PRIORITY_MATRIX"]
    return int(matrix[f"{impact},{urgency}"])


def _category_chain(category: Category | None) -> set[int]:
    ids = set()
    while category is not None:
        ids.add(category.id)
        category = category.parent
    return ids


def rule_matches(rule: RoutingRule, tenant_id: int, category: Category | None, priority: int) -> bool:
    """Tell whether a rule applies; a rule on a parent category also matches its children."""
    if rule.tenant_id is not None and rule.tenant_id != tenant_id:
        return False
    if rule.category_id is not None and rule.category_id not in _category_chain(category):
        return False
    if rule.priority is not None and rule.priority != priority:
        return False
    return True


def fallback_team() -> Team:
    """Return the Service Desk (the team flagged as fallback), the first team if none is flagged."""
    team = db.session.scalar(select(Team).where(Team.is_fallback.is_(True), Team.active.is_(True)))
    team = team or db.session.scalar(select(Team).where(Team.active.is_(True)).order_by(Team.id))
    if team is None:
        raise RuntimeError("no active team configured")
    return team


def route(tenant_id: int, category: Category | None, priority: int) -> tuple[Team, RoutingRule | None]:
    """Return the team of the first matching active rule (by position), else the fallback team."""
    rules = db.session.scalars(
        select(RoutingRule)
        .join(Team, Team.id == RoutingRule.team_id)
        .where(RoutingRule.active.is_(True), Team.active.is_(True))
        .order_by(RoutingRule.position, RoutingRule.id)
    )
    for rule in rules:
        if rule_matches(rule, tenant_id, category, priority):
            return rule.team, rule
    return fallback_team(), None
