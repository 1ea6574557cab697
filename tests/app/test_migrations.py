"""The Alembic migrations build exactly the schema the models describe."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from helpdesk.extensions import db


def _not_fts(name, type_, parent_names):
    # SQLite's full-text table and its shadow tables are made by the search migration, not by the models.
    return not (type_ == "table" and name.startswith("ticket_search_fts"))


def test_migrated_database_matches_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False, "include_name": _not_fts})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
