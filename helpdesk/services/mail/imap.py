"""Fetch the helpdesk mailbox over IMAP: import each message, then move it to the processed folder.

Order per message, so a worker can be killed at any instant without losing or doubling mail:
1. read the message (BODY.PEEK: it stays unread and in the folder);
2. inbound.import_message commits the InboundMail row with the ticket or comment it made;
3. only then move the message to HELPDESK_IMAP_PROCESSED_FOLDER ("Verarbeitet", created if missing).
A crash between 2 and 3 leaves the message in the folder; the next run imports it again, the unique
Message-ID finds the first import's row, nothing changes, and the message is moved. A message whose
import raises (database down) stays for the next run and the run goes on with the others. A mailbox
that cannot be reached is recorded in MailboxStatus (admin page), never raised into the scheduler.
"""
from __future__ import annotations

import imaplib
import logging
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from helpdesk.extensions import db
from helpdesk.models import InboundMail, MailboxStatus
from helpdesk.models.mailbox import MAILBOX_STATUS_ID
from helpdesk.services.mail.inbound import import_message

log = logging.getLogger(__name__)

TLS_MODES = ("ssl", "starttls", "none")
# What goes wrong on the way to or inside the mailbox (not the import): recorded, and the run ends.
MAILBOX_ERRORS = (IMAPClientError, imaplib.IMAP4.error, OSError, socket.timeout, ssl.SSLError, EOFError)
CHUNK_MESSAGES = 25  # messages read with one FETCH and moved with one MOVE
CHUNK_BYTES = 16 * 1024 * 1024
STATUS_COUNT = {"comment": "imported", "ticket": "imported", "held": "held", "discarded": "held", "ignored": "ignored"}


class MailboxError(Exception):
    """The mailbox settings are unusable (no user, unknown TLS mode)."""


@dataclass
class FetchResult:
    """What one fetch run did."""

    waiting: int = 0  # messages in the folder when the run began
    imported: int = 0  # became a comment or a ticket
    held: int = 0  # wait in the review queue
    ignored: int = 0  # automatic mail, bounces, our own mail
    failed: int = 0  # the import raised; the message stays in the folder
    duplicates: int = 0  # imported by an earlier run (or another worker) already; only moved now
    moved: int = 0
    error: str | None = None  # why the run stopped early (mailbox unreachable, login refused ...)
    mail_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the counts (for the log and the CLI)."""
        return {key: getattr(self, key) for key in
                ("waiting", "imported", "held", "ignored", "failed", "duplicates", "moved")} | {"error": self.error}


@dataclass(frozen=True)
class MailboxSettings:
    """How to reach the mailbox, read from the app configuration."""

    host: str
    port: int
    user: str
    password: str
    folder: str
    processed_folder: str
    tls: str
    ca_file: str | None
    timeout: int
    batch_size: int
    max_bytes: int

    @classmethod
    def from_config(cls, config) -> MailboxSettings:
        """Read the HELPDESK_IMAP_* settings; raise MailboxError when they cannot work."""
        tls = (config.get("IMAP_TLS") or "ssl").strip().lower()
        if tls not in TLS_MODES:
            raise MailboxError(f"HELPDESK_IMAP_TLS must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        if not config.get("IMAP_HOST"):
            raise MailboxError("HELPDESK_IMAP_HOST is not set")
        if not config.get("IMAP_USER"):
            raise MailboxError("HELPDESK_IMAP_USER is not set")
        port = config.get("IMAP_PORT") or (993 if tls == "ssl" else 143)
        return cls(
            host=config["IMAP_HOST"], port=int(port), user=config["IMAP_USER"],
            password=config.get("IMAP_PASSWORD") or "", folder=config.get("IMAP_FOLDER") or "INBOX",
            processed_folder=config.get("IMAP_PROCESSED_FOLDER") or "Verarbeitet", tls=tls,
            ca_file=config.get("IMAP_CA_FILE") or None, timeout=int(config.get("IMAP_TIMEOUT") or 30),
            batch_size=max(1, int(config.get("IMAP_BATCH_SIZE") or 200)),
            max_bytes=int(config.get("MAIL_MAX_BYTES") or 25 * 1024 * 1024),
        )


class MailboxFetcher:
    """One fetch run against the mailbox; the steps are methods so a test can break one of them."""

    def __init__(self, settings: MailboxSettings):
        self.settings = settings

    # --- connection --------------------------------------------------------------------------

    def connect(self) -> IMAPClient:
        """Open the connection (TLS as configured) and log in."""
        s = self.settings
        context = ssl.create_default_context(cafile=s.ca_file) if s.tls != "none" else None
        client = IMAPClient(s.host, port=s.port, ssl=s.tls == "ssl", ssl_context=context, timeout=s.timeout)
        try:
            if s.tls == "starttls":
                client.starttls(context)
            client.login(s.user, s.password)
        except BaseException:
            _close(client)
            raise
        return client

    def ensure_processed_folder(self, client: IMAPClient) -> None:
        """Create the processed folder unless it exists (another worker may create it at the same time)."""
        name = self.settings.processed_folder
        if client.folder_exists(name):
            return
        try:
            client.create_folder(name)
        except IMAPClientError:
            if not client.folder_exists(name):
                raise

    def waiting_messages(self, client: IMAPClient) -> tuple[int, list[tuple[int, int]]]:
        """Select the folder; return how many messages wait and (uid, size) of the first batch, oldest first.

        Reads sequence numbers 1..batch, so a folder of 100,000 old messages costs what a batch costs.
        """
        selected = client.select_folder(self.settings.folder)
        waiting = int(selected.get(b"EXISTS", 0))
        if waiting == 0:
            return 0, []
        client.use_uid = False
        try:
            rows = client.fetch(list(range(1, min(waiting, self.settings.batch_size) + 1)),
                                ["UID", "RFC822.SIZE", "FLAGS"])
        finally:
            client.use_uid = True
        batch = [
            (int(data[b"UID"]), int(data.get(b"RFC822.SIZE", 0)))
            for _seq, data in sorted(rows.items())
            if b"UID" in data and b"\\Deleted" not in data.get(b"FLAGS", ())
        ]
        return waiting, batch

    def read(self, client: IMAPClient, uids: list[int]) -> dict[int, bytes]:
        """Return the bytes of the messages, by UID (one gone meanwhile is missing); unread flags untouched.

        At most MAIL_MAX_BYTES + 1 bytes of each are read: a larger message is held as too large by the
        import anyway, and a 2 GB message must not fill the worker's memory.
        """
        limit = self.settings.max_bytes + 1
        try:
            rows = client.fetch(uids, [f"BODY.PEEK[]<0.{limit}>"])
        except IMAPClientError as exc:
            if not _gone(exc):
                raise
            if len(uids) == 1:
                return {}
            found = {}
            for uid in uids:  # another worker moved some of them: read the rest one by one
                found |= self.read(client, [uid])
            return found
        found = {}
        for uid, data in rows.items():
            for key, value in data.items():
                if isinstance(key, bytes) and key.startswith(b"BODY[") and value is not None:
                    found[uid] = bytes(value)
        return found

    def can_move(self, client: IMAPClient) -> bool:
        """Tell whether the server has IMAP MOVE (RFC 6851); older ones get COPY + delete + expunge."""
        return client.has_capability("MOVE")

    def mark_processed(self, client: IMAPClient, uids: list[int]) -> None:
        """Move the messages to the processed folder (MOVE, or COPY + \\Deleted + expunge where MOVE is missing)."""
        target = self.settings.processed_folder
        if self.can_move(client):
            try:
                client.move(uids, target)
            except IMAPClientError as exc:
                if not _gone(exc):
                    raise
                if len(uids) > 1:  # another worker moved some of them first: move the others one by one
                    for uid in uids:
                        self.mark_processed(client, [uid])
            return
        client.copy(uids, target)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()

    # --- one run -----------------------------------------------------------------------------

    def import_one(self, raw: bytes, now: datetime) -> InboundMail:
        """Import one message (commits); see inbound.import_message."""
        return import_message(raw, now=now, source="imap")

    def run(self, now: datetime) -> FetchResult:
        """Fetch one batch; never raise for a mailbox problem (it is in the result and MailboxStatus)."""
        result = FetchResult()
        started = _record_start(now)
        client = None
        try:
            client = self.connect()
            self.ensure_processed_folder(client)
            result.waiting, batch = self.waiting_messages(client)
            seen: set[int] = set()
            for chunk in _chunks(batch):
                self._chunk(client, chunk, now, result, seen)
        except MAILBOX_ERRORS as exc:
            result.error = _describe(exc)
            log.warning("mailbox %s@%s: %s", self.settings.user, self.settings.host, result.error)
        except BaseException as exc:  # killed or a bug: shown on the admin page, then up to the scheduler
            result.error = _describe(exc)
            raise
        finally:
            if client is not None:
                _close(client)
            _record_end(started, now, result)
        return result

    def _chunk(self, client: IMAPClient, uids: list[int], now: datetime, result: FetchResult,
               seen: set[int]) -> None:
        """Read a few messages in one command, import each (own commit), then move the imported ones."""
        raws = self.read(client, uids)
        wanted = [uid for uid in uids if uid in raws]
        threads = _import_threads()
        if threads > 1 and len(wanted) > 1:
            # Each import waits mostly for the database: several at once, each in its own app context,
            # session and transaction. The unique Message-ID keeps every message imported once.
            app = current_app._get_current_object()
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mail-import") as pool:
                outcomes = list(pool.map(lambda uid: self._import_in_context(app, uid, raws[uid], now), wanted))
        else:
            outcomes = [self._import_once(uid, raws[uid], now) for uid in wanted]
        imported = [uid for uid, outcome in zip(wanted, outcomes) if self._count(uid, outcome, now, result, seen)]
        if imported:
            self.mark_processed(client, imported)
            result.moved += len(imported)

    def _import_in_context(self, app, uid: int, raw: bytes, now: datetime):
        with app.app_context():
            try:
                return self._import_once(uid, raw, now)
            finally:
                db.session.remove()

    def _import_once(self, uid: int, raw: bytes, now: datetime):
        """Import one message; return (id, received_at, status) of its row, or the exception it raised.

        A deadlock or serialization failure between parallel imports is tried again: the failed try
        rolled back completely, so trying again cannot double anything.
        """
        for attempt in range(3):
            try:
                mail = self.import_one(raw, now)
                return mail.id, mail.received_at, mail.status
            except Exception as exc:  # noqa: BLE001 - one message's trouble must not stop the others
                db.session.rollback()
                if attempt < 2 and _is_lock_conflict(exc):
                    continue
                return exc
        return None  # not reached

    def _count(self, uid: int, outcome, now: datetime, result: FetchResult, seen: set[int]) -> bool:
        if isinstance(outcome, BaseException):
            result.failed += 1
            log.error("mailbox: import of message uid %s failed; it stays in %s", uid, self.settings.folder,
                      exc_info=outcome)
            return False
        mail_id, received_at, status = outcome
        # The import of an earlier run (or of another worker) returned its row: only the move was missing.
        duplicate = mail_id in seen or received_at != now
        seen.add(mail_id)
        if duplicate:
            result.duplicates += 1
        else:
            kind = STATUS_COUNT.get(status, "held")
            setattr(result, kind, getattr(result, kind) + 1)
            result.mail_ids.append(mail_id)
        return True


def _import_threads() -> int:
    """Imports run at once per chunk: HELPDESK_MAIL_IMPORT_THREADS on PostgreSQL; SQLite has one writer."""
    if db.engine.dialect.name != "postgresql":
        return 1
    return max(1, int(current_app.config.get("MAIL_IMPORT_THREADS", 1)))


def _is_lock_conflict(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction for a deadlock or serialization failure (SQLSTATE 40P01/40001)."""
    original = getattr(exc, "orig", None)
    return getattr(original, "sqlstate", None) in ("40P01", "40001")


def _chunks(batch: list[tuple[int, int]]) -> list[list[int]]:
    """Group (uid, size) into reads of at most CHUNK_MESSAGES messages and about CHUNK_BYTES (one big one alone).

    Fewer round trips and one MOVE per chunk; a worker killed mid-chunk re-imports at most a chunk,
    which the unique Message-ID turns into nothing.
    """
    chunks, current, size = [], [], 0
    for uid, message_size in batch:
        if current and (len(current) >= CHUNK_MESSAGES or size + message_size > CHUNK_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(uid)
        size += message_size
    if current:
        chunks.append(current)
    return chunks


def fetch_once(now: datetime, *, fetcher_class: type[MailboxFetcher] = MailboxFetcher) -> FetchResult:
    """Fetch one batch from the configured mailbox (inside an app context) and record the run."""
    try:
        settings = MailboxSettings.from_config(current_app.config)
    except MailboxError as exc:
        result = FetchResult(error=str(exc))
        _record_end(_record_start(now), now, result)
        return result
    return fetcher_class(settings).run(now)


def mailbox_status() -> MailboxStatus | None:
    """Return the status row (None before the first run)."""
    return db.session.get(MailboxStatus, MAILBOX_STATUS_ID)


def _gone(exc: Exception) -> bool:
    """Tell whether the server says the message no longer exists (expunged by another worker)."""
    text = str(exc).upper()
    return "EXPUNGEISSUED" in text or "NONEXISTENT" in text


def _describe(exc: BaseException) -> str:
    detail = exc.args[0] if len(exc.args) == 1 else None
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may be dead already
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001
            pass


def _record_start(now: datetime) -> datetime:
    """Store the start of a run (its own short transaction, so a hanging server shows on the admin page)."""
    db.session.rollback()
    for _attempt in range(2):
        try:
            row = db.session.get(MailboxStatus, MAILBOX_STATUS_ID)
            if row is None:
                row = MailboxStatus(id=MAILBOX_STATUS_ID)
                db.session.add(row)
                db.session.flush()
            row.last_started_at = now
            db.session.commit()
            break
        except IntegrityError:  # two workers created the row at once: the other one won
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the database is down: the imports will fail and say so
            db.session.rollback()
            log.exception("mailbox: could not record the start of the fetch run")
            break
    return now


def _record_end(started: datetime, now: datetime, result: FetchResult) -> None:
    """Store the end of a run: its counts, the totals (added in the database: workers may overlap), the error."""
    db.session.rollback()
    values = {
        "last_finished_at": now,
        "last_waiting": result.waiting,
        "last_imported": result.imported,
        "last_held": result.held,
        "last_ignored": result.ignored,
        "last_failed": result.failed,
        "total_imported": MailboxStatus.total_imported + result.imported,
        "total_held": MailboxStatus.total_held + result.held,
        "total_ignored": MailboxStatus.total_ignored + result.ignored,
        "total_failed": MailboxStatus.total_failed + result.failed,
    }
    if result.error:
        values |= {"last_error": result.error, "last_error_at": now}
    else:
        values |= {"last_error": None, "last_success_at": now}
    try:
        db.session.execute(update(MailboxStatus).where(MailboxStatus.id == MAILBOX_STATUS_ID).values(**values))
        db.session.commit()
    except Exception:  # noqa: BLE001 - the database may be what failed; the run's log line stays
        db.session.rollback()
        log.exception("mailbox: could not record the fetch run")


HELD_COUNT_CAP = 1000


def overview(config) -> dict:
    """Return what the admin page shows: the settings (never the password), the status row, the held count.

    The held count stops after HELD_COUNT_CAP + 1 rows (index on status): a long queue costs what a short one does.
    """
    from sqlalchemy import func, literal_column, select

    held = select(literal_column("1")).select_from(InboundMail).where(InboundMail.status == "held")
    held_count = db.session.scalar(select(func.count()).select_from(held.limit(HELD_COUNT_CAP + 1).subquery()))
    tls = (config.get("IMAP_TLS") or "ssl").strip().lower()
    return {
        "configured": bool(config.get("IMAP_HOST")),
        "host": config.get("IMAP_HOST"),
        "port": config.get("IMAP_PORT") or (993 if tls == "ssl" else 143),
        "tls": tls,
        "user": config.get("IMAP_USER"),
        "password_set": bool(config.get("IMAP_PASSWORD")),
        "folder": config.get("IMAP_FOLDER") or "INBOX",
        "processed_folder": config.get("IMAP_PROCESSED_FOLDER") or "Verarbeitet",
        "interval": config.get("WORKER_IMAP_SECONDS"),
        "batch_size": config.get("IMAP_BATCH_SIZE"),
        "status": mailbox_status(),
        "held": held_count,
        "held_cap": HELD_COUNT_CAP,
    }
