"""A researcher's signature over a record's fingerprint: who vouches for the record, beside
who anchored it.

The chain says which address anchored a fingerprint (for a registry service, the
operator's). A researcher may also sign the fingerprint with their own key (EIP-191,
``personal_sign``, so a wallet shows what is signed), and verifiers pin that signer as
Sigstore pins a certificate identity. The message names the record ID and the fingerprint,
so a signature can be moved to no other record::

    mrv-ml record
    ID: MRV-<uuid>
    sha256-jcs: <fingerprint hex>
"""

from __future__ import annotations

import re
from typing import Protocol

from mrv_ml.errors import RecordError
from mrv_ml.record.hashing import HASH_ALGORITHM

SIGNATURE_SCHEME = "eip191-mrv-v1"
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")


def signing_message(mrv_id: str, fingerprint: str) -> str:
    """The text a researcher signs for record ``mrv_id`` of fingerprint ``fingerprint``."""
    return f"mrv-ml record\nID: {mrv_id}\n{HASH_ALGORITHM}: {fingerprint.lower()}"


class TextSigner(Protocol):
    """What signs: a :class:`mrv_ml.chain.keys.Signer` (EIP-191 personal_sign)."""

    def sign_text(self, text: str) -> str: ...


def sign(signer: TextSigner, mrv_id: str, fingerprint: str) -> str:
    """The signature (0x + 130 hex) of ``signer`` over the record's signing message."""
    return signer.sign_text(signing_message(mrv_id, fingerprint))


def recover_signer(mrv_id: str, fingerprint: str, signature: str) -> str:
    """The checksummed address that made ``signature`` over this record's message.
    RecordError when the signature is not one (malformed, or no key recovers from it)."""
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise RecordError("the signature is not 65 bytes of hex (0x + 130 hex digits)",
                          key="bad_signature")
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        return str(Account.recover_message(encode_defunct(text=signing_message(mrv_id,
                                                                               fingerprint)),
                                           signature=signature))
    except Exception:  # eth_keys' BadSignature, ValueError on an invalid v or s
        raise RecordError("the signature recovers no address: it is not a valid signature",
                          key="bad_signature") from None
