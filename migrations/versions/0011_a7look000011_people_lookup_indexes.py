"""people lookup indexes

Revision ID: a7look000011
Revises: a5hist000010
Create Date: 2026-12-01 20:30:00

"""
from alembic import op
import sqlalchemy as sa

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a7look000011'
down_revision = 'a5hist000010'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # Trigram indexes make ILIKE '%part%' on names and emails an index scan (people lookup, user list).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index('ix_user_name_trgm', ['name'], unique=False,
                              postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
        batch_op.create_index('ix_user_email_trgm', ['email'], unique=False,
                              postgresql_using='gin', postgresql_ops={'email': 'gin_trgm_ops'})


def downgrade():
    # The pg_trgm extension stays: other migrations (full text search) may use it as well.
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index('ix_user_email_trgm')
        batch_op.drop_index('ix_user_name_trgm')
