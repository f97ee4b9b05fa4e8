"""Batch anchoring and batch proof verification, on the embedded chain and on anvil."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.anchoring import batch
from mrv_ml.anchoring.single import AnchorOutcome
from mrv_ml.chain.connection import connect
from mrv_ml.chain.events import batch_events
from mrv_ml.config import Settings, load_settings
from mrv_ml.errors import ChainUnavailableError, RecordError, StoreError
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.merkle import StandardMerkleTree, to_bytes32
from mrv_ml.record.proof import Anchor, MerklePart
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.model import Verdict
from mrv_ml.verification.verdict import VerdictStatus
from mrv_ml.verification.verifier import verify, verify_files
from tests.support.records import make_sample_record

OTHER_ADDRESS = "0x" + "ab" * 20


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def settings(request: pytest.FixtureRequest, data_dir: Path) -> Settings:
    if request.param == "embedded":
        return load_settings()
    node = request.getfixturevalue("anvil")
    address = request.getfixturevalue("anvil_registry")
    return load_settings({"network": "localhost", "rpc_url": node.url,
                          "contract_address": address})


@pytest.fixture
def store(data_dir: Path) -> RecordStore:
    return RecordStore(data_dir)


def _save(store: RecordStore, n: int) -> list[str]:
    return [store.save(make_sample_record()).name.removesuffix(".json") for _ in range(n)]


def _batch_events(settings: Settings, root: str) -> list[Any]:
    with connect(settings) as conn:
        return batch_events(conn, root)


def _anchor(outcome: AnchorOutcome) -> Anchor:
    assert outcome.proof is not None and outcome.proof.anchor is not None
    return outcome.proof.anchor


def _merkle(outcome: AnchorOutcome) -> MerklePart:
    merkle = _anchor(outcome).merkle
    assert merkle is not None
    return merkle


def _verdicts(store: RecordStore, settings: Settings) -> list[Verdict]:
    results = verify_files([store.root], settings=settings)
    assert all(r.error is None for r in results), [r.error for r in results]
    return [r.verdict for r in results if r.verdict is not None]


def _mined_but_unfinished(store: RecordStore, n: int
                          ) -> tuple[list[str], Path, dict[str, Any]]:
    """``n`` stored records whose batch journal was written and whose anchorBatch was
    mined, as when a run is killed before it writes any proof: (ids, journal path, journal)."""
    ids = _save(store, n)
    path, journal = batch._new_journal(store, {i: compute_hash(store.load(i)) for i in ids})
    with connect(load_settings(), need_signer=True) as conn:
        conn.send(conn.registry.functions.anchorBatch(to_bytes32(journal["root"]), n))
    return ids, path, journal


def _rewrite(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def test_pending_records_anchor_in_one_transaction_and_verify(
        store: RecordStore, settings: Settings) -> None:
    ids = _save(store, 5)
    outcomes = batch.anchor_batch(store, settings=settings)
    assert sorted(o.mrv_id for o in outcomes) == sorted(ids)
    assert all(o.anchored for o in outcomes)
    assert len({o.tx_hash for o in outcomes}) == 1
    assert store.pending_ids() == []
    merkle = _merkle(outcomes[0])
    assert merkle.leaf_count == 5
    assert merkle.format == "openzeppelin-standard-merkle-tree-v1"
    assert len(_batch_events(settings, merkle.root)) == 1
    for o in outcomes:
        anchor = _anchor(o)
        assert anchor.mode == "batch" and anchor.tx_hash == o.tx_hash
        assert anchor.block_number and anchor.block_timestamp and anchor.submitter
        assert o.proof and o.proof.record_digest == compute_hash(store.load(o.mrv_id))
        verdict = verify(store.path_for(o.mrv_id), settings=settings)
        assert verdict.status is VerdictStatus.VALID and verdict.mode == "batch"
        assert verdict.tx_hash == o.tx_hash and verdict.submitter == anchor.submitter
        # the record's hash and the root it sits under are separate fields
        assert verdict.merkle_root == merkle.root and verdict.onchain_hash is None
        assert verdict.record_hash == o.proof.record_digest
    verdicts = _verdicts(store, settings)
    assert [v.status for v in verdicts] == [VerdictStatus.VALID] * 5
    assert all(v.co2_kg is not None and v.timestamp for v in verdicts)
    # nothing left: a rerun sends nothing
    assert batch.anchor_batch(store, settings=settings) == []
    assert len(_batch_events(settings, merkle.root)) == 1


def test_batch_of_one(store: RecordStore, settings: Settings) -> None:
    (mrv_id,) = _save(store, 1)
    (outcome,) = batch.anchor_batch(store, [mrv_id], settings=settings)
    merkle = _merkle(outcome)
    assert merkle.leaf_count == 1 and merkle.proof == () and merkle.leaf_index == 0
    assert merkle.root == StandardMerkleTree.leaf_hash(compute_hash(store.load(mrv_id)))
    assert verify(store.path_for(mrv_id), settings=settings).status is VerdictStatus.VALID


def test_empty_batch_sends_nothing(store: RecordStore, data_dir: Path) -> None:
    assert batch.anchor_batch(store, settings=load_settings()) == []
    assert batch.anchor_batch(store, [], settings=load_settings()) == []
    assert not (data_dir / "chain").exists()  # the chain was never even opened
    assert not batch.journal_dir(store).exists()


def test_unknown_id_is_bad_input_before_the_chain(store: RecordStore, data_dir: Path) -> None:
    _save(store, 1)
    with pytest.raises(StoreError, match="no record"):
        batch.anchor_batch(store, ["MRV-00000000-0000-0000-0000-000000000000"],
                           settings=load_settings())
    assert not (data_dir / "chain").exists()


def test_same_id_twice_is_batched_once(store: RecordStore) -> None:
    a, b = _save(store, 2)
    outcomes = batch.anchor_batch(store, [a, b, a], settings=load_settings())
    assert [o.mrv_id for o in outcomes] == [a, b]
    assert _merkle(outcomes[0]).leaf_count == 2
    # naming an anchored record again: kept as is, not re-anchored
    (again,) = batch.anchor_batch(store, [a], settings=load_settings())
    assert again.tx_hash == outcomes[0].tx_hash


def test_identical_content_cannot_be_two_records(store: RecordStore) -> None:
    # The fingerprint covers mrv_id, so two stored records never share a leaf; a copy under
    # another name is refused as bad input rather than silently sharing a proof.
    (a,) = _save(store, 1)
    b = "MRV-11111111-2222-3333-4444-555555555555"
    store.path_for(b).write_bytes(store.path_for(a).read_bytes())
    outcomes = {o.mrv_id: o for o in batch.anchor_batch(store, [a, b], settings=load_settings())}
    assert outcomes[b].status == "unusable" and "file name says" in (outcomes[b].error or "")
    assert outcomes[a].anchored and store.load_proof(b) is None  # the copy shares nothing


def test_shared_fingerprints_share_one_leaf(store: RecordStore, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    # Should two records ever have the same fingerprint, the tree holds it once and both
    # sidecars carry the same (valid) proof.
    a, b = _save(store, 2)
    same = compute_hash(store.load(a))
    monkeypatch.setattr(batch, "compute_hash", lambda record: same)
    outcomes = batch.anchor_batch(store, [a, b], settings=load_settings())
    merkles = [_merkle(o) for o in outcomes]
    assert merkles[0] == merkles[1] and merkles[0].leaf_count == 1
    assert verify(store.path_for(a)).status is VerdictStatus.VALID


@pytest.fixture
def anchored(store: RecordStore, settings: Settings) -> Iterator[list[str]]:
    ids = _save(store, 4)
    batch.anchor_batch(store, settings=settings)
    yield ids


def test_proof_for_another_record_is_tampered(store: RecordStore, settings: Settings,
                                              anchored: list[str]) -> None:
    a, b = anchored[:2]
    own, other = store.load_proof(a), store.load_proof(b)
    assert own and own.anchor and own.anchor.merkle and other and other.anchor
    assert other.anchor.merkle and own.anchor.merkle.proof != other.anchor.merkle.proof
    _rewrite(store.proof_path_for(a),
             lambda d: d["anchor"]["merkle"].update(proof=list(other.anchor.merkle.proof)))
    verdict = verify(store.path_for(a), settings=settings)
    assert verdict.status is VerdictStatus.TAMPERED
    assert "does not link" in verdict.detail
    assert verify(store.path_for(b), settings=settings).status is VerdictStatus.VALID


def test_one_sibling_changed_is_tampered(store: RecordStore, settings: Settings,
                                         anchored: list[str]) -> None:
    a = anchored[0]

    def flip(d: dict[str, Any]) -> None:
        proof = d["anchor"]["merkle"]["proof"]
        proof[-1] = proof[-1][:-1] + ("0" if proof[-1][-1] != "0" else "1")

    _rewrite(store.proof_path_for(a), flip)
    assert verify(store.path_for(a), settings=settings).status is VerdictStatus.TAMPERED


def test_changed_record_is_tampered(store: RecordStore, settings: Settings,
                                    anchored: list[str]) -> None:
    a = anchored[0]
    _rewrite(store.path_for(a), lambda d: d["energy_emissions"].update(co2_kg=0.0001))
    verdicts = _verdicts(store, settings)
    by_id = {v.mrv_id: v.status for v in verdicts}
    assert by_id.pop(a) is VerdictStatus.TAMPERED
    assert set(by_id.values()) == {VerdictStatus.VALID}


def test_root_never_anchored_is_not_found(store: RecordStore, settings: Settings,
                                          anchored: list[str]) -> None:
    a = anchored[0]
    digest = compute_hash(store.load(a))
    fake = StandardMerkleTree.of(["0x" + digest, "0x" + "77" * 32])
    _rewrite(store.proof_path_for(a), lambda d: d["anchor"]["merkle"].update(
        root=fake.root, proof=fake.get_proof(0)))
    verdict = verify(store.path_for(a), settings=settings)
    assert verdict.status is VerdictStatus.NOT_FOUND


def test_root_anchored_by_another_submitter_is_mismatch(store: RecordStore, settings: Settings,
                                                        anchored: list[str]) -> None:
    a = anchored[0]
    proof = store.load_proof(a)
    assert proof is not None and proof.anchor is not None
    verdict = verify(store.path_for(a), settings=settings, expected_submitter=OTHER_ADDRESS)
    assert verdict.status is VerdictStatus.SUBMITTER_MISMATCH
    assert verdict.submitter == proof.anchor.submitter
    assert verdict.expected_submitter is not None
    assert verdict.expected_submitter.lower() == OTHER_ADDRESS


@pytest.mark.parametrize("change", [
    lambda d: d["anchor"].pop("merkle"),
    lambda d: d["anchor"]["merkle"].update(root="0x1234"),
    lambda d: d["anchor"]["merkle"].update(proof="not a list"),
    lambda d: d["anchor"]["merkle"].update(format="simple-v9"),
])
def test_malformed_batch_proof_is_bad_input(store: RecordStore, anchored: list[str],
                                            change: Any, settings: Settings) -> None:
    a = anchored[0]
    _rewrite(store.proof_path_for(a), change)
    with pytest.raises(RecordError):
        verify(store.path_for(a), settings=settings)


def test_interrupted_after_mining_completes_from_chain_without_resending(
        store: RecordStore, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _save(store, 3)
    real_save = RecordStore.save_proof
    calls = {"n": 0}

    def failing_once(self: RecordStore, proof: Any) -> Path:
        if proof.status == "anchored" and calls["n"] == 0:
            calls["n"] += 1
            raise StoreError("disk full (simulated)")
        return real_save(self, proof)

    monkeypatch.setattr(RecordStore, "save_proof", failing_once)
    with pytest.raises(StoreError, match="simulated"):
        batch.anchor_batch(store, settings=settings)
    monkeypatch.setattr(RecordStore, "save_proof", real_save)
    (path, journal), = batch.unfinished_journals(store)
    assert journal["status"] == "mined" and journal["tx_hash"]
    assert sorted(store.pending_ids()) == sorted(ids)

    outcomes = batch.anchor_batch(store, settings=settings)
    assert sorted(o.mrv_id for o in outcomes) == sorted(ids)
    assert {o.tx_hash for o in outcomes} == {journal["tx_hash"]}
    assert len(_batch_events(settings, journal["root"])) == 1  # anchored exactly once
    assert batch.unfinished_journals(store) == []
    assert [v.status for v in _verdicts(store, settings)] == [VerdictStatus.VALID] * 3


def test_tx_that_never_landed_is_sent_on_rerun(store: RecordStore, settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from mrv_ml.chain.connection import ChainConnection

    ids = _save(store, 2)
    real_send = ChainConnection.send

    def down(self: ChainConnection, fn_call: Any, **kw: Any) -> Any:
        raise ChainUnavailableError("cannot reach node: connection refused (simulated)")

    monkeypatch.setattr(ChainConnection, "send", down)
    outcomes = batch.anchor_batch(store, settings=settings)
    assert [o.status for o in outcomes] == ["pending", "pending"]
    assert outcomes[0].error_exit_code == ChainUnavailableError.exit_code
    pending = store.load_proof(ids[0])
    assert pending and "simulated" in (pending.pending_reason or "")
    (_path, journal), = batch.unfinished_journals(store)
    assert journal["status"] == "prepared"
    monkeypatch.setattr(ChainConnection, "send", real_send)

    outcomes = batch.anchor_batch(store, settings=settings)
    assert all(o.anchored for o in outcomes) and len(outcomes) == 2
    assert len(_batch_events(settings, journal["root"])) == 1


def test_root_anchored_but_journal_unfinished_is_not_sent_again(store: RecordStore) -> None:
    # Crash between the node accepting the tx and our journal update: the journal still
    # says "prepared"; the chain decides.
    _ids, path, journal = _mined_but_unfinished(store, 2)
    outcomes = batch.anchor_batch(store, settings=load_settings())
    assert all(o.anchored for o in outcomes)
    assert len(_batch_events(load_settings(), journal["root"])) == 1
    assert json.loads(path.read_text())["status"] == "complete"


def test_plain_anchor_never_anchors_alone_what_an_unfinished_batch_holds(
        store: RecordStore) -> None:
    # Killed right after the batch transaction was mined, before any proof was written;
    # then plain `mrv anchor`: registering each record alone would anchor them twice.
    from mrv_ml.anchoring.single import anchor_pending
    from mrv_ml.chain.events import registration_events

    ids, _path, journal = _mined_but_unfinished(store, 4)
    outcomes = anchor_pending(store, settings=load_settings())
    assert sorted(o.mrv_id for o in outcomes) == sorted(ids)
    assert all(o.status == "pending" and "unfinished batch" in (o.error or "") for o in outcomes)
    with connect(load_settings()) as conn:
        assert all(registration_events(conn, i) == [] for i in ids)  # nothing sent alone
    completed = batch.anchor_batch(store, settings=load_settings())
    assert sorted(o.mrv_id for o in completed if o.anchored) == sorted(ids)
    assert len(_batch_events(load_settings(), journal["root"])) == 1  # anchored exactly once
    assert anchor_pending(store, settings=load_settings()) == []


def test_tracker_batch_mode_leaves_pending_then_batch_anchors(store: RecordStore) -> None:
    from mrv_ml.run.tracker import MRVTracker

    ids = []
    for name in ("run-a", "run-b"):
        tracker = MRVTracker(name, anchor_mode="batch", quiet=True)
        tracker.start()
        ids.append(tracker.stop()["mrv_id"])
        pending = store.load_proof(ids[-1])
        assert pending is not None and pending.status == "pending"
    assert sorted(store.pending_ids()) == sorted(ids)
    outcomes = batch.anchor_batch(store, settings=load_settings())
    assert sorted(o.mrv_id for o in outcomes) == sorted(ids)
    assert len({o.tx_hash for o in outcomes}) == 1
    assert all(verify(store.path_for(i)).status is VerdictStatus.VALID for i in ids)


def test_cli_verify_directory_json(store: RecordStore, anchored: list[str],
                                   settings: Settings) -> None:
    from typer.testing import CliRunner

    from mrv_ml.cli import app

    _rewrite(store.path_for(anchored[0]), lambda d: d["energy_emissions"].update(co2_kg=123.0))
    args = ["verify", str(store.root), "--json"]
    if settings.rpc_url:
        args += ["--rpc-url", settings.rpc_url, "--contract", str(settings.contract_address),
                 "--network", settings.network]
    result = CliRunner().invoke(app, args)
    items = json.loads(result.stdout)
    by_id = {i["mrv_id"]: i["status"] for i in items}
    assert by_id.pop(anchored[0]) == "TAMPERED"
    assert set(by_id.values()) == {"VALID"} and len(by_id) == 3
    assert result.exit_code == 1


def test_cli_anchor_batch_with_nothing_pending_exits_zero(store: RecordStore) -> None:
    from typer.testing import CliRunner

    from mrv_ml.cli import app

    result = CliRunner().invoke(app, ["anchor", "--batch"])
    assert result.exit_code == 0, result.output
    assert "Nothing to anchor" in result.output


def test_corrupt_journal_is_skipped_and_same_records_complete_from_chain(
        store: RecordStore) -> None:
    _ids, path, journal = _mined_but_unfinished(store, 2)
    path.write_text('{"format": "mrv-ml batch journal", "root": 1')  # torn write
    (path.parent / "0xgarbage.json").write_text("not json")
    outcomes = batch.anchor_batch(store, settings=load_settings())
    # the same records give the same root: found on chain, completed, never sent twice
    assert all(o.anchored for o in outcomes) and len(outcomes) == 2
    assert len(_batch_events(load_settings(), journal["root"])) == 1


def test_verify_files_mixes_single_and_batch_records(store: RecordStore) -> None:
    from mrv_ml.anchoring.single import anchor_record

    single, *rest = _save(store, 3)
    assert anchor_record(store, single, settings=load_settings()).anchored
    batch.anchor_batch(store, settings=load_settings())
    verdicts = {v.mrv_id: v for v in _verdicts(store, load_settings())}
    assert verdicts[single].mode == "single"
    assert {verdicts[i].mode for i in rest} == {"batch"}
    assert all(v.status is VerdictStatus.VALID for v in verdicts.values())


def test_verify_files_rejects_a_missing_path(data_dir: Path) -> None:
    with pytest.raises(RecordError, match="no such file"):
        verify_files([data_dir / "nope"], settings=load_settings())


def test_cli_anchor_batch_anchors_pending_records(store: RecordStore) -> None:
    from typer.testing import CliRunner

    from mrv_ml.cli import app

    ids = _save(store, 3)
    result = CliRunner().invoke(app, ["anchor", "--batch"])
    assert result.exit_code == 0, result.output
    anchors = [p.anchor for p in map(store.load_proof, ids) if p is not None]
    assert len(anchors) == 3 and {a.mode for a in anchors if a} == {"batch"}
    assert len({a.tx_hash for a in anchors if a}) == 1
    assert all(i in result.output for i in ids)
