"""idempotency created resource

Revision ID: a4idem000009
Revises: a3session0008
Create Date: 2026-12-01 19:45:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a4idem000009'
down_revision = 'a3session0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idempotency_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resource_type', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('resource_ids', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('idempotency_record', schema=None) as batch_op:
        batch_op.drop_column('resource_ids')
        batch_op.drop_column('resource_type')
