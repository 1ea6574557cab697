"""mailbox status: IMAP fetch runs and errors

Revision ID: c2mbox000016
Revises: c1mail000015
Create Date: 2026-12-01 23:00:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'c2mbox000016'
down_revision = 'c1mail000015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mailbox_status",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_started_at", helpdesk.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", helpdesk.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", helpdesk.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_error_at", helpdesk.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_waiting", sa.Integer(), nullable=False),
        sa.Column("last_imported", sa.Integer(), nullable=False),
        sa.Column("last_held", sa.Integer(), nullable=False),
        sa.Column("last_ignored", sa.Integer(), nullable=False),
        sa.Column("last_failed", sa.Integer(), nullable=False),
        sa.Column("total_imported", sa.Integer(), nullable=False),
        sa.Column("total_held", sa.Integer(), nullable=False),
        sa.Column("total_ignored", sa.Integer(), nullable=False),
        sa.Column("total_failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("mailbox_status")
