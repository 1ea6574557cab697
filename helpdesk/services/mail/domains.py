"""The mail domains a tenant owns and what happens to unknown senders of them (the tenant edit page)."""
from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from helpdesk.extensions import db
from helpdesk.models import Tenant, TenantMailDomain
from helpdesk.models.mail import UNKNOWN_SENDER_POLICIES
from helpdesk.services.errors import DomainError

MAX_DOMAINS = 50  # per tenant: a municipality has a handful
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})+")


def domains_of(tenant: Tenant | None) -> list[str]:
    """Return the tenant's mail domains in alphabetical order."""
    if tenant is None or tenant.id is None:
        return []
    return list(db.session.scalars(
        select(TenantMailDomain.domain).where(TenantMailDomain.tenant_id == tenant.id).order_by(TenantMailDomain.domain)
    ))


def parse_domains(text: str | None) -> list[str]:
    """Return the domains of a text (one per line, "@" in front allowed), lower case, each once; refuse bad lines."""
    domains: list[str] = []
    for line in (text or "").splitlines():
        value = line.strip().lower().removeprefix("@").rstrip(".")
        if not value:
            continue
        try:
            value = value.encode("idna").decode("ascii")  # "müritz.de" is stored as the DNS spells it
        except UnicodeError:
            pass
        if len(value) > 253 or not _DOMAIN.fullmatch(value):
            raise DomainError(_("„%(line)s“ ist keine Mail-Domain (z. B. lup.example).", line=line.strip()[:100]),
                              field="mail_domains")
        if value not in domains:
            domains.append(value)
    if len(domains) > MAX_DOMAINS:
        raise DomainError(_("Höchstens %(n)d Mail-Domains je Mandant.", n=MAX_DOMAINS), field="mail_domains")
    return domains


def check_domains(tenant: Tenant | None, domains: list[str]) -> None:
    """Raise DomainError if another tenant already owns one of the domains (naming it and that tenant)."""
    if not domains:
        return
    taken = db.session.execute(
        select(TenantMailDomain.domain, Tenant.name).join(Tenant, Tenant.id == TenantMailDomain.tenant_id)
        .where(TenantMailDomain.domain.in_(domains),
               *([TenantMailDomain.tenant_id != tenant.id] if tenant is not None and tenant.id else []))
        .order_by(TenantMailDomain.domain).limit(1)
    ).first()
    if taken is not None:
        raise DomainError(_("Die Mail-Domain „%(domain)s“ gehört bereits zum Mandanten %(tenant)s.",
                            domain=taken.domain, tenant=taken.name), field="mail_domains")


def check_policy(policy: str | None) -> str:
    """Return a valid unknown-sender policy or raise DomainError."""
    if policy not in UNKNOWN_SENDER_POLICIES:
        raise DomainError(_("Bitte wählen Sie, was mit E-Mails unbekannter Absender geschieht."),
                          field="mail_unknown_senders")
    return policy


def save_mail_settings(tenant: Tenant, domains: list[str], policy: str) -> None:
    """Replace the tenant's mail domains and set its unknown-sender policy; commit."""
    check_domains(tenant, domains)
    tenant.mail_unknown_senders = check_policy(policy)
    db.session.execute(delete(TenantMailDomain).where(TenantMailDomain.tenant_id == tenant.id))
    for domain in domains:
        db.session.add(TenantMailDomain(tenant_id=tenant.id, domain=domain))
    try:
        db.session.commit()
    except IntegrityError as exc:  # another admin gave one of them to another tenant a moment ago
        db.session.rollback()
        raise DomainError(_("Eine der Mail-Domains wurde gerade einem anderen Mandanten zugeordnet."),
                          field="mail_domains") from exc
