"""System lines of the ticket history are stored as codes with values and shown in the reader's language."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import bindparam, select, text

from helpdesk.config import ROOT
from helpdesk.extensions import db
from helpdesk.models import TicketEvent
from helpdesk.models.types import UTCDateTime
from helpdesk.services import tickets
from tests.app.test_i18n import compile_catalog
from tests.builders import at, make_category, make_rule, make_team, make_tenant, make_ticket, make_user
from tests.conftest import make_app
from tests.support import create_database, drop_database, postgres_unreachable

BEFORE_CODES = "a4idem000009"  # the revision before history codes


@pytest.fixture(scope="module", autouse=True)
def english_catalog():
    """Compile the English catalog like `make translations` does."""
    compile_catalog()


@pytest.fixture
def desk(app):
    """A fallback team with a lead and an agent, a printer rule, two categories and one tenant."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    printers = make_team("drucker", "Arbeitsplatz & Drucker")
    printer = make_category("Drucker", parent=make_category("Hardware"))
    make_rule(printers, category=printer, name="Drucker-Regel")
    agent = make_user("agent", teams=[team, printers], email="agent@ksm.example", name="Ute Agent", locale="en")
    return {"team": team, "printers": printers, "printer": printer, "other": make_category("Sonstiges"),
            "tenant": make_tenant("lup", "Landkreis Ludwigslust-Parchim"), "agent": agent}


def _page(client, user, url: str) -> str:
    client.login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _auto_closed_ticket(desk, requester):
    ticket = make_ticket(requester, category=desk["other"], now=at("2026-03-05 09:00"))
    tickets.change_status(desk["agent"], ticket, "resolved", at("2026-03-05 10:00"))
    assert tickets.auto_close_resolved(at("2026-03-05 10:00") + timedelta(days=8), 7) == 1
    return ticket


def test_english_requester_reads_the_system_lines_of_the_history_in_english(client, desk):
    requester = make_user(tenant=desk["tenant"], locale="en")
    ticket = _auto_closed_ticket(desk, requester)

    page = _page(client, requester, f"/portal/tickets/{ticket.number}")

    assert "Automatically closed after 7 days" in page
    assert "from impact × urgency" in page
    assert "Default team" in page
    assert "Automatisch geschlossen" not in page
    assert "aus Auswirkung" not in page and "Standardteam" not in page


def test_german_requester_reads_the_same_lines_in_german(client, desk):
    requester = make_user(tenant=desk["tenant"], locale="de")
    ticket = _auto_closed_ticket(desk, requester)

    page = _page(client, requester, f"/portal/tickets/{ticket.number}")

    assert "Automatisch geschlossen nach 7 Tagen" in page
    assert "aus Auswirkung × Dringlichkeit" in page
    assert "Standardteam" in page
    assert "Automatically closed" not in page


def test_history_stores_a_code_with_values_instead_of_german_text(app, desk):
    requester = make_user(tenant=desk["tenant"])
    ticket = _auto_closed_ticket(desk, requester)

    events = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                .order_by(TicketEvent.id)).all()

    notes = [(e.note_code, e.note_params, e.note) for e in events if e.note_code]
    assert ("priority_from_matrix", None, None) in notes
    assert ("default_team", None, None) in notes
    assert ("auto_closed", {"days": 7}, None) in notes
    assert all(e.note is None for e in events)  # nothing typed by a person on this ticket


def test_english_agent_reads_the_staff_lines_in_english(client, desk):
    requester = make_user(tenant=desk["tenant"], locale="de", name="Erika Muster")
    agent = desk["agent"]
    ticket = make_ticket(requester, actor=agent, category=desk["printer"], channel="phone", now=at("2026-03-05 09:00"))
    tickets.change_priority(agent, ticket, 1, at("2026-03-05 09:05"))
    tickets.reply(agent, ticket, body="Welches Modell?", new_status="pending", now=at("2026-03-05 09:10"))
    tickets.reply(requester, ticket, body="HP 4250", now=at("2026-03-05 09:20"))
    tickets.change_status(agent, ticket, "resolved", at("2026-03-05 09:30"))
    tickets.reply(requester, ticket, body="Geht wieder nicht", now=at("2026-03-05 09:40"))
    tickets.change_status(agent, ticket, "resolved", at("2026-03-05 09:50"))
    tickets.reopen(requester, ticket, at("2026-03-05 10:00"))
    tickets.change_status(agent, ticket, "resolved", at("2026-03-05 10:10"))
    tickets.confirm_resolution(requester, ticket, at("2026-03-05 10:20"))

    page = _page(client, agent, f"/agent/tickets/{ticket.number}")

    for english in ("Logged by Ute Agent", "Rule: Drucker-Regel", "changed manually", "Reply from the requester",
                    "Reopened by reply", "Reopened", "Resolution confirmed", "from impact × urgency"):
        assert english in page, english
    for german in ("Erfasst von", "Regel:", "manuell geändert", "Antwort der anfragenden Person",
                   "Wiedereröffnet", "Lösung bestätigt"):
        assert german not in page, german


def test_a_reason_typed_by_a_person_stays_as_typed_for_every_reader(client, desk):
    requester = make_user(tenant=desk["tenant"], locale="en")
    agent = desk["agent"]
    ticket = make_ticket(requester, category=desk["other"], now=at("2026-03-05 09:00"))
    tickets.change_priority(agent, ticket, 1, at("2026-03-05 09:05"), reason="Ganzes Amt betroffen")
    tickets.transfer(agent, ticket, desk["printers"].id, at("2026-03-05 09:06"), note="Bitte Toner prüfen")
    tickets.change_status(agent, ticket, "resolved", at("2026-03-05 09:30"))
    tickets.reopen(requester, ticket, at("2026-03-05 10:00"), reason="Wiedereröffnet, weil es wieder hakt")

    agent_page = _page(client, agent, f"/agent/tickets/{ticket.number}")
    assert "Ganzes Amt betroffen" in agent_page and "changed manually" not in agent_page
    assert "Bitte Toner prüfen" in agent_page
    assert "(Wiedereröffnet, weil es wieder hakt)" in agent_page
    events = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.note.is_not(None))).all()
    assert {e.note for e in events} == {"Ganzes Amt betroffen", "Bitte Toner prüfen",
                                        "Wiedereröffnet, weil es wieder hakt"}
    assert all(e.note_code is None for e in events)


def test_values_in_a_history_line_are_escaped(client, desk):
    agent = make_user("agent", teams=[desk["team"]], name="<b>Mallory</b>", locale="en")
    requester = make_user(tenant=desk["tenant"])
    ticket = make_ticket(requester, actor=agent, category=desk["other"], channel="phone")

    page = _page(client, agent, f"/agent/tickets/{ticket.number}")

    assert "Logged by &lt;b&gt;Mallory&lt;/b&gt;" in page
    assert "<b>Mallory</b>" not in page


def test_a_line_with_an_unknown_code_falls_back_to_its_stored_text(client, desk):
    requester = make_user(tenant=desk["tenant"], locale="en")
    ticket = make_ticket(requester, category=desk["other"])
    tickets.record(ticket, None, "field", at("2026-03-05 09:30"), field="status", note="Alter Text",
                   note_code="code_of_a_later_version", note_params={"x": 1})
    db.session.commit()

    page = _page(client, requester, f"/portal/tickets/{ticket.number}")

    assert "(Alter Text)" in page


# --- the migration of lines written before the codes -----------------------------------------

OLD_NOTES = [
    # (kind, field, actor?, German note as stored before, expected code, params, note kept)
    ("created", None, True, "Erfasst von Ute Agent", "created_by", {"name": "Ute Agent"}, None),
    ("field", "priority", False, "aus Auswirkung × Dringlichkeit", "priority_from_matrix", None, None),
    ("field", "team", False, "Regel: Drucker: alles", "routing_rule", {"rule": "Drucker: alles"}, None),
    ("field", "team", False, "Standardteam", "default_team", None, None),
    ("field", "status", False, "Automatisch geschlossen nach 14 Tagen", "auto_closed", {"days": 14}, None),
    ("field", "status", True, "Antwort der anfragenden Person", "requester_answered", None, None),
    ("field", "status", True, "Wiedereröffnet durch Antwort", "reopened_by_reply", None, None),
    ("field", "status", True, "Wiedereröffnet", "reopened", None, None),
    ("sla_resumed", "sla", False, "Wiedereröffnet", "reopened", None, None),
    ("field", "status", True, "Lösung bestätigt", "resolution_confirmed", None, None),
    ("field", "priority", True, "manuell geändert", "changed_by_hand", None, None),
    # Typed by people: stay as they are.
    ("field", "priority", True, "Ganzes Amt steht", None, None, "Ganzes Amt steht"),
    ("field", "status", True, "Automatisch geschlossen nach Rücksprache", None, None,
     "Automatisch geschlossen nach Rücksprache"),
    ("field", "team", True, "Regel: bitte an Netzwerk", None, None, "Regel: bitte an Netzwerk"),
]


@pytest.fixture
def fresh_database(backend, tmp_path):
    """A database of its own (migrations go down and up in it), dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite'}"
        return
    reason = postgres_unreachable()
    if reason:
        pytest.skip(f"PostgreSQL not reachable ({reason})")
    name, url = create_database("helpdesk_hist")
    try:
        yield url
    finally:
        drop_database(name)


def test_migration_turns_known_german_lines_into_codes_and_keeps_typed_text(fresh_database, tmp_path):
    directory = str(ROOT / "migrations")
    app = make_app(fresh_database, tmp_path)
    with app.app_context():
        upgrade(directory=directory)
        team = make_team("service-desk", "Service Desk", fallback=True)
        agent = make_user("agent", teams=[team])
        ticket = make_ticket(make_user(tenant=make_tenant()), category=make_category())
        ticket_id, agent_id = ticket.id, agent.id
        db.session.remove()
        downgrade(directory=directory, revision=BEFORE_CODES)
        with db.engine.begin() as connection:
            connection.execute(text("DELETE FROM ticket_event"))
            for i, (kind, field, by_person, note, *_expected) in enumerate(OLD_NOTES):
                connection.execute(
                    text("INSERT INTO ticket_event (id, ticket_id, actor_id, created_at, kind, field, note, is_internal)"
                         " VALUES (:id, :ticket, :actor, :at, :kind, :field, :note, :internal)")
                    .bindparams(bindparam("at", type_=UTCDateTime())),
                    {"id": 1000 + i, "ticket": ticket_id, "actor": agent_id if by_person else None,
                     "at": at("2026-03-05 09:00"), "kind": kind, "field": field, "note": note, "internal": False},
                )
        upgrade(directory=directory)

        rows = {e.id: e for e in db.session.scalars(select(TicketEvent))}
        for i, (_kind, _field, _person, note, code, params, kept) in enumerate(OLD_NOTES):
            event = rows[1000 + i]
            assert (event.note_code, event.note_params, event.note) == (code, params, kept), note

        # And back: the codes become the German text they came from.
        db.session.remove()
        downgrade(directory=directory, revision=BEFORE_CODES)
        with db.engine.connect() as connection:
            notes = dict(connection.execute(text("SELECT id, note FROM ticket_event")).all())
        assert [notes[1000 + i] for i in range(len(OLD_NOTES))] == [row[3] for row in OLD_NOTES]
        upgrade(directory=directory)
        db.session.remove()
        db.engine.dispose()
