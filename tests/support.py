"""Helpers shared by the test fixtures and the bench scripts: test settings, PostgreSQL reachability."""
from __future__ import annotations

import os
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
