"""The monthly service level email: once per tenant, month and contact manager, on the first business day."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from helpdesk import worker
from helpdesk.extensions import db
from helpdesk.models import OutboxMessage
from helpdesk.services import monthly, reports, tickets
from tests.builders import make_calendar, make_category, make_policy, make_team, make_tenant, make_ticket, make_user
from tests.conftest import make_app

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def berlin(text: str) -> datetime:
    """Parse a Berlin wall-clock time into an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture
def world(app):
    """Two tenants with a contract, one without; managers, a requester and October 2026 tickets."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    agent = make_user("agent", teams=[team], email="agent@ksm.example")
    category = make_category("Sonstiges")
    calendar = make_calendar("MV Standard")
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    make_policy(lup, calendar=calendar)
    sn = make_tenant("sn", "Landeshauptstadt Schwerin")
    make_policy(sn, calendar=calendar)
    amt = make_tenant("amt", "Amt Crivitz")  # no contract
    people = {
        "manager": make_user("tenant_manager", tenant=lup, email="chefin@lup.example", name="Maria Krüger"),
        "deputy": make_user("tenant_manager", tenant=lup, email="vertreter@lup.example"),
        "retired": make_user("tenant_manager", tenant=lup, email="alt@lup.example"),
        "requester": make_user(tenant=lup, email="anna@lup.example"),
        "sn_manager": make_user("tenant_manager", tenant=sn, email="chef@sn.example"),
        "amt_manager": make_user("tenant_manager", tenant=amt, email="leitung@amt.example"),
        "amt_requester": make_user(tenant=amt, email="otto@amt.example"),
    }
    people["retired"].active = False
    db.session.commit()
    anna = people["requester"]
    # October 2026: one ticket in time, one late on first response and resolution (1 h / 8 h, P3).
    good = make_ticket(anna, category=category, now=berlin("2026-10-01 09:00"), subject="Drucker")
    tickets.reply(agent, good, body="Erledigen wir.", now=berlin("2026-10-01 09:30"))
    tickets.change_status(agent, good, "resolved", berlin("2026-10-01 11:00"))
    late = make_ticket(anna, category=category, now=berlin("2026-10-01 09:00"), subject="Fachverfahren hängt")
    tickets.reply(agent, late, body="Entschuldigung.", now=berlin("2026-10-01 11:00"))
    tickets.change_status(agent, late, "resolved", berlin("2026-10-02 10:00"))
    make_ticket(people["amt_requester"], category=category, now=berlin("2026-10-05 09:00"), subject="Passwort")
    db.session.execute(OutboxMessage.__table__.delete())  # the ticket emails are not the subject here
    db.session.commit()
    return {"lup": lup, "sn": sn, "amt": amt, **people}


def run_worker(app) -> None:
    """Run the monthly job and then deliver the outbox, as the worker's schedule does."""
    worker.run_job(app, worker.send_monthly_reports)
    worker.run_job(app, worker.deliver_outbox)


def monthly_rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")
                                   .order_by(OutboxMessage.id)))


def csv_attachment(message) -> tuple[str, list[list[str]]]:
    """Return the filename and rows of the single CSV attachment of an email."""
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    part = attachments[0]
    assert part.get_content_type() == "text/csv"
    text = part.get_payload(decode=True).decode("utf-8")  # the file's bytes, as a mail client saves them
    return part.get_filename(), list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))


def test_monthly_email_arrives_once_with_its_csv_on_the_first_business_day(world, app, smtp_server, frozen_now):
    frozen_now(berlin("2026-11-01 10:00"))  # Sunday: the calendar is closed all day
    run_worker(app)
    frozen_now(berlin("2026-11-02 06:00"))  # Monday, before the calendar opens at 07:00
    run_worker(app)
    assert monthly_rows() == [] and smtp_server.messages == []

    frozen_now(berlin("2026-11-02 08:00"))
    run_worker(app)
    run_worker(app)

    received = smtp_server.to("chefin@lup.example")
    assert len(received) == 1
    email = received[0]
    assert email["Subject"] == "Servicebericht Oktober 2026: Landkreis Ludwigslust-Parchim"
    html = email.get_body(preferencelist=("html",)).get_content()
    assert "Landkreis Ludwigslust-Parchim" in html and "Erfüllung je Ziel und Priorität" in html
    assert "50,0\xa0%" in html  # in the recipient's language: German
    plain = email.get_body(preferencelist=("plain",)).get_content()
    assert "Guten Tag Maria Krüger" in plain and "Erstreaktion: 50,0\xa0% (1/2)" in plain
    assert "http://helpdesk.test/reports/lup?kind=month&year=2026&number=10" in plain

    filename, rows = csv_attachment(email)
    assert filename == "servicebericht-lup-2026-10.csv"
    assert ["Mandant", "Landkreis Ludwigslust-Parchim"] in rows
    assert ["Eröffnet", "2"] in rows and ["Gelöst", "2"] in rows and ["Verletzungen", "2"] in rows
    assert ["Erstreaktion", "alle", "1", "1", "50,0"] in rows
    assert ["Lösung", "alle", "1", "1", "50,0"] in rows
    assert ["Erstreaktion", "P3 mittel", "1", "1", "50,0"] in rows
    breach_rows = [r for r in rows if r and r[0].startswith("KSM-") and len(r) == 8]
    assert sorted(r[3] for r in breach_rows) == ["Erstreaktion", "Lösung"]
    assert all(r[1] == "Fachverfahren hängt" for r in breach_rows)

    assert len(smtp_server.to("vertreter@lup.example")) == 1
    assert smtp_server.to("alt@lup.example") == []  # inactive
    assert smtp_server.to("anna@lup.example") == []  # requesters get no report
    sn_mails = smtp_server.to("chef@sn.example")
    assert len(sn_mails) == 1 and "Landeshauptstadt Schwerin" in sn_mails[0]["Subject"]
    assert "Ludwigslust" not in sn_mails[0].get_body(preferencelist=("plain",)).get_content()
    assert len(smtp_server.messages) == 4  # lup ×2, sn, amt
    keys = {row.dedupe_key for row in monthly_rows()}
    assert f"monthly:{world['lup'].id}:2026-10:{world['manager'].id}" in keys


def test_a_restarted_worker_sends_nothing_more(world, app, smtp_server, frozen_now, database_url, backend, tmp_path):
    frozen_now(berlin("2026-11-02 08:00"))
    run_worker(app)
    assert len(smtp_server.messages) == 4

    restarted = make_app(database_url(backend), tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.port,
                         SMTP_TIMEOUT=5)
    frozen_now(berlin("2026-11-02 09:00"))
    worker.run_once(restarted)
    worker.run_once(restarted)
    frozen_now(berlin("2026-11-20 09:00"))
    worker.run_once(restarted)
    with restarted.app_context():
        db.engine.dispose()
    assert len(smtp_server.messages) == 4
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.kind == "monthly_report")) == 4


def test_tenant_without_contract_gets_the_volumes(world, app, smtp_server, frozen_now):
    frozen_now(berlin("2026-11-02 08:00"))
    run_worker(app)
    [email] = smtp_server.to("leitung@amt.example")
    plain = email.get_body(preferencelist=("plain",)).get_content()
    assert "kein SLA-Vertrag" in plain and "Eröffnet: 1" in plain
    filename, rows = csv_attachment(email)
    assert filename == "servicebericht-amt-2026-10.csv"
    assert ["Eröffnet", "1"] in rows and ["Vertragsziel (%)", ""] in rows


def test_a_worker_that_was_down_catches_up_later_in_the_month(world, app, smtp_server, frozen_now):
    frozen_now(berlin("2026-11-20 14:00"))
    run_worker(app)
    [email] = smtp_server.to("chefin@lup.example")
    assert "Oktober 2026" in email["Subject"]


def test_months_long_past_are_not_sent(world, app, smtp_server, frozen_now):
    # The worker did not run in November; on 1 December only November's report goes out.
    frozen_now(berlin("2026-12-01 09:00"))
    run_worker(app)
    subjects = [m["Subject"] for m in smtp_server.to("chefin@lup.example")]
    assert subjects == ["Servicebericht November 2026: Landkreis Ludwigslust-Parchim"]
    _filename, rows = csv_attachment(smtp_server.to("chefin@lup.example")[0])
    assert ["Eröffnet", "0"] in rows


def test_a_second_worker_racing_for_the_same_email_is_skipped(world, app, frozen_now):
    now = berlin("2026-11-02 08:00")
    start, end, label = reports.previous_month(now)
    report = reports.service_level_report(world["lup"], start, end, label=label, with_trend=False)
    assert monthly._queue(world["manager"], world["lup"], report, "2026-10", now) is True
    db.session.commit()
    # The other worker checked before the first one committed, so it tries the insert too.
    assert monthly._queue(world["manager"], world["lup"], report, "2026-10", now) is False
    db.session.commit()
    assert len(monthly_rows()) == 1
    assert monthly.send_monthly_reports(now)["queued"] == 3  # the deputy, Schwerin and Crivitz
