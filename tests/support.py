"""Helpers shared by the test fixtures and the bench scripts: test settings, PostgreSQL reachability."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from helpdesk.config import TestConfig

PG_ADMIN_URL = os.environ.get("HELPDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def app_config(url: str, tmp: Path) -> dict:
    """Return the test settings for an app on the database `url`, files under `tmp`."""
    return {
        **{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
        "SQLALCHEMY_DATABASE_URI": url,
        "INSTANCE_DIR": tmp,
        "ATTACHMENT_DIR": tmp / "attachments",
        "BASE_URL": "http://helpdesk.test",
    }


def postgres_unreachable(url: str = PG_ADMIN_URL) -> str | None:
    """Return None when PostgreSQL answers at `url`, else the reason it does not."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


def _admin_execute(statement: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def create_database(prefix: str) -> tuple[str, str]:
    """Create a throw-away PostgreSQL database; return its name and SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    """Drop a throw-away database, closing any connection still open to it."""
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
