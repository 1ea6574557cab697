"""report month rollups and search paging

Revision ID: c4roll000018
Revises: c3watch00017
Create Date: 2026-12-01 23:00:00

The table of per-month report figures (helpdesk.models.rollups), filled from the existing tickets and
clocks: on PostgreSQL one set-based INSERT … SELECT (a few seconds per million tickets), on SQLite in
id batches. From then on the app keeps it exact in every transaction (helpdesk.services.reporting).
"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'c4roll000018'
down_revision = 'c3watch00017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'report_month_rollup',
        sa.Column('tenant_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('team_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('category_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('priority', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('target', sa.String(length=20), nullable=False),
        sa.Column('opened', sa.Integer(), server_default='0', nullable=False),
        sa.Column('resolved', sa.Integer(), server_default='0', nullable=False),
        sa.Column('met', sa.Integer(), server_default='0', nullable=False),
        sa.Column('breached', sa.Integer(), server_default='0', nullable=False),
        sa.Column('backlog_change', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'month', 'team_id', 'category_id', 'priority', 'target',
                                name=op.f('pk_report_month_rollup')),
    )
    with op.batch_alter_table('report_month_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_report_month_rollup_month', ['month', 'tenant_id'], unique=False)

    from helpdesk.services.reporting.rollups import rebuild

    rebuild(op.get_bind())


def downgrade():
    with op.batch_alter_table('report_month_rollup', schema=None) as batch_op:
        batch_op.drop_index('ix_report_month_rollup_month')
    op.drop_table('report_month_rollup')
