"""Hand out human ticket numbers like KSM-2026-000123, safely across processes."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from helpdesk.extensions import db
from helpdesk.models import TicketCounter


def next_ticket_number(now: datetime) -> str:
    """Return the next number of the current (Berlin) year inside the caller's transaction."""
    year = now.astimezone(ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])).year
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(TicketCounter).values(year=year, last_number=0).on_conflict_do_nothing()
    )
    # UPDATE ... RETURNING takes the row lock, so concurrent creators get distinct numbers.
    number = db.session.execute(
        update(TicketCounter)
        .where(TicketCounter.year == year)
        .values(last_number=TicketCounter.last_number + 1)
        .returning(TicketCounter.last_number)
    ).scalar_one()
    return f"{current_app.config['TICKET_PREFIX']}-{year}-{number:06d}"
