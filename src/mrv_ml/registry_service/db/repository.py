"""The registry database's writes and their reads: submissions, the leaves waiting for a
batch, the batches and their life on chain, and the totals for metrics.

Every write is one transaction whose outcome does not depend on who else writes at the
same instant: rows that may already exist go in with ``INSERT ... ON CONFLICT DO NOTHING``,
and a batch takes only leaves that no batch holds yet.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mrv_ml.errors import MRVError, RecordError, RegistryConflictError, RegistryDatabaseError
from mrv_ml.registry_service.db.engine import _engine_for, _target
from mrv_ml.registry_service.db.rows import (
    Batch,
    RegistryStats,
    Submission,
    SubmitResult,
    _batch,
    _submission,
)
from mrv_ml.registry_service.db.schema import (
    MAX_CLIENT_CHARS,
    UNFINISHED,
    UTC,
    batches,
    leaves,
    record_tags,
    records,
    submissions,
)
from mrv_ml.registry_service.db.search import PublishedQueries
from mrv_ml.registry_service.db.validate import (
    _HASH32,
    _SIGNATURE,
    _address,
    _fingerprint,
    _hex_value,
    _mrv_id,
    _record_row,
)

MAX_LEAVES = 2**32 - 1  # leafCount is a uint32 on chain
_CHUNK = 500  # values per IN (...) list: well under every driver's parameter limit


def open_database(url: str) -> RegistryDB:
    """Open the registry database at ``url`` (a SQLite file path or ``sqlite:///`` URL, or
    ``postgresql://``), bringing its schema up to date. Several processes may open the same
    database at once; RegistryDatabaseError when it cannot be reached or opened."""
    target = _target(url)
    db = RegistryDB(_engine_for(target), target)
    try:
        db._migrate()
    except BaseException:
        db.close()
        raise
    return db


class RegistryDB(PublishedQueries):
    """The registry database; safe to share between threads (each call takes a pooled
    connection). Make one per process with :func:`open_database`."""

    @functools.cached_property
    def _submit_statements(self) -> tuple[Any, Any]:
        """The two statements of a new submission, built once with bind parameters: building
        and keying a statement per call cost as much CPU as the database work itself."""
        new_leaf = (self._insert(leaves)
                    .values(fingerprint=sa.bindparam("fingerprint"),
                            first_seen=sa.bindparam("now"))
                    .on_conflict_do_nothing().returning(leaves.c.fingerprint))
        new_submission = (self._insert(submissions)
                          .values(fingerprint=sa.bindparam("fingerprint"),
                                  mrv_id=sa.bindparam("mrv_id"),
                                  signer=sa.bindparam("signer"),
                                  signature=sa.bindparam("signature"),
                                  client=sa.bindparam("client"),
                                  received_at=sa.bindparam("now"))
                          .on_conflict_do_nothing().returning(*submissions.c))
        return new_leaf, new_submission

    # --- submissions ---------------------------------------------------------------------

    def submit(self, fingerprint: str, mrv_id: str, *, signer: str | None = None,
               signature: str | None = None, client: str | None = None,
               record_json: str | bytes | None = None,
               record_fields: Mapping[str, Any] | None = None) -> SubmitResult:
        """Record a submission, in one transaction: the leaf if new, the submission if new
        (the same fingerprint, ID and signer again is the same submission), and the
        published record if given. Idempotent and safe when others submit the same at once.

        ``record_fields`` (with ``record_json``) are the searchable copies the caller took
        from the record: ``experiment`` (required), ``model_name``, ``tags``,
        ``started_at``, ``energy_kwh``, ``co2_kg``, ``signer`` (default: ``signer``). The
        caller has checked that ``record_json`` is the record of ``fingerprint``.
        """
        prepared = self._prepare(fingerprint, mrv_id, signer=signer, signature=signature,
                                 client=client, record_json=record_json,
                                 record_fields=record_fields)
        with self._transaction(write=True) as conn:
            return self._write_submission(conn, prepared)

    def submit_many(self, submissions_: Sequence[Mapping[str, Any]]
                    ) -> list[SubmitResult | Exception]:
        """Several submissions (each the keyword arguments of :meth:`submit`) in ONE
        transaction, so one commit (and one fsync) serves them all: the service groups the
        submissions that arrive together. Each gets its result or its own error, in order;
        should the shared transaction fail, each is tried alone, so one never fails the
        others (a database that is down fails them all alike)."""
        results: list[SubmitResult | Exception | None] = [None] * len(submissions_)
        prepared: list[tuple[int, dict[str, Any]]] = []
        for n, kwargs in enumerate(submissions_):
            try:
                prepared.append((n, self._prepare(**kwargs)))
            except MRVError as e:
                results[n] = e
        try:
            with self._transaction(write=True) as conn:
                written = [(n, self._write_submission(conn, p)) for n, p in prepared]
            for n, result in written:
                results[n] = result
        except RegistryDatabaseError as e:
            for n, _ in prepared:
                results[n] = e
        except (MRVError, sa.exc.SQLAlchemyError):
            for n, p in prepared:
                try:
                    with self._transaction(write=True) as conn:
                        results[n] = self._write_submission(conn, p)
                except Exception as e:  # noqa: BLE001 - handed to its own submitter
                    results[n] = e
        return [r for r in results if r is not None]

    def _prepare(self, fingerprint: str, mrv_id: str, *, signer: str | None = None,
                 signature: str | None = None, client: str | None = None,
                 record_json: str | bytes | None = None,
                 record_fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A submission's checked values and rows, before any database work."""
        fingerprint = _fingerprint(fingerprint)
        mrv_id = _mrv_id(mrv_id)
        signer = _address(signer, "signer")
        if signature is not None:
            if signer is None:
                raise RecordError("a signature needs its signer's address")
            signature = _hex_value(signature, _SIGNATURE, "signature", "65-byte")
        if client is not None:
            client = client[:MAX_CLIENT_CHARS]
        if (record_json is None) != (record_fields is None):
            raise RecordError("record_json and record_fields come together")
        now = _now()
        record = tags = None
        if record_json is not None and record_fields is not None:
            record, tags = _record_row(mrv_id, fingerprint, record_json, record_fields,
                                       signer, now)
        return {"params": {"fingerprint": fingerprint, "mrv_id": mrv_id, "signer": signer,
                           "signature": signature, "client": client, "now": now},
                "record": record, "tags": tags}

    def _write_submission(self, conn: sa.Connection, prepared: Mapping[str, Any]
                          ) -> SubmitResult:
        insert_leaf, insert_submission = self._submit_statements
        params, record, tags = prepared["params"], prepared["record"], prepared["tags"]
        fingerprint, mrv_id, signer = params["fingerprint"], params["mrv_id"], params["signer"]
        new_leaf = conn.execute(insert_leaf, params).first() is not None
        # A new submission comes back whole from RETURNING; only one seen before is read
        # (the common case costs two statements, not four).
        row = conn.execute(insert_submission, params).first()
        inserted = row is not None
        if row is None:
            same_signer = (submissions.c.signer.is_(None) if signer is None
                           else submissions.c.signer == signer)
            row = conn.execute(sa.select(submissions).where(
                submissions.c.fingerprint == fingerprint, submissions.c.mrv_id == mrv_id,
                same_signer)).one()
        published: bool | None = None
        if record is not None:
            stored = conn.execute(self._insert(records).values(**record)
                                  .on_conflict_do_nothing()
                                  .returning(records.c.mrv_id)).first()
            if stored is not None and tags:
                conn.execute(sa.insert(record_tags), tags)
            published = conn.execute(sa.select(records.c.fingerprint).where(
                records.c.mrv_id == mrv_id)).scalar_one() == fingerprint
        batch = None if new_leaf else self._batch_of(conn, fingerprint)  # new: in none
        return SubmitResult(_submission(row), inserted, batch, published)

    def submissions_for(self, fingerprint: str | None = None,
                        mrv_id: str | None = None) -> list[Submission]:
        """Submissions of a fingerprint, of an ID, or of both together; oldest first."""
        if fingerprint is None and mrv_id is None:
            raise RecordError("name a fingerprint or a record ID")
        query = sa.select(submissions).order_by(submissions.c.id)
        if fingerprint is not None:
            query = query.where(submissions.c.fingerprint == _fingerprint(fingerprint))
        if mrv_id is not None:
            query = query.where(submissions.c.mrv_id == _mrv_id(mrv_id))
        with self._transaction(write=False) as conn:
            return [_submission(r) for r in conn.execute(query)]

    # --- leaves waiting for a batch ------------------------------------------------------

    def pending_count(self) -> int:
        with self._transaction(write=False) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(leaves)
                                    .where(leaves.c.batch_id.is_(None))).scalar_one())

    def pending_fingerprints(self, limit: int) -> list[str]:
        """Up to ``limit`` leaves in no batch, the longest waiting first."""
        if limit < 1:
            raise RecordError(f"limit must be at least 1, not {limit}")
        with self._transaction(write=False) as conn:
            return list(conn.execute(
                sa.select(leaves.c.fingerprint).where(leaves.c.batch_id.is_(None))
                .order_by(leaves.c.first_seen, leaves.c.fingerprint).limit(limit)).scalars())

    # --- batches -------------------------------------------------------------------------

    def create_batch(self, root: str, fingerprints: Sequence[str], *, chain_id: int,
                     registry_address: str, submitter: str) -> Batch:
        """Record a built tree (status ``built``) and give it its leaves, in one
        transaction. RegistryConflictError if a leaf is in another batch or was never
        submitted, or the root exists already; nothing is changed then."""
        root = _hex_value(root, _HASH32, "Merkle root", "32-byte")
        leaf_list = [_fingerprint(f) for f in fingerprints]
        if not leaf_list:
            raise RecordError("a batch needs at least one leaf")
        if len(set(leaf_list)) != len(leaf_list):
            raise RecordError("a batch names a fingerprint twice")
        if len(leaf_list) > MAX_LEAVES:
            raise RecordError(f"a batch holds at most {MAX_LEAVES} leaves")
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 1:
            raise RecordError(f"chain id must be a positive integer, not {chain_id!r}")
        registry = _address(registry_address, "registry address")
        operator = _address(submitter, "submitter")
        with self._transaction(write=True) as conn:
            existing = conn.execute(sa.select(batches.c.id).where(batches.c.root == root)
                                    ).scalar()
            if existing is not None:
                raise RegistryConflictError(f"batch {existing} already has root {root}")
            try:
                batch_id = conn.execute(sa.insert(batches).values(
                    root=root, leaf_count=len(leaf_list), status="built", chain_id=chain_id,
                    registry_address=registry, submitter=operator, created_at=_now(),
                ).returning(batches.c.id)).scalar_one()
            except sa.exc.IntegrityError as e:  # the same root created at this instant
                raise RegistryConflictError(f"a batch with root {root} already exists") from e
            assigned = 0
            for chunk in _chunks(sorted(leaf_list)):
                assigned += conn.execute(
                    sa.update(leaves)
                    .where(leaves.c.fingerprint.in_(chunk), leaves.c.batch_id.is_(None))
                    .values(batch_id=batch_id)).rowcount
            if assigned != len(leaf_list):
                raise self._not_pending(conn, leaf_list, batch_id)  # rolls back
            return self._batch(conn, batch_id)

    def _not_pending(self, conn: sa.Connection, leaf_list: list[str],
                     batch_id: int) -> RegistryConflictError:
        found: dict[str, int | None] = {}
        for chunk in _chunks(leaf_list):
            rows = conn.execute(sa.select(leaves.c.fingerprint, leaves.c.batch_id)
                                .where(leaves.c.fingerprint.in_(chunk)))
            found.update((f, b) for f, b in rows)
        taken = [(f, found[f]) for f in leaf_list if f in found and found[f] != batch_id]
        unknown = [f for f in leaf_list if f not in found]
        problems = [f"{f} is in batch {b}" for f, b in taken] + [
            f"{f} was never submitted" for f in unknown]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return RegistryConflictError(f"cannot batch: fingerprint {problems[0]}{more}")

    def mark_sent(self, batch_id: int, tx_hash: str) -> Batch:
        """The batch's transaction was sent (again, for a replacement transaction)."""
        tx_hash = _hex_value(tx_hash, _HASH32, "transaction hash", "32-byte")
        with self._transaction(write=True) as conn:
            current = self._locked_batch(conn, batch_id)
            if current.status == "anchored":
                raise RegistryConflictError(f"batch {batch_id} is anchored already")
            conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(
                status="sent", tx_hash=tx_hash, sent_at=current.sent_at or _now()))
            return self._batch(conn, batch_id)

    def mark_anchored(self, batch_id: int, *, block_number: int, block_hash: str,
                      block_timestamp: int, gas_used: int | None,
                      tx_hash: str | None = None) -> Batch:
        """The batch's root is on chain. Allowed from any state: a batch found on chain
        after a crash before :meth:`mark_sent`, or mined again after a reorganisation."""
        block_hash = _hex_value(block_hash, _HASH32, "block hash", "32-byte")
        for name, value in (("block number", block_number),
                            ("block timestamp", block_timestamp), ("gas used", gas_used)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise RecordError(f"{name} must be a non-negative integer, not {value!r}")
        changes: dict[str, Any] = {"status": "anchored", "block_number": block_number,
                                   "block_hash": block_hash, "block_timestamp": block_timestamp,
                                   "gas_used": gas_used}
        if tx_hash is not None:
            changes["tx_hash"] = _hex_value(tx_hash, _HASH32, "transaction hash", "32-byte")
        with self._transaction(write=True) as conn:
            current = self._locked_batch(conn, batch_id)
            changes["anchored_at"] = current.anchored_at or _now()
            conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(**changes))
            return self._batch(conn, batch_id)

    def discard_batch(self, batch_id: int) -> None:
        """Forget a ``built`` batch whose transaction was never sent; its leaves wait for
        the next batch again."""
        with self._transaction(write=True) as conn:
            current = self._locked_batch(conn, batch_id)
            if current.status != "built":
                raise RegistryConflictError(
                    f"batch {batch_id} is {current.status}: only a batch never sent can be "
                    "discarded")
            conn.execute(sa.update(leaves).where(leaves.c.batch_id == batch_id)
                         .values(batch_id=None))
            conn.execute(sa.delete(batches).where(batches.c.id == batch_id))

    def unfinished_batches(self) -> list[Batch]:
        """Batches built or sent but not known anchored, oldest first."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(sa.select(batches).where(batches.c.status.in_(UNFINISHED))
                                .order_by(batches.c.created_at, batches.c.id))
            return [_batch(r) for r in rows]

    def batch(self, batch_id: int) -> Batch | None:
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).first()
            return None if row is None else _batch(row)

    def batch_leaves(self, batch_id: int) -> list[str]:
        """The batch's fingerprints in ascending order (build its tree from them in this
        order and the leaf indexes come out the same every time)."""
        with self._transaction(write=False) as conn:
            return list(conn.execute(sa.select(leaves.c.fingerprint)
                                     .where(leaves.c.batch_id == batch_id)
                                     .order_by(leaves.c.fingerprint)).scalars())

    def batch_of(self, fingerprint: str) -> Batch | None:
        """The batch holding this fingerprint's leaf; ``None`` if pending or unknown."""
        fingerprint = _fingerprint(fingerprint)
        with self._transaction(write=False) as conn:
            return self._batch_of(conn, fingerprint)

    def _batch(self, conn: sa.Connection, batch_id: int) -> Batch:
        return _batch(conn.execute(sa.select(batches).where(batches.c.id == batch_id)).one())

    def _locked_batch(self, conn: sa.Connection, batch_id: int) -> Batch:
        # FOR UPDATE (PostgreSQL; SQLite's writer already excludes every other writer): two
        # callers changing one batch's state take turns.
        row = conn.execute(sa.select(batches).where(batches.c.id == batch_id)
                           .with_for_update()).first()
        if row is None:
            raise RegistryConflictError(f"no batch {batch_id}")
        return _batch(row)

    def _batch_of(self, conn: sa.Connection, fingerprint: str) -> Batch | None:
        row = conn.execute(sa.select(batches).join(leaves, leaves.c.batch_id == batches.c.id)
                           .where(leaves.c.fingerprint == fingerprint)).first()
        return None if row is None else _batch(row)

    # --- metrics -------------------------------------------------------------------------

    def stats(self) -> RegistryStats:
        anchored = batches.c.status == "anchored"
        with self._transaction(write=False) as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(submissions)
                                 ).scalar_one()
            pending = conn.execute(sa.select(sa.func.count()).select_from(leaves)
                                   .where(leaves.c.batch_id.is_(None))).scalar_one()
            count, gas, last = conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(batches.c.gas_used), 0),
                sa.func.max(batches.c.anchored_at)).where(anchored)).one()
        return RegistryStats(int(total), int(pending), int(count), int(gas), last)


# --- helpers -----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]
