"""report rollups: covering indexes the service level reports are read from

Revision ID: b1rollup0014
Revises: a9search0013
Create Date: 2026-12-01 20:30:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'b1rollup0014'
down_revision = 'a9search0013'
branch_labels = None
depends_on = None


INDEXES = (
    ("ticket", "ix_ticket_tenant_created_report", ["tenant_id", "created_at", "team_id", "category_id", "id"]),
    ("ticket", "ix_ticket_tenant_resolved_report", ["tenant_id", "resolved_at", "status", "team_id", "category_id"]),
    ("sla_clock", "ix_sla_clock_tenant_decided_report",
     ["tenant_id", "decided_at", "breached_at", "target", "priority", "outcome", "used_seconds", "ticket_id"]),
)


def upgrade():
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
