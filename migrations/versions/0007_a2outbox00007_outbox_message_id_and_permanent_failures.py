"""outbox message id and permanent failures

Revision ID: a2outbox00007
Revises: a1sla0000006
Create Date: 2026-12-01 19:45:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a2outbox00007'
down_revision = 'a1sla0000006'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: rows queued before this migration get their Message-ID on their next try, before sending.
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint('uq_outbox_message_message_id', ['message_id'])


def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint('uq_outbox_message_message_id', type_='unique')
        batch_op.drop_column('message_id')
