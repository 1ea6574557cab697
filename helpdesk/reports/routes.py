"""Routes of the reports blueprint."""
from flask import abort, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select

from helpdesk import clock
from helpdesk.extensions import db
from helpdesk.models import Team, Tenant
from helpdesk.reports import bp
from helpdesk.services.sla_views import situation_teams, sla_situation
from helpdesk.services.ids import as_id

MANAGER_ROLES = ("team_lead", "service_manager", "admin", "tenant_manager")


@bp.route("/sla")
@login_required
def sla_now():
    """Show managers the tickets at risk and breached now, per team and tenant."""
    if current_user.role not in MANAGER_ROLES:
        abort(403)
    team_id = as_id(request.args.get("team"))
    tenant_id = as_id(request.args.get("tenant"))
    now = clock.utcnow()
    situation = sla_situation(current_user, now, team_id=team_id, tenant_id=tenant_id)
    visible_teams = situation_teams(current_user)  # a team lead's filter offers only their teams
    team_query = select(Team).where(Team.active.is_(True)).order_by(Team.name)
    if visible_teams is not None:
        team_query = team_query.where(Team.id.in_(visible_teams))
    teams = db.session.scalars(team_query).all() if current_user.is_staff else []
    tenants = db.session.scalars(select(Tenant).where(Tenant.active.is_(True)).order_by(Tenant.name)).all() \
        if current_user.is_staff else []
    return render_template("reports/sla_now.html", situation=situation, teams=teams, tenants=tenants,
                           team_id=team_id, tenant_id=tenant_id, now=now)
