"""Routes of the review queue "Posteingang prüfen" and the .eml downloads of imported mail (KSM staff only).

The agent blueprint's before_request already refuses everyone who does not work for KSM (403).
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from helpdesk import clock
from helpdesk.agent import bp
from helpdesk.agent.mail_forms import DiscardForm, MailDecisionForm
from helpdesk.extensions import db
from helpdesk.services import people, queues
from helpdesk.services.errors import DomainError, Forbidden, NotFound
from helpdesk.services.ids import page_number
from helpdesk.services.mail import inbound, review

STATUS_TABS = {"held": _l("Zu prüfen"), "ignored": _l("Ignoriert"), "discarded": _l("Verworfen")}
DECISION_FIELDS = {"requester": "requester_id", "number": "number", "category": "category_id",
                   "impact": "impact", "urgency": "urgency"}


@bp.route("/mail")
def mail_queue():
    """List held mail (or the ignored / discarded ones), newest first, paged."""
    status = request.args.get("status")
    status = status if status in review.LIST_STATUSES else "held"
    page = review.queue_page(current_user, status, page_number(request.args.get("page")),
                             current_app.config["PAGE_SIZE"])
    return render_template("agent/mail_queue.html", page=page, status=status, tabs=STATUS_TABS,
                           reasons=inbound.REASON_LABELS)


def _detail(mail_id: int, status: int = 200, error: str | None = None, decision_form=None, discard_form=None):
    mail = review.get_mail(current_user, mail_id)
    form = decision_form or MailDecisionForm(formdata=request.args if request.method == "GET" else None)
    form.fill_choices(people.active_tenants(), queues.active_categories())
    if form.category_id.data in (None, ""):
        default = inbound.default_category()
        form.category_id.data = str(default.id) if default else ""
    asked = request.method == "GET" and bool(request.args.get("q"))
    step = people.search_step(form.q.data, form.tenant.data, form.requester_id.data or (mail.user_id or ""),
                              asked=asked)
    return render_template(
        "agent/mail_detail.html", mail=mail, content=review.parsed(mail), reasons=inbound.REASON_LABELS,
        form=form, discard_form=discard_form or DiscardForm(formdata=None), step=step, error=error,
    ), status


@bp.route("/mail/<int(max=2147483647):mail_id>")
def mail_detail(mail_id: int):
    """Show one imported mail: sender, reason, text, attachments, and (held) the decision forms."""
    return _detail(mail_id)


@bp.route("/mail/<int(max=2147483647):mail_id>/eml")
def mail_original(mail_id: int):
    """Download the original message as received (.eml)."""
    return review.send_original(review.get_mail(current_user, mail_id))


def _decide(mail_id: int, form, action, success: str, form_name: str):
    review.get_mail(current_user, mail_id)  # 404 before anything else for a mail that does not exist
    if not form.validate():
        return _detail(mail_id, 422, _("Bitte prüfen Sie Ihre Eingaben."), **{form_name: form})
    try:
        mail = action(form)
    except (NotFound, Forbidden):
        raise
    except DomainError as exc:
        db.session.rollback()
        field = getattr(form, DECISION_FIELDS.get(exc.field or "", exc.field or ""), None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, exc.message]
        return _detail(mail_id, 422, exc.message, **{form_name: form})
    flash(success(mail) if callable(success) else success, "success")
    return redirect(url_for("agent.mail_queue"))


@bp.route("/mail/<int(max=2147483647):mail_id>/assign", methods=["POST"])
def mail_assign(mail_id: int):
    """Add the held mail to an existing ticket as a comment of the chosen person."""
    return _decide(mail_id, MailDecisionForm(), lambda form: review.assign_to_ticket(
        current_user, mail_id, number=form.number.data, requester_id=form.requester_id.data, now=clock.utcnow()),
        lambda mail: _("Die E-Mail wurde dem Ticket %(number)s als Nachricht hinzugefügt.", number=mail.ticket.number),
        "decision_form")


@bp.route("/mail/<int(max=2147483647):mail_id>/create", methods=["POST"])
def mail_create(mail_id: int):
    """File a new ticket for the chosen requester from the held mail."""
    return _decide(mail_id, MailDecisionForm(), lambda form: review.create_ticket(
        current_user, mail_id, requester_id=form.requester_id.data, category_id=form.category_id.data,
        impact=form.impact.data, urgency=form.urgency.data, now=clock.utcnow()),
        lambda mail: _("Aus der E-Mail wurde das Ticket %(number)s erstellt.", number=mail.ticket.number),
        "decision_form")


@bp.route("/mail/<int(max=2147483647):mail_id>/discard", methods=["POST"])
def mail_discard(mail_id: int):
    """Discard the held mail with a reason."""
    return _decide(mail_id, DiscardForm(), lambda form: review.discard(
        current_user, mail_id, note=form.note.data, now=clock.utcnow()),
        _("Die E-Mail wurde verworfen."), "discard_form")
