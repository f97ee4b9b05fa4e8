"""The DSSE envelope of an attestation: its pre-authentication encoding (PAE), signing it
with the researcher's Ethereum key (EIP-191 ``personal_sign`` over the PAE, the
signature's ``keyid`` the checksummed address), reading an envelope strictly and
recovering who made each signature. What the payload says is :mod:`~mrv_ml.verification.intoto`'s.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import RecordError
from mrv_ml.record.hashing import canonical_bytes

if TYPE_CHECKING:
    from mrv_ml.chain.keys import Signer

__all__ = ["ADDRESS", "PAYLOAD_TYPE", "SIGNATURE_SCHEME", "Envelope", "EnvelopeSignature",
           "envelope_bytes", "malformed", "pae", "read_envelope", "recover", "sign_envelope"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: The envelope signature scheme (docs/predicate-mrv-v1.md, "Signature").
SIGNATURE_SCHEME = "eip191-dsse-v1"

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def sign_envelope(statement: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    """The DSSE envelope of ``statement`` (RFC 8785 bytes as the payload), signed."""
    payload = canonical_bytes(statement)
    # EIP-191 signs bytes; PAE of a UTF-8 payload is UTF-8 text, so signing its text is
    # signing exactly these bytes (encode_defunct(text=) encodes UTF-8).
    sig_hex = signer.sign_text(pae(PAYLOAD_TYPE, payload).decode("utf-8"))
    return {"payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": signer.address,
                            "sig": base64.b64encode(bytes.fromhex(sig_hex[2:])).decode()}]}


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """One line of JSON and a newline (the ``.intoto.jsonl`` layout)."""
    import json

    return (json.dumps(envelope, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def malformed(source: str, problem: str, key: str = "malformed_attestation") -> RecordError:
    return RecordError(f"{source}: not a usable attestation: {problem}", key=key)


def _b64(text: Any, source: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise malformed(source, f"{what} is not a base64 string")
    try:  # DSSE allows standard or URL-safe base64
        alphabet = text.replace("-", "+").replace("_", "/")
        return base64.b64decode(alphabet + "=" * (-len(alphabet) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise malformed(source, f"{what} is not valid base64") from None


@dataclass(frozen=True)
class EnvelopeSignature:
    keyid: str
    sig: bytes
    recovered: str | None = None  # who made ``sig`` over the PAE; None: nobody (invalid)


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]


def read_envelope(data: bytes, source: str) -> Envelope:
    """A DSSE envelope, read strictly; RecordError (exit 3) naming what is wrong."""
    from mrv_ml.errors import NotJSONError
    from mrv_ml.record.strictjson import parse_json_strict

    try:
        value = parse_json_strict(data, source)
    except NotJSONError as e:
        raise malformed(source, f"the file is not one JSON envelope ({e.key})",
                         key="not_json") from None
    if not isinstance(value, dict):
        raise malformed(source, "the JSON is not an object")
    payload_type = value.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise malformed(source, f"payloadType is {payload_type!r}, not {PAYLOAD_TYPE!r}",
                         key="wrong_payload_type")
    payload = _b64(value.get("payload"), source, "payload")
    sigs = value.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise malformed(source, "it carries no signatures", key="unsigned_attestation")
    out: list[EnvelopeSignature] = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or not isinstance(s.get("keyid"), str) \
                or not ADDRESS.fullmatch(s["keyid"]):
            raise malformed(source, f"signature {i} has no keyid naming its signer's address")
        out.append(EnvelopeSignature(s["keyid"], _b64(s.get("sig"), source,
                                                        f"signature {i}'s sig")))
    return Envelope(payload_type, payload, tuple(out))


def recover(envelope: Envelope) -> Envelope:
    """The envelope with each signature's recovered signer (None where none recovers)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    message = encode_defunct(primitive=pae(envelope.payload_type, envelope.payload))
    out = []
    for s in envelope.signatures:
        try:
            who: str | None = str(Account.recover_message(message, signature=s.sig)) \
                if len(s.sig) == 65 else None
        except Exception:  # eth_keys' BadSignature, ValueError on an invalid v or s
            who = None
        out.append(replace(s, recovered=who))
    return replace(envelope, signatures=tuple(out))
