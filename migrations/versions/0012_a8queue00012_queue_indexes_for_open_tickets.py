"""queue indexes for open tickets

Revision ID: a8queue00012
Revises: a7look000011
Create Date: 2026-12-01 20:30:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a8queue00012'
down_revision = 'a7look000011'
branch_labels = None
depends_on = None


OPEN = sa.text("status IN ('new', 'open', 'pending')")
UNASSIGNED = sa.text("status IN ('new', 'open', 'pending') AND assignee_id IS NULL")

# name, columns, condition (None: over all tickets); as in Ticket.__table_args__.
INDEXES = [
    ('ix_ticket_open_priority', ['priority', 'created_at', 'id'], OPEN),
    ('ix_ticket_open_due', ['sla_due_at', 'priority', 'id'], OPEN),
    ('ix_ticket_open_created', ['created_at', 'id'], OPEN),
    ('ix_ticket_open_updated', ['updated_at', 'id'], OPEN),
    ('ix_ticket_open_number', ['number', 'id'], OPEN),
    ('ix_ticket_open_team_priority', ['team_id', 'priority', 'created_at', 'id'], OPEN),
    ('ix_ticket_open_team_due', ['team_id', 'sla_due_at', 'priority', 'id'], OPEN),
    ('ix_ticket_open_team_created', ['team_id', 'created_at', 'id'], OPEN),
    ('ix_ticket_open_team_updated', ['team_id', 'updated_at', 'id'], OPEN),
    ('ix_ticket_open_team_number', ['team_id', 'number', 'id'], OPEN),
    ('ix_ticket_unassigned_team_priority', ['team_id', 'priority', 'created_at', 'id'], UNASSIGNED),
    ('ix_ticket_unassigned_team_due', ['team_id', 'sla_due_at', 'priority', 'id'], UNASSIGNED),
    ('ix_ticket_unassigned_team_created', ['team_id', 'created_at', 'id'], UNASSIGNED),
    ('ix_ticket_unassigned_team_updated', ['team_id', 'updated_at', 'id'], UNASSIGNED),
    ('ix_ticket_unassigned_team_number', ['team_id', 'number', 'id'], UNASSIGNED),
    ('ix_ticket_priority_created_id', ['priority', 'created_at', 'id'], None),
    ('ix_ticket_due_priority_id', ['sla_due_at', 'priority', 'id'], None),
    ('ix_ticket_created_id', ['created_at', 'id'], None),
    ('ix_ticket_tenant_updated_id', ['tenant_id', 'updated_at', 'id'], None),
    ('ix_ticket_open_tenant_updated', ['tenant_id', 'updated_at', 'id'], OPEN),
]


def upgrade():
    # Partial indexes on open tickets: each queue tab and sort reads an index range with a LIMIT.
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        for name, columns, condition in INDEXES:
            where = {'postgresql_where': condition, 'sqlite_where': condition} if condition is not None else {}
            batch_op.create_index(name, columns, unique=False, **where)


def downgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        for name, _columns, _condition in reversed(INDEXES):
            batch_op.drop_index(name)
