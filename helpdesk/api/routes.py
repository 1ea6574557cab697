"""The resources of /api/v1: tickets, comments, attachments, catalog, teams and SLA state."""
from __future__ import annotations

import base64
import http
import binascii
import hashlib
import json
from datetime import datetime
from functools import wraps

from flask import Response, current_app, jsonify, make_response, request, url_for
from flask.views import MethodView
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from helpdesk import clock
from helpdesk.api import bp
from helpdesk.api.auth import api_user, rate_limit_key, require_token
from helpdesk.api.errors import problem, validation_errors
from helpdesk.api.schemas import (
    AttachmentFormSchema, AttachmentSchema, CategorySchema, CommentCreateSchema, CommentSchema, SlaStateSchema,
    TeamSchema, TicketCreateSchema, TicketPageSchema, TicketQuerySchema, TicketSchema, TicketUpdateSchema,
)
from helpdesk.api.uploads import attach_files
from helpdesk.extensions import db, limiter
from helpdesk.models import SlaPolicyVersion, Tenant, Ticket, User
from helpdesk.services import accounts, idempotency, permissions, queues, tickets
from helpdesk.services import sla as sla_service
from helpdesk.services.attachments import Upload, send_attachment
from helpdesk.services.errors import DomainError
from helpdesk.services.ids import as_id

IDEMPOTENCY_PARAMETER = {
    "in": "header", "name": idempotency.HEADER, "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
    "description": "Send the same key when retrying: the first answer is returned again, nothing is created twice.",
}


def errors(*codes: int):
    """Document the problem responses an operation may answer (references to shared components)."""

    def decorator(view):
        for code in codes:
            view = bp.alt_response(code, response=http.HTTPStatus(code).name)(view)
        return view

    return decorator


bp.before_request(require_token)
limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=rate_limit_key)(bp)


def _field_aliases(**aliases: str) -> None:
    """Name service-level fields as this request called them in problem details."""
    request.environ["helpdesk.api_field_aliases"] = aliases


# --- idempotent creates ---------------------------------------------------------------------------


def _request_payload():
    """Return the request body in a canonical form (JSON value, or form fields and file hashes)."""
    if request.mimetype == "multipart/form-data" or request.files:
        # A part without a name has the name None: "" keeps the sort (and the hash) defined.
        files = sorted((name or "", f.filename or "", hashlib.sha256(f.stream.read()).hexdigest())
                       for name, f in request.files.items(multi=True))
        for _name, storage in request.files.items(multi=True):
            storage.stream.seek(0)
        return {"form": sorted((name or "", value) for name, value in request.form.items(multi=True)), "files": files}
    return request.get_json(silent=True) if request.is_json else request.get_data(as_text=True)


def _rebuild(record) -> None:
    """Store on a claim the 201 its request would have answered, from the rows it created (lost in a crash)."""
    rows = idempotency.created(record)
    if not rows:
        raise idempotency.in_progress()
    location = None
    if record.resource_type == "ticket":
        body, location = TicketSchema().dump(rows[0]), url_for("api.ticket", number=rows[0].number)
    elif record.resource_type == "comment":
        body = CommentSchema().dump(rows[0])
    else:
        body = AttachmentSchema(many=True).dump([_attachment_view(a) for a in rows])
    idempotency.complete(record, status_code=201, body=jsonify(body).get_data(as_text=True), location=location)


def _replay(record) -> Response:
    if record.status_code == idempotency.IN_PROGRESS:
        _rebuild(record)
    response = Response(record.response_body, status=record.status_code, mimetype="application/json")
    if record.location:
        response.headers["Location"] = record.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(resource_type: str):
    """Make a create view honour the Idempotency-Key header (see helpdesk.services.idempotency).

    `resource_type` names what the view creates ("ticket", "comment", "attachment"), so that a retry
    after a crash can rebuild the answer from it.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            raw_key = request.headers.get(idempotency.HEADER)
            if raw_key is None:
                return view(*args, **kwargs)
            user = api_user()
            key = idempotency.check_key(raw_key)
            fingerprint = idempotency.fingerprint(request.method, request.path, _request_payload())
            stored = idempotency.find(user, key, fingerprint)
            if stored is not None:
                return _replay(stored)
            claim = idempotency.claim(user, key, fingerprint, clock.utcnow(), resource_type=resource_type)
            try:
                response = make_response(view(*args, **kwargs))
            except IntegrityError:
                # A concurrent request with the same key won the claim; its ticket is the one.
                db.session.rollback()
                stored = idempotency.find(user, key, fingerprint)
                if stored is None:
                    raise
                return _replay(stored)
            finally:
                idempotency.release()
            if 200 <= response.status_code < 300:
                idempotency.complete(claim, status_code=response.status_code, body=response.get_data(as_text=True),
                                     location=response.headers.get("Location"))
            return response

        return wrapper

    return decorator


# --- tickets --------------------------------------------------------------------------------------


def _encode_cursor(ticket: Ticket, sort: str) -> str:
    raw = json.dumps([sort, ticket.updated_at.isoformat(), ticket.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, updated, ticket_id = json.loads(raw)
        moment = datetime.fromisoformat(updated)
        if cursor_sort != sort or moment.tzinfo is None or not isinstance(ticket_id, int) or as_id(ticket_id) is None:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise DomainError(_("Ungültiger Cursor. Bitte übernehmen Sie next_cursor unverändert."), field="cursor")
    return moment, ticket_id


def _tenant_id(value: str | None) -> int | None:
    """Return the tenant id for a slug or id filter (-1 when no tenant matches: an empty list)."""
    if not value:
        return None
    if value.isdigit():
        return as_id(value) or -1
    return db.session.scalar(select(Tenant.id).where(Tenant.slug == value)) or -1


@bp.route("/tickets", endpoint="tickets")
class Tickets(MethodView):
    """The tickets the token's user may see."""

    @bp.arguments(TicketQuerySchema, location="query")
    @bp.response(200, TicketPageSchema)
    @errors(401)
    def get(self, args):
        """List tickets, filtered, in pages of at most 100 (keyset pagination by last change)."""
        user = api_user()
        sort = args["sort"]
        filters = queues.QueueFilters(
            status=args.get("status"), priority=args.get("priority"), team_id=args.get("team"),
            tenant_id=_tenant_id(args.get("tenant")), category_id=args.get("category"),
        )
        query = queues.queue_query(user, "all", filters, sort).options(selectinload(Ticket.requester))
        if args.get("updated_since"):
            query = query.where(Ticket.updated_at >= args["updated_since"])
        if args.get("cursor"):
            moment, ticket_id = _decode_cursor(args["cursor"], sort)
            if sort.startswith("-"):
                after = or_(Ticket.updated_at < moment, and_(Ticket.updated_at == moment, Ticket.id < ticket_id))
            else:
                after = or_(Ticket.updated_at > moment, and_(Ticket.updated_at == moment, Ticket.id > ticket_id))
            query = query.where(after)
        rows = list(db.session.scalars(query.limit(args["limit"] + 1)))
        page = rows[: args["limit"]]
        next_cursor = _encode_cursor(page[-1], sort) if len(rows) > args["limit"] else None
        return {"items": page, "next_cursor": next_cursor}

    @idempotent("ticket")
    @bp.arguments(TicketCreateSchema)
    @bp.response(201, TicketSchema)
    @bp.doc(parameters=[IDEMPOTENCY_PARAMETER])
    @errors(401)
    def post(self, data):
        """File a ticket: routed, numbered, SLA clocks started and the requester emailed as in the browser."""
        user = api_user()
        requester = None
        if user.is_staff:
            requester = _requester(data)
        _field_aliases(requester="requester_id" if "requester_id" in data else "requester_email",
                       category="category_id")
        ticket = tickets.create_ticket(
            user, requester=requester, subject=data["subject"], description=data["description"],
            category_id=data["category_id"], impact=data["impact"], urgency=data["urgency"],
            channel="api", now=clock.utcnow(),
        )
        return ticket, 201, {"Location": url_for("api.ticket", number=ticket.number)}


def _requester(data: dict) -> User:
    """Return the requesting person a staff member names (by id or email)."""
    requester = None
    if data.get("requester_id"):
        requester = db.session.get(User, data["requester_id"])
        field = "requester_id"
    elif data.get("requester_email"):
        requester = accounts.find_user_by_email(data["requester_email"])
        field = "requester_email"
    else:
        raise DomainError(_("Bitte nennen Sie die anfragende Person (requester_email oder requester_id)."),
                          field="requester_email")
    if requester is None or requester.is_staff or not requester.active:
        raise DomainError(_("Bitte wählen Sie die anfragende Person einer Behörde."), field=field)
    return requester


@bp.route("/tickets/<number>", endpoint="ticket")
class TicketItem(MethodView):
    """One ticket by its number."""

    @bp.response(200, TicketSchema)
    @errors(401, 404)
    def get(self, number):
        """Return a ticket (404 if it does not exist or is not visible to the token's user)."""
        return permissions.get_ticket(api_user(), number)

    @bp.arguments(TicketUpdateSchema)
    @bp.response(200, TicketSchema)
    @errors(401, 403, 404)
    def patch(self, data, number):
        """Change category, team, assignee, priority (with reason) and status (KSM staff only).

        Each change goes through the same workflow as in the browser and is applied in that order;
        if one is refused (422), the changes before it stay applied.
        """
        user = api_user()
        ticket = permissions.get_ticket(user, number)
        now = clock.utcnow()
        if data:
            permissions.require_staff(user)
        if "category_id" in data:
            tickets.change_category(user, ticket, data["category_id"], now)
        if "team_id" in data:
            tickets.transfer(user, ticket, data["team_id"], now)
        if "assignee_id" in data:
            assignee = db.session.get(User, data["assignee_id"]) if data["assignee_id"] else None
            if data["assignee_id"] and assignee is None:
                raise DomainError(_("Unbekannte Person."), field="assignee_id")
            tickets.assign(user, ticket, assignee, now)
        if "priority" in data:
            tickets.change_priority(user, ticket, data["priority"], now, reason=data.get("reason"))
        if "status" in data:
            tickets.change_status(user, ticket, data["status"], now)
        return ticket


# --- comments and attachments ---------------------------------------------------------------------


@bp.route("/tickets/<number>/comments", endpoint="comments")
class Comments(MethodView):
    """The public replies and (KSM staff only) internal notes of a ticket."""

    @bp.response(200, CommentSchema(many=True))
    @errors(401, 404)
    def get(self, number):
        """List a ticket's comments the token's user may read, oldest first."""
        user = api_user()
        return queues.ticket_thread(user, permissions.get_ticket(user, number))

    @idempotent("comment")
    @bp.arguments(CommentCreateSchema)
    @bp.response(201, CommentSchema)
    @bp.doc(parameters=[IDEMPOTENCY_PARAMETER])
    @errors(401, 403, 404)
    def post(self, data, number):
        """Add a public reply (emails and SLA effects as in the browser) or, for KSM staff, an internal note."""
        user = api_user()
        ticket = permissions.get_ticket(user, number)
        return tickets.reply(user, ticket, body=data["body"], internal=data["internal"], now=clock.utcnow()), 201


def _attachment_view(attachment) -> dict:
    return {
        "id": attachment.id, "filename": attachment.filename, "content_type": attachment.content_type,
        "size": attachment.size, "internal": attachment.is_internal, "comment_id": attachment.comment_id,
        "created_at": attachment.created_at,
        "content_url": url_for("api.attachment_content", attachment_id=attachment.id),
    }


UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "one or more files (repeat the field)"},
            "internal": {"type": "boolean", "default": False, "description": "KSM staff only"},
        },
    }}},
}


@bp.route("/tickets/<number>/attachments", endpoint="attachments")
class Attachments(MethodView):
    """The files of a ticket."""

    @bp.response(200, AttachmentSchema(many=True))
    @errors(401, 404)
    def get(self, number):
        """List a ticket's files the token's user may download."""
        user = api_user()
        ticket = permissions.get_ticket(user, number)
        return [_attachment_view(a) for a in db.session.scalars(permissions.attachment_scope(user, ticket))]

    @idempotent("attachment")
    @bp.response(201, AttachmentSchema(many=True))
    @bp.doc(requestBody=UPLOAD_BODY, parameters=[IDEMPOTENCY_PARAMETER])
    @errors(401, 403, 404, 413, 422)
    def post(self, number):
        """Upload files (multipart/form-data, field "file"); each at most MAX_ATTACHMENT_BYTES."""
        user = api_user()
        ticket = permissions.get_ticket(user, number)
        try:
            form = AttachmentFormSchema().load({k: v for k, v in request.form.items() if k == "internal"})
        except ValidationError as exc:
            return problem(422, _("Bitte prüfen Sie die Felder: internal."), errors=validation_errors({"form": exc.messages}))
        limit = current_app.config["MAX_ATTACHMENT_BYTES"]
        uploads = [Upload.from_storage(f, limit) for f in request.files.getlist("file") if f]
        uploads = [u if u.filename else Upload("datei", u.content_type, u.data) for u in uploads]
        stored = attach_files(user, ticket, uploads, internal=form["internal"], now=clock.utcnow())
        return [_attachment_view(a) for a in stored], 201


@bp.route("/attachments/<int(max=2147483647):attachment_id>/content", endpoint="attachment_content")
class AttachmentContent(MethodView):
    """The bytes of one file."""

    @bp.response(200, {"type": "string", "format": "binary"}, content_type="application/octet-stream",
                 description="The file, as a download")
    @errors(401, 404)
    def get(self, attachment_id):
        """Download a file of a visible ticket (internal files only for KSM staff)."""
        return send_attachment(permissions.get_attachment(api_user(), attachment_id))


# --- catalog, teams, SLA --------------------------------------------------------------------------


@bp.route("/categories", endpoint="categories")
class Categories(MethodView):
    """The service catalog."""

    @bp.response(200, CategorySchema(many=True))
    @errors(401)
    def get(self):
        """List the active catalog entries, each top level followed by its subcategories."""
        return queues.active_categories()


@bp.route("/teams", endpoint="teams")
class Teams(MethodView):
    """KSM's support teams."""

    @bp.response(200, TeamSchema(many=True))
    @errors(401)
    def get(self):
        """List the active teams by name."""
        return queues.active_teams()


def _sla_state(ticket: Ticket, now: datetime) -> dict:
    badge = sla_service.badge(ticket, now)
    views = sla_service.clock_views(ticket, now)
    version = db.session.get(SlaPolicyVersion, ticket.sla_version_id) if ticket.sla_version_id else None
    targets = []
    for view in views:
        row = view["row"]
        targets.append({
            "target": row.target, "cycle": row.cycle, "priority": row.priority,
            "policy_version": row.policy_version.version, "target_seconds": row.target_seconds,
            "used_seconds": int(view["used"].total_seconds()), "paused_seconds": int(view["paused"].total_seconds()),
            "paused": row.paused_at is not None, "running": row.is_running, "started_at": row.started_at,
            "due_at": row.due_at, "breached": row.breached_at is not None, "breached_at": row.breached_at,
            "outcome": row.outcome, "decided_at": row.decided_at,
        })
    return {
        "number": ticket.number,
        "policy_version": version.version if version else None,
        "state": badge["state"],
        "breached": bool(ticket.sla_breached),
        "paused": ticket.status == "pending",
        "due": {"first_response": ticket.first_response_due_at, "next_update": ticket.next_update_due_at,
                "resolution": ticket.resolution_due_at},
        "targets": targets,
    }


@bp.route("/tickets/<number>/sla", endpoint="ticket_sla")
class TicketSla(MethodView):
    """A ticket's SLA state."""

    @bp.response(200, SlaStateSchema)
    @errors(401, 404)
    def get(self, number):
        """Return targets, due times, business time used and paused, breaches and outcomes."""
        ticket = permissions.get_ticket(api_user(), number)
        return _sla_state(ticket, clock.utcnow())
