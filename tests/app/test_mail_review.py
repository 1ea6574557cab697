"""The review queue "Posteingang prüfen", the .eml downloads and the tenant's mail domains in the administration."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Comment, InboundMail, OutboxMessage, TenantMailDomain, Ticket
from helpdesk.services.mail.addresses import reply_address
from helpdesk.services.mail.inbound import import_message
from tests.app.test_mail_import import NOW, mail
from tests.builders import make_policy, make_tenant, make_ticket, make_user


@pytest.fixture
def held(world):
    """A mail from an unknown domain, held for review."""
    record = import_message(mail(sender="Anna privat <anna.amsel@freemail.example>", subject="Bildschirm flackert",
                                 body="Mein Bildschirm flackert seit heute.",
                                 attachments=[("video.txt", "text/plain", b"beschreibung")]), now=NOW)
    assert record.status == "held"
    return record


@pytest.fixture
def agent_client(client, world):
    client.login(world["agent"])
    return client


def test_agents_see_held_mail_with_sender_subject_and_reason_in_words(agent_client, held):
    page = agent_client.get("/agent/mail")

    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Bildschirm flackert" in text and "anna.amsel@freemail.example" in text
    assert "Unbekannter Absender (fremde Domain)" in text
    assert 'href="/agent/mail"' in agent_client.get("/agent/queue").get_data(as_text=True)  # in the navigation


def test_the_detail_page_shows_the_text_the_attachments_and_offers_the_original(agent_client, held):
    page = agent_client.get(f"/agent/mail/{held.id}")

    text = page.get_data(as_text=True)
    assert "Mein Bildschirm flackert seit heute." in text and "video.txt" in text
    download = agent_client.get(f"/agent/mail/{held.id}/eml")
    assert download.status_code == 200
    assert b"Subject: Bildschirm flackert" in download.data and b"From: Anna privat" in download.data
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Content-Type"].startswith("application/octet-stream")
    download.close()


def test_the_person_search_works_without_javascript(agent_client, held, world):
    page = agent_client.get(f"/agent/mail/{held.id}?q=anna")

    assert f'value="{world["requester"].id}"' in page.get_data(as_text=True)


def test_tenant_users_get_403_and_anonymous_visitors_the_login(client, held, world):
    assert client.get("/agent/mail").status_code == 302
    client.login(world["requester"])
    for url in ("/agent/mail", f"/agent/mail/{held.id}", f"/agent/mail/{held.id}/eml"):
        assert client.get(url).status_code == 403, url
    response = client.post_form(f"/agent/mail/{held.id}/discard", {"note": "weg damit"})
    assert response.status_code == 403
    db.session.refresh(held)
    assert held.status == "held"


def test_discarding_needs_a_reason_and_csrf_and_is_recorded(agent_client, held, world):
    assert agent_client.post(f"/agent/mail/{held.id}/discard", data={"note": "Spam"}).status_code == 400
    refused = agent_client.post_form(f"/agent/mail/{held.id}/discard", {"note": "  "})
    assert refused.status_code == 422
    assert "Bitte begründen Sie" in refused.get_data(as_text=True)
    db.session.refresh(held)
    assert held.status == "held"

    done = agent_client.post_form(f"/agent/mail/{held.id}/discard", {"note": "Werbung"})

    assert done.status_code == 302
    db.session.refresh(held)
    assert (held.status, held.decided_by_id, held.decision_note) == ("discarded", world["agent"].id, "Werbung")
    assert held.decided_at is not None
    assert "Bildschirm flackert" not in agent_client.get("/agent/mail").get_data(as_text=True)
    assert "Bildschirm flackert" in agent_client.get("/agent/mail?status=discarded").get_data(as_text=True)
    again = agent_client.post_form(f"/agent/mail/{held.id}/discard", {"note": "nochmal"})
    assert again.status_code == 422


def test_assigning_to_a_ticket_adds_the_mail_as_the_chosen_requesters_comment(agent_client, held, world):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)

    response = agent_client.post_form(f"/agent/mail/{held.id}/assign",
                                      {"number": ticket.number.lower(), "requester_id": world["requester"].id})

    assert response.status_code == 302
    db.session.refresh(held)
    comment = db.session.get(Comment, held.comment_id)
    assert (held.status, held.ticket_id, held.decided_by_id) == ("comment", ticket.id, world["agent"].id)
    assert (comment.author_id, comment.body) == (world["requester"].id, "Mein Bildschirm flackert seit heute.")
    assert [a.filename for a in comment.attachments] == ["video.txt"]
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert f"/agent/mail/{held.id}/eml" in page  # the original of the comment, for agents


def test_assigning_to_another_tenants_ticket_is_refused(agent_client, held, world):
    other = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    make_policy(other)
    bert = make_user(tenant=other, email="bert@schwerin.example")
    theirs = make_ticket(bert, category=world["category"], now=NOW)

    response = agent_client.post_form(f"/agent/mail/{held.id}/assign",
                                      {"number": theirs.number, "requester_id": world["requester"].id})

    assert response.status_code == 422
    db.session.refresh(held)
    assert held.status == "held"
    assert db.session.scalar(select(func.count()).select_from(Comment).where(Comment.ticket_id == theirs.id)) == 0


def test_creating_a_ticket_files_an_email_ticket_for_the_chosen_requester(agent_client, held, world):
    response = agent_client.post_form(f"/agent/mail/{held.id}/create", {
        "requester_id": world["requester"].id, "category_id": world["category"].id, "impact": "3", "urgency": "2"})

    assert response.status_code == 302
    db.session.refresh(held)
    ticket = db.session.get(Ticket, held.ticket_id)
    assert held.status == "ticket"
    assert (ticket.requester_id, ticket.created_by_id, ticket.channel) == (world["requester"].id, world["agent"].id, "email")
    assert (ticket.subject, ticket.description, ticket.impact) == ("Bildschirm flackert", "Mein Bildschirm flackert seit heute.", 3)
    confirmation = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id,
                                                                 OutboxMessage.kind == "ticket_created"))
    assert confirmation.recipient == "anna@lup.example"
    assert "Bildschirm flackert" not in agent_client.get("/agent/mail").get_data(as_text=True)


def test_creating_without_a_chosen_person_shows_the_form_again(agent_client, held, world):
    response = agent_client.post_form(f"/agent/mail/{held.id}/create", {"category_id": world["category"].id,
                                                                         "impact": "2", "urgency": "2"})

    assert response.status_code == 422
    assert "anfragende Person" in response.get_data(as_text=True)
    db.session.refresh(held)
    assert held.status == "held"


def test_the_original_of_an_imported_comment_is_for_staff_only(client, world):
    ticket = make_ticket(world["requester"], category=world["category"], now=NOW)
    record = import_message(mail(to=reply_address(ticket), subject="Re", body="Nachtrag."), now=NOW + timedelta(hours=1))
    client.login(world["requester"])

    portal = client.get(f"/portal/tickets/{ticket.number}").get_data(as_text=True)

    assert "Nachtrag." in portal and "/eml" not in portal
    assert client.get(f"/agent/mail/{record.id}/eml").status_code == 403


def _tenant_form(tenant, **changes):
    data = {"name": tenant.name, "slug": tenant.slug, "active": "y", "mail_domains": "", "mail_unknown_senders": "create"}
    data.update(changes)
    return data


def test_an_admin_lists_a_tenants_mail_domains_and_its_unknown_sender_policy(client, world):
    client.login(make_user("admin", email="admin@ksm.example"))
    tenant = world["tenant"]

    response = client.post_form(f"/manage/tenants/{tenant.id}", _tenant_form(
        tenant, mail_domains="LUP.example\n@kreis-lup.example\n\nlup.example", mail_unknown_senders="hold"))

    assert response.status_code == 302
    domains = db.session.scalars(select(TenantMailDomain.domain).where(TenantMailDomain.tenant_id == tenant.id)
                                 .order_by(TenantMailDomain.domain)).all()
    assert domains == ["kreis-lup.example", "lup.example"]
    db.session.refresh(tenant)
    assert tenant.mail_unknown_senders == "hold"
    page = client.get(f"/manage/tenants/{tenant.id}").get_data(as_text=True)
    assert "kreis-lup.example" in page


def test_a_domain_of_another_tenant_or_a_bad_line_is_refused_with_a_clear_message(client, world):
    client.login(make_user("admin", email="admin@ksm.example"))
    other = make_tenant("schwerin", "Landeshauptstadt Schwerin")
    db.session.add(TenantMailDomain(tenant_id=other.id, domain="schwerin.example"))
    db.session.commit()
    tenant = world["tenant"]

    taken = client.post_form(f"/manage/tenants/{tenant.id}", _tenant_form(tenant, mail_domains="schwerin.example",
                                                                           name="Neuer Name"))
    bad = client.post_form(f"/manage/tenants/{tenant.id}", _tenant_form(tenant, mail_domains="nicht eine domain"))

    assert taken.status_code == 422
    assert "gehört bereits zum Mandanten Landeshauptstadt Schwerin" in taken.get_data(as_text=True)
    assert bad.status_code == 422 and "keine Mail-Domain" in bad.get_data(as_text=True)
    db.session.refresh(tenant)
    assert tenant.name == "Landkreis Ludwigslust-Parchim"  # nothing saved
    assert db.session.scalar(select(func.count()).select_from(TenantMailDomain)
                             .where(TenantMailDomain.tenant_id == tenant.id)) == 0


def test_the_review_queue_is_paged(agent_client, world, app):
    app.config["PAGE_SIZE"] = 2
    for n in range(3):
        import_message(mail(sender=f"x{n}@freemail.example", subject=f"Anfrage {n}"), now=NOW + timedelta(minutes=n))

    first = agent_client.get("/agent/mail").get_data(as_text=True)
    second = agent_client.get("/agent/mail?page=2").get_data(as_text=True)

    assert "Anfrage 2" in first and "Anfrage 1" in first and "Anfrage 0" not in first
    assert "Anfrage 0" in second
    assert db.session.scalar(select(func.count()).select_from(InboundMail)) == 3
