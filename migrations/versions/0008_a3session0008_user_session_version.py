"""user session version: logout, password change and deactivation end sessions

Revision ID: a3session0008
Revises: a2outbox00007
Create Date: 2026-12-01 19:45:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a3session0008'
down_revision = 'a2outbox00007'
branch_labels = None
depends_on = None


def upgrade():
    # Existing rows start at version 1; sessions stored before this release carry no version and end once.
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('session_version')
