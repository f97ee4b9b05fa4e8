"""The first schema: leaves, submissions, published records (and their tags), batches.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: a rowid alias
TIME = sa.DateTime(timezone=True)  # always UTC; SQLite keeps the UTC wall time as text


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
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
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("sent_at", TIME),
        sa.Column("anchored_at", TIME),
        sa.UniqueConstraint("root", name="uq_batches_root"),
        sa.CheckConstraint("status IN ('built', 'sent', 'anchored')",
                           name="ck_batches_status"),
    )
    op.create_index("ix_batches_status", "batches", ["status"])

    op.create_table(
        "leaves",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("first_seen", TIME, nullable=False),
        sa.Column("batch_id", ID, sa.ForeignKey("batches.id", name="fk_leaves_batch_id")),
        sa.CheckConstraint("length(fingerprint) = 64", name="ck_leaves_fingerprint"),
    )
    op.create_index("ix_leaves_batch_id", "leaves", ["batch_id"])
    # the queue of leaves waiting for a batch, oldest first
    op.create_index("ix_leaves_pending", "leaves", ["first_seen", "fingerprint"],
                    sqlite_where=sa.text("batch_id IS NULL"),
                    postgresql_where=sa.text("batch_id IS NULL"))

    op.create_table(
        "submissions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64),
                  sa.ForeignKey("leaves.fingerprint", name="fk_submissions_fingerprint"),
                  nullable=False),
        sa.Column("mrv_id", sa.String(40), nullable=False),
        sa.Column("signer", sa.String(42)),
        sa.Column("signature", sa.String(132)),
        sa.Column("client", sa.String(200)),
        sa.Column("received_at", TIME, nullable=False),
    )
    # One submission per (fingerprint, mrv_id, signer), an unsigned one included: a plain
    # UNIQUE constraint would let NULL signers repeat (NULLs are distinct in SQL).
    op.create_index("uq_submissions_identity", "submissions",
                    ["fingerprint", "mrv_id", sa.text("coalesce(signer, '')")], unique=True)
    op.create_index("ix_submissions_mrv_id", "submissions", ["mrv_id"])

    op.create_table(
        "records",
        sa.Column("mrv_id", sa.String(40), primary_key=True),
        sa.Column("fingerprint", sa.String(64),
                  sa.ForeignKey("leaves.fingerprint", name="fk_records_fingerprint"),
                  nullable=False),
        sa.Column("record_json", sa.Text, nullable=False),
        sa.Column("experiment", sa.Text, nullable=False),
        sa.Column("model_name", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("signer", sa.String(42)),
        sa.Column("started_at", TIME),
        sa.Column("energy_kwh", sa.Float),
        sa.Column("co2_kg", sa.Float),
        sa.Column("published_at", TIME, nullable=False),
    )
    op.create_index("ix_records_fingerprint", "records", ["fingerprint"])
    op.create_index("ix_records_experiment", "records", ["experiment"])
    op.create_index("ix_records_signer", "records", ["signer"])
    op.create_index("ix_records_started_at", "records", ["started_at"])
    op.create_index("ix_records_published", "records", ["published_at", "mrv_id"])

    op.create_table(
        "record_tags",
        sa.Column("mrv_id", sa.String(40),
                  sa.ForeignKey("records.mrv_id", name="fk_record_tags_mrv_id",
                                ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(500), nullable=False),
    )
    op.create_index("ix_record_tags_key_value", "record_tags", ["key", "value"])


def downgrade() -> None:
    op.drop_table("record_tags")
    op.drop_table("records")
    op.drop_table("submissions")
    op.drop_table("leaves")
    op.drop_table("batches")
