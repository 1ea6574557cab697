"""The monthly service level email: last month's report to each tenant's contact managers.

On the first business day of a month (the first local date with opening hours in the tenant's
contract calendar, once that day has opened) the worker queues, per tenant and contact manager,
an email with an HTML summary and the numbers as a CSV attachment. Each email has the outbox
dedupe key monthly:<tenant id>:<yyyy-mm>:<user id> and is inserted in a savepoint, so it is
queued once, also across restarts and with several workers. A worker that was down on that day
catches up on its next run in the same month; months long past are never sent.
"""
from __future__ import annotations

import base64
import csv
import io
import logging
from datetime import date, datetime, timedelta

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

import sla
from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, SlaPolicy, Tenant, User
from helpdesk.services import notifications, reports
from helpdesk.services.sla import DEFAULT_HOURS, business_calendar

log = logging.getLogger(__name__)

# Tenants without a contract get their report on the first day of the KSM standard week.
_STANDARD_WEEK = sla.BusinessCalendar(
    timezone="Europe/Berlin", hours={int(d): [tuple(i) for i in v] for d, v in DEFAULT_HOURS.items()},
    holidays="DE-MV",
)


def first_opening(cal: sla.BusinessCalendar, year: int, month: int) -> datetime | None:
    """Return when the calendar first opens in a month (UTC), None if it never opens that month."""
    day = date(year, month, 1)
    while day.month == month:
        intervals = cal.open_intervals(day)
        if intervals:
            return intervals[0][0]
        day += timedelta(days=1)
    return None


def dedupe_key(tenant_id: int, month: str, user_id: int) -> str:
    """Return the outbox key that makes the monthly email unique per tenant, month and recipient."""
    return f"monthly:{tenant_id}:{month}:{user_id}"


def _month_key(start: datetime) -> str:
    local = start.astimezone(reports.BERLIN)
    return f"{local.year:04d}-{local.month:02d}"


def report_url(tenant: Tenant, start: datetime) -> str:
    """Return the absolute link to the tenant's report of the month that begins at `start`."""
    local = start.astimezone(reports.BERLIN)
    base = current_app.config["BASE_URL"].rstrip("/")
    return f"{base}/reports/{tenant.slug}?kind=month&year={local.year}&number={local.month}"


def monthly_csv(report: reports.ServiceLevelReport, generated_at: datetime) -> str:
    """Return the report's numbers as CSV: the summary of the report export plus one row per breach."""
    from helpdesk.labels import PRIORITY_LABELS, TARGET_LABELS

    buffer = io.StringIO()
    buffer.write(reports.report_csv(report, generated_at))
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([])
    writer.writerow([_("Ticket"), _("Betreff"), _("Priorität"), _("Ziel"), _("Fällig"), _("Verletzt seit"),
                     _("Team"), _("Bearbeiter/in")])
    for row in report.breaches:
        writer.writerow([
            row["number"], reports.csv_safe(row["subject"]), str(PRIORITY_LABELS.get(row["priority"], row["priority"])),
            str(TARGET_LABELS.get(row["target"], row["target"])),
            row["due_at"].astimezone(reports.BERLIN).strftime("%d.%m.%Y %H:%M") if row["due_at"] else "",
            row["breached_at"].astimezone(reports.BERLIN).strftime("%d.%m.%Y %H:%M") if row["breached_at"] else "",
            row["team"], row["assignee"] or "",
        ])
    return buffer.getvalue()


def _due_tenants(now: datetime) -> list[tuple[Tenant, SlaPolicy | None]]:
    """Return the active tenants whose first business day of this month has opened by `now`."""
    local = now.astimezone(reports.BERLIN)
    tenants = db.session.scalars(select(Tenant).where(Tenant.active.is_(True)).order_by(Tenant.id)).all()
    policies = {
        p.tenant_id: p for p in db.session.scalars(
            select(SlaPolicy).options(joinedload(SlaPolicy.calendar))
            .where(SlaPolicy.tenant_id.in_([t.id for t in tenants]))
        )
    } if tenants else {}
    due = []
    for tenant in tenants:
        policy = policies.get(tenant.id)
        cal = business_calendar(policy.calendar) if policy else _STANDARD_WEEK
        opening = first_opening(cal, local.year, local.month)
        if opening is not None and now >= opening:
            due.append((tenant, policy))
    return due


def send_monthly_reports(now: datetime) -> dict[str, int]:
    """Queue last month's report for every contact manager whose tenant's first business day has come.

    Commits per tenant; returns how many emails were queued and how many tenants were looked at.
    """
    counts = {"tenants": 0, "queued": 0}
    start, end, label = reports.previous_month(now)
    month = _month_key(start)
    due = _due_tenants(now)
    if not due:
        return counts
    managers: dict[int, list[User]] = {}
    for user in db.session.scalars(
        select(User).where(User.role == "tenant_manager", User.active.is_(True),
                           User.tenant_id.in_([tenant.id for tenant, _policy in due])).order_by(User.id)
    ):
        managers.setdefault(user.tenant_id, []).append(user)
    # One query tells which emails of this month exist already, so later runs compute no report.
    sent = set(db.session.scalars(
        select(OutboxMessage.dedupe_key).where(OutboxMessage.kind == "monthly_report",
                                               OutboxMessage.dedupe_key.like(f"monthly:%:{month}:%"))
    ))
    for tenant, _policy in due:
        missing = [u for u in managers.get(tenant.id, []) if dedupe_key(tenant.id, month, u.id) not in sent]
        if not missing:
            continue
        counts["tenants"] += 1
        report = reports.service_level_report(tenant, start, end, label=label, with_trend=False)
        for user in missing:
            counts["queued"] += _queue(user, tenant, report, month, now)
        db.session.commit()
    if counts["queued"]:
        log.info("monthly reports for %s: %s", month, counts)
    return counts


def _queue(user: User, tenant: Tenant, report: reports.ServiceLevelReport, month: str, now: datetime) -> bool:
    """Queue one recipient's email in a savepoint; False if another run queued it already."""
    with force_locale(user.locale or "de"):
        context = {"tenant": tenant, "report": report, "report_url": report_url(tenant, report.start),
                   "generated_at": now, "recipient": user}
        html = render_template("email/monthly_report.html", **context)
        attachment = {
            "filename": f"servicebericht-{tenant.slug}-{month}.csv",
            "content_type": "text/csv",
            "data_b64": base64.b64encode(monthly_csv(report, now).encode("utf-8")).decode("ascii"),
        }
    try:
        with db.session.begin_nested():
            message = notifications.queue_email(
                user, "monthly_report", now=now, dedupe_key=dedupe_key(tenant.id, month, user.id),
                body_html=html, attachments=[attachment], **{k: v for k, v in context.items() if k != "recipient"},
            )
            db.session.flush()
    except IntegrityError:
        return False  # another worker queued this recipient's report already
    return message is not None
