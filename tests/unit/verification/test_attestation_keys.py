"""Attestations signed with standard keys (``mrv export --format in-toto --key``): Ed25519
and ECDSA P-256 keys as securesystemslib and OpenSSL write them, checked by
securesystemslib's own DSSE verifier and by ``mrv verify --attestation --key``."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import EvidenceConflictError, KeyConfigError
from mrv_ml.verification.attestation import verify_attestation
from mrv_ml.verification.keys import load_public_key, load_signing_key
from mrv_ml.verification.verdict import VerdictStatus
from tests.unit.verification.test_attestation import _anchored, _cli, _weights

OPENSSL = shutil.which("openssl")


def _securesystemslib_pair(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A key pair as securesystemslib writes it: PKCS#8 private, SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner.generate_ed25519() if kind == "ed25519" else \
        CryptoSigner.generate_ecdsa()
    private, public = tmp_path / f"{kind}.pem", tmp_path / f"{kind}.pub"
    private.write_bytes(signer.private_bytes)
    key = serialization.load_pem_private_key(signer.private_bytes, None)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _openssl_pair(tmp_path: Path, password: str) -> tuple[Path, Path]:
    """An encrypted ECDSA P-256 key as ``openssl genpkey -aes256`` writes it."""
    assert OPENSSL, "the test set-up installs Debian's openssl"
    private, public = tmp_path / "p256.pem", tmp_path / "p256.pub"
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-aes256", "-pass", f"pass:{password}",
                    "-out", str(private)], check=True, capture_output=True)
    subprocess.run([OPENSSL, "pkey", "-in", str(private), "-passin", f"pass:{password}",
                    "-pubout", "-out", str(public)], check=True, capture_output=True)
    return private, public


def _envelope(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_standard_key_envelope_verifies_with_securesystemslib_and_mrv(
        kind: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    private, public = _securesystemslib_pair(tmp_path, kind)
    record, weights = _anchored(), _weights(tmp_path)
    att = tmp_path / "run.intoto.jsonl"
    code, out, err = _cli(capfd, "export", str(record), "-f", "in-toto", "--key", str(private),
                          "--subject", str(weights), "-o", str(att))
    assert code == 0, err
    key = load_public_key(public)
    assert key.identity in out and "--key PUB.pem" in out
    assert "PRIVATE KEY" not in out + err  # the private key is never printed

    # securesystemslib's DSSE verifier, with the key as it computes its ID
    raw = _envelope(att)
    ssl_key = SSlibKey.from_crypto(load_pem_public_key(public.read_bytes()))
    assert raw["signatures"][0]["keyid"] == ssl_key.keyid == key.keyid
    # (from_dict consumes the dict it is given: a fresh one each time)
    assert set(Envelope.from_dict(_envelope(att)).verify([ssl_key], 1)) == {ssl_key.keyid}
    changed = Envelope.from_dict(_envelope(att))
    changed.payload = changed.payload.replace(b"0.0123", b"0.0001")
    with pytest.raises(VerificationError):
        changed.verify([ssl_key], 1)

    # and ours
    v = verify_attestation(att, [str(weights)], keys=[key])
    assert v.status is VerdictStatus.VALID and v.signers == (key.identity,)
    code, text, err = _cli(capfd, "verify", "--attestation", str(att), str(weights),
                           "--key", str(public))
    assert code == 0 and "✅ ATTESTATION VALID" in text and key.identity in text, err


def test_standard_key_signature_needs_its_public_key(tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    """Nobody can recover a standard key from its signature: without the key named, or with
    another key, there is no verdict (exit 7), never VALID; with the key, a changed payload
    is a bad signature (exit 12)."""
    private, public = _securesystemslib_pair(tmp_path, "ed25519")
    _, other = _securesystemslib_pair(tmp_path, "ecdsa")
    att = tmp_path / "run.intoto.jsonl"
    assert _cli(capfd, "export", str(_anchored()), "-f", "in-toto", "--key", str(private),
                "-o", str(att))[0] == 0
    keyid = _envelope(att)["signatures"][0]["keyid"]
    with pytest.raises(KeyConfigError) as info:
        verify_attestation(att)
    assert info.value.key == "unchecked_signature" and keyid in str(info.value)
    code, text, err = _cli(capfd, "verify", "--attestation", str(att))
    assert code == 7 and "--key PUB.pem" in err and text == "" and "Traceback" not in err
    code, _, err = _cli(capfd, "verify", "--attestation", str(att), "--key", str(other))
    assert code == 7 and keyid in err

    # cosign leaves the keyid empty: the named key is tried all the same
    env = _envelope(att)
    env["signatures"][0]["keyid"] = ""
    att.write_text(json.dumps(env))
    code, text, err = _cli(capfd, "verify", "--attestation", str(att), "--key", str(public))
    assert code == 0 and "✅ ATTESTATION VALID" in text, err

    # the payload changed under the key's own keyid: the signature is not the key's
    env["signatures"][0]["keyid"] = keyid
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["measurement"]["co2_kg"] = 0.0001
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    att.write_text(json.dumps(env))
    with pytest.raises(EvidenceConflictError) as conflict:
        verify_attestation(att, keys=[load_public_key(public)])
    assert conflict.value.key == "bad_signature"
    code, _, err = _cli(capfd, "verify", "--attestation", str(att), "--key", str(public))
    assert code == 12 and "payload or the signature was changed" in err


def test_ethereum_signature_with_a_key_pin_is_signed_by_another(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """An EIP-191 envelope checks by itself; a reviewer who named a key wants that key's
    signature: SUBMITTER_MISMATCH (exit 5), naming who did sign."""
    from eth_account import Account

    account = Account.create()
    monkeypatch.setenv("PRIVATE_KEY", account.key.hex())
    _, public = _securesystemslib_pair(tmp_path, "ed25519")
    att = tmp_path / "run.intoto.jsonl"
    assert _cli(capfd, "export", str(_anchored()), "-f", "in-toto", "-o", str(att))[0] == 0
    v = verify_attestation(att, keys=[load_public_key(public)])
    assert v.status is VerdictStatus.SUBMITTER_MISMATCH and v.reason == "signed_by_other"
    assert account.address in v.detail and load_public_key(public).keyid in v.detail
    code, text, _ = _cli(capfd, "verify", "--attestation", str(att), "--key", str(public))
    assert code == 5 and account.address in text


def test_encrypted_openssl_key_and_refused_keys(tmp_path: Path,
                                                capfd: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    private, public = _openssl_pair(tmp_path, "s3cret pass")
    record = _anchored()
    att = tmp_path / "run.intoto.jsonl"
    monkeypatch.delenv("MRV_KEY_PASSWORD", raising=False)
    code, _, err = _cli(capfd, "export", str(record), "-f", "in-toto", "--key", str(private),
                        "-o", str(att))
    assert code == 7 and "MRV_KEY_PASSWORD" in err and not att.exists()
    monkeypatch.setenv("MRV_KEY_PASSWORD", "wrong")
    code, _, err = _cli(capfd, "export", str(record), "-f", "in-toto", "--key", str(private),
                        "-o", str(att))
    assert code == 7 and "password is wrong" in err and "wrong" not in err.split(":")[0]
    monkeypatch.setenv("MRV_KEY_PASSWORD", "s3cret pass")
    code, _, err = _cli(capfd, "export", str(record), "-f", "in-toto", "--key", str(private),
                        "-o", str(att))
    assert code == 0 and "s3cret" not in err, err
    assert load_signing_key(private, b"s3cret pass").kind == "ecdsa-p256"
    code, text, err = _cli(capfd, "verify", "--attestation", str(att), "--key", str(public))
    assert code == 0 and "ecdsa-p256 key" in text, err

    # a private key handed to a reviewer is refused: they need only its public half
    code, _, err = _cli(capfd, "verify", "--attestation", str(att), "--key", str(private))
    assert code == 7 and "public half" in err
    # key types standard verifiers do not share
    for name, key in (("rsa.pem", rsa.generate_private_key(65537, 2048)),
                      ("k1.pem", ec.generate_private_key(ec.SECP256K1()))):
        path = tmp_path / name
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        monkeypatch.delenv("MRV_KEY_PASSWORD")
        code, _, err = _cli(capfd, "export", str(record), "-f", "in-toto", "--key", str(path),
                            "-o", str(tmp_path / "x.jsonl"))
        assert code == 7 and "Ed25519 or ECDSA" in err and len(err.strip().splitlines()) == 1
        monkeypatch.setenv("MRV_KEY_PASSWORD", "")
    # cosign's own encrypted format (its header and a JSON body of scrypt/secretbox fields)
    cosign_key = tmp_path / "cosign.key"
    cosign_key.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
                          + base64.b64encode(b'{"kdf":{"name":"scrypt"}}').decode()
                          + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    code, _, err = _cli(capfd, "export", str(record), "-f", "in-toto", "--key",
                        str(cosign_key))
    assert code == 7 and "cosign import-key-pair" in err
    # a public key given to sign with; not a key at all
    for path in (public, record):
        code, _, err = _cli(capfd, "export", str(record), "-f", "in-toto", "--key", str(path))
        assert code == 7 and "not a PEM private key" in err
    # --key is an attestation's: a record's proof is signed with an Ethereum key
    code, _, err = _cli(capfd, "verify", str(record), "--key", str(public))
    assert code == 64 and "--attestation" in err


def test_require_key_and_chain_terms_for_an_attestation(tmp_path: Path,
                                                        capfd: pytest.CaptureFixture[str]
                                                        ) -> None:
    private, public = _securesystemslib_pair(tmp_path, "ed25519")
    (tmp_path / "other").mkdir()
    _, stranger = _securesystemslib_pair(tmp_path / "other", "ecdsa")
    record = _anchored()
    att = tmp_path / "run.intoto.jsonl"
    assert _cli(capfd, "export", str(record), "-f", "in-toto", "--key", str(private),
                "-o", str(att))[0] == 0
    code, out, err = _cli(capfd, "verify", "--attestation", str(att), "--json", "--require",
                          f"all-of(chain:any, key:{public})")
    verdict = json.loads(out)
    assert code == 0 and verdict["status"] == "VALID", out + err
    assert [t["held"] for t in verdict["record"]["requirement"]["terms"]] == [True, True]
    # the key named is not the signer's: its signature is checked by no key given
    code, out, err = _cli(capfd, "verify", "--attestation", str(att), "--require",
                          f"all-of(chain:any, key:{stranger})")
    assert code == 7, out + err
    # the signer's key, but the record is anchored on this machine's chain only
    code, out, err = _cli(capfd, "verify", "--attestation", str(att), "--require",
                          f"all-of(chain:public, key:{public})")
    assert code == 13 and "chain:public" in err, out + err
