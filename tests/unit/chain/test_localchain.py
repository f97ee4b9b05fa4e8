"""The embedded local chain: persistence across processes, kill -9 mid-write, the lock,
deploy-once, wall-clock timestamps, development keys."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from mrv_ml.chain import localchain
from mrv_ml.chain.contract import registry_contract
from mrv_ml.chain.localchain import (
    LOCAL_CHAIN_ID,
    LocalChain,
    anvil_dev_accounts,
    dev_accounts,
    is_dev_key,
)
from mrv_ml.errors import LocalChainError

# One helper program for the subprocesses: each mode prints JSON lines, flushed at once.
WORKER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path
    from mrv_ml.chain.contract import registry_contract
    from mrv_ml.chain import kvstore
    from mrv_ml.chain.localchain import LocalChain

    mode, directory = sys.argv[1], Path(sys.argv[2])
    chain = LocalChain(directory, lock_timeout_s=60)

    def out(**kw):
        print(json.dumps(kw), flush=True)

    def register(w3, mrv_id, hash_hex):
        reg = registry_contract(w3, chain.registry_address(w3))
        tx = reg.functions.registerMRV(mrv_id, bytes.fromhex(hash_hex)).transact(
            {"from": w3.eth.accounts[0]})
        receipt = w3.eth.get_transaction_receipt(tx)
        return reg.address, receipt["blockNumber"]

    if mode == "register":
        with chain.session() as w3:
            address, block = register(w3, sys.argv[3], sys.argv[4])
            out(address=address, block=block, timestamp=w3.eth.get_block(block)["timestamp"])
    elif mode == "read":
        with chain.session() as w3:
            reg = registry_contract(w3, chain.registry_address(w3))
            h, ts, who = reg.functions.getMRVHash(sys.argv[3]).call()
            out(hash=h.hex(), timestamp=ts, submitter=who, head=w3.eth.block_number,
                address=reg.address)
    elif mode == "many":  # one session per registration, as separate anchors would
        for i in range(int(sys.argv[4])):
            with chain.session() as w3:
                address, block = register(w3, f"{sys.argv[3]}-{i}", os.urandom(32).hex())
            out(address=address, block=block)
    elif mode == "loop":  # registers until killed; a line only once a block is committed
        with chain.session() as w3:
            for i in range(10**6):
                h = os.urandom(32).hex()
                _, block = register(w3, f"LOOP-{i}", h)
                out(id=f"LOOP-{i}", hash=h, block=block)
    elif mode == "die-mid-block":  # SIGKILL itself after a block's writes, before the commit
        with chain.session() as w3:
            register(w3, "KEPT-0", "11" * 32)
            register(w3, "KEPT-1", "22" * 32)
            real_commit = kvstore.SQLiteKV.commit
            def commit_then_die(self):
                os.kill(os.getpid(), signal.SIGKILL)
            kvstore.SQLiteKV.commit = commit_then_die
            out(ready=True)
            register(w3, "LOST-2", "33" * 32)
    elif mode == "hold":
        with chain.session() as w3:
            out(locked=True, head=w3.eth.block_number)
            time.sleep(float(sys.argv[3]))
    """
)


@pytest.fixture
def worker(tmp_path: Path) -> Path:
    path = tmp_path / "chain_worker.py"
    path.write_text(WORKER, encoding="utf-8")
    return path


def run_worker(worker: Path, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, str(worker), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def start_worker(worker: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(worker), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else "worker ended"
    return json.loads(line)  # type: ignore[no-any-return]


def check_registered(chain: LocalChain, expected: dict[str, str]) -> int:
    """Every expected ID holds its hash; a new registration still works. Returns the head."""
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        for mrv_id, hash_hex in expected.items():
            assert reg.functions.getMRVHash(mrv_id).call()[0].hex() == hash_hex, mrv_id
        head = w3.eth.block_number
        tx = reg.functions.registerMRV("AFTER-REOPEN", b"\x42" * 32).transact(
            {"from": w3.eth.accounts[0]}
        )
        assert w3.eth.get_transaction_receipt(tx)["blockNumber"] == head + 1
        assert reg.functions.verifyMRVHash("AFTER-REOPEN", b"\x42" * 32).call() is True
        return head


def integrity_ok(db_path: Path) -> bool:
    with sqlite3.connect(db_path) as conn:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


# --- persistence ------------------------------------------------------------------------------


def test_persists_across_processes_and_deploys_once(tmp_path: Path, worker: Path) -> None:
    directory = tmp_path / "chain"
    before = int(time.time())
    (written,) = run_worker(worker, "register", str(directory), "MRV-persist", "ab" * 32)
    (read,) = run_worker(worker, "read", str(directory), "MRV-persist")
    assert read["hash"] == "ab" * 32
    assert read["timestamp"] == written["timestamp"]
    assert read["submitter"] == dev_accounts()[0].address
    # The reader found the registry deployed by the writer and sent no transaction.
    assert read["address"] == written["address"]
    assert read["head"] == written["block"]
    deployment = json.loads((directory / "deployment.json").read_text(encoding="utf-8"))
    assert deployment["address"] == written["address"]
    assert deployment["chain_id"] == LOCAL_CHAIN_ID
    assert deployment["previous"] == []
    # Real wall-clock time (a few seconds of slack: each block must be parent + 1 at least).
    assert before - 1 <= written["timestamp"] <= int(time.time()) + 5
    assert {p.name for p in directory.iterdir()} >= {
        "chain.sqlite",
        "chain.lock",
        "deployment.json",
    }


def test_next_day_registration_gets_the_real_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = LocalChain(tmp_path / "chain")
    yesterday = time.time() - 86_400
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: yesterday)
        with chain.session() as w3:
            chain.registry_address(w3)
            old_ts = w3.eth.get_block("latest")["timestamp"]
    assert abs(old_ts - yesterday) < 10
    now = time.time()
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        tx = reg.functions.registerMRV("MRV-today", b"\x01" * 32).transact(
            {"from": w3.eth.accounts[0]}
        )
        block = w3.eth.get_transaction_receipt(tx)["blockNumber"]
        ts = w3.eth.get_block(block)["timestamp"]
        assert reg.functions.getMRVHash("MRV-today").call()[1] == ts
    assert now - 2 <= ts <= time.time() + 2  # not yesterday + 1


def test_registry_redeployed_when_the_artifact_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    chain = LocalChain(tmp_path / "chain")
    with chain.session() as w3:
        first = chain.registry_address(w3)
        assert chain.registry_address(w3) == first  # deploy once
        head = w3.eth.block_number
    with chain.session() as w3:
        assert chain.registry_address(w3) == first
        assert w3.eth.block_number == head
    original_sha = localchain.load_artifact().source_sha256
    changed = dataclasses.replace(localchain.load_artifact(), source_sha256="0" * 64)
    monkeypatch.setattr(localchain, "load_artifact", lambda: changed)
    with chain.session() as w3:
        second = chain.registry_address(w3)
        assert second != first
        assert (
            len(w3.eth.get_code(to_checksum_address(first))) > 0
        )  # the old registry (and its records) stays
    deployment = json.loads(chain.deployment_path.read_text(encoding="utf-8"))
    assert deployment["address"] == second
    assert deployment["previous"] == [{"address": first, "source_sha256": original_sha}]


def test_deployment_file_pointing_at_nothing_redeploys(tmp_path: Path) -> None:
    chain = LocalChain(tmp_path / "chain")
    with chain.session() as w3:
        address = chain.registry_address(w3)
    # The database is lost but deployment.json survived: its address has no code.
    os.remove(chain.db_path)
    with chain.session() as w3:
        fresh = chain.registry_address(w3)
        assert len(w3.eth.get_code(to_checksum_address(fresh))) > 0
    assert json.loads(chain.deployment_path.read_text(encoding="utf-8"))["address"] == fresh
    assert address  # the stale address is simply replaced


# --- kill -9 --------------------------------------------------------------------------------


def test_kill_9_between_a_blocks_writes_and_its_commit(tmp_path: Path, worker: Path) -> None:
    directory = tmp_path / "chain"
    proc = start_worker(worker, "die-mid-block", str(directory))
    assert read_line(proc) == {"ready": True}
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert integrity_ok(directory / "chain.sqlite")
    chain = LocalChain(directory)
    head = check_registered(chain, {"KEPT-0": "11" * 32, "KEPT-1": "22" * 32})
    assert head == 3  # deploy + two kept registrations; the killed block never happened
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        assert reg.functions.isMRVRegistered("LOST-2").call() is False


def test_kill_9_during_a_stream_of_writes(tmp_path: Path, worker: Path) -> None:
    directory = tmp_path / "chain"
    proc = start_worker(worker, "loop", str(directory))
    committed: dict[str, str] = {}
    try:
        while len(committed) < 15:
            line = read_line(proc)
            committed[line["id"]] = line["hash"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # lands anywhere: mid-transaction, mid-commit...
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert integrity_ok(directory / "chain.sqlite")
    head = check_registered(LocalChain(directory), committed)
    # Every reported block survived; at most the ones after the last report are missing.
    assert head >= len(committed) + 1


# --- several processes ----------------------------------------------------------------------


def test_concurrent_processes_take_turns(tmp_path: Path, worker: Path) -> None:
    directory = tmp_path / "chain"
    procs = [start_worker(worker, "many", str(directory), f"P{n}", "4") for n in range(3)]
    outputs: list[dict[str, Any]] = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr[-2000:]
        outputs.extend(json.loads(line) for line in stdout.splitlines())
    assert len(outputs) == 12
    assert len({o["address"] for o in outputs}) == 1  # deployed once, by whoever came first
    assert len({o["block"] for o in outputs}) == 12  # one block each, none lost or shared
    with LocalChain(directory).session() as w3:
        reg = registry_contract(w3, outputs[0]["address"])
        for n in range(3):
            for i in range(4):
                assert reg.functions.isMRVRegistered(f"P{n}-{i}").call() is True
        assert w3.eth.block_number == 13


def test_busy_lock_times_out_with_a_clear_error_and_frees_when_the_holder_dies(
    tmp_path: Path, worker: Path
) -> None:
    directory = tmp_path / "chain"
    holder = start_worker(worker, "hold", str(directory), "60")
    try:
        assert read_line(holder)["locked"] is True
        busy = LocalChain(directory, lock_timeout_s=0.3)
        with (
            pytest.raises(LocalChainError, match=r"is busy: another process") as info,
            busy.session(),
        ):
            pass
        assert "\n" not in str(info.value)
    finally:
        holder.kill()
        holder.wait(timeout=30)
        for stream in (holder.stdout, holder.stderr):
            if stream:
                stream.close()
    # The OS released the dead holder's lock: nothing stale is left behind.
    with LocalChain(directory, lock_timeout_s=5).session() as w3:
        assert w3.eth.block_number == 0


# --- in-process behaviour -------------------------------------------------------------------


def test_session_basics(tmp_path: Path) -> None:
    chain = LocalChain(tmp_path / "chain")
    with chain.session() as w3:
        assert w3.eth.chain_id == LOCAL_CHAIN_ID
        assert w3.eth.accounts == [a.address for a in dev_accounts()]
        assert all(w3.eth.get_balance(a.address) > 10**18 for a in dev_accounts())
        with chain.session() as inner:  # nested: the same session, not a deadlock
            assert inner is w3
        with LocalChain.for_data_dir(tmp_path).session() as other:  # even from another object
            assert other is w3
        # A raw EIP-1559 transaction signed for LOCAL_CHAIN_ID is accepted.
        account = dev_accounts()[3]
        tx: dict[str, Any] = {
            "to": dev_accounts()[4].address,
            "value": 1,
            "gas": 21_000,
            "chainId": LOCAL_CHAIN_ID,
            "nonce": 0,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        }
        signed = account.sign_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        assert receipt["status"] == 1
        assert receipt["blockNumber"] == w3.eth.block_number


def test_error_inside_a_session_propagates_and_releases_the_lock(tmp_path: Path) -> None:
    chain = LocalChain(tmp_path / "chain")
    with pytest.raises(KeyError), chain.session():
        raise KeyError("user code failed")
    with LocalChain(tmp_path / "chain", lock_timeout_s=0.5).session() as w3:
        assert w3.eth.block_number == 0


def test_damaged_database_is_a_one_line_error_and_is_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    directory.mkdir()
    garbage = b"this is not a database" * 100
    (directory / "chain.sqlite").write_bytes(garbage)
    chain = LocalChain(directory)
    with pytest.raises(LocalChainError, match="chain.sqlite is unusable") as info, chain.session():
        pass
    assert "\n" not in str(info.value)
    assert (directory / "chain.sqlite").read_bytes() == garbage


def test_unwritable_directory_is_a_local_chain_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    chain = LocalChain(blocker / "chain")
    with (
        pytest.raises(LocalChainError, match="cannot create local chain directory"),
        chain.session(),
    ):
        pass


def test_is_dev_key() -> None:
    for account in dev_accounts() + anvil_dev_accounts():
        key = account.key.hex()
        assert (
            is_dev_key(key)
            and is_dev_key("0x" + key.removeprefix("0x"))
            and is_dev_key(key.upper())
        )
    # anvil's and Hardhat's account 0 (the address everyone recognises).
    assert anvil_dev_accounts()[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert dev_accounts()[0].address == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    assert not is_dev_key(Account.create().key.hex())
    assert not is_dev_key("not hex")
    assert not is_dev_key("0x1234")
    assert not is_dev_key("")


@pytest.mark.anvil
def test_anvil_fixture_accounts_are_the_known_dev_keys(anvil: Any) -> None:
    w3 = anvil.w3()
    assert w3.eth.chain_id == 31337
    assert w3.eth.accounts == [a.address for a in anvil.accounts]
    assert all(is_dev_key(a.key.hex()) for a in anvil.accounts)
