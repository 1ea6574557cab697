"""Small builders for test data: call them inside an app context."""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

from helpdesk.extensions import db
from helpdesk.models import Category, RoutingRule, Team, Tenant, User
from helpdesk.services import accounts, tickets
from helpdesk.services.attachments import Upload

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def at(text: str) -> datetime:
    """Parse '2026-03-05 10:00' as an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def make_tenant(slug: str | None = None, name: str | None = None) -> Tenant:
    """Create a tenant."""
    n = next(_seq)
    tenant = Tenant(slug=slug or f"tenant{n}", name=name or f"Gemeinde {n}")
    db.session.add(tenant)
    db.session.commit()
    return tenant


def make_team(slug: str | None = None, name: str | None = None, *, fallback: bool = False, lead: User | None = None) -> Team:
    """Create a KSM team."""
    n = next(_seq)
    team = Team(slug=slug or f"team{n}", name=name or f"Team {n}", is_fallback=fallback, lead=lead)
    db.session.add(team)
    db.session.commit()
    return team


def make_user(role: str = "requester", *, tenant: Tenant | None = None, teams: list[Team] | None = None,
              email: str | None = None, name: str | None = None, locale: str = "de") -> User:
    """Create a user with the shared test password."""
    n = next(_seq)
    user = accounts.save_user(
        None, email=email or f"user{n}@example.org", name=name or f"Person {n}", role=role,
        tenant=tenant, teams=teams or [], password=PASSWORD,
    )
    user.locale = locale
    db.session.commit()
    return user


def make_category(name: str | None = None, parent: Category | None = None) -> Category:
    """Create a service catalog entry."""
    category = Category(name=name or f"Kategorie {next(_seq)}", parent=parent)
    db.session.add(category)
    db.session.commit()
    return category


def make_rule(team: Team, *, tenant: Tenant | None = None, category: Category | None = None,
              priority: int | None = None, position: int = 100, name: str | None = None) -> RoutingRule:
    """Create a routing rule."""
    rule = RoutingRule(team=team, tenant=tenant, category=category, priority=priority, position=position,
                       name=name or f"Regel {next(_seq)}")
    db.session.add(rule)
    db.session.commit()
    return rule


def make_ticket(requester: User, *, category: Category, now: datetime | None = None, actor: User | None = None,
                subject: str = "Drucker druckt nicht", description: str = "Seit heute früh kein Ausdruck.",
                impact: int = 2, urgency: int = 2, channel: str = "web", uploads: list[Upload] = ()):
    """File a ticket through the real service (routing, numbering, outbox)."""
    return tickets.create_ticket(
        actor or requester, requester=requester, subject=subject, description=description,
        category_id=category.id, impact=impact, urgency=urgency, now=now or at("2026-03-05 09:00"),
        channel=channel, uploads=list(uploads),
    )


MV_HOURS = {"0": [["07:00", "16:00"]], "1": [["07:00", "16:00"]], "2": [["07:00", "16:00"]],
            "3": [["07:00", "16:00"]], "4": [["07:00", "13:00"]]}
TARGETS = {
    "1": {"first_response": 30, "next_update": 60, "resolution": 240},
    "2": {"first_response": 60, "next_update": 120, "resolution": 480},
    "3": {"first_response": 60, "next_update": 120, "resolution": 480},
    "4": {"first_response": 480, "next_update": None, "resolution": 4800},
}


def make_calendar(name: str | None = None, *, hours: dict | None = None, region: str | None = "DE-MV",
                  closures=((), )) -> "Calendar":
    """Create the DESIGN.md calendar (Mo–Do 07–16, Fr 07–13, Mecklenburg-Vorpommern)."""
    from helpdesk.services import sla_admin

    closures = [] if closures == ((),) else list(closures)
    return sla_admin.save_calendar(None, name=name or f"Kalender {next(_seq)}", timezone="Europe/Berlin",
                                   hours=hours or MV_HOURS, holiday_region=region, closures=closures,
                                   now=at("2026-01-01 00:00"))


def make_policy(tenant: Tenant, *, calendar=None, targets: dict | None = None, levels: list | None = None,
                actor: User | None = None, now: datetime | None = None):
    """Give a tenant an SLA contract; returns the new version."""
    from helpdesk.services import sla_admin
    from helpdesk.services.sla import DEFAULT_LEVELS

    return sla_admin.save_policy(
        tenant, name=f"Vertrag {tenant.name}", calendar=calendar or make_calendar(), compliance_goal=95,
        targets=targets or TARGETS, levels=levels or DEFAULT_LEVELS, actor=actor, now=now or at("2026-01-01 00:00"),
    )
