"""Checking an RFC 3161 timestamp of a proof: offline, with only the token and the roots the
reviewer names. The authority is never contacted.

:func:`check_timestamp` gives one :class:`TimestampCheck` per token, in this order of
questions, each answered by rfc3161-client (and cryptography for X.509):

1. Is it an RFC 3161 answer at all? (no: ``MALFORMED``)
2. Is it a granted, validly signed token whose signing certificate has the critical
   ``timeStamping`` usage and chains to a root the reviewer named? (no roots named, or no
   chain to one: ``UNTRUSTED``, naming the authority; never VALID)
3. Is its message imprint this record's fingerprint (SHA-256 of the RFC 8785 bytes)?
   (no: ``TAMPERED``: an authority the reviewer trusts timestamped other content)
4. Otherwise ``VALID``: the record existed, unchanged, at the time the token states.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mrv_ml.anchoring.timestamp import signing_certificate, stated_time
from mrv_ml.record.proof import Timestamp

SHA256_OID = "2.16.840.1.101.3.4.2.1"


class StampStatus(str, enum.Enum):
    VALID = "VALID"
    TAMPERED = "TAMPERED"
    UNTRUSTED = "UNTRUSTED"
    MALFORMED = "MALFORMED"


@dataclass(frozen=True)
class TimestampCheck:
    status: StampStatus
    tsa_url: str
    detail: str
    tsa_name: str | None = None  # the signing certificate's subject, from the token
    gen_time: str | None = None  # the time the token states (RFC 3339, UTC)
    root: str | None = None  # the first named root it chains to
    roots_sha256: tuple[str, ...] = ()  # every named root it chains to (SHA-256 of the DER)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "rfc3161", "status": self.status.value, "tsa_url": self.tsa_url,
                "tsa_name": self.tsa_name, "gen_time": self.gen_time, "root": self.root,
                "roots_sha256": list(self.roots_sha256), "detail": self.detail}


def check_timestamp(stamp: Timestamp, record_digest: str, roots: Sequence[Any]
                    ) -> TimestampCheck:
    """The one decision on one RFC 3161 token of the record of fingerprint ``record_digest``
    (hex), trusting only ``roots`` (X.509 certificates)."""
    from rfc3161_client import decode_timestamp_response

    from mrv_ml.config import redact_url

    where = redact_url(stamp.tsa_url)
    try:
        response = decode_timestamp_response(stamp.tsr)
        info = response.tst_info
        gen_time = stated_time(response)
        imprint, algorithm = info.message_imprint.message, info.message_imprint.hash_algorithm
    except ValueError as e:
        return TimestampCheck(StampStatus.MALFORMED, stamp.tsa_url,
                              f"the token of {where} is not an RFC 3161 answer ({e})")
    leaf = signing_certificate(response)
    name = str(leaf.subject.rfc4514_string()) if leaf is not None else None
    if not roots:
        return TimestampCheck(StampStatus.UNTRUSTED, stamp.tsa_url,
                              f"a timestamp by {name or where}, but no --tsa-root was named: "
                              "it proves nothing until you name a root you trust",
                              name, gen_time)
    chaining = _chaining_roots(response, imprint, roots)
    if not chaining:
        return TimestampCheck(StampStatus.UNTRUSTED, stamp.tsa_url,
                              f"the timestamp by {name or where} does not chain to a root you "
                              "named (or its signature or timeStamping usage does not hold)",
                              name, gen_time)
    root = str(chaining[0].subject.rfc4514_string())
    under = tuple(root_fingerprint(r) for r in chaining)
    if algorithm.dotted_string != SHA256_OID or imprint != bytes.fromhex(record_digest):
        return TimestampCheck(StampStatus.TAMPERED, stamp.tsa_url,
                              f"{name or where} timestamped other content at {gen_time}, not this "
                              "record's fingerprint", name, gen_time, root, under)
    return TimestampCheck(StampStatus.VALID, stamp.tsa_url,
                          f"timestamped by {name or where} at {gen_time} (chains to {root})",
                          name, gen_time, root, under)


def root_fingerprint(certificate: Any) -> str:
    """A root certificate's SHA-256 (of its DER), hex: how a root is named in results."""
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def _chaining_roots(response: Any, imprint: bytes, roots: Sequence[Any]) -> list[Any]:
    """The named roots under which the token verifies (signature, certificate chain,
    timeStamping usage), checked over the token's own imprint."""
    from rfc3161_client import VerificationError, VerifierBuilder

    out = []
    for root in roots:
        try:
            VerifierBuilder().add_root_certificate(root).build().verify(response, imprint)
        except (VerificationError, ValueError):
            continue
        out.append(root)
    return out

