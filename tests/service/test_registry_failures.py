"""The registry service when things go wrong: killed at every stage of its work (and with
its transaction still in the mempool), the chain gone for a while, the database gone for a
while, the same fingerprint sent twice and at once, two processes anchoring over one
database, submissions streaming in while a batch is sent, a client over the rate limit,
and the issue's "done means" run (four researchers, 50 records each, `mrv registry serve`
as a real process). tests/support/registry_procs.py runs the service as a process.

Whatever happened, the same three things must hold at the end: no submission the service
accepted is lost, no root is anchored twice (read on chain: the operator's
``BatchAnchored`` events), and every submission has a complete proof that ``mrv verify``
finds VALID in an empty directory with nothing but ``--rpc-url``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.registry_service.db import open_database
from tests.support.anvil import AnvilNode, anvil_executable, rpc
from tests.support.cli import MRV, Result, mrv_command
from tests.support.postgres import PostgresServer, postgres_bin_dir
from tests.support.registry import operator_settings, running_registry
from tests.support.registry_procs import (
    STAGES,
    RegistryProcess,
    TcpProxy,
    all_batches,
    assert_each_root_once,
    chain_batches,
    http,
    new_records,
    operator_address,
    proof_documents,
    registry_processes,
    submission_body,
    submit_all,
    verify_in_empty_directory,
    wait_all_anchored,
)

pytestmark = pytest.mark.anvil


# --- killed at each stage, restarted on the same database ---------------------------------

# Which call of the stage's function kills it: the 5th submission (4 answered before), the
# 3rd complete proof served (2 served before); the first batch otherwise.
NTH = {"submitted": 5, "serving": 3}


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_killed_at_each_stage_then_restarted(stage: str, anvil: Any, anvil_registry: str,
                                              registry_db_url: str, tmp_path: Path,
                                              mrv: MRV) -> None:
    records = new_records(12)
    nth = NTH.get(stage, 1)
    # An interval long enough for all twelve to be accepted before the first batch, even on
    # a loaded machine (the stages after "submitted" expect every submission answered).
    first = RegistryProcess(registry_db_url, anvil.url, anvil_registry, tmp_path,
                            name="first", interval_s=3, crash_at=f"{stage}:{nth}").start()
    try:
        accepted, unanswered = submit_all(first.url, records)
        if stage == "serving":  # the proofs are fetched as soon as they are complete
            deadline = time.monotonic() + 60
            while first.running() and time.monotonic() < deadline:
                proof_documents(first.url, records)
        code = first.wait_exit(60)
    finally:
        first.stop()
    assert code == -signal.SIGKILL and f"crash-at {stage}" in first.log(), first.log()[-3000:]

    # What the crash left in the database: the stage it was killed at, nothing accepted lost.
    fingerprints = {i: submission_body(r)["fingerprint"] for i, r in records.items()}
    with open_database(registry_db_url) as db:
        for mrv_id in accepted:
            assert [s.mrv_id for s in db.submissions_for(fingerprint=fingerprints[mrv_id])] \
                == [mrv_id], f"an accepted submission is lost ({stage})"
        batches = all_batches(db)
        total = db.stats().submissions_total
    if stage == "submitted":
        # Killed after the 5th was committed, before its answer: 4 answered, 5 stored.
        assert len(accepted) == nth - 1 and total == nth and batches == []
    else:
        # Every submission was answered, or got no answer because the process died; on a
        # loaded machine the first batch can be built before all twelve were answered, and
        # those left unanswered are sent again below, as `mrv publish` would.
        assert accepted | unanswered == set(records) and accepted
        status = {"built": "built", "sent": "sent", "mined": "sent", "serving": "anchored"}
        assert [b.status for b in batches] == [status[stage]], batches
        on_chain = {e.root for e in chain_batches(anvil.url, anvil_registry,
                                                  operator_address(), tmp_path)}
        # built: never sent; sent/mined: anvil mines at once, the receipt was not recorded
        assert (batches[0].root in on_chain) == (stage != "built")

    # Restarted on the same database and port: what got no answer is sent again (as
    # `mrv publish` does for a record left pending), and everything ends anchored.
    second = RegistryProcess(registry_db_url, anvil.url, anvil_registry, tmp_path,
                             name="second", port=first.port, interval_s=1)
    with second.start():
        again, still = submit_all(second.url, {i: records[i] for i in unanswered})
        assert again == unanswered and still == set()
        proofs = wait_all_anchored(second.url, records, service=second)
    batches = assert_each_root_once(anvil.url, anvil_registry, registry_db_url, tmp_path)
    assert sum(b.leaf_count for b in batches) == len(records)
    # The gas of a transaction whose receipt the crash lost is read back from the chain.
    assert all(b.gas_used for b in batches), batches
    verify_in_empty_directory(mrv, anvil.url, records, proofs, tmp_path)



@pytest.mark.slow
def test_killed_with_its_transaction_still_in_the_mempool(registry_db_url: str,
                                                         tmp_path: Path, mrv: MRV) -> None:
    """On a real chain the transaction waits for its block: killed then, the registry finds
    it still pending after the restart and waits for it, rather than sending a second one
    that could only revert (or queue behind the first)."""
    executable = anvil_executable()
    if executable is None:
        pytest.skip("anvil is not installed (npm ci)")
    records = new_records(6)
    with AnvilNode(executable) as node:  # its own: mining is switched off here
        registry = node.deploy_registry()
        rpc(node.url, "evm_setAutomine", [False])
        first = RegistryProcess(registry_db_url, node.url, registry, tmp_path, name="first",
                                interval_s=1, crash_at="sent").start()
        try:
            assert submit_all(first.url, records) == (set(records), set())
            code = first.wait_exit(60)
        finally:
            first.stop()
        assert code == -signal.SIGKILL, first.log()[-3000:]
        with open_database(registry_db_url) as db:
            [sent] = all_batches(db)
        assert sent.status == "sent" and sent.tx_hash is not None
        assert rpc(node.url, "eth_getTransactionByHash", [sent.tx_hash])["blockNumber"] is None

        second = RegistryProcess(registry_db_url, node.url, registry, tmp_path,
                                 name="second", port=first.port, interval_s=1)
        with second.start():
            time.sleep(2)  # a run or two of its loop while the transaction waits
            rpc(node.url, "evm_mine")
            rpc(node.url, "evm_setAutomine", [True])
            proofs = wait_all_anchored(second.url, records, service=second)
        operator = operator_address()
        assert int(rpc(node.url, "eth_getTransactionCount", [operator, "latest"]), 16) == 1
        [batch] = assert_each_root_once(node.url, registry, registry_db_url, tmp_path)
        assert batch.tx_hash == sent.tx_hash and batch.gas_used
        verify_in_empty_directory(mrv, node.url, records, proofs, tmp_path)

# --- the chain down for a while -----------------------------------------------------------


def _metric(url: str, name: str) -> float:
    import requests

    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def _wait_for(what: str, condition: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout_s:g} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_the_chain_down_for_a_while(anvil: Any, anvil_registry: str, registry_db_url: str,
                                    tmp_path: Path, mrv: MRV) -> None:
    records = new_records(12)
    ids = list(records)
    before, during, late = ([{i: records[i] for i in ids[k:k + 4]} for k in (0, 4, 8)])
    with TcpProxy(("127.0.0.1", anvil.port)) as node:
        settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
        settings = dataclasses.replace(settings, rpc_url=node.url)
        with running_registry(settings, registry_db_url, interval_s=1.0) as (service, url):
            assert submit_all(url, before) == (set(before), set())
            proofs = wait_all_anchored(url, before)
            # one batch, or two if the submissions straddled an interval's end
            anchored_before = service.db.stats().batches_anchored

            node.down()  # the node is gone (and the service's open connection with it)
            assert submit_all(url, during) == (set(during), set())  # still accepted
            _wait_for("failing", lambda: http("GET", f"{url}/readyz")[0] == 503)
            status, answer = http("GET", f"{url}/readyz")
            assert status == 503 and answer["error"]["key"] == "anchoring_failing", answer
            assert "cannot reach" in answer["error"]["message"]
            assert _metric(url, "mrv_registry_anchoring_failing") == 1
            assert submit_all(url, late) == (set(late), set())
            time.sleep(2.5)  # two more intervals: the batches wait
            assert {d["status"] for d in proof_documents(url, {**during, **late}).values()
                    if d is not None} == {"pending"}
            assert service.db.stats().batches_anchored == anchored_before  # none while down
            assert _metric(url, "mrv_registry_anchoring_failing") == 1

            node.up()  # back on the same port: the waiting batches go out
            proofs |= wait_all_anchored(url, {**during, **late})
            _wait_for("ready again", lambda: http("GET", f"{url}/readyz")[0] == 200)
            assert _metric(url, "mrv_registry_anchoring_failing") == 0
    batches = assert_each_root_once(anvil.url, anvil_registry, registry_db_url, tmp_path)
    assert sum(b.leaf_count for b in batches) == len(records)
    verify_in_empty_directory(mrv, anvil.url, records, proofs, tmp_path)


# --- the database down for a while (PostgreSQL: a server of this test's own) --------------


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test alone (the session's is shared: never stopped),
    committing synchronously, so a crash of the server keeps every commit it acknowledged."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        server.configure("synchronous_commit = on\n")
        yield server
    finally:
        server.stop()


def _pg_stop(server: PostgresServer, mode: str) -> None:
    server._run("pg_ctl", "-D", str(server.data), "-m", mode, "-w", "stop")


def _pg_start(server: PostgresServer) -> None:
    server._run("pg_ctl", "-D", str(server.data), "-l", str(server.log), "-w", "-t", "60",
                "-o", f"-p {server.port}", "start")


@pytest.mark.slow
def test_the_database_down_for_a_while(own_postgres: PostgresServer, anvil: Any,
                                       anvil_registry: str, tmp_path: Path, mrv: MRV) -> None:
    import sqlalchemy as sa

    database = own_postgres.create_database()
    records = new_records(4)
    a, b, c, d = list(records)

    def only(mrv_id: str) -> dict[str, dict[str, Any]]:
        return {mrv_id: records[mrv_id]}
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    with running_registry(settings, database) as (service, url):
        assert submit_all(url, only(a)) == ({a}, set())

        _pg_stop(own_postgres, "fast")
        status, answer = http("POST", f"{url}/v1/submissions", submission_body(records[b]))
        assert status == 503 and answer["error"]["key"] == "registry_database", answer
        assert "registry database" in answer["error"]["message"]
        status, answer = http("GET", f"{url}/readyz")
        assert status == 503 and answer["error"]["key"] == "registry_database"
        assert http("GET", f"{url}/healthz")[0] == 200
        assert http("GET", f"{url}/v1/proofs/{submission_body(records[a])['fingerprint']}"
                    )[0] == 503

        _pg_start(own_postgres)  # back: the pool reconnects, the same request now works
        assert submit_all(url, only(b)) == ({b}, set())
        assert http("GET", f"{url}/readyz")[0] == 200

        # The server dies in the middle of a submission's transaction (its leaf written, its
        # submission not yet): a 503, and nothing of it is left afterwards.
        fingerprint = submission_body(records[c])["fingerprint"]
        armed = [True]

        def crash_after_leaf(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if armed[0] and statement.startswith("INSERT INTO leaves"):
                armed[0] = False
                _pg_stop(own_postgres, "immediate")

        engine = service.db._engine
        sa.event.listen(engine, "after_cursor_execute", crash_after_leaf)
        try:
            status, answer = http("POST", f"{url}/v1/submissions",
                                  submission_body(records[c]))
        finally:
            sa.event.remove(engine, "after_cursor_execute", crash_after_leaf)
        assert not armed[0] and status == 503 and "error" in answer, (status, answer)
        _pg_start(own_postgres)
        assert service.db.submissions_for(fingerprint=fingerprint) == []
        with sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://")
                              ).connect() as conn:
            leaves = conn.execute(sa.text("SELECT fingerprint FROM leaves")).scalars().all()
            submitted = conn.execute(sa.text("SELECT count(*) FROM submissions")).scalar()
        assert fingerprint not in leaves and len(leaves) == submitted == 2

        assert submit_all(url, {**only(c), **only(d)}) == ({c, d}, set())
        [batch] = service.loop.anchorer.run_once()
        assert batch.leaf_count == 4
        proofs = wait_all_anchored(url, records)
    verify_in_empty_directory(mrv, anvil.url, records, proofs, tmp_path)


# --- the same fingerprint twice, and by several clients at once ---------------------------


def test_the_same_fingerprint_twice_and_at_once(anvil: Any, anvil_registry: str,
                                                registry_db_url: str, tmp_path: Path,
                                                mrv: MRV) -> None:
    import requests

    from mrv_ml.chain.keys import Signer
    from mrv_ml.chain.localchain import anvil_dev_accounts
    from mrv_ml.chain.signing import sign

    records = new_records(10)
    bodies = {i: submission_body(r) for i, r in records.items()}
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    with running_registry(settings, registry_db_url) as (service, url):
        first = http("POST", f"{url}/v1/submissions", next(iter(bodies.values())))
        again = http("POST", f"{url}/v1/submissions", next(iter(bodies.values())))
        assert first[0] == again[0] == 202 and first[1] == again[1]

        clients = 8
        barrier = threading.Barrier(clients)

        def client(body: dict[str, Any]) -> int | None:
            with requests.Session() as session:
                barrier.wait(timeout=30)
                return http("POST", f"{url}/v1/submissions", body, session)[0]

        with ThreadPoolExecutor(clients) as pool:
            for body in bodies.values():  # each fingerprint from 8 clients at the same instant
                assert list(pool.map(client, [body] * clients)) == [202] * clients
            # two researchers sign the same record at once: two submissions, one leaf
            mrv_id, body = next(iter(bodies.items()))
            signers = [Signer(anvil_dev_accounts()[n], dev_key=True) for n in (6, 7)]
            signed = [{**body, "signer": s.address,
                       "signature": sign(s, mrv_id, body["fingerprint"])} for s in signers]
            barrier = threading.Barrier(2)
            assert list(pool.map(client, signed)) == [202, 202]

        db = service.db
        for mrv_id, body in bodies.items():
            found = db.submissions_for(fingerprint=body["fingerprint"])
            expected = 3 if mrv_id == next(iter(bodies)) else 1  # unsigned + two signers
            assert len(found) == expected, found
        assert db.pending_count() == len(records)
        [batch] = service.loop.anchorer.run_once()
        assert batch.leaf_count == len(records)
        # Sent again once anchored: the complete proof at once (200), still one leaf.
        status, document = http("POST", f"{url}/v1/submissions", next(iter(bodies.values())))
        assert status == 200 and document["status"] == "anchored"
        assert db.pending_count() == 0 and service.loop.anchorer.run_once() == []
        proofs = wait_all_anchored(url, records)
    assert {p["anchor"]["merkle"]["root"] for p in proofs.values()} == {batch.root}
    assert_each_root_once(anvil.url, anvil_registry, registry_db_url, tmp_path)
    verify_in_empty_directory(mrv, anvil.url, records, proofs, tmp_path)


# --- two registry processes over one PostgreSQL database, both anchoring ------------------


@pytest.mark.slow
def test_two_processes_on_one_postgresql_database(anvil: Any, anvil_registry: str,
                                                  postgres_database: str, tmp_path: Path,
                                                  mrv: MRV) -> None:
    records = new_records(240)
    ids = list(records)
    # Intervals of 1 and 1.5 s: the two loops drift apart and take turns at leading.
    a, b = (RegistryProcess(postgres_database, anvil.url, anvil_registry, tmp_path,
                            name=name, interval_s=interval)
            for name, interval in (("a", 1.0), ("b", 1.5)))
    with registry_processes(a, b):
        # Four clients over ~3 intervals: each sends its share to one process, and every
        # fourth record to the other too (the same submission through both).
        def client(n: int) -> None:
            mine = ids[n::4]
            for k, mrv_id in enumerate(mine):
                targets = [a, b] if (n + k) % 2 else [b, a]
                for target in targets[:2 if k % 4 == 0 else 1]:
                    status, answer = http("POST", f"{target.url}/v1/submissions",
                                          submission_body(records[mrv_id]))
                    assert status in (200, 202), (status, answer)
                time.sleep(0.01)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(client, range(4)))
        proofs = wait_all_anchored(a.url, records, service=a)
        from_b = proof_documents(b.url, {i: records[i] for i in ids[:20]})
        assert all(d is not None and d["proof"]["anchor"] == proofs[i]["anchor"]
                   for i, d in from_b.items())  # the receipts name each its own URL
        assert _metric(a.url, "mrv_registry_submissions") == \
            _metric(b.url, "mrv_registry_submissions") == len(records)
    batches = assert_each_root_once(anvil.url, anvil_registry, postgres_database, tmp_path)
    assert sum(b.leaf_count for b in batches) == len(records)
    anchored_by = {p.name for p in (a, b) if '"batch anchored"' in p.log_path.read_text()}
    assert anchored_by, "neither process anchored"
    verify_in_empty_directory(mrv, anvil.url, records, proofs, tmp_path)


# --- one root per interval ----------------------------------------------------------------


def test_what_arrives_while_a_batch_is_sent_waits_for_the_next_interval(
        anvil: Any, anvil_registry: str, registry_db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = new_records(9)
    ids = list(records)
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    with running_registry(settings, registry_db_url, max_leaves=3) as (service, url):
        anchorer = service.loop.anchorer
        assert submit_all(url, {i: records[i] for i in ids[:7]})[0] == set(ids[:7])
        # A backlog larger than one transaction holds goes out at once, in full batches.
        assert [b.leaf_count for b in anchorer.run_once()] == [3, 3, 1]

        # A submission arriving while a batch's transaction is on its way waits for the next
        # interval: a stream of submissions must not become a stream of transactions.
        send = anchorer.conn.send
        late = {ids[8]: records[ids[8]]}

        def send_while_one_arrives(*args: Any, **kwargs: Any) -> Any:
            assert submit_all(url, late)[0] == set(late)
            return send(*args, **kwargs)

        assert submit_all(url, {ids[7]: records[ids[7]]})[0] == {ids[7]}
        monkeypatch.setattr(anchorer.conn, "send", send_while_one_arrives)
        assert [b.leaf_count for b in anchorer.run_once()] == [1]
        assert service.db.pending_count() == 1
        monkeypatch.setattr(anchorer.conn, "send", send)
        assert [b.leaf_count for b in anchorer.run_once()] == [1]
        proofs = wait_all_anchored(url, records)
    assert len(proofs) == len(records)
    assert_each_root_once(anvil.url, anvil_registry, registry_db_url, tmp_path)


# --- the "done means" -------------------------------------------------------------

CLIENTS, PER_CLIENT = 4, 50


@pytest.mark.slow
def test_done_means_four_researchers_fifty_records_each(anvil: Any, anvil_registry: str,
                                                        registry_db_url: str, tmp_path: Path,
                                                        mrv: MRV) -> None:
    """`mrv registry serve` (a real process, a 2-second interval); four researchers, each a
    process with a data directory of 50 records, `mrv publish` at the same time, then
    `mrv anchor --upgrade` until every proof is complete; then a reviewer verifies all 200
    in an empty directory with nothing but --rpc-url."""
    from mrv_ml.storage.store import RecordStore

    started = time.monotonic()
    service = RegistryProcess(registry_db_url, anvil.url, anvil_registry, tmp_path,
                              name="service", interval_s=2)
    service.start(wait=False)
    stores, records = [], {}
    for n in range(CLIENTS):
        store = RecordStore(tmp_path / f"researcher-{n}")
        for mrv_id, record in new_records(PER_CLIENT, f"lab-{n}").items():
            store.save(record)
            records[mrv_id] = record
        stores.append(store)
    with service:
        service.wait_ready()

        def everyone(*args: str) -> list[Result]:
            procs = [subprocess.Popen(
                [*mrv_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**os.environ, "MRV_DATA_DIR": str(s.root),
                     "MRV_REGISTRY_URL": service.url, "COLUMNS": "200"},
                start_new_session=True) for s in stores]
            out = []
            for p in procs:
                stdout, stderr = p.communicate(timeout=60)
                out.append(Result(p.returncode, stdout.decode(), stderr.decode()))
            return out

        for code, out, err in everyone("publish"):
            assert code == 0 and out.count("📨") == PER_CLIENT, out + err
        for _ in range(30):
            results = everyone("anchor", "--upgrade")
            assert all(r.exit_code == 0 for r in results), results
            if all(not s.pending_ids() for s in stores):
                break
            time.sleep(1)
        assert all(not s.pending_ids() for s in stores), [s.pending_ids() for s in stores]
    proofs = {}
    for store in stores:
        for mrv_id in (summary.mrv_id for summary in store.list()):
            proof = store.load_proof(mrv_id)
            assert proof is not None and proof.status == "anchored"
            proofs[mrv_id] = json.loads(store.proof_path_for(mrv_id).read_text())
    assert set(proofs) == set(records)
    batches = assert_each_root_once(anvil.url, anvil_registry, registry_db_url, tmp_path)
    assert sum(b.leaf_count for b in batches) == CLIENTS * PER_CLIENT
    verify_in_empty_directory(mrv, anvil.url, records, proofs, tmp_path)
    assert time.monotonic() - started < 60


def test_a_client_over_the_rate_limit_waits_and_is_accepted(anvil: Any, anvil_registry: str,
                                                            tmp_path: Path, mrv: MRV) -> None:
    """`mrv publish` of more records than the registry's burst: the 429s are waited out as
    Retry-After says, and every record is accepted (none left pending for the rate)."""
    from mrv_ml.storage.store import RecordStore

    store = RecordStore(os.environ["MRV_DATA_DIR"])
    for record in new_records(8).values():
        store.save(record)
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    with running_registry(settings, str(tmp_path / "r.sqlite"),
                          rate_per_second=4.0) as (service, url):  # a burst of 8, then 4/s
        assert submit_all(url, new_records(8))[0]  # spend the burst
        started = time.monotonic()
        code, out, err = mrv("publish", env={"MRV_REGISTRY_URL": url})
        assert code == 0 and out.count("📨") == 8, out + err
        assert time.monotonic() - started >= 1.0  # it did wait
        assert service.db.stats().submissions_total == 16
