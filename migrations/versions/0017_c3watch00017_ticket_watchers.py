"""ticket watchers

Revision ID: c3watch00017
Revises: c2mbox000016
Create Date: 2026-12-01 23:00:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'c3watch00017'
down_revision = 'c2mbox000016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('ticket_watcher',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', helpdesk.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['added_by_id'], ['user.id'], name=op.f('fk_ticket_watcher_added_by_id_user'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_watcher_ticket_id_ticket'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_ticket_watcher_user_id_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_watcher')),
    sa.UniqueConstraint('ticket_id', 'user_id', name=op.f('uq_ticket_watcher_ticket_id_user_id'))
    )
    with op.batch_alter_table('ticket_watcher', schema=None) as batch_op:
        # The portal's ticket scope asks which tickets a requester watches: one index range per user.
        batch_op.create_index('ix_ticket_watcher_user_ticket', ['user_id', 'ticket_id'], unique=False)


def downgrade():
    with op.batch_alter_table('ticket_watcher', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_watcher_user_ticket')
    op.drop_table('ticket_watcher')
