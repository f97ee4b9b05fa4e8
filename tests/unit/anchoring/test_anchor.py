"""Anchoring: pending on failure with the reason, completed later, never sent twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mrv_ml.anchoring.single import SENDING, anchor_pending, anchor_record, mark_pending
from mrv_ml.chain.connection import ChainConnection, connect
from mrv_ml.chain.events import registration_events
from mrv_ml.config import load_settings
from mrv_ml.errors import ChainUnavailableError, ConfigError
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.verdict import VerdictStatus
from mrv_ml.verification.verifier import verify
from tests.support.records import make_sample_record


def _cli(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from mrv_ml.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capfd.readouterr()
    return int(info.value.code or 0), out.out, out.err


def _store_one() -> tuple[RecordStore, str]:
    store = RecordStore(load_settings().data_dir)
    record = make_sample_record()
    store.save(record)
    return store, record["mrv_id"]


def test_anchor_writes_proof_and_is_idempotent() -> None:
    store, mrv_id = _store_one()
    record_before = store.path_for(mrv_id).read_bytes()
    first = anchor_record(store, mrv_id, settings=load_settings())
    assert first.anchored and first.tx_hash
    assert first.proof is not None and first.proof.anchor is not None
    anchor = first.proof.anchor.to_dict()
    assert anchor["chain_id"] == 1337 and anchor["network"] == "local"
    assert anchor["submitter"] and anchor["contract_address"] and anchor["block_timestamp"]
    assert store.load_proof(mrv_id) == first.proof
    assert store.path_for(mrv_id).read_bytes() == record_before  # the record is never touched
    again = anchor_record(store, mrv_id, settings=load_settings())
    assert again.anchored and again.tx_hash == first.tx_hash


def test_mark_pending_appends_attempts() -> None:
    store, mrv_id = _store_one()
    mark_pending(store, mrv_id, "first")
    proof = mark_pending(store, mrv_id, "second")
    assert proof.status == "pending" and proof.pending_reason == "second"
    assert [a.error for a in proof.attempts] == ["first", "second"]
    assert store.pending_ids() == [mrv_id]


def test_unreachable_rpc_keeps_pending_then_mrv_anchor_completes(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    store, mrv_id = _store_one()
    monkeypatch.setenv("NETWORK", "anvil")
    monkeypatch.setenv("BLOCKCHAIN_RPC_URL", "http://127.0.0.1:9")
    outcome = anchor_record(store, mrv_id, settings=load_settings())
    assert outcome.status == "pending" and outcome.error_exit_code == 4
    proof = store.load_proof(mrv_id)
    assert proof is not None and "cannot reach http://127.0.0.1:9" in (proof.pending_reason or "")
    code, _, _ = _cli(capfd, "anchor")
    assert code == 4 and store.load_proof(mrv_id).status == "pending"  # type: ignore[union-attr]
    monkeypatch.delenv("NETWORK")
    monkeypatch.delenv("BLOCKCHAIN_RPC_URL")  # the (local) chain is back
    code, out, _ = _cli(capfd, "anchor")
    assert code == 0 and f"{mrv_id} anchored" in out
    assert "well-known development key, local chain only" in out
    final = store.load_proof(mrv_id)
    assert final is not None and final.status == "anchored" and final.anchor is not None
    # both failed attempts kept with their reason, then the mark before sending, the send
    assert ["cannot reach" in a.error for a in final.attempts] == [True, True, False, False]
    assert final.attempts[-2].error == SENDING
    assert final.attempts[-1].tx_hash == final.anchor.tx_hash
    assert verify(store.path_for(mrv_id)).status is VerdictStatus.VALID


def test_a_configuration_error_is_raised_once_and_no_sidecar_is_touched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, mrv_id = _store_one()
    before = sorted(p.name for p in store.root.iterdir() if p.name != ".index.json")  # a cache
    monkeypatch.setenv("NETWORK", "sepolia")  # no URL: broken configuration, not the record's
    with pytest.raises(ConfigError, match="BLOCKCHAIN_RPC_URL"):
        anchor_pending(store, settings=load_settings())
    assert sorted(p.name for p in store.root.iterdir() if p.name != ".index.json") == before
    assert store.load_proof(mrv_id) is None


@pytest.fixture
def on_anvil(anvil: Any, anvil_registry: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NETWORK", "anvil")
    monkeypatch.setenv("BLOCKCHAIN_RPC_URL", anvil.url)
    monkeypatch.setenv("CONTRACT_ADDRESS", anvil_registry)
    return anvil


@pytest.mark.anvil
def test_receipt_lost_after_send_completes_without_second_tx(
        on_anvil: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    store, mrv_id = _store_one()
    real_wait = ChainConnection._wait

    def lost(self: ChainConnection, w3: Any, tx_hash: str) -> Any:
        raise ChainUnavailableError("cannot reach node: connection reset")  # tx is in the pool

    monkeypatch.setattr(ChainConnection, "_wait", lost)
    outcome = anchor_record(store, mrv_id, settings=load_settings())
    assert outcome.status == "pending"
    sent = next(a.tx_hash for a in store.load_proof(mrv_id).attempts if a.tx_hash)  # type: ignore[union-attr]
    monkeypatch.setattr(ChainConnection, "_wait", real_wait)
    w3 = on_anvil.w3()
    sender = on_anvil.accounts[0].address
    nonce = w3.eth.get_transaction_count(sender)
    code, out, _ = _cli(capfd, "anchor", mrv_id)
    assert code == 0, out
    assert w3.eth.get_transaction_count(sender) == nonce  # nothing sent again
    with connect(load_settings()) as conn:
        events = registration_events(conn, mrv_id)
    assert [e.tx_hash for e in events] == [sent]
    assert store.load_proof(mrv_id).anchor.tx_hash == sent  # type: ignore[union-attr]


@pytest.mark.anvil
def test_node_dies_between_send_and_receipt(
        on_anvil: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    store, mrv_id = _store_one()
    real_wait = ChainConnection._wait

    def die_then_wait(self: ChainConnection, w3: Any, tx_hash: str) -> Any:
        on_anvil.kill()  # a real crash of the node after it accepted the transaction
        return real_wait(self, w3, tx_hash)

    monkeypatch.setattr(ChainConnection, "_wait", die_then_wait)
    outcome = anchor_record(store, mrv_id, settings=load_settings())
    assert outcome.status == "pending" and outcome.error_exit_code == 4
    assert store.path_for(mrv_id).is_file()
    monkeypatch.setattr(ChainConnection, "_wait", real_wait)
    on_anvil.restart()  # a fresh chain: the registry must be deployed again
    monkeypatch.setenv("CONTRACT_ADDRESS", on_anvil.deploy_registry())
    code, out, _ = _cli(capfd, "anchor")
    assert code == 0, out
    with connect(load_settings()) as conn:
        assert len(registration_events(conn, mrv_id)) == 1
    assert verify(store.path_for(mrv_id)).status is VerdictStatus.VALID


@pytest.mark.anvil
def test_private_key_never_written_or_printed(
        on_anvil: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        data_dir: Path) -> None:
    key_hex = on_anvil.accounts[4].key.hex().removeprefix("0x")
    monkeypatch.setenv("PRIVATE_KEY", "0x" + key_hex)
    store, mrv_id = _store_one()
    code, out, err = _cli(capfd, "anchor", mrv_id)
    assert code == 0
    code2, out2, err2 = _cli(capfd, "verify", str(store.path_for(mrv_id)), "--json")
    assert code2 == 0 and on_anvil.accounts[4].address in out2
    everything = out + err + out2 + err2 + "".join(
        p.read_text(errors="replace") for p in data_dir.rglob("*") if p.is_file()
        and p.suffix in (".json", ".lock", ".log", ""))
    assert key_hex.lower() not in everything.lower()


@pytest.mark.parametrize("batch", [False, True])
def test_one_bad_pending_record_does_not_hold_back_the_others(
        capfd: pytest.CaptureFixture[str], batch: bool) -> None:
    store = RecordStore(load_settings().data_dir)
    good = [store.save(make_sample_record()).stem for _ in range(2)]
    bad = store.save(make_sample_record())
    # a duplicate key: listed as pending, refused when read strictly
    text = bad.read_text().replace('"co2_kg": ', '"co2_kg": 999.0, "co2_kg": ', 1)
    bad.write_text(text)
    code, out, _ = _cli(capfd, "anchor", *(["--batch"] if batch else []))
    assert code == 3, out  # said, at the end, after anchoring the rest
    assert f"❌ {bad.stem} cannot be anchored" in out and "duplicate key" in out
    for mrv_id in good:
        assert f"{mrv_id} anchored" in out
        proof = store.load_proof(mrv_id)
        assert proof is not None and proof.status == "anchored"
    assert store.load_proof(bad.stem) is None and bad.read_text() == text  # untouched
