"""Command-line tools: `flask users create|set-password|deactivate`, `flask search reindex`, `flask seed-demo`, `flask worker`."""
from __future__ import annotations

import os

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Team, Tenant
from helpdesk.models.users import ROLES
from helpdesk.services import accounts
from helpdesk.services.errors import DomainError

users_cli = AppGroup("users", help="Manage user accounts.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--tenant", "tenant_slug", help="Tenant slug (requester, tenant_manager).")
@click.option("--team", "team_slugs", multiple=True, help="Team slug (KSM staff); may repeat.")
def create_user(email, name, role, tenant_slug, team_slugs):
    """Create a user; the password comes from HELPDESK_PASSWORD or a prompt."""
    tenant = None
    if tenant_slug:
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
        if tenant is None:
            raise click.ClickException(f"unknown tenant: {tenant_slug}")
    teams = []
    for slug in team_slugs:
        team = db.session.scalar(select(Team).where(Team.slug == slug))
        if team is None:
            raise click.ClickException(f"unknown team: {slug}")
        teams.append(team)
    password = os.environ.get("HELPDESK_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        user = accounts.save_user(None, email=email, name=name, role=role, tenant=tenant, teams=teams, password=password)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"created {user.email} ({user.role})")


def _user_by_email(email: str):
    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"unknown user: {email}")
    return user


@users_cli.command("set-password")
@click.argument("email")
def set_password(email):
    """Set a new password (from HELPDESK_PASSWORD or a prompt) and end the user's sessions."""
    user = _user_by_email(email)
    password = os.environ.get("HELPDESK_PASSWORD") or click.prompt(
        "New password", hide_input=True, confirmation_prompt=True
    )
    try:
        accounts.validate_password(password, user_inputs=[user.email, user.name])
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    user.password_hash = accounts.hash_password(password)
    accounts.end_sessions(user)
    db.session.commit()
    click.echo(f"password set for {user.email}; their sessions were ended")


@users_cli.command("deactivate")
@click.argument("email")
def deactivate(email):
    """Deactivate an account: it can no longer sign in and its sessions end at once."""
    user = _user_by_email(email)
    user.active = False
    accounts.end_sessions(user)
    db.session.commit()
    click.echo(f"deactivated {user.email}")


search_cli = AppGroup("search", help="Maintain the full-text search index.")


@search_cli.command("reindex")
@click.option("--batch", default=50_000, show_default=True, help="Tickets per transaction.")
def reindex(batch):
    """Rebuild every ticket's search document (after a restore or a change of the search rules)."""
    from sqlalchemy import text

    from helpdesk.services.search import reindex_range

    with db.engine.connect() as connection:
        top = connection.execute(text("SELECT max(id) FROM ticket")).scalar() or 0
        connection.rollback()
        batches = 0
        for low in range(1, top + 1, batch):
            # One transaction per batch: a long rebuild holds no lock for its whole run and can be stopped.
            with connection.begin():
                reindex_range(connection, low, low + batch - 1)
            batches += 1
    click.echo(f"search index rebuilt in {batches} batch(es)")


mail_cli = AppGroup("mail", help="Import incoming email (one file, or the IMAP mailbox).")


@mail_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))
def import_mail(path):
    """Import one stored message (FILE.eml) as if fetched from the mailbox; print what became of it."""
    from helpdesk import clock
    from helpdesk.services.mail.inbound import import_message

    with open(path, "rb") as handle:
        raw = handle.read()
    mail = import_message(raw, now=clock.utcnow(), source="cli")
    ticket = mail.ticket.number if mail.ticket else "-"
    click.echo(f"mail {mail.id}: {mail.status} {mail.reason or ''} ticket {ticket}".replace("  ", " "))


@mail_cli.command("fetch")
def fetch_mail():
    """Fetch the IMAP mailbox once (HELPDESK_IMAP_*); print the counts; exit 1 if the mailbox failed."""
    from flask import current_app

    from helpdesk import clock
    from helpdesk.services.mail.imap import fetch_once

    if not current_app.config.get("IMAP_HOST"):
        raise click.ClickException("HELPDESK_IMAP_HOST is not set: no mailbox to fetch")
    result = fetch_once(clock.utcnow())
    counts = result.as_dict()
    click.echo(" ".join(f"{key} {value}" for key, value in counts.items() if key != "error"))
    if result.error:
        raise click.ClickException(f"mailbox: {result.error}")


def register(app: Flask) -> None:
    """Attach the commands to the app."""
    app.cli.add_command(mail_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(search_cli)

    @app.cli.command("seed-demo")
    @click.option("--tickets", default=200, show_default=True, help="How many demo tickets.")
    def seed_demo(tickets):
        """Fill an empty database with demo tenants, teams, catalog, users and tickets."""
        from helpdesk.demo import seed

        try:
            result = seed(ticket_count=tickets)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        if result["created"]:
            click.echo("Demo data created.")
        else:
            click.echo("Demo data already present (tenant 'lup' exists); nothing changed.")
        click.echo(f"Demo logins (password for all: {result['password']}):")
        for email, role in result["users"]:
            click.echo(f"  {email:32} {role}")

    @app.cli.command("worker")
    @click.option("--once", is_flag=True, help="Run every job once and exit.")
    def worker(once):
        """Run the scheduler: outbox delivery, SLA sweep, auto-close."""
        from helpdesk import worker as worker_module

        if once:
            worker_module.run_once(app)
        else:
            worker_module.run_forever(app)
