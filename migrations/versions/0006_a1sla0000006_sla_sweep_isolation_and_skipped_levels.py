"""sla sweep isolation and skipped levels

Revision ID: a1sla0000006
Revises: b39d31062540
Create Date: 2026-12-01 19:45:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a1sla0000006'
down_revision = 'b39d31062540'
branch_labels = None
depends_on = None


def upgrade():
    # Failed checks in a row per ticket: the sweep backs off from a ticket whose check raises.
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_check_failures', sa.Integer(), server_default='0', nullable=False))
    # Levels superseded by a higher one of the same clock are recorded as skipped (no email).
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skipped', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_column('skipped')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('sla_check_failures')
