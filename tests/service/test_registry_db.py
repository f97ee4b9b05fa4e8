"""The registry's storage (``mrv_ml.registry_service.db``), every test on SQLite and on a real
PostgreSQL server (``registry_db_url``, from ``tests/support/postgres.py``).

Processes are started with ``spawn``: each opens the database itself, as the service's
worker processes do.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mrv_ml.errors import (
    EXIT_STORE,
    ConfigError,
    RecordError,
    RegistryConflictError,
    RegistryDatabaseError,
)
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.schema import new_mrv_id
from mrv_ml.registry_service import db as registry_db
from mrv_ml.registry_service.db import VERSION_TABLE, RegistryDB, open_database
from mrv_ml.registry_service.db import repository as db_repository
from tests.support.records import make_sample_record

UTC = timezone.utc
SIGNER_A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SIGNER_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
SIGNATURE = "0x" + "ab" * 65
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OPERATOR = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
CHAIN_ID = 31337
PROCESS_TIMEOUT_S = 60
SPAWN = multiprocessing.get_context("spawn")


def fingerprint(n: int) -> str:
    return compute_hash({"leaf": n})


def root(n: int) -> str:
    return "0x" + compute_hash({"root": n})


def tx(n: int) -> str:
    return "0x" + compute_hash({"tx": n})


@pytest.fixture
def db(registry_db_url: str) -> Iterator[RegistryDB]:
    database = open_database(registry_db_url)
    try:
        yield database
    finally:
        database.close()


def new_batch(db: RegistryDB, n: int, fingerprints: list[str]) -> registry_db.Batch:
    return db.create_batch(root(n), fingerprints, chain_id=CHAIN_ID, registry_address=REGISTRY,
                           submitter=OPERATOR)


def run_processes(target: Callable[..., None], *args_per_process: tuple[Any, ...]) -> list[Any]:
    """Run ``target(queue, *args)`` in one spawned process per argument tuple; each puts
    one result (or ``("error", text)``) on the queue. The results, in arrival order."""
    queue = SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(queue, *args)) for args in args_per_process]
    for p in procs:
        p.start()
    results = [queue.get(timeout=PROCESS_TIMEOUT_S) for _ in procs]
    for p in procs:
        p.join(timeout=PROCESS_TIMEOUT_S)
        assert p.exitcode == 0
    assert not [r for r in results if isinstance(r, tuple) and r[:1] == ("error",)], results
    return results


def _open_and_submit(queue: Any, barrier: Any, url: str, n: int) -> None:
    try:
        barrier.wait(timeout=PROCESS_TIMEOUT_S)
        with open_database(url) as database:
            database.submit(fingerprint(n), new_mrv_id())
        queue.put("ok")
    except Exception as e:  # reported to the test, which fails with it
        queue.put(("error", f"{type(e).__name__}: {e}"))


def _submit_many(queue: Any, barrier: Any, url: str, pairs: list[tuple[str, str]],
                 client: str) -> None:
    try:
        with open_database(url) as database:
            new = []
            for f, m in pairs:
                barrier.wait(timeout=PROCESS_TIMEOUT_S)  # both submit this one at once
                new.append(database.submit(f, m, client=client).new)
            queue.put(new)
    except Exception as e:
        barrier.abort()  # the other process stops waiting for this one
        queue.put(("error", f"{type(e).__name__}: {e}"))


def _contend_for_leadership(queue: Any, url: str, go: Any) -> None:
    with open_database(url) as database:
        with database.anchoring_leader() as held:
            queue.put(("while the test leads", held))
        go.wait(timeout=PROCESS_TIMEOUT_S)
        with database.anchoring_leader() as held:
            queue.put(("after the test let go", held))
            time.sleep(PROCESS_TIMEOUT_S)  # killed here by the test


# --- opening and migrations -------------------------------------------------------------


def test_open_applies_migrations_and_reopening_changes_nothing(registry_db_url: str) -> None:
    first = open_database(registry_db_url)
    try:
        first.submit(fingerprint(1), new_mrv_id())
        with first._engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
            from alembic.autogenerate import compare_metadata
            from alembic.runtime.migration import MigrationContext

            with warnings.catch_warnings():  # expression indexes cannot be compared
                warnings.simplefilter("ignore")
                drift = compare_metadata(
                    MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}),
                    registry_db.metadata)
        assert {"leaves", "submissions", "records", "record_tags", "batches",
                VERSION_TABLE} <= tables
        assert versions == [("0002",)]
        assert drift == []  # the tables db.py queries are the ones the migrations made
        with open_database(registry_db_url) as second:  # while the first is still open
            assert second.pending_count() == 1
            second.ping()
    finally:
        first.close()


def test_two_processes_open_a_fresh_database_at_once(registry_db_url: str) -> None:
    barrier = SPAWN.Barrier(2)
    assert run_processes(_open_and_submit, (barrier, registry_db_url, 1),
                         (barrier, registry_db_url, 2)) == ["ok", "ok"]
    with open_database(registry_db_url) as database:
        assert database.pending_count() == 2
        with database._engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1


def test_a_database_that_cannot_be_reached_is_a_registry_database_error(
        registry_db_url: str, tmp_path: Path) -> None:
    if registry_db_url.startswith("postgresql"):
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        urls = [f"postgresql://alice:Sup3r-S3cret@127.0.0.1:{port}/registry",
                # the server answers, but there is no such database
                registry_db_url.rsplit("/", 1)[0].replace("postgres@", "postgres:Sup3r-S3cret@")
                + "/no_such_database"]
    else:
        (tmp_path / "a-file").write_text("x")
        (tmp_path / "garbage.sqlite").write_bytes(b"not a database " * 100)
        urls = [str(tmp_path / "a-file" / "registry.sqlite"),
                f"sqlite:///{tmp_path / 'garbage.sqlite'}"]
    for url in urls:
        with pytest.raises(RegistryDatabaseError) as caught:
            open_database(url)
        message = str(caught.value)
        assert "Sup3r-S3cret" not in message
        assert message.startswith("registry database ") and "\n" not in message
        assert caught.value.key == "registry_database" and caught.value.exit_code == EXIT_STORE


def test_a_schema_this_mrv_ml_does_not_know_is_refused(registry_db_url: str) -> None:
    with open_database(registry_db_url) as database, database._engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(RegistryDatabaseError, match="upgrade mrv-ml"):
        open_database(registry_db_url)
    with pytest.raises(ConfigError) as caught:
        open_database("mysql://alice:Sup3r-S3cret@127.0.0.1/registry")
    assert "Sup3r-S3cret" not in str(caught.value)


def test_ping_answers_while_the_database_does(db: RegistryDB, registry_db_url: str) -> None:
    db.ping()
    if db.dialect != "postgresql":
        return  # a SQLite file cannot go away under its open connections
    import psycopg

    server, name = registry_db_url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        try:
            with pytest.raises(RegistryDatabaseError, match="does not exist"):
                db.ping()
        finally:
            admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    db.ping()  # back: the pool reconnects


# --- submissions ------------------------------------------------------------------------


def test_submit_is_idempotent_and_one_fingerprint_is_one_leaf(db: RegistryDB) -> None:
    fp, id1, id2 = fingerprint(1), new_mrv_id(), new_mrv_id()
    first = db.submit(fp, id1, client="alice")
    again = db.submit(fp, id1, client="somebody else")
    assert first.new and not again.new
    assert again.submission == first.submission  # the existing one, untouched
    assert first.batch is None and first.record_published is None

    other_id = db.submit(fp, id2)
    signed = db.submit(fp, id1, signer=SIGNER_A.lower(), signature="0x" + SIGNATURE[2:].upper())
    signed_again = db.submit(fp, id1, signer=SIGNER_A, signature=SIGNATURE)
    assert other_id.new and signed.new and not signed_again.new
    assert signed.submission.signer == SIGNER_A  # checksummed, whatever case was sent
    assert signed.submission.signature == SIGNATURE

    assert db.pending_count() == 1 and db.pending_fingerprints(10) == [fp]
    assert [s.mrv_id for s in db.submissions_for(fingerprint=fp)] == [id1, id2, id1]
    assert [s.signer for s in db.submissions_for(mrv_id=id1)] == [None, SIGNER_A]
    assert len(db.submissions_for(fingerprint=fp, mrv_id=id2)) == 1
    assert db.stats().submissions_total == 3
    assert first.submission.received_at.tzinfo is not None


def test_submit_refuses_malformed_values_and_stores_nothing(db: RegistryDB) -> None:
    with pytest.raises(RecordError):
        db.submit("F" * 64, new_mrv_id())
    with pytest.raises(RecordError):
        db.submit(fingerprint(1), "MRV-not-a-uuid")
    with pytest.raises(RecordError):
        db.submit(fingerprint(1), new_mrv_id(), signature=SIGNATURE)  # whose?
    with pytest.raises(RecordError):
        db.submit(fingerprint(1), new_mrv_id(), record_json="{}")  # without its fields
    assert db.pending_count() == 0 and db.stats().submissions_total == 0


def test_a_published_record_keeps_its_exact_text_and_its_id_stays_with_the_first(
        db: RegistryDB) -> None:
    record = make_sample_record(experiment__tags={"team": "green-ai", "lr": 0.001})
    text = json.dumps(record, indent=1, ensure_ascii=False) + "\n"  # not canonical on purpose
    fp = compute_hash(record)
    fields = {"experiment": "mnist-baseline", "model_name": "SimpleCNN",
              "tags": record["experiment"]["tags"], "energy_kwh": 0.25, "co2_kg": 0.1,
              "started_at": "2026-11-24T22:00:00.000000Z"}
    result = db.submit(fp, record["mrv_id"], signer=SIGNER_A, signature=SIGNATURE,
                       record_json=text.encode(), record_fields=fields)
    assert result.new and result.record_published is True
    stored = db.published(record["mrv_id"])
    assert stored is not None
    assert stored.record_json == text and compute_hash(json.loads(stored.record_json)) == fp
    assert stored.signer == SIGNER_A and stored.tags == {"team": "green-ai", "lr": 0.001}
    assert stored.started_at == datetime(2026, 11, 24, 22, tzinfo=UTC)
    assert (stored.energy_kwh, stored.co2_kg, stored.model_name) == (0.25, 0.1, "SimpleCNN")

    # Another record under the same ID: its fingerprint is registered, the ID's record kept.
    other = db.submit(fingerprint(9), record["mrv_id"], record_json="{}",
                      record_fields={"experiment": "squatter"})
    assert other.new and other.record_published is False
    assert db.published(record["mrv_id"]) == stored
    assert db.submit(fp, record["mrv_id"], signer=SIGNER_A, record_json=text,
                     record_fields=fields).record_published is True
    assert db.published(new_mrv_id()) is None
    assert db.search_published(tag="team=green-ai")[0] == [stored]  # tags indexed once


def test_two_processes_submitting_the_same_fingerprints_make_one_leaf_each(
        registry_db_url: str) -> None:
    with open_database(registry_db_url):
        pass  # created here: this test is about submitting, not migrating
    pairs = [(fingerprint(n), new_mrv_id()) for n in range(200)]
    barrier = SPAWN.Barrier(2)
    results = run_processes(_submit_many, (barrier, registry_db_url, pairs, "p1"),
                            (barrier, registry_db_url, pairs, "p2"))
    # every (fingerprint, ID) was new for exactly one of the two processes
    assert [a + b for a, b in zip(*results, strict=True)] == [1] * 200
    with open_database(registry_db_url) as database:
        assert database.pending_count() == 200
        assert database.stats().submissions_total == 200
        assert sorted(database.pending_fingerprints(500)) == sorted(f for f, _ in pairs)


def test_threads_sharing_one_handle_submit_safely(db: RegistryDB) -> None:
    pairs = [(fingerprint(n), new_mrv_id()) for n in range(30)]

    def submit_all(_: int) -> int:
        return sum(db.submit(f, m).new for f, m in pairs)

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(submit_all, range(4))) == 30
    assert db.pending_count() == 30 and db.stats().submissions_total == 30


# --- batches ----------------------------------------------------------------------------


def test_batch_lifecycle_built_sent_anchored(db: RegistryDB) -> None:
    fps = [fingerprint(n) for n in range(5)]
    for fp in fps:
        db.submit(fp, new_mrv_id())
    assert db.pending_fingerprints(3) == fps[:3]  # the longest waiting first

    batch = new_batch(db, 1, fps[:3])
    assert (batch.status, batch.leaf_count, batch.root, batch.tx_hash) == (
        "built", 3, root(1), None)
    assert (batch.chain_id, batch.registry_address, batch.submitter) == (
        CHAIN_ID, REGISTRY, OPERATOR)
    assert db.batch_leaves(batch.id) == sorted(fps[:3])
    assert db.batch_of(fps[0]) == batch and db.batch_of(fps[4]) is None
    assert db.pending_fingerprints(10) == fps[3:] and db.pending_count() == 2
    assert db.unfinished_batches() == [batch]
    assert db.submit(fps[0], new_mrv_id()).batch == batch  # a late submitter learns it

    sent = db.mark_sent(batch.id, tx(1))
    assert (sent.status, sent.tx_hash) == ("sent", tx(1)) and sent.sent_at is not None
    replaced = db.mark_sent(batch.id, tx(2))  # a replacement transaction (higher fee)
    assert replaced.tx_hash == tx(2) and replaced.sent_at == sent.sent_at
    assert db.unfinished_batches() == [replaced]

    anchored = db.mark_anchored(batch.id, block_number=7, block_hash=tx(3),
                                block_timestamp=1_764_000_000, gas_used=61_000)
    assert anchored.status == "anchored" and anchored.anchored_at is not None
    assert (anchored.block_number, anchored.block_hash, anchored.block_timestamp,
            anchored.gas_used, anchored.tx_hash) == (7, tx(3), 1_764_000_000, 61_000, tx(2))
    assert db.batch(batch.id) == anchored and db.unfinished_batches() == []
    assert db.batch(batch.id + 100) is None

    with pytest.raises(RegistryConflictError):
        db.mark_sent(batch.id, tx(4))
    with pytest.raises(RegistryConflictError):
        db.discard_batch(batch.id)
    with pytest.raises(RegistryConflictError):
        db.mark_sent(batch.id + 100, tx(4))
    assert db.batch(batch.id) == anchored


def test_unfinished_batches_are_oldest_first(db: RegistryDB) -> None:
    for n in range(3):
        db.submit(fingerprint(n), new_mrv_id())
    a, b, c = (new_batch(db, n, [fingerprint(n)]) for n in range(3))
    db.mark_sent(b.id, tx(1))
    db.mark_anchored(c.id, block_number=1, block_hash=tx(2), block_timestamp=1, gas_used=1,
                     tx_hash=tx(3))  # found on chain after a crash, never marked sent
    assert [x.id for x in db.unfinished_batches()] == [a.id, b.id]
    assert db.batch(c.id) is not None and db.batch(c.id).tx_hash == tx(3)  # type: ignore[union-attr]


def test_create_batch_refuses_a_leaf_of_another_batch_and_changes_nothing(
        db: RegistryDB) -> None:
    fps = [fingerprint(n) for n in range(4)]
    for fp in fps:
        db.submit(fp, new_mrv_id())
    first = new_batch(db, 1, fps[:2])

    with pytest.raises(RegistryConflictError, match=f"{fps[1]} is in batch {first.id}"):
        new_batch(db, 2, [fps[2], fps[1], fps[3]])
    with pytest.raises(RegistryConflictError, match="never submitted"):
        new_batch(db, 2, [fps[2], fingerprint(99)])
    with pytest.raises(RegistryConflictError, match="already has root"):
        new_batch(db, 1, [fps[2]])
    with pytest.raises(RecordError):
        new_batch(db, 2, [fps[2], fps[2]])
    with pytest.raises(RecordError):
        new_batch(db, 2, [])

    assert db.unfinished_batches() == [first]
    assert db.batch_leaves(first.id) == sorted(fps[:2])
    assert db.pending_fingerprints(10) == fps[2:]  # the refused batches took nothing
    assert new_batch(db, 2, fps[2:]).leaf_count == 2


def test_discard_batch_frees_its_leaves(db: RegistryDB) -> None:
    fps = [fingerprint(n) for n in range(3)]
    for fp in fps:
        db.submit(fp, new_mrv_id())
    batch = new_batch(db, 1, fps)
    db.discard_batch(batch.id)
    assert db.batch(batch.id) is None and db.unfinished_batches() == []
    assert db.pending_fingerprints(10) == fps and db.batch_of(fps[0]) is None
    rebuilt = new_batch(db, 1, fps)  # the same tree again, same root
    assert db.batch_leaves(rebuilt.id) == sorted(fps)

    db.mark_sent(rebuilt.id, tx(1))
    with pytest.raises(RegistryConflictError, match="never sent"):
        db.discard_batch(rebuilt.id)  # its transaction may yet be mined
    with pytest.raises(RegistryConflictError):
        db.discard_batch(rebuilt.id + 100)
    assert db.batch_leaves(rebuilt.id) == sorted(fps)


def test_stats(db: RegistryDB) -> None:
    empty = db.stats()
    assert (empty.submissions_total, empty.leaves_pending, empty.batches_anchored,
            empty.gas_used_total, empty.last_anchored_at) == (0, 0, 0, 0, None)
    for n in range(4):
        db.submit(fingerprint(n), new_mrv_id())
        db.submit(fingerprint(n), new_mrv_id())  # two submissions, one leaf
    one, two = new_batch(db, 1, [fingerprint(0)]), new_batch(db, 2, [fingerprint(1)])
    new_batch(db, 3, [fingerprint(2)])  # built, never anchored
    db.mark_anchored(one.id, block_number=1, block_hash=tx(1), block_timestamp=1,
                     gas_used=50_000)
    last = db.mark_anchored(two.id, block_number=2, block_hash=tx(2), block_timestamp=2,
                            gas_used=60_000)
    stats = db.stats()
    assert (stats.submissions_total, stats.leaves_pending, stats.batches_anchored,
            stats.gas_used_total) == (8, 1, 2, 110_000)
    assert stats.last_anchored_at == last.anchored_at and stats.last_anchored_at is not None
    assert stats.last_anchored_at.tzinfo is not None


# --- searching published records ---------------------------------------------------------


def test_search_filters_and_pages_without_duplicates_or_gaps(
        db: RegistryDB, monkeypatch: pytest.MonkeyPatch) -> None:
    # Six distinct publication times for 120 records: the pages must break ties by ID.
    base = datetime(2026, 11, 1, tzinfo=UTC)
    clock = iter(range(10_000))
    monkeypatch.setattr(db_repository, "_now",
                        lambda: base + timedelta(seconds=next(clock) // 20))
    model: list[dict[str, Any]] = []
    for n in range(120):
        mrv_id = new_mrv_id()
        tags: dict[str, Any] = {"team": "x" if n % 2 else "y"}
        if n % 5 == 0:
            tags["lr"] = 0.1
        started = base - timedelta(days=30) + timedelta(hours=n)
        signer = [SIGNER_A, SIGNER_B, None][n % 3]
        record = {"n": n}
        result = db.submit(compute_hash(record), mrv_id, signer=signer,
                           record_json=json.dumps(record),
                           record_fields={"experiment": f"exp-{n % 4}", "tags": tags,
                                          "started_at": started})
        model.append({"mrv_id": mrv_id, "experiment": f"exp-{n % 4}", "signer": signer,
                      "tags": tags, "started": started,
                      "published": result.submission.received_at})
    newest_first = sorted(model, key=lambda r: (r["published"], r["mrv_id"]), reverse=True)
    assert len({r["published"] for r in model}) == 6

    def walk(limit: int, **filters: Any) -> list[str]:
        ids: list[str] = []
        cursor = None
        for _ in range(200):
            page, cursor = db.search_published(after=cursor, limit=limit, **filters)
            assert len(page) <= limit
            ids += [r.mrv_id for r in page]
            if cursor is None:
                return ids
        raise AssertionError("the pages never end")

    def expected(keep: Callable[[dict[str, Any]], bool]) -> list[str]:
        return [r["mrv_id"] for r in newest_first if keep(r)]

    assert walk(7) == expected(lambda r: True)  # 120 records: no repeat, no gap, in order
    assert walk(120) == walk(500) == expected(lambda r: True)
    assert walk(10, experiment="exp-1") == expected(lambda r: r["experiment"] == "exp-1")
    assert walk(9, signer=SIGNER_B.lower()) == expected(lambda r: r["signer"] == SIGNER_B)
    assert walk(8, tag="team=x") == expected(lambda r: r["tags"]["team"] == "x")
    assert walk(8, tag="lr") == walk(8, tag="lr=0.1") == expected(lambda r: "lr" in r["tags"])
    assert walk(8, tag="lr=0.2") == [] and walk(8, tag="nobody") == []
    since, until = base - timedelta(days=28), base - timedelta(days=27)
    assert walk(5, since=since, until=until) == expected(
        lambda r: since <= r["started"] < until) != []
    assert walk(3, experiment="exp-2", tag="team=y", signer=SIGNER_A) == expected(
        lambda r: r["experiment"] == "exp-2" and r["tags"]["team"] == "y"
        and r["signer"] == SIGNER_A) != []

    page, cursor = db.search_published(limit=50)
    assert cursor is not None and len(page) == 50
    with pytest.raises(RecordError):
        db.search_published(after="not-a-cursor")
    with pytest.raises(RecordError):
        db.search_published(limit=0)
    with pytest.raises(RecordError):
        db.search_published(tag="=x")


# --- who anchors ------------------------------------------------------------------------


def test_anchoring_leader_is_one_process_at_a_time(registry_db_url: str, db: RegistryDB) -> None:
    queue, go = SPAWN.Queue(), SPAWN.Event()
    child = SPAWN.Process(target=_contend_for_leadership, args=(queue, registry_db_url, go))
    try:
        with db.anchoring_leader() as held:
            assert held
            with db.anchoring_leader() as again:  # another holder in this process too
                assert not again
            child.start()
            assert queue.get(timeout=PROCESS_TIMEOUT_S) == ("while the test leads", False)
        go.set()
        assert queue.get(timeout=PROCESS_TIMEOUT_S) == ("after the test let go", True)
        with db.anchoring_leader() as held:
            assert not held
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)  # a leader that dies lets go
        child.join(timeout=PROCESS_TIMEOUT_S)
        deadline = time.monotonic() + 10
        while True:
            with db.anchoring_leader() as held:
                if held:
                    break
            assert time.monotonic() < deadline, "a dead process still leads"
            time.sleep(0.05)
    finally:
        if child.is_alive():
            child.kill()
            child.join()


def test_a_thread_holding_leadership_excludes_other_threads(db: RegistryDB) -> None:
    seen: list[bool] = []

    def try_to_lead() -> None:
        with db.anchoring_leader() as held:
            seen.append(held)

    with db.anchoring_leader() as held:
        thread = threading.Thread(target=try_to_lead)
        thread.start()
        thread.join()
    try_to_lead()
    assert held and seen == [False, True]


def test_a_group_of_submissions_is_one_transaction_and_one_bad_one_fails_alone(
        db: RegistryDB) -> None:
    ids = [new_mrv_id() for _ in range(3)]
    results = db.submit_many([
        {"fingerprint": fingerprint(1), "mrv_id": ids[0]},
        {"fingerprint": "not-hex", "mrv_id": ids[1]},
        {"fingerprint": fingerprint(1), "mrv_id": ids[2]},  # the same leaf, another record
    ])
    assert isinstance(results[1], RecordError)
    first, third = results[0], results[2]
    assert isinstance(first, registry_db.SubmitResult) and first.new
    assert isinstance(third, registry_db.SubmitResult) and third.new
    assert db.pending_fingerprints(10) == [fingerprint(1)]  # one leaf
    assert [s.mrv_id for s in db.submissions_for(fingerprint=fingerprint(1))] == [ids[0], ids[2]]


def test_the_writer_groups_concurrent_submissions_and_answers_each(db: RegistryDB) -> None:
    from mrv_ml.registry_service.writer import SubmissionWriter

    writer = SubmissionWriter(db)
    try:
        ids = [new_mrv_id() for _ in range(64)]
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda n: writer.submit(fingerprint=fingerprint(n % 8),
                                                            mrv_id=ids[n]), range(64)))
        assert [r.submission.mrv_id for r in results] == ids
        assert db.stats().submissions_total == 64 and db.pending_count() == 8
        with pytest.raises(RecordError):
            writer.submit(fingerprint="zz", mrv_id=ids[0])  # its own error, to its caller
    finally:
        writer.close()
