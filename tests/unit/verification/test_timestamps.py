"""RFC 3161 timestamps against a real authority (OpenSSL's ``ts -reply`` with its own test
CA, tests/support/tsa.py): fetched and checked, kept in the proof, verified offline with
only the record, the proof and the root; ``openssl ts -verify`` agrees on every token."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from mrv_ml.record.hashing import canonical_bytes
from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV
from tests.support.records import make_sample_record
from tests.support.tsa import LocalTSA


def _stored() -> tuple[RecordStore, str]:
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    record = make_sample_record()
    store.save(record)
    return store, record["mrv_id"]


def _reviewer_copy(store: RecordStore, mrv_id: str, tmp_path: Path) -> Path:
    reviewer = tmp_path / "reviewer"
    reviewer.mkdir(exist_ok=True)
    shutil.copy(store.path_for(mrv_id), reviewer)
    shutil.copy(store.proof_path_for(mrv_id), reviewer)
    return reviewer / f"{mrv_id}.json"


EMPTY = {"MRV_DATA_DIR": "/nonexistent/empty-store"}


def test_a_timestamped_record_verifies_anywhere_with_only_the_root(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV, tmp_path: Path) -> None:
    ours, other = authorities
    store, mrv_id = _stored()
    code, out, err = mrv("timestamp", mrv_id, "--tsa", ours.url)
    assert code == 0 and "timestamped at" in out, out + err
    copy = _reviewer_copy(store, mrv_id, tmp_path)
    # an empty directory: no chain holds this record, the timestamp is the evidence
    code, out, err = mrv("verify", str(copy), "--json", "--tsa-root", str(ours.root_pem),
                         env=EMPTY)
    verdict = json.loads(out)
    assert code == 0 and verdict["status"] == "VALID", out + err
    assert verdict["trust"] == "timestamp authority" and verdict["mode"] == "rfc3161"
    [stamp] = verdict["timestamps"]
    assert stamp["status"] == "VALID" and "mrv test TSA" in stamp["tsa_name"]
    assert verdict["timestamp"] is not None
    # the same token, checked by OpenSSL against the record's canonical bytes
    proof = json.loads(store.proof_path_for(mrv_id).read_text())
    tsr = base64.b64decode(proof["timestamps"][0]["tsr"])
    ok, said = ours.verify_with_openssl(tsr, canonical_bytes(store.load(mrv_id)))
    assert ok, said
    # another authority's root: an error naming the authority, never VALID
    code, out, err = mrv("verify", str(copy), "--tsa-root", str(other.root_pem), env=EMPTY)
    assert code == 7 and "mrv test TSA" in err and "does not chain to a root" in err, out + err
    # no root named: the chain's error, saying the proof holds a timestamp to check
    code, out, err = mrv("verify", str(copy), env=EMPTY)
    assert code != 0 and "--tsa-root" in err, out + err


def test_a_changed_record_is_tampered_and_openssl_agrees(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV, tmp_path: Path) -> None:
    ours, _ = authorities
    store, mrv_id = _stored()
    assert mrv("timestamp", mrv_id, "--tsa", ours.url)[0] == 0
    copy = _reviewer_copy(store, mrv_id, tmp_path)
    record = json.loads(copy.read_text())
    record["energy_emissions"]["co2_kg"] *= 0.5
    copy.write_text(json.dumps(record))
    code, out, err = mrv("verify", str(copy), "--json", "--tsa-root", str(ours.root_pem),
                         env=EMPTY)
    verdict = json.loads(out)
    assert code == 1 and verdict["status"] == "TAMPERED", out + err
    assert verdict["timestamps"][0]["status"] == "TAMPERED"
    proof = json.loads(store.proof_path_for(mrv_id).read_text())
    tsr = base64.b64decode(proof["timestamps"][0]["tsr"])
    ok, _ = ours.verify_with_openssl(tsr, canonical_bytes(record))
    assert not ok


def test_a_chain_anchor_and_a_timestamp_together(authorities: tuple[LocalTSA, LocalTSA],
                                                 mrv: MRV) -> None:
    ours, _ = authorities
    store, mrv_id = _stored()
    assert mrv("anchor", mrv_id)[0] == 0  # the embedded chain
    assert mrv("timestamp", mrv_id, "--tsa", ours.url)[0] == 0
    proof = store.load_proof(mrv_id)
    assert proof is not None and proof.status == "anchored" and len(proof.timestamps) == 1
    code, out, err = mrv("verify", str(store.path_for(mrv_id)), "--json", "--tsa-root",
                         str(ours.root_pem))
    verdict = json.loads(out)
    assert code == 0 and verdict["mode"] == "single" and verdict["trust"] == "local only"
    assert [t["status"] for t in verdict["timestamps"]] == ["VALID"]
    # a trusted token of other content beside a VALID chain anchor: no verdict
    other_record = make_sample_record()
    store.save(other_record)
    assert mrv("timestamp", other_record["mrv_id"], "--tsa", ours.url)[0] == 0
    foreign = store.load_proof(other_record["mrv_id"])
    assert foreign is not None
    store.save_proof(proof.with_timestamp(foreign.timestamps[0]))
    code, out, err = mrv("verify", str(store.path_for(mrv_id)), "--tsa-root",
                         str(ours.root_pem))
    assert code == 12 and "one piece of evidence is false" in err, out + err


@pytest.mark.parametrize("answer", [b"", b"not DER", b"\x30\x03\x02\x01\x00"],
                         ids=["empty", "garbage", "a bare status"])
def test_a_bad_answer_is_an_error_and_nothing_is_written(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV, answer: bytes) -> None:
    ours, _ = authorities
    store, mrv_id = _stored()
    ours.answer_with = answer
    try:
        code, out, err = mrv("timestamp", mrv_id, "--tsa", ours.url)
    finally:
        ours.answer_with = None
    assert code == 4 and len(err.strip().splitlines()) == 1, out + err
    assert store.load_proof(mrv_id) is None


def test_a_replayed_answer_for_other_content_is_refused(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV) -> None:
    ours, _ = authorities
    store, first = _stored()
    assert mrv("timestamp", first, "--tsa", ours.url)[0] == 0
    proof = store.load_proof(first)
    assert proof is not None
    _, second = _stored()
    ours.answer_with = proof.timestamps[0].tsr  # a genuine token, of another record
    try:
        code, _, err = mrv("timestamp", second, "--tsa", ours.url)
    finally:
        ours.answer_with = None
    assert code == 4 and "does not hold" in err
    assert store.load_proof(second) is None


def test_an_answer_not_chaining_to_the_root_named_is_refused(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV) -> None:
    ours, other = authorities
    store, mrv_id = _stored()
    code, _, err = mrv("timestamp", mrv_id, "--tsa", ours.url, "--tsa-root",
                       str(other.root_pem))
    assert code == 4 and "does not hold" in err
    assert store.load_proof(mrv_id) is None


def test_no_authority_named_is_a_configuration_error(mrv: MRV) -> None:
    _, mrv_id = _stored()
    code, _, err = mrv("timestamp", mrv_id, env={"MRV_TSA_URL": None})
    assert code == 7 and "--tsa" in err
    code, _, err = mrv("timestamp", mrv_id, "--tsa", "ftp://example.org/tsa")
    assert code == 7 and "not an http(s) URL" in err


@pytest.mark.parametrize("timestamps", [
    "not a list", [{"kind": "rfc3161"}], [{"kind": "opentimestamps"}],
    [{"kind": "rfc3161", "tsa_url": "http://t", "tsr": "!!!"}],
    [{"kind": "rfc3161", "tsa_url": "http://t", "tsr": "A" * 200_000}],
    [{"kind": "rfc3161", "tsa_url": "file:///etc/passwd", "tsr": ""}],
])
def test_a_malformed_timestamp_in_a_proof_is_unusable_input(mrv: MRV, timestamps: object
                                                            ) -> None:
    store, mrv_id = _stored()
    assert mrv("anchor", mrv_id)[0] == 0
    path = store.proof_path_for(mrv_id)
    data = json.loads(path.read_text())
    data["timestamps"] = timestamps
    path.write_text(json.dumps(data))
    code, out, err = mrv("verify", str(store.path_for(mrv_id)))
    assert code == 3 and "timestamps" in err and "Traceback" not in out + err, out + err


def test_the_tracker_timestamps_right_after_writing(authorities: tuple[LocalTSA, LocalTSA],
                                                   mrv: MRV, tmp_path: Path) -> None:
    from mrv_ml.run.tracker import MRVTracker

    ours, other = authorities
    with MRVTracker("stamped", storage_dir=os.environ["MRV_DATA_DIR"], timestamp=ours.url,
                    quiet=True) as tracker:
        pass
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    proof = store.load_proof(tracker.mrv_id)
    assert proof is not None and len(proof.timestamps) == 1 and proof.status == "anchored"
    copy = _reviewer_copy(store, tracker.mrv_id, tmp_path)
    code, out, err = mrv("verify", str(copy), "--tsa-root", str(ours.root_pem), env=EMPTY)
    assert code == 0 and "VALID" in out, out + err
    # an authority that cannot be reached: the run still has its record, told why
    with MRVTracker("unstamped", storage_dir=os.environ["MRV_DATA_DIR"],
                    timestamp="http://127.0.0.1:9/tsr", quiet=True) as lost:
        pass
    assert lost.record_path is not None and lost.record_path.exists()
    unstamped = store.load_proof(lost.mrv_id)
    assert unstamped is None or unstamped.timestamps == ()
    with pytest.raises(Exception, match="not an http"):
        MRVTracker("bad", timestamp="ftp://nowhere")


def test_an_authoritys_key_in_its_url_is_never_written(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV) -> None:
    ours, _ = authorities
    store, mrv_id = _stored()
    code, out, err = mrv("timestamp", mrv_id, "--tsa", f"{ours.url}/S3CR3T88?apikey=K3Y13CHARSXX")
    assert code == 0, out + err
    written = store.proof_path_for(mrv_id).read_text()
    assert "S3CR3T88" not in written + out + err and "K3Y13CHARSXX" not in written + out + err
    assert json.loads(written)["timestamps"][0]["tsa_url"].endswith("/***")
