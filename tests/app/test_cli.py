"""The command line: creating accounts, seeding the demo, running the worker once."""
from __future__ import annotations

from sqlalchemy import func, select

from helpdesk.demo import PASSWORD as DEMO_PASSWORD
from helpdesk.extensions import db
from helpdesk.models import OutboxMessage, Team, Tenant, Ticket, User
from helpdesk.models.tickets import STATUSES
from tests.builders import PASSWORD, at, make_category, make_team, make_tenant, make_ticket, make_user

NEW_PASSWORD = "ein sehr langes Passwort"


def run(app, *args, password: str | None = NEW_PASSWORD):
    """Invoke `flask <args>` against the test app; the password comes from HELPDESK_PASSWORD."""
    return app.test_cli_runner().invoke(args=list(args), env={"HELPDESK_PASSWORD": password})


def count(model) -> int:
    """Return how many rows a table holds, fresh from the database."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_users_create_makes_an_account_that_can_log_in(app, client):
    make_team("service-desk", fallback=True)
    make_tenant("lup", "Landkreis Ludwigslust-Parchim")

    result = run(app, "users", "create", "--email", "Erika.Muster@LUP.example", "--name", "Erika Muster",
                 "--role", "requester", "--tenant", "lup")

    assert result.exit_code == 0, result.output
    assert "erika.muster@lup.example" in result.output
    user = db.session.scalars(select(User)).one()
    assert (user.name, user.role, user.tenant.slug) == ("Erika Muster", "requester", "lup")
    client.login(user, password=NEW_PASSWORD)


def test_users_create_puts_staff_into_their_teams(app):
    make_team("service-desk", fallback=True)
    make_team("netzwerk")

    result = run(app, "users", "create", "--email", "agent@ksm.example", "--name", "Kevin Schulze",
                 "--role", "agent", "--team", "service-desk", "--team", "netzwerk")

    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User)).one()
    assert sorted(team.slug for team in user.teams) == ["netzwerk", "service-desk"]


def test_users_create_refuses_an_unknown_tenant(app):
    result = run(app, "users", "create", "--email", "a@nirgendwo.example", "--name", "A", "--role", "requester",
                 "--tenant", "nirgendwo")

    assert result.exit_code != 0
    assert "unknown tenant: nirgendwo" in result.output
    assert count(User) == 0


def test_users_create_refuses_an_invalid_email_with_a_message(app):
    make_tenant("lup")

    result = run(app, "users", "create", "--email", "keine-adresse", "--name", "A", "--role", "requester",
                 "--tenant", "lup")

    assert result.exit_code != 0
    assert "Ungültige E-Mail-Adresse" in result.output
    assert count(User) == 0


def test_users_create_refuses_a_short_password(app):
    make_tenant("lup")

    result = run(app, "users", "create", "--email", "a@lup.example", "--name", "A", "--role", "requester",
                 "--tenant", "lup", password="kurz")

    assert result.exit_code != 0
    assert "mindestens 10 Zeichen" in result.output
    assert count(User) == 0


def test_seed_demo_fills_an_empty_database_and_prints_the_logins(app, client):
    result = run(app, "seed-demo")

    assert result.exit_code == 0, result.output
    assert DEMO_PASSWORD in result.output
    for email in ("admin@ksm.example", "servicedesk@ksm.example", "teamleitung@ksm.example",
                  "servicemanager@ksm.example", "anna.schulz@lup.example", "leitung@lup.example",
                  "max.meier@schwerin.example"):
        assert email in result.output
    assert result.output.index("admin@ksm.example") < result.output.index("klaus.peters@lup.example")

    db.session.expire_all()
    assert sorted(db.session.scalars(select(Tenant.slug))) == ["crivitz", "hagenow", "lup", "schwerin"]
    fallback = db.session.scalars(select(Team).where(Team.is_fallback.is_(True))).one()
    assert fallback.slug == "service-desk"
    assert all(team.lead is not None for team in db.session.scalars(select(Team)))
    assert count(Ticket) >= 200
    statuses = set(db.session.scalars(select(Ticket.status).distinct()))
    assert statuses == set(STATUSES)
    assert db.session.scalar(select(func.count()).where(Ticket.channel == "phone")) > 0
    assert count(OutboxMessage) == 0  # the demo's own emails are never sent

    anna = db.session.scalars(select(User).where(User.email == "anna.schulz@lup.example")).one()
    client.login(anna, password=DEMO_PASSWORD)
    page = client.get("/portal/tickets")
    assert page.status_code == 200
    newest = db.session.scalars(select(Ticket.number).where(Ticket.requester_id == anna.id)
                                .order_by(Ticket.updated_at.desc(), Ticket.id.desc())).first()
    assert newest in client.get("/portal/tickets?status=all").get_data(as_text=True)


def test_seed_demo_a_second_time_changes_nothing_and_still_prints_the_logins(app):
    run(app, "seed-demo", "--tickets", "20")
    before = (count(Tenant), count(User), count(Ticket))

    result = run(app, "seed-demo")

    assert result.exit_code == 0, result.output
    assert "nothing changed" in result.output
    assert DEMO_PASSWORD in result.output and "admin@ksm.example" in result.output
    assert (count(Tenant), count(User), count(Ticket)) == before == (4, before[1], 20)


def test_worker_once_runs_every_job_and_sends_waiting_emails(app, smtp_server):
    make_team("service-desk", fallback=True)
    requester = make_user(tenant=make_tenant("lup"), email="anna@lup.example")
    ticket = make_ticket(requester, category=make_category("Sonstiges"), now=at("2026-03-05 09:00"))

    result = run(app, "worker", "--once")

    assert result.exit_code == 0, result.output
    received = smtp_server.to("anna@lup.example")
    assert len(received) == 1 and ticket.number in received[0]["Subject"]


def test_users_set_password_replaces_the_password_and_ends_sessions(app, client):
    tenant = make_tenant("lup")
    user = make_user("requester", tenant=tenant, email="erika@lup.example")
    client.login(user)
    assert client.get("/portal/tickets").status_code == 200

    result = run(app, "users", "set-password", "ERIKA@lup.example", password="ein ganz anderes langes Kennwort")

    assert result.exit_code == 0, result.output
    # The browser that was signed in before is signed out; the new password works, the old one not.
    assert client.get("/portal/tickets").status_code in (302, 401)
    client.login(user, password="ein ganz anderes langes Kennwort")
    other = app.test_client()
    refused = other.post_form("/login", {"email": user.email, "password": PASSWORD})
    assert refused.status_code != 302


def test_users_set_password_refuses_a_weak_password_and_keeps_the_old_one(app, client):
    tenant = make_tenant("lup")
    user = make_user("requester", tenant=tenant, email="erika@lup.example")

    result = run(app, "users", "set-password", "erika@lup.example", password="12345678")

    assert result.exit_code != 0
    assert "Passwort" in result.output
    client.login(user)


def test_users_set_password_and_deactivate_refuse_an_unknown_email(app):
    assert "unknown user" in run(app, "users", "set-password", "nobody@lup.example").output
    assert "unknown user" in run(app, "users", "deactivate", "nobody@lup.example").output


def test_users_deactivate_signs_the_user_out_and_blocks_login(app, client):
    tenant = make_tenant("lup")
    user = make_user("requester", tenant=tenant, email="erika@lup.example")
    client.login(user)

    result = run(app, "users", "deactivate", "erika@lup.example")

    assert result.exit_code == 0, result.output
    assert client.get("/portal/tickets").status_code in (302, 401)
    db.session.expire_all()
    assert db.session.get(User, user.id).active is False


def test_search_reindex_rebuilds_lost_documents(app):
    from helpdesk.models.search import TicketSearch
    from helpdesk.services.search import search

    make_team("service-desk", fallback=True)
    tenant = make_tenant("lup")
    requester = make_user("requester", tenant=tenant)
    agent = make_user("agent")
    category = make_category("Drucker")
    ticket = make_ticket(requester, category=category, subject="Plotter im Bauamt druckt streifig", now=at("2026-11-02 09:00"))
    db.session.execute(TicketSearch.__table__.delete())
    db.session.commit()
    assert search(agent, "Plotter") == []

    result = run(app, "search", "reindex", "--batch", "1")

    assert result.exit_code == 0, result.output
    assert [hit.ticket.number for hit in search(agent, "Plotter")] == [ticket.number]
