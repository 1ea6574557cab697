"""Edit business calendars and SLA contracts; a contract change makes a new version."""
from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import gettext as _
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Calendar, CalendarClosure, SlaPolicy, SlaPolicyVersion, Tenant, User
from helpdesk.models.sla import TARGETS
from helpdesk.services.errors import DomainError

WEEKDAYS = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
RECIPIENT_ROLES = ("assignee", "team_lead", "service_manager", "tenant_contact")
# Clocks store target seconds in a 32-bit integer column; this keeps far below its limit.
MAX_TARGET_MINUTES = 500_000
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


def parse_intervals(text: str, weekday: int) -> list[list[str]]:
    """Parse '07:00-12:00, 13:00-16:00' into [["07:00","12:00"], ["13:00","16:00"]]; '' is closed."""
    intervals = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = _INTERVAL.match(part)
        if not match:
            raise DomainError(
                _("%(day)s: „%(part)s“ ist keine Zeitspanne wie 07:00-16:00.", day=WEEKDAYS[weekday], part=part),
                field=f"day{weekday}",
            )
        h1, m1, h2, m2 = map(int, match.groups())
        if not (0 <= h1 <= 23 and 0 <= m1 <= 59 and 0 <= h2 <= 24 and 0 <= m2 <= 59 and (h2 < 24 or m2 == 0)):
            raise DomainError(_("%(day)s: ungültige Uhrzeit in „%(part)s“.", day=WEEKDAYS[weekday], part=part),
                              field=f"day{weekday}")
        if (h2, m2) <= (h1, m1):
            raise DomainError(_("%(day)s: Das Ende muss nach dem Beginn liegen (%(part)s).", day=WEEKDAYS[weekday], part=part),
                              field=f"day{weekday}")
        intervals.append([f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}"])
    intervals.sort()
    for (_s1, e1), (s2, _e2) in zip(intervals, intervals[1:]):
        if s2 < e1:
            raise DomainError(_("%(day)s: Die Zeitspannen überschneiden sich.", day=WEEKDAYS[weekday]), field=f"day{weekday}")
    return intervals


def format_intervals(intervals: list) -> str:
    """Render stored intervals back into the form's text."""
    return ", ".join(f"{start}-{end}" for start, end in intervals or [])


def format_closures(closures) -> str:
    """Render closure days back into the form's lines 'DD.MM.YYYY Name'."""
    return "\n".join(f"{c.day:%d.%m.%Y} {c.name}".rstrip() for c in closures)


def hours_summary(hours: dict) -> str:
    """Summarise weekly hours, joining neighbouring days with equal hours: 'Mo–Do 07:00-16:00; Fr 07:00-13:00'."""
    runs: list[list] = []  # [first weekday, last weekday, text]
    for weekday in range(7):
        text = format_intervals((hours or {}).get(str(weekday)))
        if runs and runs[-1][2] == text and runs[-1][1] == weekday - 1:
            runs[-1][1] = weekday
        else:
            runs.append([weekday, weekday, text])
    parts = []
    for first, last, text in runs:
        if text:
            days = WEEKDAYS[first] if first == last else f"{WEEKDAYS[first]}–{WEEKDAYS[last]}"
            parts.append(f"{days} {text}")
    return "; ".join(parts)


def public_holidays(region: str | None, years) -> list[tuple[date, str]]:
    """List the public holidays of a region code like 'DE-MV' in the given years (German names); [] if unknown."""
    import holidays as holidays_lib

    country, _sep, subdivision = (region or "").strip().upper().partition("-")
    if not country:
        return []
    try:
        days = holidays_lib.country_holidays(country, subdiv=subdivision or None, years=list(years), language="de")
    except NotImplementedError:
        return []
    return sorted(days.items())


def parse_closures(text: str) -> list[tuple[date, str]]:
    """Parse lines 'DD.MM.YYYY Name' (or ISO dates) into closure days."""
    days = []
    for line in filter(None, (line.strip() for line in (text or "").splitlines())):
        token, _sep, name = line.partition(" ")
        try:
            day = datetime.strptime(token, "%d.%m.%Y").date() if "." in token else date.fromisoformat(token)
        except ValueError:
            raise DomainError(_("„%(line)s“: Bitte Datum als TT.MM.JJJJ angeben.", line=line), field="closures") from None
        days.append((day, name.strip()[:120]))
    return days


def save_calendar(calendar: Calendar | None, *, name: str, timezone: str, hours: dict[str, list],
                  holiday_region: str | None, closures: list[tuple[date, str]], now: datetime) -> Calendar:
    """Create or update a calendar after checking it with the SLA engine; commit."""
    import sla

    name = (name or "").strip()
    if not name:
        raise DomainError(_("Bitte geben Sie einen Namen an."), field="name")
    clash = db.session.scalar(select(Calendar).where(func.lower(Calendar.name) == name.lower()))
    if clash is not None and clash is not calendar:
        raise DomainError(_("Ein Kalender mit diesem Namen existiert bereits."), field="name")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(_("Unbekannte Zeitzone: %(tz)s", tz=timezone), field="timezone") from None
    holiday_region = (holiday_region or "").strip().upper() or None
    if holiday_region and len(holiday_region) > 10:
        raise DomainError(_("Der Feiertagscode hat höchstens 10 Zeichen, z. B. DE-MV."), field="holiday_region")
    if not any(hours.values()):
        raise DomainError(_("Mindestens ein Wochentag braucht Servicezeiten."), field="day0")
    try:
        sla.BusinessCalendar(timezone=timezone, hours={int(d): [tuple(i) for i in v] for d, v in hours.items()},
                             holidays=holiday_region, closed=[d for d, _n in closures])
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise DomainError(_("Der Kalender ist ungültig: %(reason)s", reason=str(exc)), field="holiday_region") from exc
    creating = calendar is None
    calendar = calendar or Calendar()
    calendar.name, calendar.timezone, calendar.holiday_region = name, timezone, holiday_region
    calendar.hours = {str(d): v for d, v in hours.items() if v}
    calendar.updated_at = now
    # Keep the rows of days that stay: replacing them would insert the new (calendar, day) row
    # before the orphan is deleted and trip the unique constraint.
    existing = {closure.day: closure for closure in calendar.closures}
    wanted = []
    for day, label in sorted(dict(closures).items()):
        closure = existing.get(day) or CalendarClosure(day=day)
        closure.name = label
        wanted.append(closure)
    calendar.closures = wanted
    if creating:
        db.session.add(calendar)
    db.session.commit()
    return calendar


def validate_targets(targets: dict) -> dict:
    """Check minutes per priority and target: positive whole numbers; next update optional."""
    clean = {}
    for priority in ("1", "2", "3", "4"):
        row = targets.get(priority) or {}
        clean[priority] = {}
        for target in TARGETS:
            value = row.get(target)
            if value in (None, ""):
                if target != "next_update":
                    raise DomainError(_("P%(p)s: Bitte geben Sie alle Ziele außer der Folgeantwort an.", p=priority),
                                      field=f"p{priority}_{target}")
                clean[priority][target] = None
                continue
            try:
                minutes = int(value)
            except (TypeError, ValueError):
                minutes = 0
            if minutes <= 0:
                raise DomainError(_("P%(p)s: Zeiten sind ganze Minuten größer als 0.", p=priority),
                                  field=f"p{priority}_{target}")
            if minutes > MAX_TARGET_MINUTES:
                raise DomainError(_("P%(p)s: Höchstens %(max)d Minuten.", p=priority, max=MAX_TARGET_MINUTES),
                                  field=f"p{priority}_{target}")
            clean[priority][target] = minutes
        if clean[priority]["first_response"] > clean[priority]["resolution"]:
            raise DomainError(_("P%(p)s: Die Erstreaktion darf nicht länger dauern als die Lösung.", p=priority),
                              field=f"p{priority}_first_response")
    return clean


def validate_levels(levels: list[dict]) -> list[dict]:
    """Check escalation levels: distinct percentages 1..1000, known recipient roles."""
    clean, seen = [], set()
    for level in levels:
        try:
            percent = int(level["percent"])
        except (TypeError, ValueError, KeyError):
            raise DomainError(_("Eskalationsstufen brauchen einen Prozentwert."), field="levels") from None
        if not 1 <= percent <= 1000 or percent in seen:
            raise DomainError(_("Prozentwerte der Stufen müssen zwischen 1 und 1000 liegen und verschieden sein."),
                              field="levels")
        recipients = [r for r in level.get("recipients", []) if r]
        if not recipients or any(r not in RECIPIENT_ROLES for r in recipients):
            raise DomainError(_("Stufe %(p)d %%: Bitte wählen Sie, wer benachrichtigt wird.", p=percent), field="levels")
        seen.add(percent)
        clean.append({"percent": percent, "recipients": recipients,
                      "business_hours_only": bool(level.get("business_hours_only", percent < 100))})
    if not clean:
        raise DomainError(_("Mindestens eine Eskalationsstufe ist nötig."), field="levels")
    return sorted(clean, key=lambda level: level["percent"])


def save_policy(tenant: Tenant, *, name: str, calendar: Calendar, compliance_goal, targets: dict, levels: list[dict],
                actor: User | None, now: datetime) -> SlaPolicyVersion:
    """Set a tenant's contract; changed terms become a new version, running tickets keep theirs; commit."""
    name = (name or "").strip()
    if not name:
        raise DomainError(_("Bitte geben Sie einen Namen an."), field="name")
    if calendar is None:
        raise DomainError(_("Bitte wählen Sie einen Kalender."), field="calendar")
    try:
        goal = float(str(compliance_goal).replace(",", "."))
    except (TypeError, ValueError):
        goal = -1
    if not 0 < goal <= 100:
        raise DomainError(_("Das Erfüllungsziel ist ein Prozentwert zwischen 0 und 100."), field="compliance_goal")
    targets, levels = validate_targets(targets), validate_levels(levels)
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.tenant_id == tenant.id))
    if policy is None:
        policy = SlaPolicy(tenant_id=tenant.id, name=name, calendar=calendar, compliance_goal=goal)
        db.session.add(policy)
        db.session.flush()
    policy.name, policy.calendar, policy.compliance_goal = name, calendar, goal
    current = policy.current_version
    if current is not None and current.targets == targets and current.levels == levels:
        db.session.commit()
        return current
    number = (db.session.scalar(select(func.max(SlaPolicyVersion.version)).where(SlaPolicyVersion.policy_id == policy.id)) or 0) + 1
    version = SlaPolicyVersion(policy_id=policy.id, version=number, created_at=now,
                               created_by_id=actor.id if actor else None, targets=targets, levels=levels)
    db.session.add(version)
    db.session.flush()
    policy.current_version = version
    db.session.commit()
    return version
