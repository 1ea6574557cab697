"""User accounts: password hashing (argon2) and policy (zxcvbn), authentication, sessions, creation and validation."""
from __future__ import annotations

import re
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from zxcvbn import zxcvbn

from helpdesk.extensions import db
from helpdesk.models import Team, Tenant, User
from helpdesk.models.users import ROLES, TENANT_ROLES
from helpdesk.services.errors import DomainError

MIN_PASSWORD_LENGTH = 10
# zxcvbn's scale 0..4; 3 = "safely unguessable" (about 10^8 guesses and more), its authors' advice for accounts.
MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input; past 72 characters the start decides
# Words an attacker of this helpdesk tries first: its own names, the region and German password classics.
SITE_WORDS = (
    "ksm", "kommunalservice", "mecklenburg", "vorpommern", "helpdesk", "servicedesk", "support", "ticket",
    "schwerin", "ludwigslust", "parchim", "passwort", "kennwort", "password", "geheim", "willkommen", "hallo",
    "admin", "sommer", "winter", "herbst", "fruehling", "frühling", "januar", "februar", "maerz", "märz", "april",
    "juni", "juli", "august", "september", "oktober", "november", "dezember", "montag", "freitag", "deutschland",
)
# zxcvbn's warnings are English: say the same in German (an unknown warning falls back to our own reasons).
ZXCVBN_WARNINGS = {
    "Straight rows of keys are easy to guess.": _l("Tastaturreihen wie „qwertz“ sind leicht zu erraten."),
    "Short keyboard patterns are easy to guess.": _l("Kurze Tastaturmuster sind leicht zu erraten."),
    'Repeats like "aaa" are easy to guess.': _l("Wiederholungen wie „aaa“ sind leicht zu erraten."),
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".':
        _l("Wiederholungen wie „abcabcabc“ sind kaum schwerer zu erraten als „abc“."),
    'Sequences like "abc" or "6543" are easy to guess.': _l("Folgen wie „abc“ oder „6543“ sind leicht zu erraten."),
    "Recent years are easy to guess.": _l("Jahreszahlen der letzten Jahre sind leicht zu erraten."),
    "Dates are often easy to guess.": _l("Jahreszahlen und Datumsangaben sind leicht zu erraten."),
    "This is a top-10 common password.": _l("Es gehört zu den zehn häufigsten Passwörtern."),
    "This is a top-100 common password.": _l("Es gehört zu den hundert häufigsten Passwörtern."),
    "This is a very common password.": _l("Es ist ein sehr häufiges Passwort."),
    "This is similar to a commonly used password.": _l("Es ähnelt einem häufig verwendeten Passwort."),
    "A word by itself is easy to guess.": _l("Ein einzelnes Wort ist leicht zu erraten."),
    "Names and surnames by themselves are easy to guess.": _l("Vor- und Nachnamen allein sind leicht zu erraten."),
    "Common names and surnames are easy to guess.": _l("Häufige Vor- und Nachnamen sind leicht zu erraten."),
}
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
    wanted = email.strip().lower()
    # Addresses are stored lower-case (normalize_email): the unique index answers; the lower() scan only
    # finds rows written before that rule, and runs only when the indexed lookup found nobody.
    return (db.session.scalar(select(User).where(User.email == wanted))
            or db.session.scalar(select(User).where(func.lower(User.email) == wanted)))


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


def _personal_words(user_inputs: Iterable[str | None]) -> list[str]:
    """Return the user's values and their pieces ("anna.schulz@lup.example" -> anna.schulz, anna, schulz, lup ...)."""
    words: set[str] = set()
    for value in user_inputs:
        value = (value or "").strip().lower()
        if not value:
            continue
        words.update({value, value.partition("@")[0]})
        words.update(re.split(r"[^\w]+|_", value))
    return sorted((word for word in words if len(word) >= 3), key=len, reverse=True)


def _weakness(password: str, personal: list[str]) -> str | None:
    """Return why zxcvbn finds the password guessable (German), or None when it is strong enough."""
    checked = password[:ZXCVBN_MAX_LENGTH]
    result = zxcvbn(checked, user_inputs=[*personal, *SITE_WORDS])
    # The user's own name and address count as known to an attacker: what is left without them must hold too.
    rest = checked
    for word in personal:
        rest = re.sub(re.escape(word), "", rest, flags=re.IGNORECASE)
    if rest != checked and (not rest or zxcvbn(rest, user_inputs=list(SITE_WORDS))["score"] < MIN_PASSWORD_SCORE):
        return _("Es enthält Ihren Namen, Ihre E-Mail-Adresse oder einen Teil davon.")
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    matches = result["sequence"]
    if any(m.get("dictionary_name") == "user_inputs" and m.get("matched_word") in personal for m in matches):
        return _("Es enthält Ihren Namen, Ihre E-Mail-Adresse oder einen Teil davon.")
    warning = ZXCVBN_WARNINGS.get(result["feedback"]["warning"])
    if warning is not None:
        return str(warning)
    if any(m.get("dictionary_name") == "user_inputs" for m in matches):
        return _("Es enthält ein Wort, das Angreifer zuerst versuchen, etwa „Passwort“, eine Jahreszeit oder "
                 "den Namen dieses Dienstes.")
    if any(m.get("pattern") in ("date", "regex") for m in matches):
        return _("Jahreszahlen und Datumsangaben sind leicht zu erraten.")
    return _("Es ist zu kurz oder folgt einem bekannten Muster.")


def validate_password(password: str, user_inputs: Iterable[str | None] = ()) -> None:
    """Raise DomainError unless the password is long enough and hard to guess, also from the user's name and email."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise DomainError(
            _("Das Passwort muss mindestens %(n)d Zeichen lang sein.", n=MIN_PASSWORD_LENGTH),
            field="password",
        )
    reason = _weakness(password, _personal_words(user_inputs))
    if reason is not None:
        raise DomainError(
            _("Dieses Passwort ist zu leicht zu erraten: %(reason)s %(tip)s", reason=reason,
              tip=_("Wählen Sie besser mehrere ungewöhnliche Wörter, etwa einen kurzen Satz.")),
            field="password",
        )


def end_sessions(user: User) -> None:
    """Raise the user's session version: every session and remember cookie issued before stops working (no commit)."""
    if user.id is not None:
        # In SQL, so two concurrent ends cannot both write the same next version.
        user.session_version = User.session_version + 1


def log_out(user: User) -> None:
    """End all of the user's sessions: a copy of this browser's cookies taken before must not log in afterwards."""
    end_sessions(user)
    db.session.commit()


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password after checking the current one; end every session (the caller renews its own)."""
    if not check_password(user, current):
        raise DomainError(_("Das aktuelle Passwort ist falsch."), field="current_password")
    validate_password(new, user_inputs=[user.email, user.name])
    user.password_hash = hash_password(new)
    end_sessions(user)
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
        validate_password(password or "", user_inputs=[email, name])
        user.password_hash = hash_password(password)
    if not creating and (password or (user.active and not active)):
        end_sessions(user)  # a new password or a deactivation ends every session, also remembered ones
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


# Forgotten passwords: a signed, time-limited link. It carries a fingerprint of the password hash and
# the session version, so it works once (the new password changes the hash) and stops working when the
# user changes the password or signs out everywhere in the meantime. Nothing is stored.
_RESET_SALT = "password-reset"


def _reset_fingerprint(user: User) -> str:
    import hashlib

    material = f"{user.id}|{user.password_hash}|{user.session_version}|{user.email}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


def _reset_serializer():
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_RESET_SALT)


def request_password_reset(email: str, now, make_url) -> bool:
    """Queue the reset link for an active account with this address; return whether one was queued.

    make_url(token) returns the absolute link. The caller answers the same either way, so the page does
    not tell whether an address has an account.
    """
    from helpdesk.services import notifications

    user = find_user_by_email(email or "")
    if user is None or not user.active or not user.email:
        return False
    token = _reset_serializer().dumps({"u": user.id, "f": _reset_fingerprint(user)})
    hours = current_app.config["PASSWORD_RESET_HOURS"]
    notifications.queue_email(user, "password_reset", now=now, reset_url=make_url(token), hours=hours)
    db.session.commit()
    return True


def user_for_reset_token(token: str) -> User | None:
    """Return the user a reset link is for while it is valid (signed, not expired, not used), else None."""
    from itsdangerous import BadSignature

    max_age = int(current_app.config["PASSWORD_RESET_HOURS"] * 3600)
    try:
        payload = _reset_serializer().loads(token, max_age=max_age)
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int):
        return None
    user = db.session.get(User, payload["u"])
    if user is None or not user.active:
        return None
    import hmac

    if not hmac.compare_digest(str(payload.get("f", "")), _reset_fingerprint(user)):
        return None
    return user


def reset_password(user: User, new: str) -> None:
    """Set the password chosen through a reset link; every session of the user ends (commit)."""
    validate_password(new, user_inputs=[user.email, user.name])
    user.password_hash = hash_password(new)
    end_sessions(user)
    db.session.commit()
