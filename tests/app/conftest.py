"""Fixtures shared by the SLA tests of the app."""
import pytest

from helpdesk.extensions import db
from tests.builders import make_category, make_policy, make_team, make_tenant, make_user


@pytest.fixture
def world(app):
    """A tenant with the DESIGN.md calendar and contract, a team, a requester and an agent."""
    team = make_team("service-desk", "Service Desk", fallback=True)
    lead = make_user("team_lead", teams=[team], email="lead@ksm.example")
    team.lead = lead
    db.session.commit()
    tenant = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    make_policy(tenant)
    return {
        "team": team,
        "lead": lead,
        "tenant": tenant,
        "category": make_category("Sonstiges"),
        "requester": make_user(tenant=tenant, email="anna@lup.example"),
        "agent": make_user("agent", teams=[team], email="agent@ksm.example"),
    }
