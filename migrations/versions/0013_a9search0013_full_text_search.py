"""full text search

Revision ID: a9search0013
Revises: a8queue00012
Create Date: 2026-12-01 20:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import helpdesk.models.types


# revision identifiers, used by Alembic.
revision = 'a9search0013'
down_revision = 'a8queue00012'
branch_labels = None
depends_on = None

# Existing tickets get their documents in id batches of set-based SQL (about a minute per million on PostgreSQL).
BATCH = 50_000


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    document = postgresql.TSVECTOR() if postgres else sa.Text()
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        'ticket_search',
        sa.Column('ticket_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('public_text', sa.Text(), nullable=False),
        sa.Column('internal_text', sa.Text(), nullable=False),
        sa.Column('public_document', document, nullable=True),
        sa.Column('internal_document', document, nullable=True),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_search_ticket_id_ticket'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_ticket_search')),
    )
    if postgres:
        op.create_index('ix_ticket_search_public_document', 'ticket_search', ['public_document'],
                        postgresql_using='gin')
        op.create_index('ix_ticket_search_internal_document', 'ticket_search', ['internal_document'],
                        postgresql_using='gin')
        op.create_index('ix_ticket_number_trgm', 'ticket', ['number'], postgresql_using='gin',
                        postgresql_ops={'number': 'gin_trgm_ops'})
    else:
        # Same names as on PostgreSQL so the schema matches the models; SQLite searches through FTS5 below.
        op.create_index('ix_ticket_search_public_document', 'ticket_search', ['public_document'])
        op.create_index('ix_ticket_search_internal_document', 'ticket_search', ['internal_document'])
        op.create_index('ix_ticket_number_trgm', 'ticket', ['number'])
        op.execute(
            "CREATE VIRTUAL TABLE ticket_search_fts USING fts5(title, public_text, internal_text, "
            "content='ticket_search', content_rowid='ticket_id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER ticket_search_fts_insert AFTER INSERT ON ticket_search BEGIN "
            "INSERT INTO ticket_search_fts(rowid, title, public_text, internal_text) "
            "VALUES (new.ticket_id, new.title, new.public_text, new.internal_text); END"
        )
        op.execute(
            "CREATE TRIGGER ticket_search_fts_delete AFTER DELETE ON ticket_search BEGIN "
            "INSERT INTO ticket_search_fts(ticket_search_fts, rowid, title, public_text, internal_text) "
            "VALUES ('delete', old.ticket_id, old.title, old.public_text, old.internal_text); END"
        )
        op.execute(
            "CREATE TRIGGER ticket_search_fts_update AFTER UPDATE ON ticket_search BEGIN "
            "INSERT INTO ticket_search_fts(ticket_search_fts, rowid, title, public_text, internal_text) "
            "VALUES ('delete', old.ticket_id, old.title, old.public_text, old.internal_text); "
            "INSERT INTO ticket_search_fts(rowid, title, public_text, internal_text) "
            "VALUES (new.ticket_id, new.title, new.public_text, new.internal_text); END"
        )

    from helpdesk.services.search import reindex_all

    reindex_all(bind, BATCH)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS ticket_search_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS ticket_search_fts")
    op.drop_index('ix_ticket_number_trgm', table_name='ticket')
    op.drop_index('ix_ticket_search_internal_document', table_name='ticket_search')
    op.drop_index('ix_ticket_search_public_document', table_name='ticket_search')
    op.drop_table('ticket_search')
