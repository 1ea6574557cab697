"""Pick the team for a new ticket and derive its priority from impact and urgency; keep the rule order."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from helpdesk.extensions import db
from helpdesk.models import Category, RoutingRule, Team

# The one order in which rules are tried and shown: first match wins.
RULE_ORDER = (RoutingRule.position, RoutingRule.id)
POSITION_STEP = 10


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
        .order_by(*RULE_ORDER)
    )
    for rule in rules:
        if rule_matches(rule, tenant_id, category, priority):
            return rule.team, rule
    return fallback_team(), None


def ordered_rules() -> list[RoutingRule]:
    """Return every rule (active or not) in the order routing tries them, with what a list shows."""
    return list(db.session.scalars(
        select(RoutingRule)
        .options(joinedload(RoutingRule.tenant), joinedload(RoutingRule.category).joinedload(Category.parent),
                 joinedload(RoutingRule.team))
        .order_by(*RULE_ORDER)
    ))


def _live(rule: RoutingRule) -> bool:
    """Tell whether routing tries the rule at all (route skips inactive rules and inactive teams)."""
    return bool(rule.active and rule.team.active)


def covers(earlier: RoutingRule, later: RoutingRule) -> bool:
    """Tell whether `earlier` matches every ticket `later` matches: each condition unset or the same.

    A category condition also covers the subcategories, as in rule_matches.
    """
    if earlier.tenant_id is not None and earlier.tenant_id != later.tenant_id:
        return False
    if earlier.category_id is not None and (
            later.category is None or earlier.category_id not in _category_chain(later.category)):
        return False
    if earlier.priority is not None and earlier.priority != later.priority:
        return False
    return True


def shadowing(rules: list[RoutingRule]) -> dict[int, RoutingRule]:
    """Map the id of each rule that can never fire to the earlier tried rule that takes all its tickets.

    `rules` must be in routing order (ordered_rules); only rules routing tries can hide others.
    """
    hidden: dict[int, RoutingRule] = {}
    tried: list[RoutingRule] = []
    for rule in rules:
        earlier = next((e for e in tried if covers(e, rule)), None)
        if earlier is not None:
            hidden[rule.id] = earlier
        if _live(rule):
            tried.append(rule)
    return hidden


def move_rule(rule: RoutingRule, offset: int) -> bool:
    """Move a rule one place up (-1) or down (+1) in the order; renumber positions in steps; commit.

    Returns False when the rule is already first (or last). Renumbering makes the move work also
    for rules that share a position, whose order is otherwise their creation order.
    """
    rules = ordered_rules()
    index = next(i for i, r in enumerate(rules) if r.id == rule.id)
    other = index + offset
    if offset not in (-1, 1) or not 0 <= other < len(rules):
        return False
    rules[index], rules[other] = rules[other], rules[index]
    for number, each in enumerate(rules, start=1):
        each.position = number * POSITION_STEP
    db.session.commit()
    return True
