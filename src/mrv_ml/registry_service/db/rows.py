"""The registry database's values: what its queries return and take, and the table rows
they are read from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from mrv_ml.errors import RecordError
from mrv_ml.registry_service.db.schema import BatchStatus

MAX_PAGE = 500

# --- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One researcher's submission of a fingerprint (under a record ID, maybe signed)."""

    id: int
    fingerprint: str
    mrv_id: str
    signer: str | None
    signature: str | None
    client: str | None
    received_at: datetime


@dataclass(frozen=True)
class Batch:
    """A Merkle tree of leaves and the life of its ``anchorBatch`` transaction."""

    id: int
    root: str
    leaf_count: int
    status: BatchStatus
    chain_id: int
    registry_address: str
    submitter: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    block_timestamp: int | None  # the block's own timestamp, unix seconds
    gas_used: int | None
    created_at: datetime
    sent_at: datetime | None
    anchored_at: datetime | None


@dataclass(frozen=True)
class PublishedRecord:
    """A record its author chose to publish: ``record_json`` is the text received, so
    anyone can recompute the fingerprint; the other fields are copies for searching."""

    mrv_id: str
    fingerprint: str
    record_json: str
    experiment: str
    model_name: str | None
    tags: dict[str, Any]
    signer: str | None
    started_at: datetime | None
    energy_kwh: float | None
    co2_kg: float | None
    published_at: datetime
    status: str | None = None  # the run's outcome: completed / failed / interrupted
    dataset_name: str | None = None
    duration_s: float | None = None


EXPLORE_SORTS = ("date", "energy", "co2", "duration", "experiment")


@dataclass(frozen=True)
class ExploreQuery:
    """The explorer's filters over published records (``since <= started_at < until``),
    its order (a key of :data:`EXPLORE_SORTS`, ``-`` first for descending) and page."""

    experiment: str | None = None
    tag: str | None = None  # "key" or "key=value"
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    anchor_state: str | None = None  # "pending" or "anchored"
    sort: str = "-date"
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if self.sort.lstrip("-") not in EXPLORE_SORTS or self.sort.startswith("--"):
            raise RecordError(f"sort is one of {', '.join(EXPLORE_SORTS)} (with - first for "
                              f"descending), not {self.sort[:40]!r}")
        if not 1 <= self.limit <= MAX_PAGE:
            raise RecordError(f"limit must be between 1 and {MAX_PAGE}, not {self.limit}")
        if self.offset < 0:
            raise RecordError(f"offset must not be negative, not {self.offset}")


@dataclass(frozen=True)
class ExploreResult:
    """One page of rows (dicts of the listed columns and ``anchor_state``) and the totals
    of every row that matched, as :func:`mrv_ml.storage.selection.totals` defines them (``count``,
    ``measured``, ``not_measured``, ``energy_kwh``, ``co2_kg``, ``duration_s``)."""

    rows: list[dict[str, Any]]
    totals: dict[str, Any]


@dataclass(frozen=True)
class SubmitResult:
    """What :meth:`RegistryDB.submit` found or made.

    ``new`` is false when this very submission (fingerprint, ID, signer) was already there.
    ``batch`` is the leaf's batch, ``None`` while it waits for one. ``record_published``
    is ``None`` when no record was given, true when the record is published under its ID,
    false when another fingerprint was published under that ID first (the first stays).
    """

    submission: Submission
    new: bool
    batch: Batch | None
    record_published: bool | None


@dataclass(frozen=True)
class RegistryStats:
    """Totals for the service's metrics."""

    submissions_total: int
    leaves_pending: int
    batches_anchored: int
    gas_used_total: int
    last_anchored_at: datetime | None


# --- from rows ---------------------------------------------------------------------------


def _submission(row: sa.Row[Any]) -> Submission:
    m = row._mapping
    return Submission(id=int(m["id"]), fingerprint=m["fingerprint"], mrv_id=m["mrv_id"],
                      signer=m["signer"], signature=m["signature"], client=m["client"],
                      received_at=m["received_at"])


def _batch(row: sa.Row[Any]) -> Batch:
    m = row._mapping
    return Batch(id=int(m["id"]), root=m["root"], leaf_count=int(m["leaf_count"]),
                 status=cast(BatchStatus, m["status"]), chain_id=int(m["chain_id"]),
                 registry_address=m["registry_address"], submitter=m["submitter"],
                 tx_hash=m["tx_hash"], block_number=m["block_number"],
                 block_hash=m["block_hash"], block_timestamp=m["block_timestamp"],
                 gas_used=m["gas_used"], created_at=m["created_at"], sent_at=m["sent_at"],
                 anchored_at=m["anchored_at"])


def _published(row: sa.Row[Any]) -> PublishedRecord:
    m = row._mapping
    return PublishedRecord(
        mrv_id=m["mrv_id"], fingerprint=m["fingerprint"], record_json=m["record_json"],
        experiment=m["experiment"], model_name=m["model_name"], tags=dict(m["tags"]),
        signer=m["signer"], started_at=m["started_at"], energy_kwh=m["energy_kwh"],
        co2_kg=m["co2_kg"], published_at=m["published_at"], status=m["status"],
        dataset_name=m["dataset_name"], duration_s=m["duration_s"])
