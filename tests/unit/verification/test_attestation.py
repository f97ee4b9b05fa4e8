"""in-toto attestations: ``mrv export --format in-toto`` and ``mrv verify --attestation``,
on records anchored on the embedded chain; the output checked by the reference DSSE and
in-toto implementations (securesystemslib, in-toto-attestation), not only by our reader."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from mrv_ml.anchoring.single import anchor_record, mark_pending
from mrv_ml.config import load_settings
from mrv_ml.errors import EvidenceConflictError, KeyConfigError, RecordError
from mrv_ml.record.hashing import compute_hash
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.attestation import (
    export_attestation,
    verify_attestation,
)
from mrv_ml.verification.dsse import PAYLOAD_TYPE, pae
from mrv_ml.verification.intoto import PREDICATE_TYPE, STATEMENT_TYPE
from mrv_ml.verification.verdict import VerdictStatus
from tests.support.records import make_sample_record


def _cli(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from mrv_ml.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capfd.readouterr()
    return int(info.value.code or 0), out.out, out.err


@pytest.fixture
def researcher(monkeypatch: pytest.MonkeyPatch) -> Any:
    account = Account.create()
    monkeypatch.setenv("PRIVATE_KEY", account.key.hex())
    return account


def _anchored(anchor: bool = True) -> Path:
    # anchored with the embedded chain's funded development key; the researcher's key
    # (PRIVATE_KEY) signs the attestation only
    key = os.environ.pop("PRIVATE_KEY", None)
    try:
        settings = load_settings()
        store = RecordStore(settings.data_dir)
        record = make_sample_record(energy_emissions__co2_kg=0.0123)
        path = store.save(record)
        if anchor:
            assert anchor_record(store, record["mrv_id"], settings=settings).anchored
        else:
            mark_pending(store, record["mrv_id"], "auto_anchor is off")
    finally:
        if key is not None:
            os.environ["PRIVATE_KEY"] = key
    return path


def _weights(tmp_path: Path) -> Path:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x00weights" * 1000)
    return weights


def _export(record: Path, *subjects: Path, out: Path | None = None) -> Path:
    return export_attestation(record, list(subjects), load_settings(), out).path


def _envelope(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


def _statement(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.b64decode(_envelope(path)["payload"]))
    return value


def _rewrite(path: Path, change: Any) -> None:
    env = _envelope(path)
    statement = json.loads(base64.b64decode(env["payload"]))
    change(env, statement)
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(env))


# --- the happy path ------------------------------------------------------------------------


def test_export_then_verify_valid(researcher: Any, tmp_path: Path) -> None:
    record = _anchored()
    weights = _weights(tmp_path)
    att = _export(record, weights)
    assert att == Path(record.stem + ".intoto.jsonl") and att.read_text().count("\n") == 1
    st = _statement(att)
    assert st["_type"] == STATEMENT_TYPE and st["predicateType"] == PREDICATE_TYPE
    weights_subject, record_subject = st["subject"]
    import hashlib

    assert weights_subject == {"name": "model.safetensors",
                               "digest": {"sha256": hashlib.sha256(weights.read_bytes())
                                          .hexdigest()}}
    data = json.loads(record.read_text())
    assert record_subject["digest"] == {"sha256": hashlib.sha256(record.read_bytes()).hexdigest(),
                                        "sha256-jcs": compute_hash(data)}
    p = st["predicate"]
    assert p["measurement"]["co2_kg"] == 0.0123 and "duration_s" in p["measurement"]
    assert p["anchoring"]["status"] == "anchored" and p["anchoring"]["chain_id"] == 1337
    # the proof's claim, never more: the embedded chain proves nothing to anyone else
    assert p["anchoring"]["trust_claimed"] == "local only"
    assert researcher.address in att.read_text()
    assert researcher.key.hex().removeprefix("0x") not in att.read_text()

    v = verify_attestation(att, [str(weights)], expected_signer=researcher.address.lower())
    assert v.status is VerdictStatus.VALID and v.exit_code == 0 and v.reason == "attested"
    assert v.signers == (researcher.address,) and v.trust == "local only"
    assert [s.status for s in v.subjects] == ["matches", "matches"]
    assert v.record is not None and v.record.status is VerdictStatus.VALID
    # the record found in the store (not beside the attestation), subjects not given: not
    # checked, and said so
    v = verify_attestation(att)
    assert v and [s.status for s in v.subjects] == ["not checked", "matches"]


def test_cli_export_and_verify(researcher: Any, tmp_path: Path,
                               capfd: pytest.CaptureFixture[str]) -> None:
    record = _anchored()
    weights = _weights(tmp_path)
    out = tmp_path / "run.intoto.jsonl"
    code, text, err = _cli(capfd, "export", str(record), "--format", "in-toto", "--subject",
                           str(weights), "-o", str(out))
    assert code == 0, err
    assert str(out) in text and researcher.address in text
    code, text, err = _cli(capfd, "verify", "--attestation", str(out), str(record),
                           str(weights), "--signer", researcher.address)
    assert code == 0, err
    assert "✅ ATTESTATION VALID" in text and "model.safetensors: matches" in text
    assert "local only" in text
    code, text, _ = _cli(capfd, "verify", "--attestation", str(out), "--json")
    data = json.loads(text)
    assert code == 0 and data["status"] == "VALID" and data["record"]["status"] == "VALID"
    assert data["signers"] == [researcher.address] and data["trust"] == "local only"
    # the record by its ID in the store, for export and for verification (the README's lines)
    mrv_id = record.stem
    code, _, err = _cli(capfd, "export", mrv_id[:12], "-f", "in-toto", "--subject", str(weights))
    assert code == 0, err
    code, text, err = _cli(capfd, "verify", "--attestation", mrv_id + ".intoto.jsonl", mrv_id,
                           str(weights), "--signer", researcher.address)
    assert code == 0 and "✅ ATTESTATION VALID" in text, err


@pytest.mark.attestation
def test_reference_implementations_accept_it(researcher: Any, tmp_path: Path) -> None:
    """securesystemslib's DSSE Envelope reads it, computes the same PAE and, with a key for
    our scheme, verifies the signature by its keyid; in-toto-attestation's protobuf model
    parses the statement (unknown fields refused) and validates it."""
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
    from securesystemslib.signer import Key, Signature

    class EIP191Key(Key):  # DSSE verification through securesystemslib's threshold logic
        @classmethod
        def from_dict(cls, keyid: str, key_dict: dict[str, Any]) -> EIP191Key:
            raise NotImplementedError

        def to_dict(self) -> dict[str, Any]:
            return {}

        def verify_signature(self, signature: Signature, data: bytes) -> None:
            from eth_account.messages import encode_defunct

            who = Account.recover_message(encode_defunct(primitive=data),
                                          signature=bytes.fromhex(signature.signature))
            if who != self.keyid:
                raise UnverifiedSignatureError("not this key")

    att = _export(_anchored(), _weights(tmp_path))
    raw = _envelope(att)
    envelope = Envelope.from_dict(json.loads(json.dumps(raw)))
    assert envelope.payload_type == PAYLOAD_TYPE
    assert envelope.pae() == pae(PAYLOAD_TYPE, base64.b64decode(raw["payload"]))
    key = EIP191Key(researcher.address, "secp256k1", "eip191-dsse-v1", {})
    assert set(envelope.verify([key], 1)) == {researcher.address}
    other = EIP191Key(Account.create().address, "secp256k1", "eip191-dsse-v1", {})
    with pytest.raises(VerificationError):
        envelope.verify([other], 1)
    # a changed payload is refused by the reference implementation too
    envelope.payload = envelope.payload.replace(b"0.0123", b"0.0001")
    with pytest.raises(VerificationError):
        envelope.verify([key], 1)

    proto = json_format.Parse(base64.b64decode(raw["payload"]), statement_pb2.Statement())
    statement = Statement.copy_from_pb(proto)
    statement.validate()
    for subject in proto.subject:
        ResourceDescriptor.copy_from_pb(subject).validate()
    assert proto.predicate_type == PREDICATE_TYPE
    assert [s.name for s in proto.subject] == ["model.safetensors", att.name[:-13] + ".json"]


# --- failures --------------------------------------------------------------------------------


def test_changed_subject_file_is_tampered_and_named(researcher: Any, tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    record = _anchored()
    weights = _weights(tmp_path)
    att = _export(record, weights)
    weights.write_bytes(weights.read_bytes() + b"!")
    v = verify_attestation(att, [str(weights)])
    assert v.status is VerdictStatus.TAMPERED and v.reason == "subject_differs"
    assert str(weights) in v.detail and v.record is None and v.trust is None
    code, text, err = _cli(capfd, "verify", "--attestation", str(att), str(weights))
    assert code == 1 and "❌ ATTESTATION TAMPERED" in text and str(weights) in text
    assert "Traceback" not in err
    # a file that is no subject at all, by name or digest: unusable input
    stray = tmp_path / "other.bin"
    stray.write_bytes(b"x")
    code, _, err = _cli(capfd, "verify", "--attestation", str(att), str(stray))
    assert code == 3 and "neither its name nor its digest" in err and len(err.splitlines()) == 1


def test_signed_by_another_key_with_signer_pin(researcher: Any, tmp_path: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    att = _export(_anchored())
    expected = Account.create().address
    v = verify_attestation(att, expected_signer=expected)
    assert v.status is VerdictStatus.SUBMITTER_MISMATCH and v.reason == "signed_by_other"
    assert researcher.address in v.detail and expected in v.detail
    code, text, _ = _cli(capfd, "verify", "--attestation", str(att), "--signer", expected)
    assert code == 5 and researcher.address in text
    code, _, err = _cli(capfd, "verify", "--attestation", str(att), "--signer", "0x12")
    assert code == 3 and "not an address" in err


def test_signature_of_another_key_under_our_keyid(researcher: Any, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """Someone re-signs the envelope with their key but keeps the researcher's keyid."""
    att = _export(_anchored())
    env = _envelope(att)
    forged = Account.create().sign_message(
        __import__("eth_account.messages", fromlist=["encode_defunct"]).encode_defunct(
            primitive=pae(PAYLOAD_TYPE, base64.b64decode(env["payload"]))))
    env["signatures"][0]["sig"] = base64.b64encode(bytes(forged.signature)).decode()
    att.write_text(json.dumps(env))
    with pytest.raises(EvidenceConflictError) as info:
        verify_attestation(att)
    assert info.value.key == "bad_signature" and researcher.address in str(info.value)
    code, _, err = _cli(capfd, "verify", "--attestation", str(att))
    assert code == 12 and len(err.strip().splitlines()) == 1


def test_tampered_payload_is_a_bad_signature(researcher: Any,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    att = _export(_anchored())

    def lower_co2(env: dict[str, Any], st: dict[str, Any]) -> None:
        st["predicate"]["measurement"]["co2_kg"] = 0.0001

    _rewrite(att, lower_co2)
    code, text, err = _cli(capfd, "verify", "--attestation", str(att))
    assert code == 12 and "payload or the signature was changed" in err and text == ""
    assert "Traceback" not in err


@pytest.mark.parametrize(("content", "key", "words"), [
    (b"not json at all", "not_json", "not one JSON envelope"),
    (b'{"payloadType": "text/plain", "payload": "e30=", "signatures": []}',
     "wrong_payload_type", "payloadType is 'text/plain'"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}',
     "unsigned_attestation", "no signatures"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", '
     b'"signatures": [{"keyid": 7, "sig": "AAAA"}]}', "malformed_attestation",
     "keyid is not a short printable string"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", '
     b'"signatures": [{"keyid": "a\\u001b[2Jb", "sig": "AAAA"}]}', "malformed_attestation",
     "keyid is not a short printable string"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "%%%", '
     b'"signatures": [{"keyid": "0x0000000000000000000000000000000000000001", "sig": "AA=="}]}',
     "malformed_attestation", "payload is not valid base64"),
])
def test_malformed_envelope(tmp_path: Path, capfd: pytest.CaptureFixture[str], content: bytes,
                            key: str, words: str) -> None:
    att = tmp_path / "bad.intoto.jsonl"
    att.write_bytes(content)
    with pytest.raises(RecordError) as info:
        verify_attestation(att)
    assert info.value.key == key and words in str(info.value)
    code, text, err = _cli(capfd, "verify", "--attestation", str(att))
    assert code == 3 and words in err and len(err.strip().splitlines()) == 1 and text == ""


def test_signed_statement_of_another_kind_is_refused(researcher: Any, tmp_path: Path) -> None:
    """A validly signed envelope whose payload is not our statement: unusable, not VALID."""
    from mrv_ml.chain.keys import load_signer
    from mrv_ml.verification.dsse import sign_envelope

    signer = load_signer(load_settings())
    assert signer is not None
    att = tmp_path / "other.intoto.jsonl"
    att.write_text(json.dumps(sign_envelope(
        {"_type": STATEMENT_TYPE, "subject": [{"name": "x", "digest": {"sha256": "00" * 32}}],
         "predicateType": "https://slsa.dev/provenance/v1", "predicate": {"a": 1}}, signer)))
    with pytest.raises(RecordError) as info:
        verify_attestation(att)
    assert info.value.key == "unknown_predicate"


def test_record_that_differs_from_the_statement(researcher: Any, tmp_path: Path,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    record = _anchored()
    att = _export(record)
    other = _anchored()  # a valid, anchored record, but not the one attested
    v = verify_attestation(att, [str(other)])
    assert v.status is VerdictStatus.TAMPERED and v.reason == "record_differs"
    assert str(other) in v.detail and v.record is None
    # the record re-serialized (same fingerprint, other bytes) is not the file attested
    # either: every digest we know must match
    copy = tmp_path / record.name
    copy.write_text(json.dumps(json.loads(record.read_text())))
    v = verify_attestation(att, [str(copy)])
    assert v.status is VerdictStatus.TAMPERED and v.reason == "record_differs"
    code, text, _ = _cli(capfd, "verify", "--attestation", str(att), str(other))
    assert code == 1 and "is not the record attested" in text


def test_record_not_found_and_pending(researcher: Any, tmp_path: Path, data_dir: Path,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    _anchored()  # the embedded chain exists: the pending record is looked up on it
    pending = _anchored(anchor=False)
    att = _export(pending)
    assert _statement(att)["predicate"]["anchoring"]["status"] == "pending"
    v = verify_attestation(att)  # validly signed, but the record is not anchored yet
    assert v.status is VerdictStatus.NOT_FOUND and v.reason == "record_not_found"
    assert v.exit_code == 2 and not v
    pending.unlink()
    code, _, err = _cli(capfd, "verify", "--attestation", str(att))
    assert code == 2 and "is neither beside" in err


def test_export_without_a_key(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    record = _anchored()
    with pytest.raises(KeyConfigError):
        _export(record)
    out = tmp_path / "a.intoto.jsonl"
    code, text, err = _cli(capfd, "export", str(record), "--format", "in-toto", "-o", str(out))
    assert code == 7 and "no signing key: give --key" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_export_refuses_missing_subject_and_duplicate_names(researcher: Any,
                                                            tmp_path: Path) -> None:
    record = _anchored()
    with pytest.raises(RecordError, match="no such file"):
        _export(record, tmp_path / "missing.bin")
    (tmp_path / "a").mkdir()
    twin = tmp_path / "a" / "model.safetensors"
    twin.write_bytes(b"other")
    with pytest.raises(RecordError, match="two subjects are named"):
        _export(record, _weights(tmp_path), twin)
    assert not list(Path.cwd().glob("*.intoto.jsonl"))


def test_verify_needs_records_or_an_attestation(capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capfd, "verify")
    assert code == 64 and "--attestation" in err


def test_export_options_of_the_other_format_are_refused(researcher: Any, tmp_path: Path,
                                                        capfd: pytest.CaptureFixture[str]
                                                        ) -> None:
    record = _anchored()
    code, _, err = _cli(capfd, "export", str(record), "--format", "in-toto", "--push", "a/b")
    assert code == 64 and "hf-model-card" in err
    code, _, err = _cli(capfd, "export", str(record), "--format", "hf-model-card",
                        "--subject", str(_weights(tmp_path)))
    assert code == 64 and "--subject and --key are for --format in-toto" in err
    assert not list(Path.cwd().glob("*.intoto.jsonl"))
