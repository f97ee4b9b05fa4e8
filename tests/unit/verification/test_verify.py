"""verify(): every verdict on the embedded chain and on anvil, squatting, a new process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrv_ml.anchoring.single import anchor_record, mark_pending
from mrv_ml.chain.localchain import anvil_dev_accounts, dev_accounts
from mrv_ml.config import Secret, load_settings
from mrv_ml.errors import MalformedProofError, ProofNeededError, RecordError
from mrv_ml.record.hashing import hash_to_bytes32
from mrv_ml.record.proof import proof_path
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.verdict import VerdictStatus
from mrv_ml.verification.verifier import verify
from tests.support.records import make_sample_record

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["local", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Configure the environment for one chain; returns its dev accounts (0 = default signer)."""
    if request.param == "anvil":
        node = request.getfixturevalue("anvil")
        registry = request.getfixturevalue("anvil_registry")
        monkeypatch.setenv("NETWORK", "anvil")
        monkeypatch.setenv("BLOCKCHAIN_RPC_URL", node.url)
        monkeypatch.setenv("CONTRACT_ADDRESS", registry)
        return list(anvil_dev_accounts())
    return list(dev_accounts())


def _stored(**overrides: Any) -> tuple[RecordStore, dict[str, Any], Path]:
    settings = load_settings()
    store = RecordStore(settings.data_dir)
    record = make_sample_record(**overrides)
    path = store.save(record)
    return store, record, path


def _register_as(account: Any, mrv_id: str, digest_hex: str) -> None:
    """Register (mrv_id, digest) on the configured chain signed by ``account``."""
    from mrv_ml.chain.connection import connect

    settings = load_settings().replace(private_key=Secret(account.key.hex()))
    with connect(settings, need_signer=True) as conn:
        conn.send(conn.registry.functions.registerMRV(mrv_id, hash_to_bytes32(digest_hex)))


def _tamper_co2(path: Path) -> Path:
    data = json.loads(path.read_text())
    co2 = data["energy_emissions"]["co2_kg"]
    text = repr(co2)
    digit = next(i for i, c in enumerate(text) if c.isdigit() and c != "0")
    data["energy_emissions"]["co2_kg"] = float(text[:digit] + str(int(text[digit]) % 9 + 1)
                                               + text[digit + 1:])
    out = path.with_name("tampered.json")
    out.write_text(json.dumps(data))
    return out


def test_valid_then_tampered_then_not_found(chain: list[Any]) -> None:
    store, record, path = _stored()
    outcome = anchor_record(store, record["mrv_id"], settings=load_settings())
    assert outcome.anchored, outcome.error
    v = verify(path)
    assert v.status is VerdictStatus.VALID and v.exit_code == 0
    assert v.submitter == chain[0].address and v.tx_hash == outcome.tx_hash
    assert outcome.proof is not None and outcome.proof.anchor is not None
    assert v.block_number == outcome.proof.anchor.block_number and v.timestamp
    assert v.reason == "registered_by_submitter" and v.figures_trusted
    # one digit of co2 changed, proof sidecar given explicitly (the copy has none)
    t = verify(_tamper_co2(path), proof=store.load_proof(record["mrv_id"]))
    assert t.status is VerdictStatus.TAMPERED and t.exit_code == 1
    assert t.onchain_hash == v.record_hash != t.record_hash and not t.figures_trusted
    # Never anchored and no proof: it could sit in a batch, so no NOT FOUND but "proof needed",
    # naming the file expected beside the record.
    _, other, other_path = _stored()
    with pytest.raises(ProofNeededError, match=r"\.proof\.json") as info:
        verify(other_path)
    assert info.value.exit_code == 9 and str(proof_path(other_path)) in str(info.value)
    # with its sidecar saying "pending", it is known never to have been anchored
    mark_pending(store, other["mrv_id"], "auto_anchor is off")
    n = verify(other_path)
    assert n.status is VerdictStatus.NOT_FOUND and n.exit_code == 2
    assert n.reason == "not_anchored_yet"


def test_valid_from_a_new_process(chain: list[Any]) -> None:
    store, record, path = _stored()
    assert anchor_record(store, record["mrv_id"], settings=load_settings()).anchored
    code = ("import sys; from mrv_ml.verification.verifier import verify; v = verify(sys.argv[1]); "
            "print(v.status.value, v.submitter); sys.exit(v.exit_code)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["VALID", chain[0].address]


def test_submitter_mismatch(chain: list[Any]) -> None:
    _, record, path = _stored()
    from mrv_ml.record.hashing import compute_hash

    _register_as(chain[2], record["mrv_id"], compute_hash(record))  # a copier, not us
    v = verify(path, expected_submitter=chain[0].address)
    assert v.status is VerdictStatus.SUBMITTER_MISMATCH and v.exit_code == 5
    assert v.submitter == chain[2].address and v.expected_submitter == chain[0].address
    assert v.tx_hash and v.block_number is not None  # evidence from the event log
    # without an expected submitter the copy is what exists: VALID, naming who registered
    assert verify(path).submitter == chain[2].address


def test_squatter_cannot_make_honest_record_fail(chain: list[Any]) -> None:
    store, record, path = _stored()
    _register_as(chain[3], record["mrv_id"], "ab" * 32)  # garbage, before the victim
    outcome = anchor_record(store, record["mrv_id"], settings=load_settings())
    assert outcome.anchored, outcome.error
    v = verify(path)  # the proof names the victim as submitter
    assert v.status is VerdictStatus.VALID and v.submitter == chain[0].address
    # verifying with no proof and no expected submitter: the log still finds the real entry
    v2 = verify(record)
    assert v2.status is VerdictStatus.VALID and v2.submitter == chain[0].address
    # but naming the squatter as expected submitter shows their entry differs
    v3 = verify(path, expected_submitter=chain[3].address)
    assert v3.status is VerdictStatus.TAMPERED


def test_mrv_id_override_is_explained(chain: list[Any]) -> None:
    store, record, _ = _stored()
    assert anchor_record(store, record["mrv_id"], settings=load_settings()).anchored
    _, other, other_path = _stored()
    v = verify(other_path, mrv_id=record["mrv_id"])
    assert v.status is VerdictStatus.TAMPERED and v.mrv_id == record["mrv_id"]
    assert other["mrv_id"] in v.detail and "differs" in v.detail


def test_unusable_record_raises_record_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"mrv_id": ')
    with pytest.raises(RecordError):
        verify(bad)
    with pytest.raises(RecordError):
        verify({"not": "a record"})


def test_batch_proof_without_its_merkle_part_is_refused() -> None:
    _, record, _ = _stored()
    proof = {"proof_version": "1.0", "mrv_id": record["mrv_id"], "status": "anchored",
             "record_hash": {"algorithm": "sha256-jcs", "digest": "00" * 32},
             "anchor": {"mode": "batch", "network": "local", "chain_id": 1337,
                        "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20}}
    with pytest.raises(MalformedProofError, match="anchor.merkle"):
        verify(record, proof=proof)


@given(co2_kg=st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
       name=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s),
       bump=st.sampled_from(["co2", "name"]))
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_anchored_is_valid_and_any_change_is_tampered(
        co2_kg: float, name: str, bump: str) -> None:
    store, record, path = _stored(energy_emissions__co2_kg=co2_kg, experiment__name=name)
    assert anchor_record(store, record["mrv_id"], settings=load_settings()).anchored
    assert verify(path).status is VerdictStatus.VALID
    changed = json.loads(path.read_text())
    if bump == "co2":
        changed["energy_emissions"]["co2_kg"] = co2_kg + 1.0
    else:
        changed["experiment"]["name"] = name + "x"
    assert verify(changed, proof=store.load_proof(record["mrv_id"])).status \
        is VerdictStatus.TAMPERED


def test_from_mrv_ml_import_verify_is_callable_even_after_the_module_is_imported() -> None:
    import mrv_ml.verification.verifier  # noqa: F401 - binds the package attribute to the module
    from mrv_ml import verify as verify_from_package

    _, record, path = _stored()
    with pytest.raises(ProofNeededError):  # a real call, not "'module' is not callable"
        verify_from_package(path)


def test_a_merkle_path_longer_than_any_anchorable_tree_is_refused() -> None:
    from mrv_ml.record.proof import Proof

    _, record, _ = _stored()
    proof = {"proof_version": "1.0", "mrv_id": record["mrv_id"], "status": "anchored",
             "record_hash": {"algorithm": "sha256-jcs", "digest": "00" * 32},
             "anchor": {"mode": "batch", "chain_id": 1337, "contract_address": "0x" + "11" * 20,
                        "submitter": "0x" + "22" * 20,
                        "merkle": {"root": "0x" + "33" * 32, "proof": ["0x" + "44" * 32] * 33}}}
    with pytest.raises(MalformedProofError, match="at most 32"):
        Proof.from_dict(proof)
