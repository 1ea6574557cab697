"""Command-line tools: `flask users create`, `flask seed-demo`, `flask worker`."""
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


def register(app: Flask) -> None:
    """Attach the commands to the app."""
    app.cli.add_command(users_cli)

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
