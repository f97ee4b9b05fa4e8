"""``mrv export --format sigstore-bundle``: a Sigstore bundle parsed by Sigstore's own model
(sigstore-models), its DSSE envelope verified by securesystemslib, its message signature by
``cryptography`` over the record file's bytes, and its RFC 3161 tokens (a real authority,
tests/support/tsa.py) checked over the signature's bytes by rfc3161-client and by
``openssl ts -verify``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.intoto import PREDICATE_TYPE
from tests.support.cli import MRV
from tests.support.keys import key_pair
from tests.support.records import make_sample_record
from tests.support.tsa import LocalTSA


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    with LocalTSA(tmp_path_factory.mktemp("tsa")) as tsa:
        yield tsa


def _record() -> tuple[Path, str]:
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    record = make_sample_record()
    return store.save(record), record["mrv_id"]


def _bundle(path: Path) -> Any:
    from sigstore_models.bundle.v1 import Bundle

    return Bundle.from_json(path.read_bytes())  # Sigstore's own model, strict


def _timestamp_holds(tsr: bytes, signature: bytes, tsa: LocalTSA) -> None:
    from cryptography import x509
    from rfc3161_client import VerifierBuilder, decode_timestamp_response

    root = x509.load_pem_x509_certificate(tsa.root_pem.read_bytes())
    VerifierBuilder().add_root_certificate(root).build().verify(
        decode_timestamp_response(tsr), hashlib.sha256(signature).digest())
    ok, said = tsa.verify_with_openssl(tsr, signature)
    assert ok, said


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_a_dsse_bundle_parses_verifies_and_its_timestamp_stamps_the_signature(
        kind: str, authority: LocalTSA, mrv: MRV, tmp_path: Path) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    private, public = key_pair(tmp_path, kind)
    record_path, mrv_id = _record()
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x01" * 4096)
    out = tmp_path / "run.sigstore.json"
    code, said, err = mrv("export", mrv_id, "-f", "sigstore-bundle", "--key", private,
                          "--subject", weights, "--tsa", authority.url, "--tsa-root",
                          authority.root_pem, "-o", out)
    assert code == 0, said + err
    assert "Signature stamped:" in said and f"--type {PREDICATE_TYPE}" in said

    bundle = _bundle(out)
    assert bundle.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle.message_signature is None and bundle.verification_material.tlog_entries == []
    key = SSlibKey.from_crypto(public)
    assert bundle.verification_material.public_key.hint == key.keyid

    raw = json.loads(out.read_text())
    signature = base64.b64decode(raw["dsseEnvelope"]["signatures"][0]["sig"])
    envelope = Envelope.from_dict(raw["dsseEnvelope"])  # (it consumes what it reads)
    assert key.keyid in envelope.verify([key], 1)  # securesystemslib's DSSE verifier
    statement = json.loads(envelope.payload)
    assert statement["predicateType"] == PREDICATE_TYPE
    assert {s["name"] for s in statement["subject"]} == {"model.safetensors",
                                                        record_path.name}

    [stamp] = bundle.verification_material.timestamp_verification_data.rfc3161_timestamps
    _timestamp_holds(stamp.signed_timestamp, signature, authority)

@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_a_message_bundle_signs_the_record_files_bytes(kind: str, mrv: MRV,
                                                      tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    private, public = key_pair(tmp_path, kind)
    record_path, mrv_id = _record()
    out = tmp_path / "message.sigstore.json"
    code, said, err = mrv("export", record_path, "-f", "sigstore-bundle", "--content",
                          "message", "--key", private, "-o", out)
    assert code == 0 and "cosign verify-blob --key" in said, said + err
    bundle = _bundle(out)
    signed = bundle.message_signature
    assert bundle.dsse_envelope is None and bundle.verification_material.\
        timestamp_verification_data is None
    data = record_path.read_bytes()
    assert signed.message_digest.digest == hashlib.sha256(data).digest()
    # raises InvalidSignature unless it is this key's signature over exactly these bytes
    if kind == "ecdsa":
        public.verify(signed.signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signed.signature, data)
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        if kind == "ecdsa":
            public.verify(signed.signature, data + b" ", ec.ECDSA(hashes.SHA256()))
        else:
            public.verify(signed.signature, data + b" ")


def test_bad_requests_are_refused_and_nothing_is_written(mrv: MRV, tmp_path: Path) -> None:
    private, _ = key_pair(tmp_path, "ecdsa")
    _, mrv_id = _record()
    out = tmp_path / "b.json"
    code, said, err = mrv("export", mrv_id, "-f", "sigstore-bundle", "-o", out)
    assert code == 7 and "--key" in err, said + err
    code, said, err = mrv("export", mrv_id, "-f", "sigstore-bundle", "--key", private,
                          "--content", "message", "--subject", private, "-o", out)
    assert code == 64 and "--content dsse" in err, said + err
    code, said, err = mrv("export", mrv_id, "-f", "sigstore-bundle", "--key", private,
                          "--content", "cms", "-o", out)
    assert code == 64 and "dsse or message" in err, said + err
    code, said, err = mrv("export", mrv_id, "-f", "in-toto", "--key", private, "--tsa",
                          "sigstore", "-o", out)
    assert code == 64 and "mrv timestamp" in err, said + err
    # an authority that is not there: nothing is written, no half a bundle
    code, said, err = mrv("export", mrv_id, "-f", "sigstore-bundle", "--key", private,
                          "--tsa", "http://127.0.0.1:9/tsr", "-o", out)
    assert code == 4 and "cannot reach the timestamp authority" in err, said + err
    assert not out.exists()
