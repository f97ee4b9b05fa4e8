"""The DSSE envelope of an attestation: its pre-authentication encoding (PAE), signing it,
reading an envelope strictly and checking who made each signature. What the payload says
is :mod:`~mrv_ml.verification.intoto`'s.

Two signature schemes, told apart by the ``keyid``:

- a standard key (Ed25519, ECDSA P-256/P-384, :mod:`~mrv_ml.verification.keys`): the
  signature is securesystemslib's over the PAE, the ``keyid`` the one every in-toto tool
  computes for the key. Only a public key the reviewer names can check it: a signature no
  named key checks is *unchecked*, never taken on trust.
- an Ethereum key (EIP-191 ``personal_sign`` over the PAE): the ``keyid`` is the
  checksummed address, and anyone recovers the signer from the signature alone.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import RecordError
from mrv_ml.record.hashing import canonical_bytes

if TYPE_CHECKING:
    from mrv_ml.chain.keys import Signer
    from mrv_ml.verification.keys import PublicKey, SigningKey

__all__ = ["ADDRESS", "PAYLOAD_TYPE", "SIGNATURE_SCHEME", "Envelope", "EnvelopeSignature",
           "SignatureCheck", "check_signatures", "envelope_bytes", "malformed", "pae",
           "read_envelope", "sign_envelope", "sign_envelope_with_key"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: The envelope signature scheme (docs/predicate-mrv-v1.md, "Signature").
SIGNATURE_SCHEME = "eip191-dsse-v1"

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
#: A keyid is a hint (DSSE): cosign leaves it empty, securesystemslib writes 64 hex digits.
MAX_KEYID = 256
MAX_SIGNATURES = 16


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


def sign_envelope_with_key(statement: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The DSSE envelope of ``statement`` (RFC 8785 bytes as the payload), signed by
    securesystemslib with a standard key; its ``keyid`` is the key's securesystemslib ID."""
    from securesystemslib.dsse import Envelope as SslibEnvelope

    envelope = SslibEnvelope(payload=canonical_bytes(statement), payload_type=PAYLOAD_TYPE,
                             signatures={})
    envelope.sign(key.signer)
    return dict(envelope.to_dict())


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


class SignatureCheck(str, enum.Enum):
    VERIFIED = "verified"  # its signer is ``EnvelopeSignature.signer``
    INVALID = "invalid"  # not its keyid's signature over this envelope
    UNCHECKED = "unchecked"  # a standard key's, and no key named checks it


@dataclass(frozen=True)
class EnvelopeSignature:
    keyid: str
    sig: bytes
    check: SignatureCheck | None = None  # None: not checked yet (check_signatures)
    # Who made ``sig``: the checksummed address it recovers to (EIP-191, even when that is
    # not its keyid), or the identity of the named key that verifies it.
    signer: str | None = None
    signer_keyid: str | None = None  # the named key that verifies it (a standard key's)

    @property
    def eip191(self) -> bool:
        return ADDRESS.fullmatch(self.keyid) is not None


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
    if len(sigs) > MAX_SIGNATURES:
        raise malformed(source, f"it carries {len(sigs)} signatures; at most {MAX_SIGNATURES} "
                                "are read")
    out: list[EnvelopeSignature] = []
    for i, s in enumerate(sigs):
        keyid = s.get("keyid", "") if isinstance(s, dict) else None
        if not isinstance(keyid, str) or len(keyid) > MAX_KEYID \
                or not keyid.isprintable():
            raise malformed(source, f"signature {i}'s keyid is not a short printable string")
        out.append(EnvelopeSignature(keyid, _b64(s.get("sig"), source,
                                                 f"signature {i}'s sig")))
    return Envelope(payload_type, payload, tuple(out))


def _recovered(message: Any, sig: bytes) -> str | None:
    from eth_account import Account

    try:
        return str(Account.recover_message(message, signature=sig)) if len(sig) == 65 else None
    except Exception:  # eth_keys' BadSignature, ValueError on an invalid v or s
        return None


def _check_one(s: EnvelopeSignature, data: bytes, message: Any,
               keys: Sequence[PublicKey]) -> EnvelopeSignature:
    if s.eip191:
        who = _recovered(message, s.sig)
        ok = who is not None and who.lower() == s.keyid.lower()
        return replace(s, check=SignatureCheck.VERIFIED if ok else SignatureCheck.INVALID,
                       signer=who)
    # The key the keyid names first; then every named key, as cosign leaves keyids empty.
    named = [k for k in keys if k.keyid == s.keyid]
    if named and not named[0].verifies(s.sig, data):
        return replace(s, check=SignatureCheck.INVALID)
    by = next((k for k in named + list(keys) if k.verifies(s.sig, data)), None)
    return replace(s, check=SignatureCheck.VERIFIED if by else SignatureCheck.UNCHECKED,
                   signer=by.identity if by else None, signer_keyid=by.keyid if by else None)


def check_signatures(envelope: Envelope, keys: Sequence[PublicKey] = ()) -> Envelope:
    """The envelope with each signature checked: an EIP-191 one by recovering its signer,
    a standard key's with the public ``keys`` the reviewer named."""
    from eth_account.messages import encode_defunct

    data = pae(envelope.payload_type, envelope.payload)
    message = encode_defunct(primitive=data)
    return replace(envelope, signatures=tuple(_check_one(s, data, message, keys)
                                              for s in envelope.signatures))
