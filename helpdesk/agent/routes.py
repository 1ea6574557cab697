"""Routes of the agent blueprint: the KSM queues, the ticket workspace and filing tickets by phone.

Access rule: every /agent URL needs a login (anonymous visitors go to the login page) and a KSM
staff role; any tenant user (requester, tenant manager) gets 403 on every /agent URL, also on
ticket and file URLs, so the answer never depends on whether a ticket exists.
"""
from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from helpdesk import clock
from helpdesk.agent import bp
from helpdesk.agent.forms import (
    AssignForm, CategoryForm, NewTicketForm, PriorityForm, QueueFilterForm, ReplyForm, StatusForm, TakeForm,
    TransferForm,
)
from helpdesk.extensions import db, login_manager
from helpdesk.models import Ticket, User
from helpdesk.services import queues, tickets
from helpdesk.services import watchers as watchers_service
from helpdesk.services import people
from helpdesk.services import sla as sla_service
from helpdesk.services import search as search_service
from helpdesk.services.attachments import send_attachment, uploads_from_request
from helpdesk.services.mail import review as mail_review
from helpdesk.services.errors import DomainError, Forbidden, NotFound
from helpdesk.services.permissions import get_attachment, get_ticket
from helpdesk.services.queues import QueueFilters
from helpdesk.services.ids import as_id, page_number

FILTER_NAMES = ("status", "priority", "tenant", "category", "team", "text")
TAB_LABELS = {
    "team": _l("Mein Team"),
    "unassigned": _l("Nicht zugewiesen"),
    "mine": _l("Mir zugewiesen"),
    "open": _l("Alle offenen"),
    "all": _l("Alle"),
}


@bp.before_request
def require_staff():
    """Send anonymous visitors to the login page; refuse everyone who does not work for KSM."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(403)
    return None


def _queue_url(**changes) -> str:
    """Return the queue URL with the current arguments, some changed (None drops one), back on page 1."""
    args = {key: value for key, value in request.args.items() if key not in ("page", "after", "before")}
    args.update(changes)
    return url_for("agent.queue", **{key: value for key, value in args.items() if value not in (None, "")})


@bp.route("/")
@bp.route("/queue")
def queue():
    """List the tickets of one tab, filtered, sorted, paged by keyset ("Weiter" / "Zurück")."""
    tab = request.args.get("tab")
    tab = tab if tab in queues.TABS else queues.default_tab(current_user)
    sort = request.args.get("sort")
    sort = sort if sort in queues.SORTS else queues.DEFAULT_SORT
    form = QueueFilterForm(formdata=request.args)
    form.fill_choices(queues.tenants(), queues.active_categories(), queues.active_teams())
    filters = QueueFilters.clean(**{name: request.args.get(name) for name in FILTER_NAMES})
    page_number(request.args.get("page"))  # old numbered links: a malformed one still gets its clear 400/404
    page = queues.queue_page(
        current_user, tab, filters, sort, after=request.args.get("after") or None,
        before=request.args.get("before") or None, per_page=current_app.config["PAGE_SIZE"],
    )
    return render_template(
        "agent/queue.html", page=page, form=form, tab=tab, sort=sort, tabs=queues.TABS, count_cap=queues.COUNT_CAP,
        sla_badges=sla_service.badges(page.items, clock.utcnow()),
        tab_labels=TAB_LABELS, queue_url=lambda **changes: _queue_url(**{"tab": tab, **changes}),
    )


def _ticket_page(ticket: Ticket, status: int = 200, error: str | None = None, **bound_forms):
    """Render the ticket workspace; forms not given are fresh, a failed one keeps its input."""
    transitions = tickets.STAFF_TRANSITIONS[ticket.status]
    forms = {
        "reply_form": ReplyForm(formdata=None),
        "take_form": TakeForm(formdata=None),
        "assign_form": AssignForm(formdata=None, assignee_id=str(ticket.assignee_id or "")),
        "status_form": StatusForm(formdata=None),
        "priority_form": PriorityForm(formdata=None, priority=str(ticket.priority)),
        "category_form": CategoryForm(formdata=None, category_id=str(ticket.category_id or "")),
        "transfer_form": TransferForm(formdata=None, team_id=str(ticket.team_id)),
    }
    forms.update(bound_forms)
    categories, teams = queues.active_categories(), queues.active_teams()
    forms["reply_form"].fill_choices(ticket, transitions)
    forms["assign_form"].fill_choices(queues.team_members_for_assignment(ticket))
    forms["status_form"].fill_choices(transitions)
    forms["category_form"].fill_choices(categories)
    forms["transfer_form"].fill_choices(teams)
    return render_template(
        "agent/ticket.html", ticket=ticket, error=error,
        comments=queues.ticket_thread(current_user, ticket),
        attachments=queues.ticket_attachments(current_user, ticket),
        events=queues.ticket_history(current_user, ticket),
        sla_clocks=sla_service.clock_views(ticket, clock.utcnow()),
        sla_badge=sla_service.badge(ticket, clock.utcnow()),
        watchers=watchers_service.watchers_of(ticket),
        originals=mail_review.originals(current_user, ticket),
        **forms,
    ), status


@bp.route("/tickets/<number>")
def ticket(number: str):
    """Show a ticket with all its facts, the full thread, files, history and the action forms."""
    return _ticket_page(get_ticket(current_user, number))


def _act(number: str, form_class, form_name: str, fields: dict[str, str], action, success: str):
    """Run one ticket action: validate the form, call the service, redirect; on refusal re-render (422)."""
    ticket = get_ticket(current_user, number)
    form = form_class()
    if form.validate():
        try:
            action(ticket, form, clock.utcnow())
        except (NotFound, Forbidden):
            raise
        except DomainError as exc:
            db.session.rollback()
            field = getattr(form, fields.get(exc.field or "", ""), None)
            if field is not None:
                field.errors.append(exc.message)
            return _ticket_page(ticket, 422, error=exc.message, **{form_name: form})
        flash(success, "success")
        return redirect(url_for("agent.ticket", number=ticket.number))
    return _ticket_page(ticket, 422, error=_("Bitte prüfen Sie Ihre Eingaben."), **{form_name: form})


@bp.route("/tickets/<number>/reply", methods=["POST"])
def reply(number: str):
    """Add a public reply or an internal note, optionally changing the status."""

    def action(ticket, form, now):
        tickets.reply(
            current_user, ticket, body=form.body.data, now=now, internal=form.visibility.data == "internal",
            uploads=uploads_from_request(request.files.getlist(form.attachments.name)),
            new_status=form.new_status.data or None,
        )

    internal = request.form.get("visibility") == "internal"
    return _act(number, ReplyForm, "reply_form", {"body": "body", "status": "new_status", "attachments": "attachments"},
                action, _("Die interne Notiz wurde gespeichert.") if internal else _("Die Antwort wurde gesendet."))


@bp.route("/tickets/<number>/take", methods=["POST"])
def take(number: str):
    """Assign the ticket to the current user."""
    return _act(number, TakeForm, "take_form", {},
                lambda ticket, form, now: tickets.assign(current_user, ticket, current_user, now),
                _("Sie bearbeiten dieses Ticket jetzt."))


@bp.route("/tickets/<number>/assign", methods=["POST"])
def assign(number: str):
    """Assign the ticket to a member of its team, or to nobody."""

    def action(ticket, form, now):
        raw = form.assignee_id.data or ""
        assignee = db.session.get(User, as_id(raw)) if as_id(raw) else None
        if raw and assignee is None:
            raise DomainError(_("Diese Person gibt es nicht."), field="assignee")
        tickets.assign(current_user, ticket, assignee, now)

    return _act(number, AssignForm, "assign_form", {"assignee": "assignee_id"}, action,
                _("Die Zuweisung wurde gespeichert."))


@bp.route("/tickets/<number>/status", methods=["POST"])
def status(number: str):
    """Change the status by hand."""
    return _act(number, StatusForm, "status_form", {"status": "status"},
                lambda ticket, form, now: tickets.change_status(current_user, ticket, form.status.data, now),
                _("Der Status wurde geändert."))


@bp.route("/tickets/<number>/priority", methods=["POST"])
def priority(number: str):
    """Override the priority with a reason."""
    return _act(number, PriorityForm, "priority_form", {"priority": "priority"},
                lambda ticket, form, now: tickets.change_priority(
                    current_user, ticket, form.priority.data, now, reason=form.reason.data),
                _("Die Priorität wurde geändert."))


@bp.route("/tickets/<number>/category", methods=["POST"])
def category(number: str):
    """Move the ticket to another catalog entry."""
    return _act(number, CategoryForm, "category_form", {"category": "category_id"},
                lambda ticket, form, now: tickets.change_category(current_user, ticket, form.category_id.data, now),
                _("Die Kategorie wurde geändert."))


@bp.route("/tickets/<number>/transfer", methods=["POST"])
def transfer(number: str):
    """Hand the ticket to another team's queue."""
    return _act(number, TransferForm, "transfer_form", {"team": "team_id"},
                lambda ticket, form, now: tickets.transfer(
                    current_user, ticket, form.team_id.data, now, note=(form.note.data or "").strip() or None),
                _("Das Ticket wurde an das andere Team übergeben."))


@bp.route("/people")
def people_lookup():
    """Answer the type-ahead: up to 20 requesters matching ?q= (name, email or authority), optionally ?tenant=."""
    q = (request.args.get("q") or "")[:200]
    found, more = people.search_requesters(q, request.args.get("tenant"))
    return jsonify(people=[people.as_json(user) for user in found], more=more)


NEW_TICKET_FIELDS = {"requester": "requester_id", "category": "category_id"}


@bp.route("/tickets/new", methods=["GET", "POST"])
def new_ticket():
    """File a ticket on behalf of a requester who phoned or wrote; "Person suchen" re-renders with matches."""
    form = NewTicketForm()
    if request.method == "GET":  # /agent/tickets/new?q=…&tenant=… runs the search step as well
        form.q.data = (request.args.get("q") or "")[:200]
        form.tenant.data = request.args.get("tenant") or ""
    form.fill_choices(people.active_tenants(), queues.active_categories())
    searching = request.method == "GET" or request.form.get("action") == "search"
    error = None
    if not searching and form.validate():
        try:
            requester = people.chosen_requester(
                form.requester_id.data, name=form.new_name.data, email=form.new_email.data,
                tenant_id=form.new_tenant_id.data,
            )
            ticket = tickets.create_ticket(
                current_user, requester=requester, channel=form.channel.data, subject=form.subject.data,
                description=form.description.data, category_id=form.category_id.data, impact=form.impact.data,
                urgency=form.urgency.data, now=clock.utcnow(),
                uploads=uploads_from_request(request.files.getlist(form.attachments.name)),
            )
        except (NotFound, Forbidden):
            raise
        except DomainError as exc:
            db.session.rollback()
            field = getattr(form, NEW_TICKET_FIELDS.get(exc.field or "", exc.field or ""), None)
            if field is not None and hasattr(field, "errors"):
                field.errors = [*field.errors, exc.message]
            error = exc.message
        else:
            flash(_("Das Ticket %(number)s wurde erfasst.", number=ticket.number), "success")
            return redirect(url_for("agent.ticket", number=ticket.number))
    elif not searching:
        error = _("Bitte prüfen Sie Ihre Eingaben.")
    asked = bool(form.q.data) if request.method == "GET" else searching
    step = people.search_step(form.q.data, form.tenant.data, form.requester_id.data, asked=asked)
    if step.searched and not step.matches and not (form.new_name.data or form.new_email.data):
        # Nobody found: what was searched for is most likely the new caller's address or name.
        guess = " ".join((form.q.data or "").split())
        (form.new_email if "@" in guess else form.new_name).data = guess
        form.new_tenant_id.data = form.tenant.data
    status_code = 200 if searching else 422
    return render_template("agent/new_ticket.html", form=form, error=error, step=step), status_code


@bp.route("/attachments/<int(max=2147483647):attachment_id>")
def attachment(attachment_id: int):
    """Download a file of a ticket (KSM staff also get internal files)."""
    return send_attachment(get_attachment(current_user, attachment_id))


@bp.route("/search")
def search():
    """Search all tickets by words, number, requester or authority (internal notes included), best first."""
    query = (request.args.get("q") or "").strip()[:200]
    hits = search_service.search(current_user, query, limit=current_app.config["PAGE_SIZE"]) if query else []
    return render_template("agent/search.html", query=query, hits=hits)
