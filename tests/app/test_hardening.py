"""Hostile or careless input: nothing leaks to requesters, nothing ends in a server error."""
from email import message_from_string

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import OutboxMessage
from helpdesk.services import outbox, reports, tickets
from tests.app.test_sla_workflow import berlin, file
from tests.builders import make_team, make_user

HUGE = "99999999999999999999"


def test_hand_over_note_and_priority_reason_stay_internal(world, client, app):
    ticket = file(world, "2026-03-05 09:00")
    other = make_team("netz", "Netzwerk")
    tickets.change_priority(world["agent"], ticket, 1, berlin("2026-03-05 09:05"), reason="GEHEIMER GRUND")
    tickets.transfer(world["agent"], ticket, other.id, berlin("2026-03-05 09:06"), note="NUR FÜR KOLLEGEN")
    client.login(world["requester"])
    page = client.get(f"/portal/tickets/{ticket.number}").get_data(as_text=True)
    assert "GEHEIMER GRUND" not in page and "NUR FÜR KOLLEGEN" not in page
    colleague = app.test_client()
    colleague.login(world["agent"])
    page = colleague.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "GEHEIMER GRUND" in page and "NUR FÜR KOLLEGEN" in page


def test_line_breaks_in_a_subject_do_not_stop_its_emails(world, smtp_server):
    ticket = file(world, "2026-03-05 09:00", subject="Drucker\rBcc: x@evil.example\nkaputt")
    assert ticket.subject == "Drucker Bcc: x@evil.example kaputt"
    outbox.deliver_due(berlin("2026-03-05 09:01"))
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)).one()
    assert mail.status == "sent"
    received = smtp_server.to(world["requester"].email)
    assert len(received) == 1 and received[0]["Bcc"] is None


@pytest.mark.parametrize("url", ["/portal/tickets?q=%00", "/portal/tickets/X%00"])
def test_nul_bytes_are_refused_with_400(world, client, url):
    client.login(world["requester"])
    assert client.get(url).status_code == 400


def test_nul_byte_in_login_form_is_refused_with_400(world, client):
    response = client.post_form("/login", {"email": "a\x00@x.de", "password": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize("url", [
    f"/agent/queue?tenant={HUGE}&team={HUGE}&category={HUGE}&page={HUGE}",
    f"/agent/attachments/{HUGE}",
    f"/reports/sla?team={HUGE}&tenant={HUGE}",
])
def test_ids_too_large_for_the_database_are_not_a_server_error(world, client, url):
    client.login(make_user("service_manager"))
    assert client.get(url).status_code in (200, 404)


def test_report_with_dates_out_of_range_shows_the_form_again(world, client):
    client.login(make_user("service_manager"))
    response = client.get("/reports/lup?kind=custom&start=9999-12-30&end=9999-12-31")
    assert response.status_code == 422


def test_spreadsheet_formulas_from_requesters_are_neutralised_in_csv():
    assert reports.csv_safe('=HYPERLINK("http://evil","x")').startswith("'=")
    assert reports.csv_safe("Drucker") == "Drucker" and reports.csv_safe(3) == 3
