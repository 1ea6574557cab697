"""The whole flow once in real Chromium: file a ticket, the routed team answers, the requester reads it."""
from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage
from helpdesk.worker import run_once
from tests.builders import PASSWORD, make_category, make_policy, make_rule, make_team, make_tenant, make_user

pytestmark = pytest.mark.e2e

NUMBER_RE = re.compile(r"KSM-\d{4}-\d{6}")
SECRET = "Zitronenfalter-4711"
REPLY = "Der Drucker wurde neu gestartet."


@dataclass(frozen=True)
class People:
    """Who takes part: addresses only, so nothing holds on to a database session."""

    requester: str
    requester_name: str
    agent: str
    agent_name: str


def seed(app) -> People:
    """Two tenants' worth of setup reduced to one: LUP, Service Desk, the printer team, the catalog, a contract."""
    with app.app_context():
        tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
        make_team("service-desk", "Service Desk", fallback=True)
        printers = make_team("arbeitsplatz", "Arbeitsplatz & Drucker")
        hardware = make_category("Hardware")
        make_category("Drucker", parent=hardware)
        make_rule(printers, category=hardware, position=10, name="Hardware an Arbeitsplatz & Drucker")
        agent = make_user("agent", teams=[printers], email="a.schulz@ksm.example", name="Anna Schulz")
        requester = make_user("requester", tenant=tenant, email="k.meier@kreis-lup.example", name="Klaus Meier")
        make_policy(tenant)
        return People(requester.email, requester.name, agent.email, agent.name)


def log_in(page, email: str) -> None:
    """Log in through the German login form."""
    page.goto("/login")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:1000]


def log_out(page) -> None:
    """Press "Abmelden" in the top bar and land on the login page."""
    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_url("**/login")
    assert page.get_by_text("Sie wurden abgemeldet.").is_visible()


def test_a_requester_files_a_ticket_the_routed_team_answers_and_the_requester_reads_the_reply(
    browser_page, live_server, tmp_path, caplog
):
    page = browser_page
    people = seed(live_server.app)

    # The requester files a ticket in the portal.
    log_in(page, people.requester)
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role("link", name="Neues Ticket").click()
    page.get_by_label("Kategorie").select_option(label="Drucker")
    page.get_by_role("group", name="Auswirkung").get_by_label("mittel").check()
    page.get_by_role("group", name="Dringlichkeit").get_by_label("hoch").check()
    page.get_by_label("Betreff").fill("Drucker im Bürgerbüro druckt nicht")
    page.get_by_label("Beschreibung").fill("Seit 8 Uhr kommt nichts mehr an. Anzeige: <b>fett</b> Papierstau?")
    page.get_by_label("Dateien").set_input_files(
        {"name": "fehlermeldung.txt", "mimeType": "text/plain", "buffer": b"Fehler 50.4: Papierstau Fach 2\n"}
    )
    page.get_by_role("button", name="Ticket absenden").click()
    page.wait_for_url("**/portal/tickets/KSM-*")
    topbar = page.locator("header.topbar").evaluate("element => getComputedStyle(element).backgroundColor")
    assert topbar not in ("", "rgba(0, 0, 0, 0)"), "app.css was not applied"
    number = NUMBER_RE.search(page.locator("h1").inner_text()).group(0)
    assert page.get_by_text(f"Ihr Ticket {number} wurde erfasst.").is_visible()
    description = page.locator("section.card .body").first
    assert "<b>fett</b>" in description.inner_text()
    assert description.locator("b").count() == 0
    assert page.get_by_role("link", name="fehlermeldung.txt").first.is_visible()
    assert page.locator("dl.facts").get_by_text("Arbeitsplatz & Drucker").is_visible()
    assert page.locator("dl.facts").get_by_text("P2 hoch").is_visible()
    log_out(page)

    # An agent of the routed team finds it in "Mein Team", writes an internal note, then answers.
    log_in(page, people.agent)
    assert "/agent/queue" in page.url
    page.get_by_role("link", name="Mein Team").click()
    page.wait_for_url("**/agent/queue?*tab=team*")
    assert page.get_by_role("link", name="Mein Team").get_attribute("aria-current") == "page"
    page.get_by_role("link", name=number).click()
    page.wait_for_url(f"**/agent/tickets/{number}")
    assert "<b>fett</b>" in page.locator("section.card .body").first.inner_text()
    page.get_by_label("Interne Notiz").check()
    page.get_by_label("Nachricht", exact=True).fill(f"Geheimwort für den Techniker: {SECRET}")
    page.get_by_role("button", name="Absenden", exact=True).click()
    page.get_by_text("Die interne Notiz wurde gespeichert.").wait_for()
    page.get_by_label("Öffentliche Antwort").check()
    page.get_by_label("Nachricht", exact=True).fill(REPLY)
    page.get_by_role("button", name="Absenden", exact=True).click()
    page.get_by_text("Die Antwort wurde gesendet.").wait_for()
    thread = page.locator("ol.thread")
    assert thread.get_by_text(SECRET).is_visible()
    assert thread.get_by_text(REPLY).is_visible()
    agent_shot = tmp_path / "agent-ticket.png"
    page.screenshot(path=str(agent_shot), full_page=True)
    log_out(page)

    # The requester sees the public reply, and nothing of the internal note.
    log_in(page, people.requester)
    page.get_by_role("link", name=number).first.click()
    page.wait_for_url(f"**/portal/tickets/{number}")
    assert page.locator("ol.thread").get_by_text(REPLY).is_visible()
    assert SECRET not in page.content()
    requester_shot = tmp_path / "requester-ticket.png"
    page.screenshot(path=str(requester_shot), full_page=True)
    print(f"\nscreenshots: {agent_shot} {requester_shot}")

    assert page.problems == [], page.problems
    assert live_server.errors == [], live_server.errors

    # The worker sends the outbox to the SMTP server on loopback.
    with caplog.at_level(logging.ERROR, logger="helpdesk"):
        run_once(live_server.app)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    with live_server.app.app_context():
        statuses = db.session.scalars(select(OutboxMessage.status)).all()
    assert statuses and set(statuses) == {"sent"}, statuses
    mails = live_server.smtp.to(people.requester)
    created = [m for m in mails if "Ihr Ticket wurde erfasst" in m["Subject"]]
    replies = [m for m in mails if REPLY in m.get_content()]
    assert len(created) == 1, [m["Subject"] for m in mails]
    assert number in created[0]["Subject"] and number in created[0].get_content()
    assert f"{live_server.url}/portal/tickets/{number}" in created[0].get_content()
    assert len(replies) == 1, [m["Subject"] for m in mails]
    assert number in replies[0]["Subject"]
    assert all(SECRET not in m.get_content() and SECRET not in m["Subject"] for m in mails)


@pytest.mark.skipif(importlib.util.find_spec("axe_playwright_python") is None,
                    reason="axe_playwright_python is not installed")
def test_the_login_page_and_the_new_ticket_form_have_no_serious_accessibility_violations(browser_page, live_server):
    from axe_playwright_python.sync_playwright import Axe

    page = browser_page
    people = seed(live_server.app)
    axe = Axe()

    def serious(url: str) -> list[str]:
        page.goto(url)
        violations = axe.run(page).response["violations"]
        return [f"{url}: {v['id']} ({v['impact']}): {v['help']}" for v in violations
                if v["impact"] in ("serious", "critical")]

    found = serious("/login")
    log_in(page, people.requester)
    found += serious("/portal/tickets/new")
    assert found == []
