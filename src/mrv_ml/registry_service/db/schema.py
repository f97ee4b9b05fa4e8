"""The registry database's tables, as SQLAlchemy sees them for its queries.

The schema belongs to the Alembic migrations under ``registry_service/migrations/``; these
tables mirror it, and a test checks that the two agree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

import sqlalchemy as sa

from mrv_ml.errors import MRVValueError

UTC = timezone.utc
BatchStatus = Literal["built", "sent", "anchored"]
UNFINISHED: tuple[BatchStatus, ...] = ("built", "sent")

MAX_MRV_ID_CHARS = 40
MAX_CLIENT_CHARS = 200
# Tags longer than this stay in the record's ``tags`` but are not searchable: a B-tree
# entry has a size limit in PostgreSQL, and nobody searches for a 10 kB value.
MAX_TAG_KEY_CHARS = 200
MAX_TAG_VALUE_CHARS = 500

VERSION_TABLE = "mrv_registry_version"  # not "alembic_version": the database may be shared


# --- schema (mirrors migrations/versions; the migrations are the authority) --------------

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: a rowid alias


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both databases (SQLite keeps no
    zone: it stores UTC wall time, which also sorts and compares correctly as text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise MRVValueError("naive datetime given to the registry database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None,
                             dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

batches = sa.Table(
    "batches", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("root", sa.String(66), nullable=False),
    sa.Column("leaf_count", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("registry_address", sa.String(42), nullable=False),
    sa.Column("submitter", sa.String(42), nullable=False),
    sa.Column("tx_hash", sa.String(66)),
    sa.Column("block_number", sa.BigInteger),
    sa.Column("block_hash", sa.String(66)),
    sa.Column("block_timestamp", sa.BigInteger),
    sa.Column("gas_used", sa.BigInteger),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("sent_at", _UTCDateTime),
    sa.Column("anchored_at", _UTCDateTime),
    sa.UniqueConstraint("root", name="uq_batches_root"),
    sa.CheckConstraint("status IN ('built', 'sent', 'anchored')", name="ck_batches_status"),
    sa.Index("ix_batches_status", "status"),
)

leaves = sa.Table(
    "leaves", metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("first_seen", _UTCDateTime, nullable=False),
    sa.Column("batch_id", _ID, sa.ForeignKey("batches.id", name="fk_leaves_batch_id")),
    sa.CheckConstraint("length(fingerprint) = 64", name="ck_leaves_fingerprint"),
    sa.Index("ix_leaves_batch_id", "batch_id"),
    sa.Index("ix_leaves_pending", "first_seen", "fingerprint",
             sqlite_where=sa.text("batch_id IS NULL"),
             postgresql_where=sa.text("batch_id IS NULL")),
)

submissions = sa.Table(
    "submissions", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64),
              sa.ForeignKey("leaves.fingerprint", name="fk_submissions_fingerprint"),
              nullable=False),
    sa.Column("mrv_id", sa.String(MAX_MRV_ID_CHARS), nullable=False),
    sa.Column("signer", sa.String(42)),
    sa.Column("signature", sa.String(132)),
    sa.Column("client", sa.String(MAX_CLIENT_CHARS)),
    sa.Column("received_at", _UTCDateTime, nullable=False),
    sa.Index("ix_submissions_mrv_id", "mrv_id"),
)
# One submission per (fingerprint, mrv_id, signer), unsigned ones included: a plain UNIQUE
# constraint would let NULL signers repeat (NULLs are distinct in SQL).
sa.Index("uq_submissions_identity", submissions.c.fingerprint, submissions.c.mrv_id,
         sa.func.coalesce(submissions.c.signer, sa.literal_column("''")), unique=True)

records = sa.Table(
    "records", metadata,
    sa.Column("mrv_id", sa.String(MAX_MRV_ID_CHARS), primary_key=True),
    sa.Column("fingerprint", sa.String(64),
              sa.ForeignKey("leaves.fingerprint", name="fk_records_fingerprint"),
              nullable=False),
    sa.Column("record_json", sa.Text, nullable=False),
    sa.Column("experiment", sa.Text, nullable=False),
    sa.Column("model_name", sa.Text),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("signer", sa.String(42)),
    sa.Column("started_at", _UTCDateTime),
    sa.Column("energy_kwh", sa.Float),
    sa.Column("co2_kg", sa.Float),
    sa.Column("published_at", _UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16)),  # the run's outcome (migration 0002)
    sa.Column("dataset_name", sa.Text),
    sa.Column("duration_s", sa.Float),
    sa.Index("ix_records_fingerprint", "fingerprint"),
    sa.Index("ix_records_experiment", "experiment"),
    sa.Index("ix_records_signer", "signer"),
    sa.Index("ix_records_started_at", "started_at"),
    sa.Index("ix_records_published", "published_at", "mrv_id"),
    sa.Index("ix_records_status", "status"),
    sa.Index("ix_records_energy_kwh", "energy_kwh"),
    sa.Index("ix_records_co2_kg", "co2_kg"),
    sa.Index("ix_records_duration_s", "duration_s"),
)

# The tag filter reads this table, not ``records.tags``: a plain indexed (key, value)
# lookup is the same SQL on SQLite and PostgreSQL, where JSON functions differ (json_each
# and jsonb operators) and cannot use an ordinary index on both.
record_tags = sa.Table(
    "record_tags", metadata,
    sa.Column("mrv_id", sa.String(MAX_MRV_ID_CHARS),
              sa.ForeignKey("records.mrv_id", name="fk_record_tags_mrv_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(MAX_TAG_KEY_CHARS), primary_key=True),
    sa.Column("value", sa.String(MAX_TAG_VALUE_CHARS), nullable=False),
    sa.Index("ix_record_tags_key_value", "key", "value"),
)
