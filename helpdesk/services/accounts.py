"""User accounts: password hashing (argon2), authentication, creation and validation."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Team, Tenant, User
from helpdesk.models.users import ROLES, TENANT_ROLES
from helpdesk.services.errors import DomainError

MIN_PASSWORD_LENGTH = 10
_hashers: dict[tuple, PasswordHasher] = {}


def _hasher() -> PasswordHasher:
    """Return the argon2 hasher; ARGON2_PARAMS may lower its cost (tests only)."""
    params = current_app.config.get("ARGON2_PARAMS") or {}
    key = tuple(sorted(params.items()))
    if key not in _hashers:
        _hashers[key] = PasswordHasher(**params)
    return _hashers[key]


_dummy_hashes: dict[tuple, str] = {}


def _dummy_hash() -> str:
    """Return a hash to verify against when the email is unknown, so both failures cost the same."""
    key = tuple(sorted((current_app.config.get("ARGON2_PARAMS") or {}).items()))
    if key not in _dummy_hashes:
        _dummy_hashes[key] = _hasher().hash("not-a-real-password")
    return _dummy_hashes[key]


def hash_password(password: str) -> str:
    """Return an argon2id hash of the password."""
    return _hasher().hash(password)


def check_password(user: User, password: str) -> bool:
    """Tell whether the password matches; rehash transparently when parameters changed."""
    hasher = _hasher()
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return True


def normalize_email(email: str, *, check_deliverability: bool = False) -> str:
    """Return the normalized address or raise DomainError naming the field."""
    try:
        return validate_email(email.strip(), check_deliverability=check_deliverability).normalized.lower()
    except EmailNotValidError as exc:
        raise DomainError(_("Ungültige E-Mail-Adresse: %(reason)s", reason=str(exc)), field="email") from exc


def find_user_by_email(email: str) -> User | None:
    """Return the user with this email (case-insensitive) or None."""
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def authenticate(email: str, password: str, now) -> User | None:
    """Return the active user for these credentials and record the login, else None."""
    user = find_user_by_email(email)
    if user is None:
        try:
            _hasher().verify(_dummy_hash(), password)
        except VerificationError:
            pass
        return None
    if not user.active or not check_password(user, password):
        return None
    user.last_login_at = now
    db.session.commit()
    return user


def validate_password(password: str) -> None:
    """Raise DomainError unless the password is long enough."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise DomainError(
            _("Das Passwort muss mindestens %(n)d Zeichen lang sein.", n=MIN_PASSWORD_LENGTH),
            field="password",
        )


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password after checking the current one."""
    if not check_password(user, current):
        raise DomainError(_("Das aktuelle Passwort ist falsch."), field="current_password")
    validate_password(new)
    user.password_hash = hash_password(new)
    db.session.commit()


def set_locale(user: User, locale: str) -> None:
    """Store the user's interface language."""
    if locale not in ("de", "en"):
        raise DomainError(_("Unbekannte Sprache."), field="locale")
    user.locale = locale
    db.session.commit()


def _check_user_fields(user: User, *, email: str, name: str, role: str, tenant: Tenant | None) -> str:
    if role not in ROLES:
        raise DomainError(_("Unbekannte Rolle: %(role)s", role=role), field="role")
    if not (name or "").strip():
        raise DomainError(_("Bitte geben Sie einen Namen an."), field="name")
    if role in TENANT_ROLES and tenant is None:
        raise DomainError(_("Behördenkonten brauchen einen Mandanten."), field="tenant")
    if role not in TENANT_ROLES and tenant is not None:
        raise DomainError(_("KSM-Konten gehören zu keinem Mandanten."), field="tenant")
    email = normalize_email(email)
    other = find_user_by_email(email)
    if other is not None and other is not user:
        raise DomainError(_("Diese E-Mail-Adresse ist bereits vergeben."), field="email")
    return email


def save_user(
    user: User | None,
    *,
    email: str,
    name: str,
    role: str,
    tenant: Tenant | None = None,
    teams: list[Team] | None = None,
    password: str | None = None,
    active: bool = True,
    phone: str | None = None,
    commit: bool = True,
) -> User:
    """Create (user=None) or update a user after validating every field."""
    creating = user is None
    user = user or User()
    email = _check_user_fields(user, email=email, name=name, role=role, tenant=tenant)
    if creating or password:
        validate_password(password or "")
        user.password_hash = hash_password(password)
    user.email, user.name, user.role = email, name.strip(), role
    user.tenant = tenant
    user.active = active
    user.phone = (phone or "").strip() or None
    if teams is not None:
        user.teams = teams if role not in TENANT_ROLES else []
    if creating:
        db.session.add(user)
    if commit:
        db.session.commit()
    return user
