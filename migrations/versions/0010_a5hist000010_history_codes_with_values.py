"""history codes with values

Revision ID: a5hist000010
Revises: a4idem000009
Create Date: 2026-12-01 19:45:00

System-written history lines get a code with values (ticket_event.note_code / note_params) that
is translated when shown. Lines written before are mapped where the German text is known:
exact texts in one UPDATE each, texts with a value ("Erfasst von …", "Regel: …",
"Automatisch geschlossen nach N Tagen") by a regex in Python over the rows in batches.
Anything else (text a person typed) stays in note as it is. The downgrade writes the German
text back.
"""
import re

from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a5hist000010'
down_revision = 'a4idem000009'
branch_labels = None
depends_on = None

BATCH = 1000

# (German text as stored before, code, which lines may carry it: kind, field)
EXACT = [
    ("aus Auswirkung × Dringlichkeit", "priority_from_matrix", "field", "priority"),
    ("manuell geändert", "changed_by_hand", "field", "priority"),
    ("Standardteam", "default_team", "field", "team"),
    ("Antwort der anfragenden Person", "requester_answered", "field", "status"),
    ("Wiedereröffnet durch Antwort", "reopened_by_reply", "field", "status"),
    ("Wiedereröffnet", "reopened", "field", "status"),
    ("Wiedereröffnet", "reopened", "sla_resumed", "sla"),
    ("Lösung bestätigt", "resolution_confirmed", "field", "status"),
]
# (LIKE prefix, regex of the whole text, code, value name, value type, kind, field, only system lines)
PATTERNS = [
    ("Erfasst von %", re.compile(r"Erfasst von (?P<v>.+)", re.S), "created_by", "name", str, "created", None, False),
    ("Regel: %", re.compile(r"Regel: (?P<v>.+)", re.S), "routing_rule", "rule", str, "field", "team", True),
    ("Automatisch geschlossen nach %", re.compile(r"Automatisch geschlossen nach (?P<v>\d+) Tagen?"),
     "auto_closed", "days", int, "field", "status", True),
]
# The German text of each code, for the downgrade.
GERMAN = {
    "created_by": "Erfasst von {name}",
    "routing_rule": "Regel: {rule}",
    "auto_closed": "Automatisch geschlossen nach {days} Tagen",
} | {code: text for text, code, _kind, _field in EXACT}

ticket_event = sa.table(
    "ticket_event",
    sa.column("id", sa.Integer),
    sa.column("actor_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("field", sa.String),
    sa.column("note", sa.String),
    sa.column("note_code", sa.String),
    sa.column("note_params", sa.JSON),
)


def _batches(connection, where):
    """Yield the matching rows in id order, BATCH at a time (keyset, so updated rows do not shift pages)."""
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(ticket_event.c.id, ticket_event.c.note, ticket_event.c.note_code, ticket_event.c.note_params)
            .where(where, ticket_event.c.id > last_id).order_by(ticket_event.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        yield rows
        last_id = rows[-1].id


def _field_is(field):
    return ticket_event.c.field.is_(None) if field is None else ticket_event.c.field == field


def upgrade():
    with op.batch_alter_table('ticket_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('note_params', sa.JSON(), nullable=True))

    connection = op.get_bind()
    for text, code, kind, field in EXACT:
        connection.execute(
            ticket_event.update()
            .where(ticket_event.c.note == text, ticket_event.c.kind == kind, _field_is(field))
            .values(note_code=code, note=None)
        )
    for like, pattern, code, name, kind_of_value, kind, field, system_only in PATTERNS:
        where = sa.and_(ticket_event.c.note.like(like), ticket_event.c.kind == kind, _field_is(field),
                        ticket_event.c.note_code.is_(None))
        if system_only:
            where = sa.and_(where, ticket_event.c.actor_id.is_(None))
        for rows in _batches(connection, where):
            updates = []
            for row in rows:
                match = pattern.fullmatch(row.note)
                if match:
                    updates.append({"row_id": row.id, "code": code, "params": {name: kind_of_value(match["v"])}})
            if updates:
                connection.execute(
                    ticket_event.update().where(ticket_event.c.id == sa.bindparam("row_id"))
                    .values(note_code=sa.bindparam("code"), note_params=sa.bindparam("params"), note=None),
                    updates,
                )


def downgrade():
    connection = op.get_bind()
    for rows in _batches(connection, ticket_event.c.note_code.is_not(None)):
        updates = []
        for row in rows:
            template = GERMAN.get(row.note_code)
            if template is None:
                continue  # a code without German text here: keep whatever note the line has
            try:
                text = template.format(**(row.note_params or {}))
            except (KeyError, IndexError, ValueError):
                continue
            if row.note:
                text = f"{text} – {row.note}"
            updates.append({"row_id": row.id, "text": text[:500]})
        if updates:
            connection.execute(
                ticket_event.update().where(ticket_event.c.id == sa.bindparam("row_id"))
                .values(note=sa.bindparam("text")),
                updates,
            )
    with op.batch_alter_table('ticket_event', schema=None) as batch_op:
        batch_op.drop_column('note_params')
        batch_op.drop_column('note_code')
