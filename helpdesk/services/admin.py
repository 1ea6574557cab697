"""Administration: validate and store tenants, accounts, teams, the service catalog and routing rules."""
from __future__ import annotations

import re
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from helpdesk.extensions import db
from helpdesk.models import Category, OutboxMessage, RoutingRule, Team, Tenant, User
from helpdesk.models.tickets import PRIORITIES
from helpdesk.models.users import STAFF_ROLES
from helpdesk.services import accounts, outbox, routing
from helpdesk.services.errors import DomainError
from helpdesk.services.ids import as_id

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
SLUG_MAX = 40


def _text(value: str | None, field: str, message: str, max_length: int) -> str:
    """Return the stripped text or raise DomainError when it is empty or too long."""
    value = (value or "").strip()
    if not value:
        raise DomainError(message, field=field)
    if len(value) > max_length:
        raise DomainError(_("Höchstens %(n)d Zeichen.", n=max_length), field=field)
    return value


def _slug(value: str | None) -> str:
    """Return a valid slug or raise DomainError naming the field `slug`."""
    slug = (value or "").strip()
    if not slug:
        raise DomainError(_("Bitte geben Sie ein Kürzel an."), field="slug")
    if len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
        raise DomainError(
            _("Das Kürzel darf nur Kleinbuchstaben (a–z), Ziffern und Bindestriche enthalten "
              "(höchstens %(n)d Zeichen, kein Bindestrich am Anfang oder Ende).", n=SLUG_MAX),
            field="slug",
        )
    return slug


def _commit(field: str, message: str) -> None:
    """Commit; turn a unique-constraint race into the same DomainError the checks give."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise DomainError(message, field=field) from exc


def _get(model, value, field: str, message: str):
    """Return the row with this id (string or int) or raise DomainError; None for an empty value."""
    if value in (None, ""):
        return None
    row = db.session.get(model, as_id(value)) if as_id(value) else None
    if row is None:
        raise DomainError(message, field=field)
    return row


# --- tenants ---------------------------------------------------------------------------------

# Tenant slugs appear in report URLs (/reports/<slug>): these would be hidden by fixed pages.
RESERVED_TENANT_SLUGS = frozenset({"sla", "dashboard", "whatif", "overview", "print"})


def save_tenant(tenant: Tenant | None, *, slug: str, name: str, active: bool = True) -> Tenant:
    """Create (tenant=None) or update a tenant; the slug must be unique; commit."""
    slug = _slug(slug)
    if slug in RESERVED_TENANT_SLUGS:
        raise DomainError(_("Das Kürzel „%(slug)s“ ist für Seiten des Systems reserviert.", slug=slug), field="slug")
    name = _text(name, "name", _("Bitte geben Sie den Namen des Mandanten an."), 200)
    taken_message = _("Das Kürzel „%(slug)s“ ist bereits vergeben.", slug=slug)
    other = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    if other is not None and other is not tenant:
        raise DomainError(taken_message, field="slug")
    tenant = tenant or Tenant()
    tenant.slug, tenant.name, tenant.active = slug, name, bool(active)
    db.session.add(tenant)
    _commit("slug", taken_message)
    return tenant


# --- accounts --------------------------------------------------------------------------------

def save_account(
    user: User | None,
    *,
    actor: User,
    email: str,
    name: str,
    role: str,
    tenant_id=None,
    team_ids=(),
    password: str | None = None,
    active: bool = True,
    phone: str | None = None,
) -> User:
    """Create or update an account from form values (ids), then store it with accounts.save_user; commit."""
    tenant = _get(Tenant, tenant_id, "tenant", _("Diesen Mandanten gibt es nicht."))
    teams = []
    for team_id in team_ids or ():
        teams.append(_get(Team, team_id, "teams", _("Dieses Team gibt es nicht.")))
    if user is not None and user.id == actor.id:
        if role != "admin":
            raise DomainError(_("Sie können sich die Administrationsrolle nicht selbst entziehen."), field="role")
        if not active:
            raise DomainError(_("Sie können Ihr eigenes Konto nicht deaktivieren."), field="active")
    if role not in STAFF_ROLES and teams:
        teams = []  # tenant accounts are never team members; save_user clears them as well
    try:
        return accounts.save_user(
            user, email=email, name=name, role=role, tenant=tenant, teams=teams,
            password=password or None, active=active, phone=phone,
        )
    except IntegrityError as exc:
        db.session.rollback()
        raise DomainError(_("Diese E-Mail-Adresse ist bereits vergeben."), field="email") from exc


def staff_users(include: User | None = None) -> list[User]:
    """Return the active KSM staff (team lead candidates), plus `include` if it is no longer one."""
    users = list(db.session.scalars(
        select(User).where(User.role.in_(STAFF_ROLES), User.active.is_(True)).order_by(User.name)
    ))
    if include is not None and include not in users:
        users.append(include)
    return users


# --- teams -----------------------------------------------------------------------------------

def save_team(
    team: Team | None,
    *,
    slug: str,
    name: str,
    email: str | None = None,
    lead_id=None,
    is_fallback: bool = False,
    active: bool = True,
) -> Team:
    """Create or update a team; flagging it as fallback clears the flag on every other team; commit."""
    slug = _slug(slug)
    name = _text(name, "name", _("Bitte geben Sie den Namen des Teams an."), 200)
    email = accounts.normalize_email(email) if (email or "").strip() else None
    lead = _get(User, lead_id, "lead", _("Diese Person gibt es nicht."))
    if lead is not None and (lead.role not in STAFF_ROLES or not lead.active):
        raise DomainError(_("Die Teamleitung muss ein aktives KSM-Konto sein."), field="lead")
    if is_fallback and not active:
        raise DomainError(_("Das Standardteam muss aktiv sein."), field="is_fallback")
    taken_message = _("Das Kürzel „%(slug)s“ ist bereits vergeben.", slug=slug)
    other = db.session.scalar(select(Team).where(Team.slug == slug))
    if other is not None and other is not team:
        raise DomainError(taken_message, field="slug")
    team = team or Team()
    team.slug, team.name, team.email, team.lead = slug, name, email, lead
    team.is_fallback, team.active = bool(is_fallback), bool(active)
    db.session.add(team)
    db.session.flush()
    if team.is_fallback:
        db.session.execute(
            update(Team).where(Team.id != team.id, Team.is_fallback.is_(True)).values(is_fallback=False)
        )
    _commit("slug", taken_message)
    return team


# --- categories ------------------------------------------------------------------------------

def save_category(
    category: Category | None,
    *,
    name: str,
    parent_id=None,
    description: str | None = None,
    position=0,
    active: bool = True,
) -> Category:
    """Create or update a catalog entry: two levels at most, names unique under one parent; commit."""
    name = _text(name, "name", _("Bitte geben Sie einen Namen an."), 120)
    parent = _get(Category, parent_id, "parent", _("Diese Oberkategorie gibt es nicht."))
    if parent is not None:
        if category is not None and parent.id == category.id:
            raise DomainError(_("Eine Kategorie kann nicht ihre eigene Oberkategorie sein."), field="parent")
        if parent.parent_id is not None:
            raise DomainError(
                _("Der Servicekatalog hat nur zwei Ebenen: Bitte wählen Sie eine Kategorie der obersten Ebene."),
                field="parent",
            )
        if category is not None and category.id is not None and category.children:
            raise DomainError(
                _("Diese Kategorie hat Unterkategorien und muss daher auf der obersten Ebene bleiben."),
                field="parent",
            )
    description = (description or "").strip() or None
    if description and len(description) > 500:
        raise DomainError(_("Höchstens %(n)d Zeichen.", n=500), field="description")
    try:
        position = int(position or 0)
    except (TypeError, ValueError):
        raise DomainError(_("Bitte geben Sie eine ganze Zahl an."), field="position") from None
    siblings = select(Category).where(func.lower(Category.name) == name.lower())
    siblings = siblings.where(Category.parent_id == parent.id if parent else Category.parent_id.is_(None))
    taken_message = (
        _("Unter „%(parent)s“ gibt es bereits eine Kategorie „%(name)s“.", parent=parent.name, name=name)
        if parent else _("Es gibt bereits eine Kategorie „%(name)s“ auf der obersten Ebene.", name=name)
    )
    for other in db.session.scalars(siblings):
        if other is not category:
            raise DomainError(taken_message, field="name")
    category = category or Category()
    category.name, category.parent, category.description = name, parent, description
    category.position, category.active = position, bool(active)
    db.session.add(category)
    _commit("name", taken_message)
    return category


def category_tree() -> list[Category]:
    """Return the top-level categories (active or not) with their children loaded, in catalog order."""
    return list(db.session.scalars(
        select(Category).where(Category.parent_id.is_(None))
        .options(selectinload(Category.children))
        .order_by(Category.position, Category.name)
    ))


def top_level_categories(exclude: Category | None = None) -> list[Category]:
    """Return the top-level categories that may be a parent (not `exclude` itself)."""
    query = select(Category).where(Category.parent_id.is_(None)).order_by(Category.position, Category.name)
    return [c for c in db.session.scalars(query) if c is not exclude]


# --- routing rules ---------------------------------------------------------------------------

def _priority(value) -> int | None:
    if value in (None, ""):
        return None
    if str(value).isdigit() and int(value) in PRIORITIES:
        return int(value)
    raise DomainError(_("Bitte wählen Sie eine Priorität von P1 bis P4."), field="priority")


def next_rule_position() -> int:
    """Return a position after the last rule (steps of 10 leave room to insert)."""
    last = db.session.scalar(select(func.max(RoutingRule.position)))
    return (last or 0) + 10


def save_rule(
    rule: RoutingRule | None,
    *,
    name: str,
    team_id,
    tenant_id=None,
    category_id=None,
    priority=None,
    position=None,
    active: bool = True,
) -> RoutingRule:
    """Create or update a routing rule (tenant?, category?, priority?) → active team; commit."""
    name = _text(name, "name", _("Bitte geben Sie der Regel einen Namen."), 200)
    team = _get(Team, team_id, "team", _("Dieses Team gibt es nicht."))
    if team is None:
        raise DomainError(_("Bitte wählen Sie das Team, das die Tickets erhalten soll."), field="team")
    if not team.active and (rule is None or rule.team_id != team.id):
        raise DomainError(_("Das Team „%(team)s“ ist nicht aktiv.", team=team.name), field="team")
    tenant = _get(Tenant, tenant_id, "tenant", _("Diesen Mandanten gibt es nicht."))
    category = _get(Category, category_id, "category", _("Diese Kategorie gibt es nicht."))
    priority = _priority(priority)
    if position in (None, ""):
        position = rule.position if rule is not None else next_rule_position()
    try:
        position = int(position)
    except (TypeError, ValueError):
        raise DomainError(_("Bitte geben Sie eine ganze Zahl an."), field="position") from None
    if position < 0:
        raise DomainError(_("Die Reihenfolge darf nicht negativ sein."), field="position")
    rule = rule or RoutingRule()
    rule.name, rule.team, rule.tenant, rule.category = name, team, tenant, category
    rule.priority, rule.position, rule.active = priority, position, bool(active)
    db.session.add(rule)
    db.session.commit()
    return rule


def delete_rule(rule: RoutingRule) -> None:
    """Delete a routing rule; commit."""
    db.session.delete(rule)
    db.session.commit()


def rule_summary(rule: RoutingRule) -> str:
    """Say in plain German which tickets a rule catches and where they go."""
    anything = _("alle")
    if rule.category is None:
        category = anything
    elif rule.category.parent_id is None:
        category = _("%(name)s (inkl. Unterkategorien)", name=rule.category.name)
    else:
        category = rule.category.full_name
    priority = f"P{rule.priority}" if rule.priority else anything
    return _(
        "Mandant: %(tenant)s · Kategorie: %(category)s · Priorität: %(priority)s → Team %(team)s",
        tenant=rule.tenant.name if rule.tenant else anything, category=category, priority=priority,
        team=rule.team.name,
    )


def preview_route(tenant_id, category_id, priority) -> tuple[Team, RoutingRule | None]:
    """Tell which team (and rule) a new ticket with these values would get, as routing.route decides."""
    tenant = _get(Tenant, tenant_id, "tenant", _("Diesen Mandanten gibt es nicht."))
    if tenant is None:
        raise DomainError(_("Bitte wählen Sie einen Mandanten."), field="tenant")
    category = _get(Category, category_id, "category", _("Diese Kategorie gibt es nicht."))
    if category is None:
        raise DomainError(_("Bitte wählen Sie eine Kategorie."), field="category")
    priority = _priority(priority)
    if priority is None:
        raise DomainError(_("Bitte wählen Sie eine Priorität von P1 bis P4."), field="priority")
    try:
        return routing.route(tenant.id, category, priority)
    except RuntimeError as exc:
        raise DomainError(_("Es gibt kein aktives Team, das Tickets erhalten könnte.")) from exc


# --- outbox ----------------------------------------------------------------------------------

def retry_email(message: OutboxMessage, now: datetime) -> None:
    """Put a pending or failed email back in line for the next worker run; commit."""
    if message.status == "sent":
        raise DomainError(_("Diese E-Mail wurde bereits versendet."))
    outbox.retry_now(message, now)
