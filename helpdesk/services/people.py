"""Finding and adding the people tickets are filed for: the requester lookup of the agent's intake form.

Every query here is bounded (LIMIT) and served by indexes (trigram GIN on name and email on
PostgreSQL), so its cost does not grow with the number of requesters.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager

from flask_babel import gettext as _

from helpdesk.extensions import db
from helpdesk.models import Tenant, User
from helpdesk.models.users import TENANT_ROLES
from helpdesk.services import accounts
from helpdesk.services.errors import DomainError
from helpdesk.services.ids import as_id

MAX_RESULTS = 20
MIN_QUERY_LENGTH = 2
MAX_WORDS = 5
# Stored instead of a password hash: argon2 refuses it, so nobody can log in until an admin sets a password.
NO_PASSWORD = "!no-password"


def _id(value) -> int | None:
    """Return the id a form or query value spells, else None (non-ASCII digits like "²" included)."""
    text = str(value if value is not None else "").strip()
    return as_id(text) if text.isascii() else None


def _like_pattern(word: str, *, prefix: bool = False) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%" if prefix else f"%{escaped}%"


def _matches(word: str) -> list:
    """Return the conditions "name or email contains word"; a word of 1-2 letters matches the start of a
    name part or of the address only (too short for trigrams: a contains-search would read every row)."""
    if len(word) < 3:
        start = _like_pattern(word, prefix=True)
        return [User.name.ilike(start, escape="\\"), User.name.ilike(f"% {start}", escape="\\"),
                User.email.ilike(start, escape="\\")]
    pattern = _like_pattern(word)
    return [User.name.ilike(pattern, escape="\\"), User.email.ilike(pattern, escape="\\")]


def query_words(text: str | None) -> list[str]:
    """Return the search words of a lookup text (lower case, at most MAX_WORDS, each at most 100 characters)."""
    return [word[:100] for word in (text or "").lower().split()][:MAX_WORDS]


def is_searchable(text: str | None) -> bool:
    """Tell whether a lookup text is long enough to search for."""
    return len("".join(query_words(text))) >= MIN_QUERY_LENGTH


def _requesters():
    """Return the select of people a ticket may be filed for: active tenant users of active tenants."""
    return (
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(User.role.in_(TENANT_ROLES), User.active.is_(True), Tenant.active.is_(True))
        .options(contains_eager(User.tenant))
    )


def search_requesters(text: str | None, tenant_id=None) -> tuple[list[User], bool]:
    """Return up to MAX_RESULTS requesters whose name, email or authority contains every word (prefix hits
    first), and whether there are more."""
    words = query_words(text)
    if not is_searchable(text):
        return [], False
    query = _requesters()
    tenant_id = _id(tenant_id)
    if tenant_id:
        query = query.where(User.tenant_id == tenant_id)
    # Authorities are few (about 100): match their names here, once, so that the database can combine
    # the trigram indexes of name and email with the tenant_id index (a subquery in the OR would not).
    authorities = db.session.execute(select(Tenant.id, Tenant.name).where(Tenant.active.is_(True))).all()
    for word in words:
        in_authority = [row.id for row in authorities if word in row.name.lower()]
        query = query.where(or_(*_matches(word), *([User.tenant_id.in_(in_authority)] if in_authority else [])))
    first = _like_pattern(words[0], prefix=True)
    starts = or_(User.name.ilike(first, escape="\\"), User.email.ilike(first, escape="\\"))
    query = query.order_by(case((starts, 0), else_=1), User.name, User.id)
    found = list(db.session.scalars(query.limit(MAX_RESULTS + 1)).unique())
    return found[:MAX_RESULTS], len(found) > MAX_RESULTS


def as_json(user: User) -> dict:
    """Return what the lookup shows of a requester: id, name, email and authority, nothing else."""
    return {"id": user.id, "name": user.name, "email": user.email,
            "tenant_id": user.tenant_id, "tenant": user.tenant.name}


def requester(requester_id) -> User:
    """Return the chosen requester (one lookup by primary key) or raise DomainError at the field."""
    user_id = _id(requester_id)
    if user_id is None:
        raise DomainError(_("Bitte wählen Sie die anfragende Person einer Behörde."), field="requester")
    user = db.session.scalar(_requesters().where(User.id == user_id))
    if user is None:
        raise DomainError(
            _("Diese Person kann nicht gewählt werden. Bitte suchen Sie die anfragende Person erneut."),
            field="requester",
        )
    return user


def chosen_requester(choice, *, name: str | None = None, email: str | None = None, tenant_id=None) -> User:
    """Return the requester the form names: "new" adds the caller (see add_caller), else the chosen id."""
    if str(choice or "").strip() == "new":
        return add_caller(name=name, email=email, tenant_id=tenant_id)
    return requester(choice)


@dataclass(frozen=True)
class SearchStep:
    """What the intake form shows of the person search: matches, the person chosen so far, hints."""

    matches: list[User]
    more: bool
    chosen: User | None
    searched: bool
    too_short: bool


def search_step(text: str | None, tenant_id, chosen_id, *, asked: bool) -> SearchStep:
    """Run the search step of the intake form: the matches if asked for, and the chosen person kept."""
    chosen = None
    if _id(chosen_id):
        chosen = db.session.scalar(_requesters().where(User.id == _id(chosen_id)))
    searchable = asked and is_searchable(text)
    matches, more = search_requesters(text, tenant_id) if searchable else ([], False)
    if chosen is not None:
        matches = [user for user in matches if user.id != chosen.id]
    return SearchStep(matches=matches, more=more, chosen=chosen, searched=searchable,
                      too_short=asked and not searchable)


def active_tenants() -> list[Tenant]:
    """Return the active authorities by name (new callers are added to one of them)."""
    return list(db.session.scalars(select(Tenant).where(Tenant.active.is_(True)).order_by(Tenant.name, Tenant.id)))


def add_caller(*, name: str | None, email: str | None, tenant_id) -> User:
    """Add a new requester to an authority without a password (flushed, not committed: the ticket commits both)."""
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(_("Bitte geben Sie den Namen der anrufenden Person an."), field="new_name")
    if len(name) > 200:
        raise DomainError(_("Höchstens 200 Zeichen."), field="new_name")
    tenant = db.session.get(Tenant, _id(tenant_id) or 0)
    if tenant is None or not tenant.active:
        raise DomainError(_("Bitte wählen Sie die Behörde der anrufenden Person."), field="new_tenant_id")
    if not (email or "").strip():
        raise DomainError(_("Bitte geben Sie die E-Mail-Adresse der anrufenden Person an."), field="new_email")
    try:
        email = accounts.normalize_email(email)
    except DomainError as exc:
        raise DomainError(exc.message, field="new_email") from exc
    if len(email) > 254:
        raise DomainError(_("Höchstens 254 Zeichen."), field="new_email")
    # Addresses are stored normalized (lower case): the unique index on email answers this.
    existing = db.session.scalar(select(User).where(User.email == email))
    if existing is not None:
        if existing.is_staff:
            message = _("Diese E-Mail-Adresse gehört zu einem KSM-Konto.")
        else:
            message = _("Diese E-Mail-Adresse ist bereits vergeben: %(name)s (%(tenant)s). "
                        "Bitte wählen Sie die Person über die Suche.",
                        name=existing.name, tenant=existing.tenant.name if existing.tenant else "–")
        raise DomainError(message, field="new_email")
    caller = User(email=email, name=name, role="requester", tenant=tenant, password_hash=NO_PASSWORD, active=True)
    db.session.add(caller)
    try:
        db.session.flush()
    except IntegrityError as exc:  # another agent added the same address a moment ago
        db.session.rollback()
        raise DomainError(_("Diese E-Mail-Adresse ist bereits vergeben."), field="new_email") from exc
    return caller


# --- the administration's user list ------------------------------------------------------------------

COUNT_CAP = 1000


@dataclass(frozen=True)
class CappedPage:
    """One page of a list counted only up to COUNT_CAP rows (the pagination macro reads the same names)."""

    items: list
    page: int
    per_page: int
    total: int
    capped: bool
    has_next: bool

    @property
    def pages(self) -> int:
        """Return the number of pages known (at least the current one)."""
        return max(self.page, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        """Tell whether there is a page before this one."""
        return self.page > 1

    @property
    def prev_num(self) -> int:
        """Return the number of the page before."""
        return self.page - 1

    @property
    def next_num(self) -> int:
        """Return the number of the page after."""
        return self.page + 1


def capped_page(query, page: int, per_page: int, cap: int | None = None) -> CappedPage:
    """Return a page of an ordered select; counts at most `cap` (COUNT_CAP) rows instead of the whole table."""
    cap = cap or COUNT_CAP
    items = list(db.session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)).unique())
    counted = select(func.count()).select_from(query.order_by(None).limit(cap + 1).subquery())
    total = db.session.scalar(counted)
    return CappedPage(items=items[:per_page], page=page, per_page=per_page, total=min(total, cap),
                      capped=total > cap, has_next=len(items) > per_page)


def name_or_email_contains(text: str):
    """Return the condition "name or email contains text" that the trigram indexes serve (case-insensitive)."""
    pattern = _like_pattern(text.lower())
    return or_(User.name.ilike(pattern, escape="\\"), User.email.ilike(pattern, escape="\\"))
