"""inbound mail: imported messages, held mail, tenant mail domains

Revision ID: c1mail000015
Revises: b1rollup0014
Create Date: 2026-12-01 23:00:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'c1mail000015'
down_revision = 'b1rollup0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "inbound_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("reason_detail", sa.String(length=500), nullable=True),
        sa.Column("sender_address", sa.String(length=254), nullable=True),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("sent_at", helpdesk.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", helpdesk.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("auto_answered", sa.Boolean(), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", helpdesk.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["comment_id"], ["comment.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
        sa.UniqueConstraint("storage_key"),
    )
    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_mail_status_received", ["status", "received_at", "id"], unique=False)
        batch_op.create_index("ix_inbound_mail_sender_received", ["sender_address", "received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_mail_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_mail_comment_id"), ["comment_id"], unique=False)

    op.create_table(
        "tenant_mail_domain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain"),
    )
    with op.batch_alter_table("tenant_mail_domain", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tenant_mail_domain_tenant_id"), ["tenant_id"], unique=False)

    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mail_unknown_senders", sa.String(length=10), nullable=False,
                                      server_default="create"))


def downgrade():
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.drop_column("mail_unknown_senders")
    with op.batch_alter_table("tenant_mail_domain", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenant_mail_domain_tenant_id"))
    op.drop_table("tenant_mail_domain")
    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_mail_comment_id"))
        batch_op.drop_index(batch_op.f("ix_inbound_mail_ticket_id"))
        batch_op.drop_index("ix_inbound_mail_sender_received")
        batch_op.drop_index("ix_inbound_mail_status_received")
    op.drop_table("inbound_mail")
