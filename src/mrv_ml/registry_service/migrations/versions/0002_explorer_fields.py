"""The explorer's fields on published records: the run's outcome, its dataset and its
duration (searchable copies, as ``experiment`` and ``energy_kwh`` already are), backfilled
from each row's ``record_json``, and indexes for the explorer's filters and sorting.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
import math
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BACKFILL_CHUNK = 1000


def _fields(record_json: str) -> dict[str, Any]:
    """The new columns of one stored record; odd values (a record the service accepted is
    valid, but be tolerant) become NULL rather than failing the migration."""
    try:
        record = json.loads(record_json)
    except ValueError:
        return {"status": None, "dataset_name": None, "duration_s": None}
    if not isinstance(record, dict):
        record = {}

    def section(name: str) -> dict[str, Any]:
        value = record.get(name)
        return value if isinstance(value, dict) else {}

    status = section("outcome").get("status")
    dataset = section("experiment").get("dataset_name")
    duration = section("energy_emissions").get("duration_seconds")
    ok_number = (isinstance(duration, int | float) and not isinstance(duration, bool)
                 and math.isfinite(duration))
    duration = duration if ok_number else None
    return {"status": status if isinstance(status, str) else None,
            "dataset_name": dataset if isinstance(dataset, str) else None,
            "duration_s": None if duration is None else float(duration)}


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("status", sa.String(16)))
        batch.add_column(sa.Column("dataset_name", sa.Text))
        batch.add_column(sa.Column("duration_s", sa.Float))
    records = sa.table("records", sa.column("mrv_id", sa.String), sa.column("record_json", sa.Text),
                       sa.column("status", sa.String), sa.column("dataset_name", sa.Text),
                       sa.column("duration_s", sa.Float))
    conn = op.get_bind()
    update = (records.update().where(records.c.mrv_id == sa.bindparam("id"))
              .values(status=sa.bindparam("s"), dataset_name=sa.bindparam("d"),
                      duration_s=sa.bindparam("t")))
    last = ""
    while True:  # keyset over the primary key: memory stays flat on a large registry
        rows = conn.execute(sa.select(records.c.mrv_id, records.c.record_json)
                            .where(records.c.mrv_id > last).order_by(records.c.mrv_id)
                            .limit(_BACKFILL_CHUNK)).all()
        if not rows:
            break
        params = []
        for mrv_id, record_json in rows:
            f = _fields(record_json)
            params.append({"id": mrv_id, "s": f["status"], "d": f["dataset_name"],
                           "t": f["duration_s"]})
        conn.execute(update, params)
        last = rows[-1][0]
    op.create_index("ix_records_status", "records", ["status"])
    op.create_index("ix_records_energy_kwh", "records", ["energy_kwh"])
    op.create_index("ix_records_co2_kg", "records", ["co2_kg"])
    op.create_index("ix_records_duration_s", "records", ["duration_s"])


def downgrade() -> None:
    op.drop_index("ix_records_duration_s", "records")
    op.drop_index("ix_records_co2_kg", "records")
    op.drop_index("ix_records_energy_kwh", "records")
    op.drop_index("ix_records_status", "records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("duration_s")
        batch.drop_column("dataset_name")
        batch.drop_column("status")
