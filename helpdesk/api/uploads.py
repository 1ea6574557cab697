"""Attach files to a ticket without a comment (the API's upload endpoint).

TODO(lead): belongs in helpdesk/services/tickets.py as `attach_files`; kept here because the API
task may not edit that module.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from helpdesk.extensions import db
from helpdesk.models import Attachment, Ticket, User
from helpdesk.services.attachments import Upload, store_uploads, validate_uploads
from helpdesk.services.errors import DomainError
from helpdesk.services.permissions import require_staff
from helpdesk.services.tickets import record


def attach_files(actor: User, ticket: Ticket, uploads: list[Upload], *, internal: bool, now: datetime) -> list[Attachment]:
    """Store files on a visible ticket (internal ones only by KSM staff), record it in the history; commit."""
    if internal:
        require_staff(actor)
    if ticket.status == "closed":
        raise DomainError(_("Das Ticket ist geschlossen. Bitte erstellen Sie ein neues Ticket."))
    if not uploads:
        raise DomainError(_("Bitte wählen Sie eine Datei aus."), field="attachments")
    validate_uploads(uploads)
    attachments = store_uploads(uploads, ticket=ticket, uploader=actor, comment=None, internal=internal)
    record(ticket, actor, "attachment", now, note=", ".join(u.filename for u in uploads), internal=internal)
    ticket.updated_at = now
    db.session.commit()
    return attachments
