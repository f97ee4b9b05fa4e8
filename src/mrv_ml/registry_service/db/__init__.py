"""The registry service's storage: the fingerprints researchers submit, the Merkle batches
that anchor them, and the records they chose to publish.

One database, a SQLite file or PostgreSQL, shared by every thread and process of the
service. Every write is one transaction whose outcome does not depend on who else writes at
the same instant: rows that may already exist go in with ``INSERT ... ON CONFLICT DO
NOTHING``, and a batch takes only leaves that no batch holds yet, so a fingerprint is one
leaf for ever and in at most one batch at a time. The schema belongs to the Alembic
migrations under ``migrations/`` (applied by :func:`open_database`); the tables of
:mod:`.schema` mirror it for the queries, and a test checks that the two agree.

- :mod:`.schema`: the tables, their column types, ``VERSION_TABLE``;
- :mod:`.rows`: the values the queries return and take, read from table rows;
- :mod:`.validate`: the checks on what the database is given;
- :mod:`.engine`: opening (SQLite or PostgreSQL), transactions, the migrations, the
  anchoring leader's lock;
- :mod:`.search`: the reads of published records (search pages, the explorer);
- :mod:`.repository`: :class:`RegistryDB` and :func:`open_database`, the writes.

This package's names below are the ones the rest of the service uses.
"""

from mrv_ml.errors import MissingExtraError

try:  # the registry extra: its install hint before any module below needs it
    import alembic.command  # noqa: F401
    import alembic.config  # noqa: F401
    import alembic.util  # noqa: F401
    import sqlalchemy  # noqa: F401
    import sqlalchemy.dialects.postgresql  # noqa: F401
    import sqlalchemy.dialects.sqlite  # noqa: F401
except ImportError as e:  # pragma: no cover - the registry extra is not installed
    raise MissingExtraError(
        "the registry needs SQLAlchemy, Alembic and psycopg: "
        f"pip install 'mrv-ml[registry]' (import failed: {e})") from e

from mrv_ml.registry_service.db.engine import MIGRATIONS_DIR
from mrv_ml.registry_service.db.repository import RegistryDB, open_database
from mrv_ml.registry_service.db.rows import (
    EXPLORE_SORTS,
    Batch,
    ExploreQuery,
    ExploreResult,
    PublishedRecord,
    RegistryStats,
    Submission,
    SubmitResult,
)
from mrv_ml.registry_service.db.schema import (
    UNFINISHED,
    VERSION_TABLE,
    BatchStatus,
    metadata,
)

__all__ = [
    "EXPLORE_SORTS", "MIGRATIONS_DIR", "UNFINISHED", "VERSION_TABLE", "Batch", "BatchStatus",
    "ExploreQuery", "ExploreResult", "PublishedRecord", "RegistryDB", "RegistryStats",
    "Submission", "SubmitResult", "metadata", "open_database",
]
