"""Routes of the administration area: tenants, accounts, teams, service catalog, routing rules, outbox.

Access rule: every /manage URL needs a login (anonymous visitors go to the login page) and the role
admin; every other logged-in user gets 403.
"""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import joinedload, selectinload

from helpdesk import clock
from helpdesk.extensions import db, login_manager
from helpdesk.manage import bp
from helpdesk.manage.forms import (
    OUTBOX_STATUS_LABELS, CategoryForm, ConfirmForm, OutboxFilterForm, RouteTestForm, RuleForm, TeamForm,
    TenantForm, UserFilterForm, UserForm,
)
from helpdesk.models import Category, OutboxMessage, RoutingRule, Team, Tenant, User, team_members
from helpdesk.models.outbox import OUTBOX_STATUSES
from helpdesk.models.users import ROLES, STAFF_ROLES
from helpdesk.services import admin, people, routing
from helpdesk.services.errors import DomainError
from helpdesk.services.ids import optional_id, page_number
from helpdesk.services.mail import domains as mail_domains

INDEX_COUNT_CAP = 1000


@bp.before_request
def require_admin():
    """Send anonymous visitors to the login page; refuse everyone who is not an administrator."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.role != "admin":
        abort(403)
    return None


def _page(query):
    """Paginate a select with the configured page size."""
    return db.paginate(
        query, page=page_number(request.args.get("page")), per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )


def _refused(form, exc: DomainError, template: str, **context):
    """Re-render a form with the service's message at its field (or above the form); status 422."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)
    return render_template(template, form=form, **context), 422


def _show(form, template: str, **context):
    """Render a form: empty or filled (GET, 200), or refused by its own validators (POST, 422)."""
    return render_template(template, form=form, **context), 422 if form.is_submitted() else 200


def _tree_order(categories_tree) -> list[Category]:
    """Flatten the category tree: each top level followed by its subcategories."""
    flat = []
    for top in categories_tree:
        flat.append(top)
        flat.extend(top.children)
    return flat


def _tenants() -> list[Tenant]:
    return list(db.session.scalars(select(Tenant).order_by(Tenant.name)))


# --- overview --------------------------------------------------------------------------------

@bp.route("/")
def index():
    """Show the sections of the administration with counts (capped: the page never counts a whole table)."""
    def count(model, *where):
        # Counting stops after INDEX_COUNT_CAP + 1 rows ("mehr als 1.000"): 50,000 accounts or a long
        # outbox cost the same as a few.
        limited = select(literal_column("1")).select_from(model).where(*where).limit(INDEX_COUNT_CAP + 1)
        return db.session.scalar(select(func.count()).select_from(limited.subquery()))

    counts = {
        "tenants": count(Tenant),
        "users": count(User),
        "teams": count(Team),
        "categories": count(Category),
        "rules": count(RoutingRule),
        "outbox_pending": count(OutboxMessage, OutboxMessage.status == "pending"),
        "outbox_failed": count(OutboxMessage, OutboxMessage.status == "failed"),
    }
    return render_template("manage/index.html", counts=counts, cap=INDEX_COUNT_CAP)


# --- tenants ---------------------------------------------------------------------------------

@bp.route("/tenants")
def tenants():
    """List the tenants."""
    page = _page(select(Tenant).order_by(Tenant.name, Tenant.id))
    return render_template("manage/tenants.html", page=page)


def _tenant_form(tenant: Tenant | None):
    form = TenantForm(data={"slug": tenant.slug, "name": tenant.name, "active": tenant.active,
                            "mail_domains": "\n".join(mail_domains.domains_of(tenant)),
                            "mail_unknown_senders": tenant.mail_unknown_senders} if tenant else None)
    template = "manage/tenant_form.html"
    if not form.validate_on_submit():
        return _show(form, template, tenant=tenant)
    try:
        # The mail domains are checked before anything is saved: a refusal leaves the tenant unchanged.
        domains = mail_domains.parse_domains(form.mail_domains.data)
        mail_domains.check_domains(tenant, domains)
        policy = mail_domains.check_policy(form.mail_unknown_senders.data)
        saved = admin.save_tenant(tenant, slug=form.slug.data, name=form.name.data, active=form.active.data)
        mail_domains.save_mail_settings(saved, domains, policy)
    except DomainError as exc:
        return _refused(form, exc, template, tenant=tenant)
    flash(_("Mandant „%(name)s“ gespeichert.", name=saved.name), "success")
    return redirect(url_for("manage.tenants"))


@bp.route("/tenants/new", methods=["GET", "POST"])
def tenant_new():
    """Create a tenant."""
    return _tenant_form(None)


@bp.route("/tenants/<int(max=2147483647):tenant_id>", methods=["GET", "POST"])
def tenant_edit(tenant_id: int):
    """Edit a tenant."""
    return _tenant_form(db.get_or_404(Tenant, tenant_id))


# --- users -----------------------------------------------------------------------------------

@bp.route("/users")
def users():
    """List the accounts, filtered by role, tenant and text, paginated."""
    tenants_list = _tenants()
    form = UserFilterForm(formdata=request.args)
    form.fill_choices(tenants_list)
    query = select(User).options(joinedload(User.tenant), selectinload(User.teams))
    role = request.args.get("role")
    if role in ROLES:
        query = query.where(User.role == role)
    tenant = request.args.get("tenant", "")
    if tenant == "ksm":
        query = query.where(User.tenant_id.is_(None))
    elif tenant:
        query = query.where(User.tenant_id == optional_id(tenant, _("Diesen Mandanten gibt es nicht.")))
    text = (request.args.get("text") or "").strip().lower()[:200]
    if text:
        query = query.where(people.name_or_email_contains(text))
    # No COUNT over every account per page view: the list counts up to people.COUNT_CAP rows.
    page = people.capped_page(query.order_by(User.name, User.id), page_number(request.args.get("page")),
                              current_app.config["PAGE_SIZE"])
    return render_template("manage/users.html", page=page, form=form)


def _user_form(user: User | None):
    form = UserForm(data={
        "name": user.name, "email": user.email, "phone": user.phone or "", "role": user.role,
        "tenant": str(user.tenant_id or ""), "teams": [str(t.id) for t in user.teams], "active": user.active,
    } if user else {"role": "requester"})
    teams_offered = list(db.session.scalars(select(Team).order_by(Team.name)))
    form.fill_choices(_tenants(), teams_offered)
    template = "manage/user_form.html"
    if not form.validate_on_submit():
        return _show(form, template, user=user)
    try:
        saved = admin.save_account(
            user, actor=current_user._get_current_object(), email=form.email.data, name=form.name.data, role=form.role.data,
            tenant_id=form.tenant.data, team_ids=form.teams.data if form.role.data in STAFF_ROLES else [],
            password=form.password.data, active=form.active.data, phone=form.phone.data,
        )
    except DomainError as exc:
        return _refused(form, exc, template, user=user)
    if saved.id == current_user.id and form.password.data:
        from helpdesk.auth.routes import renew_own_session

        renew_own_session(saved)  # a new password ended every session of the admin: keep this one
    flash(_("Konto „%(name)s“ gespeichert.", name=saved.name), "success")
    return redirect(url_for("manage.users"))


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    """Create an account."""
    return _user_form(None)


@bp.route("/users/<int(max=2147483647):user_id>", methods=["GET", "POST"])
def user_edit(user_id: int):
    """Edit an account (the password only when a new one is given)."""
    return _user_form(db.get_or_404(User, user_id))


# --- teams -----------------------------------------------------------------------------------

@bp.route("/teams")
def teams():
    """List the teams with their lead and member count."""
    members = (
        select(func.count()).select_from(team_members).where(team_members.c.team_id == Team.id)
        .correlate(Team).scalar_subquery()
    )
    rows = db.session.execute(
        select(Team, members).options(joinedload(Team.lead)).order_by(Team.name)
    ).all()
    return render_template("manage/teams.html", rows=rows)


def _team_form(team: Team | None):
    form = TeamForm(data={
        "slug": team.slug, "name": team.name, "email": team.email or "", "lead": str(team.lead_id or ""),
        "is_fallback": team.is_fallback, "active": team.active,
    } if team else None)
    form.fill_choices(admin.staff_users(include=team.lead if team else None))
    template = "manage/team_form.html"
    if not form.validate_on_submit():
        return _show(form, template, team=team)
    try:
        saved = admin.save_team(
            team, slug=form.slug.data, name=form.name.data, email=form.email.data, lead_id=form.lead.data,
            is_fallback=form.is_fallback.data, active=form.active.data,
        )
    except DomainError as exc:
        return _refused(form, exc, template, team=team)
    flash(_("Team „%(name)s“ gespeichert.", name=saved.name), "success")
    return redirect(url_for("manage.teams"))


@bp.route("/teams/new", methods=["GET", "POST"])
def team_new():
    """Create a team."""
    return _team_form(None)


@bp.route("/teams/<int(max=2147483647):team_id>", methods=["GET", "POST"])
def team_edit(team_id: int):
    """Edit a team."""
    return _team_form(db.get_or_404(Team, team_id))


# --- categories ------------------------------------------------------------------------------

@bp.route("/categories")
def categories():
    """Show the service catalog as a tree."""
    return render_template("manage/categories.html", tree=admin.category_tree())


def _category_form(category: Category | None):
    form = CategoryForm(data={
        "name": category.name, "parent": str(category.parent_id or ""), "description": category.description or "",
        "position": str(category.position), "active": category.active,
    } if category else {"parent": request.args.get("parent", "")})
    form.fill_choices(admin.top_level_categories(exclude=category))
    template = "manage/category_form.html"
    if not form.validate_on_submit():
        return _show(form, template, category=category)
    try:
        saved = admin.save_category(
            category, name=form.name.data, parent_id=form.parent.data, description=form.description.data,
            position=form.position.data, active=form.active.data,
        )
    except DomainError as exc:
        return _refused(form, exc, template, category=category)
    flash(_("Kategorie „%(name)s“ gespeichert.", name=saved.full_name), "success")
    return redirect(url_for("manage.categories"))


@bp.route("/categories/new", methods=["GET", "POST"])
def category_new():
    """Create a catalog entry (?parent=<id> preselects the parent)."""
    return _category_form(None)


@bp.route("/categories/<int(max=2147483647):category_id>", methods=["GET", "POST"])
def category_edit(category_id: int):
    """Edit a catalog entry."""
    return _category_form(db.get_or_404(Category, category_id))


# --- routing rules ---------------------------------------------------------------------------

def _route_test_form() -> RouteTestForm:
    form = RouteTestForm(formdata=request.args if request.args else None)
    form.fill_choices(_tenants(), _tree_order(admin.category_tree()))
    return form


@bp.route("/rules")
def rules():
    """List the routing rules in the order they are tried, each said in plain words; flag hidden ones."""
    rows = routing.ordered_rules()
    fallback = db.session.scalar(select(Team).where(Team.is_fallback.is_(True), Team.active.is_(True)))
    return render_template(
        "manage/rules.html", rules=rows, summary=admin.rule_summary, fallback=fallback,
        test_form=_route_test_form(), hidden_by=routing.shadowing(rows),
    )


def _warn_about_shadowing(saved: RoutingRule) -> None:
    """Flash when the saved rule can never fire, or hides later rules (it is saved all the same)."""
    rules = routing.ordered_rules()
    hidden_by = routing.shadowing(rules)
    earlier = hidden_by.get(saved.id)
    if earlier is not None:
        flash(_("Die Regel „%(name)s“ greift nie: Die frühere Regel „%(earlier)s“ (Reihenfolge %(position)d) "
                "erfasst schon alle ihre Tickets. Verschieben Sie sie nach oben oder ändern Sie die Bedingungen.",
                name=saved.name, earlier=earlier.name, position=earlier.position), "warning")
    hidden = [r.name for r in rules if hidden_by.get(r.id) is not None and hidden_by[r.id].id == saved.id]
    if hidden:
        flash(_("Die Regel „%(name)s“ verdeckt die späteren Regeln: %(rules)s. Diese greifen nie.",
                name=saved.name, rules=", ".join(f"„{n}“" for n in hidden)), "warning")


@bp.route("/rules/test")
def rule_test():
    """Tell which team and which rule a ticket with the chosen tenant, category and priority gets."""
    form = _route_test_form()
    result, status = None, 200
    if request.args:
        try:
            team, rule = admin.preview_route(form.tenant.data, form.category.data, form.priority.data)
        except DomainError as exc:
            field = getattr(form, exc.field, None) if exc.field else None
            if field is not None:
                field.errors = [*field.errors, exc.message]
            else:
                form.form_errors.append(exc.message)
            status = 422
        else:
            result = {"team": team, "rule": rule, "summary": admin.rule_summary(rule) if rule else None}
    return render_template("manage/rule_test.html", form=form, result=result), status


def _rule_form(rule: RoutingRule | None):
    form = RuleForm(data={
        "name": rule.name, "position": str(rule.position), "tenant": str(rule.tenant_id or ""),
        "category": str(rule.category_id or ""), "priority": str(rule.priority or ""), "team": str(rule.team_id),
        "active": rule.active,
    } if rule else {"position": str(admin.next_rule_position())})
    teams_offered = [t for t in db.session.scalars(select(Team).order_by(Team.name))
                     if t.active or (rule is not None and t.id == rule.team_id)]
    form.fill_choices(_tenants(), _tree_order(admin.category_tree()), teams_offered)
    template = "manage/rule_form.html"
    if not form.validate_on_submit():
        return _show(form, template, rule=rule)
    try:
        saved = admin.save_rule(
            rule, name=form.name.data, team_id=form.team.data, tenant_id=form.tenant.data,
            category_id=form.category.data, priority=form.priority.data, position=form.position.data,
            active=form.active.data,
        )
    except DomainError as exc:
        return _refused(form, exc, template, rule=rule)
    flash(_("Regel „%(name)s“ gespeichert.", name=saved.name), "success")
    _warn_about_shadowing(saved)
    return redirect(url_for("manage.rules"))


@bp.route("/rules/new", methods=["GET", "POST"])
def rule_new():
    """Create a routing rule."""
    return _rule_form(None)


@bp.route("/rules/<int(max=2147483647):rule_id>", methods=["GET", "POST"])
def rule_edit(rule_id: int):
    """Edit a routing rule."""
    return _rule_form(db.get_or_404(RoutingRule, rule_id))


@bp.route("/rules/<int(max=2147483647):rule_id>/delete", methods=["POST"])
def rule_delete(rule_id: int):
    """Delete a routing rule."""
    rule = db.get_or_404(RoutingRule, rule_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    name = rule.name
    admin.delete_rule(rule)
    flash(_("Regel „%(name)s“ gelöscht.", name=name), "success")
    return redirect(url_for("manage.rules"))


@bp.route("/rules/<int(max=2147483647):rule_id>/move", methods=["POST"])
def rule_move(rule_id: int):
    """Move a routing rule one place up or down in the order it is tried."""
    rule = db.get_or_404(RoutingRule, rule_id)
    direction = request.form.get("direction")
    if not ConfirmForm().validate_on_submit() or direction not in ("up", "down"):
        abort(400)
    name = rule.name
    if routing.move_rule(rule, -1 if direction == "up" else 1):
        flash(_("Regel „%(name)s“ nach oben verschoben.", name=name) if direction == "up"
              else _("Regel „%(name)s“ nach unten verschoben.", name=name), "success")
    else:
        flash(_("Regel „%(name)s“ steht schon ganz oben.", name=name) if direction == "up"
              else _("Regel „%(name)s“ steht schon ganz unten.", name=name), "info")
    return redirect(url_for("manage.rules", _anchor=f"rule-{rule_id}"))


# --- outbox ----------------------------------------------------------------------------------

@bp.route("/outbox")
def outbox():
    """List the emails of the outbox, newest first, filtered by status."""
    form = OutboxFilterForm(formdata=request.args)
    query = select(OutboxMessage)
    status = request.args.get("status")
    if status in OUTBOX_STATUSES:
        query = query.where(OutboxMessage.status == status)
    page = _page(query.order_by(OutboxMessage.id.desc()))
    return render_template(
        "manage/outbox.html", page=page, form=form, status_labels=OUTBOX_STATUS_LABELS,
        smtp_configured=bool(current_app.config.get("SMTP_HOST")),
    )


@bp.route("/outbox/<int(max=2147483647):message_id>")
def outbox_message(message_id: int):
    """Show one email with its full text."""
    message = db.get_or_404(OutboxMessage, message_id)
    return render_template(
        "manage/outbox_message.html", message=message, status_labels=OUTBOX_STATUS_LABELS,
    )


@bp.route("/outbox/<int(max=2147483647):message_id>/retry", methods=["POST"])
def outbox_retry(message_id: int):
    """Put a pending or failed email back in line for the next delivery run."""
    message = db.get_or_404(OutboxMessage, message_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        admin.retry_email(message, clock.utcnow())
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("Die E-Mail an %(recipient)s wird beim nächsten Lauf erneut versendet.",
                recipient=message.recipient), "success")
    back_to_list = request.form.get("next") == url_for("manage.outbox")  # the only other page allowed
    return redirect(url_for("manage.outbox") if back_to_list else url_for("manage.outbox_message", message_id=message.id))
