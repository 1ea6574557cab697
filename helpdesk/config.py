"""Read the configuration from HELPDESK_* environment variables."""
from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ITIL matrix: (impact, urgency) -> priority. 1 = high, 2 = medium, 3 = low; P1 critical .. P4 low.
DEFAULT_PRIORITY_MATRIX = {
    "1,1": 1, "1,2": 2, "1,3": 3,
    "2,1": 2, "2,2": 3, "2,3": 4,
    "3,1": 3, "3,2": 4, "3,3": 4,
}


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"HELPDESK_{name}", default)


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return int(value) if value not in (None, "") else default


class Config:
    """Settings for a real deployment; every value can come from the environment."""

    INSTANCE_DIR = Path(_env("INSTANCE_DIR", str(ROOT / "instance")))
    SECRET_KEY = os.environ.get("SECRET_KEY") or _env("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'helpdesk.sqlite'}"
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Production always sends both cookies with Secure (create_app); elsewhere HELPDESK_COOKIE_SECURE=1 does.
    SESSION_COOKIE_SECURE = _env("COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PROXY_COUNT = _env("PROXY_COUNT", "0")  # proxies in front of the app whose X-Forwarded-For/-Proto to trust
    HSTS_SECONDS = 365 * 24 * 3600  # Strict-Transport-Security in production: one year
    WTF_CSRF_TIME_LIMIT = None

    BABEL_DEFAULT_LOCALE = "de"
    BABEL_DEFAULT_TIMEZONE = "Europe/Berlin"
    LANGUAGES = ("de", "en")
    DISPLAY_TIMEZONE = "Europe/Berlin"

    BASE_URL = _env("BASE_URL", "http://127.0.0.1:5000")
    TICKET_PREFIX = _env("TICKET_PREFIX", "KSM")
    ATTACHMENT_DIR = Path(_env("ATTACHMENT_DIR", str(INSTANCE_DIR / "attachments")))
    MAX_ATTACHMENT_BYTES = _env_int("MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
    # Whole request may carry a few attachments; Werkzeug answers 413 above this.
    MAX_CONTENT_LENGTH = _env_int("MAX_REQUEST_BYTES", 50 * 1024 * 1024)
    AUTO_CLOSE_DAYS = _env_int("AUTO_CLOSE_DAYS", 7)
    PRIORITY_MATRIX = json.loads(_env("PRIORITY_MATRIX") or "null") or DEFAULT_PRIORITY_MATRIX
    PAGE_SIZE = _env_int("PAGE_SIZE", 25)

    LOGIN_RATE_LIMIT = _env("LOGIN_RATE_LIMIT", "5 per 5 minutes")  # failed logins per address and account
    LOGIN_IP_RATE_LIMIT = _env("LOGIN_IP_RATE_LIMIT", "20 per 5 minutes")  # failed logins per address, any account
    PASSWORD_RESET_HOURS = float(_env("PASSWORD_RESET_HOURS", "2"))  # how long a "Passwort vergessen" link works
    PASSWORD_RESET_RATE_LIMIT = _env("PASSWORD_RESET_RATE_LIMIT", "5 per hour")  # reset requests per address
    API_RATE_LIMIT = _env("API_RATE_LIMIT", "300 per minute")  # per API token
    IDEMPOTENCY_KEEP_HOURS = _env_int("IDEMPOTENCY_KEEP_HOURS", 48)
    # Production refuses memory:// (each process would count alone): use Redis, e.g. redis://127.0.0.1:6379/0.
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "memory://")
    # Keys in Redis start with this prefix, so several installations (or test runs) can share one server.
    RATELIMIT_STORAGE_OPTIONS = (
        {"key_prefix": _env("RATELIMIT_KEY_PREFIX", "helpdesk-limits")}
        if (RATELIMIT_STORAGE_URI or "").startswith(("redis", "rediss", "valkey")) else {}
    )
    # While Redis is unreachable each process counts alone (logged) instead of every login failing with 500.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True

    SMTP_HOST = _env("SMTP_HOST")  # unset: emails stay in the outbox (admin page, log)
    SMTP_PORT = _env_int("SMTP_PORT", 25)
    SMTP_USER = _env("SMTP_USER")
    SMTP_PASSWORD = _env("SMTP_PASSWORD")
    SMTP_STARTTLS = _env("SMTP_STARTTLS", "0") == "1"
    SMTP_TIMEOUT = _env_int("SMTP_TIMEOUT", 10)
    MAIL_FROM = _env("MAIL_FROM", "KSM Helpdesk <helpdesk@ksm.example>")
    # Replies go to <local>+<ticket>.<HMAC>@<domain> of this mailbox; unset: the address in MAIL_FROM.
    MAIL_REPLY_ADDRESS = _env("MAIL_REPLY_ADDRESS")
    # Incoming mail (services/mail/inbound.py): larger messages are held for review.
    MAIL_MAX_BYTES = _env_int("MAIL_MAX_BYTES", 25 * 1024 * 1024)
    # At most this many automatic answers (ticket confirmations) per sender and hour: stops mail loops.
    MAIL_AUTO_REPLY_LIMIT = _env_int("MAIL_AUTO_REPLY_LIMIT", 10)
    # Category id of tickets that arrive by mail; unset or inactive: the first active top-level category.
    MAIL_DEFAULT_CATEGORY_ID = _env_int("MAIL_DEFAULT_CATEGORY_ID", 0) or None
    # The mailbox the worker fetches (services/mail/imap.py); unset host: no fetching. TLS: "ssl" (port 993),
    # "starttls" or "none" (port 143; only for a server on the same machine).
    IMAP_HOST = _env("IMAP_HOST")
    IMAP_TLS = (_env("IMAP_TLS", "ssl") or "ssl").strip().lower()
    IMAP_PORT = _env_int("IMAP_PORT", 993 if IMAP_TLS == "ssl" else 143)
    IMAP_USER = _env("IMAP_USER")
    IMAP_PASSWORD = _env("IMAP_PASSWORD")
    IMAP_FOLDER = _env("IMAP_FOLDER", "INBOX")
    IMAP_PROCESSED_FOLDER = _env("IMAP_PROCESSED_FOLDER", "Verarbeitet")  # created if missing
    IMAP_CA_FILE = _env("IMAP_CA_FILE")  # a CA bundle for a server with an internal certificate
    IMAP_TIMEOUT = _env_int("IMAP_TIMEOUT", 30)
    IMAP_BATCH_SIZE = _env_int("IMAP_BATCH_SIZE", 200)  # messages per fetch run; the rest waits for the next
    MAIL_IMPORT_THREADS = _env_int("MAIL_IMPORT_THREADS", 3)  # imports at once per fetched chunk (PostgreSQL only)
    OUTBOX_MAX_ATTEMPTS = _env_int("OUTBOX_MAX_ATTEMPTS", 12)
    OUTBOX_BACKOFF_SECONDS = _env_int("OUTBOX_BACKOFF_SECONDS", 60)  # first retry wait; doubles per try

    WORKER_OUTBOX_SECONDS = _env_int("WORKER_OUTBOX_SECONDS", 15)
    WORKER_SLA_SECONDS = _env_int("WORKER_SLA_SECONDS", 60)
    SLA_SWEEP_BATCH_SIZE = _env_int("SLA_SWEEP_BATCH_SIZE", 100)  # due tickets checked per transaction
    WORKER_AUTOCLOSE_SECONDS = _env_int("WORKER_AUTOCLOSE_SECONDS", 3600)
    WORKER_MONTHLY_SECONDS = _env_int("WORKER_MONTHLY_SECONDS", 900)
    WORKER_IMAP_SECONDS = _env_int("WORKER_IMAP_SECONDS", 60)  # how often the mailbox is fetched


class DevelopmentConfig(Config):
    """Local `make run`: a fixed, non-secret key is acceptable only here."""

    SECRET_KEY = Config.SECRET_KEY or "dev-only-not-secret"


class TestConfig(Config):
    """Tests: cheap argon2 parameters (hashes stay real argon2id), no SMTP unless a test sets one."""

    TESTING = True
    ARGON2_PARAMS = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
    SECRET_KEY = "test-secret"
    SMTP_HOST = None
    IMAP_HOST = None  # no mailbox unless a test starts its own IMAP server
    MAIL_IMPORT_THREADS = 1  # one after the other, so tests see a fixed order; test_mail_fetch also runs them parallel
    LOGIN_RATE_LIMIT = "5 per 5 minutes"
    LOGIN_IP_RATE_LIMIT = "20 per 5 minutes"
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_STORAGE_OPTIONS: dict = {}
    PROXY_COUNT = "0"
