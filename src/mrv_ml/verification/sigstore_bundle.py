"""A record's signature as a Sigstore bundle (``mrv export --format sigstore-bundle``):
the shape cosign, sigstore-python and sigstore-go read, made with a standard key and with
nothing uploaded.

Two contents, as the bundle format has:

- ``dsse`` (default): the in-toto attestation of :mod:`mrv_ml.verification.attestation`,
  its DSSE envelope signed with the key (``cosign verify-blob-attestation``).
- ``message``: a signature over the record file's bytes, as the reviewer holds them
  (``cosign verify-blob --key cosign.pub --bundle B RECORD.json``); ECDSA signs their SHA-256
  (SHA-384 on P-384), Ed25519 the bytes themselves.

The verification material is the key's hint (its securesystemslib ID: the key itself
travels out of band, as a public-key bundle's does), no transparency-log entry, and, when
authorities are named (``--tsa``), their RFC 3161 tokens. In a Sigstore bundle a token
stamps the *signature's* bytes: that the signature existed at the time the authority
states. A record's own tokens (``mrv timestamp``) stamp the record's fingerprint instead,
so they stay in its proof and are not put here, where a verifier would read them as
stamps of the signature and fail.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.anchoring.timestamp import Authority, timestamp_data
from mrv_ml.record.proof import Timestamp
from mrv_ml.verification.attestation import attest
from mrv_ml.verification.dsse import sign_envelope_with_key

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.verification.keys import SigningKey

__all__ = ["BUNDLE_MEDIA_TYPE", "BUNDLE_SUFFIX", "BundleContent", "ExportedBundle",
           "export_bundle"]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_SUFFIX = ".sigstore.json"  # cosign's and sigstore-python's convention


class BundleContent(str, enum.Enum):
    dsse = "dsse"
    message = "message"


@dataclass(frozen=True)
class ExportedBundle:
    """What ``mrv export --format sigstore-bundle`` wrote."""

    path: Path
    mrv_id: str
    signer: str  # the key's identity
    content: BundleContent
    subjects: tuple[tuple[str, str], ...]  # (name, sha256), the record last
    timestamps: tuple[Timestamp, ...]  # over the signature's bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _message_signature(data: bytes, key: SigningKey) -> tuple[dict[str, Any], bytes]:
    algorithm, digest = (("SHA2_384", hashlib.sha384(data).digest()) if key.kind == "ecdsa-p384"
                         else ("SHA2_256", hashlib.sha256(data).digest()))
    signature = bytes.fromhex(key.signer.sign(data).signature)
    return ({"messageDigest": {"algorithm": algorithm, "digest": _b64(digest)},
             "signature": _b64(signature)}, signature)


def export_bundle(record_path: str | Path, subject_paths: Sequence[str | Path],
                  settings: Settings, out: str | Path | None = None, *, key: SigningKey,
                  content: BundleContent = BundleContent.dsse,
                  authorities: Sequence[Authority] = ()) -> ExportedBundle:
    """Sign the record at ``record_path`` (a file, or an ID or unique prefix in the store)
    with ``key`` as a Sigstore bundle of ``content``; stamp the signature at each of
    ``authorities`` (each answer checked as ``mrv timestamp`` checks one); write it to
    ``out`` (default ``<mrv_id>.sigstore.json`` here), replaced atomically. Nothing is
    written unless every authority answered."""
    from mrv_ml.storage.atomicfile import write_bytes

    attested = attest(record_path, subject_paths, settings)
    if content is BundleContent.dsse:
        envelope = sign_envelope_with_key(attested.statement, key)
        signed: dict[str, Any] = {"dsseEnvelope": envelope}
        signature = base64.b64decode(envelope["signatures"][0]["sig"])
        subjects = attested.subjects
    else:
        signed, signature = _message_signature(attested.data, key)
        signed = {"messageSignature": signed}
        subjects = attested.subjects[-1:]
    stamps = tuple(timestamp_data(signature, a.url, a.roots) for a in authorities)
    material: dict[str, Any] = {"publicKey": {"hint": key.keyid}, "tlogEntries": []}
    if stamps:
        material["timestampVerificationData"] = {
            "rfc3161Timestamps": [{"signedTimestamp": _b64(s.tsr)} for s in stamps]}
    bundle = {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": material, **signed}
    mrv_id = attested.record["mrv_id"]
    target = Path(out) if out is not None else Path(mrv_id + BUNDLE_SUFFIX)
    write_bytes(target, (json.dumps(bundle, indent=2) + "\n").encode(), what="bundle")
    return ExportedBundle(target, mrv_id, key.identity, content, subjects, stamps)
