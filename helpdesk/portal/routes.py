"""Routes of the portal blueprint: authority employees file and follow their tickets."""
from __future__ import annotations

from functools import wraps

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload

from helpdesk import clock
from helpdesk.extensions import db
from helpdesk.models import Category, Ticket
from helpdesk.models.tickets import OPEN_STATUSES
from helpdesk.models.users import TENANT_ROLES
from helpdesk.portal import bp
from helpdesk.portal.forms import ConfirmForm, NewTicketForm, ReopenForm, ReplyForm, WatcherForm, WatcherRemoveForm
from helpdesk.services import people, permissions, queues, tickets, watchers
from helpdesk.services import search as search_service
from helpdesk.services.attachments import send_attachment, uploads_from_request
from helpdesk.services.errors import DomainError
from helpdesk.services.ids import page_number

# Filter tabs of the ticket list: key -> statuses shown (None: all).
STATUS_TABS = {"open": OPEN_STATUSES, "done": ("resolved", "closed"), "all": None}


def tenant_role_required(view):
    """Let only authority employees in; KSM staff are sent to their workspace."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user.is_staff:
            return redirect(url_for("agent.queue"))
        if current_user.role not in TENANT_ROLES:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _apply_error(form, error: DomainError) -> None:
    """Show a service's refusal at the named field, or above the form."""
    db.session.rollback()  # nothing of a refused request may stay in the session
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


@bp.route("/")
@login_required
@tenant_role_required
def index():
    """Send visitors of /portal/ to their ticket list."""
    return redirect(url_for("portal.my_tickets"))


@bp.route("/tickets")
@login_required
@tenant_role_required
def my_tickets():
    """List the user's tickets (a tenant manager: optionally the whole authority's), newest activity first."""
    status_tab = request.args.get("status", "open")
    status_tab = status_tab if status_tab in STATUS_TABS else "open"
    is_manager = current_user.role == "tenant_manager"
    scope = request.args.get("scope", "tenant" if is_manager else "mine")
    scope = scope if is_manager and scope in ("mine", "tenant") else "mine"
    text = (request.args.get("q") or "").strip()[:200]

    query = permissions.ticket_scope(current_user)
    if scope == "mine":
        query = query.where(permissions.own_or_watched(current_user))
    if STATUS_TABS[status_tab]:
        query = query.where(queues.status_in(STATUS_TABS[status_tab]))
    if text:
        query = query.where(search_service.text_condition(current_user, text))
    page_number(request.args.get("page"))  # old numbered links: a malformed one still gets its clear 400/404
    # A tenant manager's list spans the whole authority: keyset pages and a capped count, as the queues.
    page = queues.keyset_page(
        query, "-updated", after=request.args.get("after") or None, before=request.args.get("before") or None,
        per_page=current_app.config["PAGE_SIZE"],
        options=(selectinload(Ticket.category).selectinload(Category.parent), selectinload(Ticket.requester)),
    )
    return render_template(
        "portal/my_tickets.html", page=page, status_tab=status_tab, scope=scope, text=text,
        is_manager=is_manager, show_requester=scope == "tenant", count_cap=queues.COUNT_CAP,
        list_url=_list_url,
    )


def _list_url(**changes) -> str:
    """Return the ticket list URL with the current arguments and a cursor (after= or before=)."""
    args = {key: value for key, value in request.args.items() if key not in ("page", "after", "before")}
    args.update(changes)
    return url_for("portal.my_tickets", **args)


@bp.route("/tickets/new", methods=["GET", "POST"])
@login_required
@tenant_role_required
def new_ticket():
    """Show the report form; file the ticket; on a refusal show the form again with the input kept."""
    form = NewTicketForm()
    form.fill_choices(queues.active_categories())
    if form.validate_on_submit():
        try:
            ticket = tickets.create_ticket(
                current_user,
                subject=form.subject.data,
                description=form.description.data,
                category_id=form.category.data,
                impact=form.impact.data,
                urgency=form.urgency.data,
                uploads=uploads_from_request(request.files.getlist(form.attachments.name)),
                now=clock.utcnow(),
            )
        except DomainError as error:
            _apply_error(form, error)
        else:
            flash(_("Ihr Ticket %(number)s wurde erfasst. Eine Bestätigung erhalten Sie per E-Mail.",
                    number=ticket.number), "success")
            return redirect(url_for("portal.ticket", number=ticket.number))
    if request.method == "POST":
        return render_template("portal/new_ticket.html", form=form, files_dropped=_had_files()), 422
    return render_template("portal/new_ticket.html", form=form, files_dropped=False)


def _had_files() -> bool:
    """Tell whether the refused request carried files (browsers cannot keep them in the form)."""
    return any(f and f.filename for f in request.files.getlist("attachments"))


def _render_ticket(ticket: Ticket, *, reply_form: ReplyForm | None = None, reopen_form: ReopenForm | None = None,
                   error: str | None = None, status: int = 200, watcher_form: WatcherForm | None = None,
                   watcher_search: tuple | None = None):
    """Render the ticket page with the public thread, files, watchers and history."""
    attachments = queues.ticket_attachments(current_user, ticket)
    watcher_matches, watcher_more = watcher_search or ([], False)
    return render_template(
        "portal/ticket.html",
        ticket=ticket,
        comments=queues.ticket_thread(current_user, ticket),
        attachments=attachments,
        all_attachments=[a for group in attachments.values() for a in group],
        events=queues.ticket_history(current_user, ticket),
        reply_form=reply_form or ReplyForm(formdata=None),
        reopen_form=reopen_form or ReopenForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None),
        error=error,
        files_dropped=error is not None and _had_files(),
        auto_close_days=current_app.config["AUTO_CLOSE_DAYS"],
        watchers=watchers.watchers_of(ticket),
        can_manage_watchers=watchers.can_manage(current_user, ticket),
        watcher_form=watcher_form or WatcherForm(formdata=None),
        watcher_remove_form=WatcherRemoveForm(formdata=None),
        watcher_matches=watcher_matches,
        watcher_more=watcher_more,
        watcher_searched=watcher_search is not None,
        max_watchers=watchers.MAX_WATCHERS,
    ), status


@bp.route("/tickets/<number>")
@login_required
@tenant_role_required
def ticket(number: str):
    """Show one ticket as the requester sees it (internal notes and files never)."""
    return _render_ticket(permissions.get_ticket(current_user, number))


@bp.route("/tickets/<number>/reply", methods=["POST"])
@login_required
@tenant_role_required
def reply(number: str):
    """Add the requester's message; a pending or resolved ticket goes back to KSM."""
    ticket = permissions.get_ticket(current_user, number)
    form = ReplyForm()
    if form.validate_on_submit():
        try:
            tickets.reply(
                current_user, ticket, body=form.body.data,
                uploads=uploads_from_request(request.files.getlist(form.attachments.name)), now=clock.utcnow(),
            )
        except DomainError as error:
            _apply_error(form, error)
        else:
            flash(_("Ihre Nachricht wurde gesendet."), "success")
            return redirect(url_for("portal.ticket", number=number) + "#thread")
    return _render_ticket(ticket, reply_form=form, error=_first_form_error(form), status=422)


@bp.route("/tickets/<number>/reopen", methods=["POST"])
@login_required
@tenant_role_required
def reopen(number: str):
    """Reopen a resolved ticket, with the optional reason as a message."""
    ticket = permissions.get_ticket(current_user, number)
    form = ReopenForm()
    if form.validate_on_submit():
        try:
            tickets.reopen(current_user, ticket, now=clock.utcnow(), reason=form.reason.data)
        except DomainError as error:
            _apply_error(form, error)
        else:
            flash(_("Das Ticket wurde wiedereröffnet. Wir kümmern uns erneut darum."), "success")
            return redirect(url_for("portal.ticket", number=number))
    # If the ticket is no longer resolved the reopen form is gone: keep the text in the reply box.
    reply_form = ReplyForm(formdata=None, body=form.reason.data) if ticket.status != "resolved" else None
    return _render_ticket(ticket, reply_form=reply_form, reopen_form=form, error=_first_form_error(form), status=422)


@bp.route("/tickets/<number>/confirm", methods=["POST"])
@login_required
@tenant_role_required
def confirm(number: str):
    """Confirm the solution of a resolved ticket; it is closed."""
    ticket = permissions.get_ticket(current_user, number)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            tickets.confirm_resolution(current_user, ticket, now=clock.utcnow())
        except DomainError as error:
            _apply_error(form, error)
        else:
            flash(_("Vielen Dank für Ihre Bestätigung. Das Ticket ist jetzt geschlossen."), "success")
            return redirect(url_for("portal.ticket", number=number))
    return _render_ticket(ticket, error=_first_form_error(form), status=422)


def _ticket_whose_watchers_user_manages(number: str):
    """Return the ticket if the user may see it (else 404) and add or look up its watchers (else 403)."""
    ticket = permissions.get_ticket(current_user, number)
    if not watchers.can_manage(current_user, ticket):
        abort(403)
    return ticket


@bp.route("/tickets/<number>/people")
@login_required
@tenant_role_required
def watcher_lookup(number: str):
    """Answer the type-ahead of the watchers card: colleagues of the ticket's authority matching ?q=."""
    ticket = _ticket_whose_watchers_user_manages(number)
    found, more = watchers.search_colleagues(ticket, (request.args.get("q") or "")[:200])
    return jsonify(people=[people.as_json(user) for user in found], more=more)


@bp.route("/tickets/<number>/watchers", methods=["POST"])
@login_required
@tenant_role_required
def add_watcher(number: str):
    """Search for a colleague ("Person suchen", without JavaScript) or add the chosen one as a watcher."""
    ticket = _ticket_whose_watchers_user_manages(number)
    form = WatcherForm()
    if not form.validate_on_submit():
        return _render_ticket(ticket, watcher_form=form, error=_first_form_error(form) or
                              _("Bitte laden Sie die Seite neu und versuchen Sie es noch einmal."), status=400)
    if request.form.get("action") == "search":
        if not people.is_searchable(form.q.data):
            form.q.errors = [_("Bitte geben Sie mindestens 2 Zeichen ein.")]
            return _render_ticket(ticket, watcher_form=form, watcher_search=([], False), status=422)
        found = watchers.search_colleagues(ticket, (form.q.data or "")[:200])
        return _render_ticket(ticket, watcher_form=form, watcher_search=found)
    try:
        user = watchers.add_from_form(ticket, form.user_id.data, actor=current_user, now=clock.utcnow())
    except DomainError as error:
        _apply_error(form, error)
        return _render_ticket(ticket, watcher_form=form, status=422)
    flash(_("%(name)s beobachtet das Ticket jetzt und erhält seine Neuigkeiten per E-Mail.", name=user.name),
          "success")
    return redirect(url_for("portal.ticket", number=number) + "#watchers")


@bp.route("/tickets/<number>/watchers/remove", methods=["POST"])
@login_required
@tenant_role_required
def remove_watcher(number: str):
    """Stop a person watching the ticket (the requester, the authority's manager, or the watcher themself)."""
    ticket = permissions.get_ticket(current_user, number)
    form = WatcherRemoveForm()
    if not form.validate_on_submit():
        return _render_ticket(ticket, error=_("Bitte laden Sie die Seite neu und versuchen Sie es noch einmal."),
                              status=400)
    leaving = str(form.user_id.data or "").strip() == str(current_user.id)
    if not leaving and not watchers.can_manage(current_user, ticket):
        abort(403)
    try:
        user = watchers.remove_from_form(ticket, form.user_id.data, actor=current_user, now=clock.utcnow())
    except DomainError as error:
        db.session.rollback()
        return _render_ticket(ticket, error=error.message, status=422)
    if user.id == current_user.id:
        flash(_("Sie beobachten das Ticket nicht mehr."), "success")
        if not watchers.can_manage(current_user, ticket):
            return redirect(url_for("portal.my_tickets"))  # a requester no longer sees a ticket they stopped watching
    else:
        flash(_("%(name)s beobachtet das Ticket nicht mehr.", name=user.name), "success")
    return redirect(url_for("portal.ticket", number=number) + "#watchers")


def _first_form_error(form) -> str | None:
    """Return the message to show at the top of the ticket page (form-wide errors only)."""
    return form.form_errors[0] if form.form_errors else None


@bp.route("/attachments/<int(max=2147483647):attachment_id>")
@login_required
@tenant_role_required
def attachment(attachment_id: int):
    """Send a file of a visible ticket as a download; 404 for anything not visible."""
    return send_attachment(permissions.get_attachment(current_user, attachment_id))


@bp.route("/search")
@login_required
@tenant_role_required
def search():
    """Search the tickets the user's list shows (public text only), best first, with the matching passage."""
    query = (request.args.get("q") or "").strip()[:200]
    hits = search_service.search(current_user, query, limit=current_app.config["PAGE_SIZE"]) if query else []
    return render_template("portal/search.html", query=query, hits=hits)
