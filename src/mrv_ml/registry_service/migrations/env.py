"""Alembic environment of the registry database.

Run only by :func:`mrv_ml.registry_service.db.open_database`, on the connection and inside the
transaction it opened (and holds the migration lock for): no ini file, no URL of its own,
no offline mode. All of an upgrade is one transaction, SQLite's too (``db`` issues its own
BEGIN there, so DDL is transactional), so a failed migration leaves the schema as it was.
"""

from __future__ import annotations

from alembic import context

from mrv_ml.errors import MRVStateError
from mrv_ml.registry_service.db.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if context.is_offline_mode() or connection is None:
    raise MRVStateError("the registry's migrations run through mrv_ml.registry_service.db.open_database")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
    # SQLite cannot alter most of a table: later migrations rebuild it ("batch" mode)
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
