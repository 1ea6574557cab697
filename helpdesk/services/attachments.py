"""Validate and store uploaded files; the database keeps the metadata, the disk the bytes."""
from __future__ import annotations

import mimetypes
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Response, current_app, send_file
from flask_babel import gettext as _
from sqlalchemy import event
from werkzeug.utils import secure_filename

from helpdesk.extensions import db
from helpdesk.models import Attachment, Comment, Ticket, User
from helpdesk.services.errors import DomainError, NotFound

# Types a browser only displays, never runs; every other type (HTML, SVG, XHTML, XML, JavaScript, ...) could run
# script in the helpdesk's origin and is sent as an opaque download instead.
PASSIVE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain",
                           "text/csv"})
# Even if a browser shows the file anyway, it runs in a unique origin without scripts, forms or plugins.
DOWNLOAD_POLICY = "sandbox; default-src 'none'"


@dataclass(frozen=True)
class Upload:
    """A file as received from a form or the API, read into memory (sizes are capped)."""

    filename: str
    content_type: str
    data: bytes

    @classmethod
    def from_storage(cls, storage, limit: int) -> "Upload":
        """Read a werkzeug FileStorage, reading at most limit+1 bytes to detect oversize."""
        data = storage.stream.read(limit + 1)
        return cls(storage.filename or "", storage.mimetype or "", data)


def uploads_from_request(files) -> list[Upload]:
    """Return the non-empty-named uploads of a multipart field list."""
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    return [Upload.from_storage(f, limit) for f in files if f and f.filename]


def validate_uploads(uploads: list[Upload]) -> None:
    """Raise DomainError for an empty or oversized file, naming it."""
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    for upload in uploads:
        name = upload.filename or "?"
        if len(upload.data) == 0:
            raise DomainError(_("Die Datei „%(name)s“ ist leer.", name=name), field="attachments")
        if len(upload.data) > limit:
            raise DomainError(
                _("Die Datei „%(name)s“ ist zu groß (höchstens %(mb).1f MB).", name=name, mb=limit / 1024 / 1024),
                field="attachments",
            )


def storage_path(storage_key: str) -> Path:
    """Return where the bytes of an attachment live."""
    return Path(current_app.config["ATTACHMENT_DIR"]) / storage_key[:2] / storage_key


def served_type(content_type: str | None) -> str:
    """Return the type to send a stored file as: its own if passive, else application/octet-stream."""
    mimetype = (content_type or "").split(";", 1)[0].strip().lower()
    return mimetype if mimetype in PASSIVE_TYPES else "application/octet-stream"


def send_attachment(item: Attachment) -> Response:
    """Send a visible attachment as a download that no browser runs; raise NotFound if its bytes are gone."""
    path = storage_path(item.storage_key)
    if not path.is_file():
        raise NotFound(_("Datei nicht gefunden."))
    response = send_file(path, mimetype=served_type(item.content_type), as_attachment=True,
                         download_name=item.filename, max_age=0)
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


def store_uploads(
    uploads: list[Upload], *, ticket: Ticket, uploader: User, comment: Comment | None, internal: bool
) -> list[Attachment]:
    """Write the files and add Attachment rows to the session; files vanish if it rolls back."""
    assert ticket.id is not None, "flush the ticket before storing its files"
    validate_uploads(uploads)
    written: list[Path] = []
    attachments = []
    for upload in uploads:
        key = secrets.token_hex(16)
        path = storage_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(upload.data)
        written.append(path)
        filename = secure_filename(upload.filename) or "datei"
        content_type = upload.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        attachment = Attachment(
            ticket_id=ticket.id,
            comment=comment,
            uploaded_by=uploader,
            filename=filename[:255],
            content_type=content_type[:100],
            size=len(upload.data),
            storage_key=key,
            is_internal=internal,
        )
        attachments.append(attachment)
        db.session.add(attachment)
    if written:
        _delete_on_rollback(written)
    return attachments


def _delete_on_rollback(paths: list[Path]) -> None:
    session = db.session()

    def cleanup(_session, _previous=None):
        for path in paths:
            path.unlink(missing_ok=True)

    event.listen(session, "after_soft_rollback", cleanup, once=True)
    event.listen(session, "after_commit", lambda _s: event.remove(session, "after_soft_rollback", cleanup)
                 if event.contains(session, "after_soft_rollback", cleanup) else None, once=True)
