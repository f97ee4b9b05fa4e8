"""What an anchored record is worth, and to whom: public, private network, or local only.

Decided from where it was anchored (chain kind) and by whom (a well-known development key
lowers it). The verdict, the store's listing, reports and the explorer all ask here, so a
trust level is stated one way everywhere.
"""

from __future__ import annotations

import enum

from mrv_ml.networks import PUBLIC_CHAIN_IDS, is_dev_address
from mrv_ml.record.proof import Proof


class Trust(str, enum.Enum):
    """What a verdict proves, and to whom."""

    PUBLIC = "public"
    PRIVATE = "private network"
    LOCAL = "local only"
    TIMESTAMP = "timestamp authority"  # an RFC 3161 token under a root the reviewer named


TRUST_NOTES = {
    Trust.PUBLIC: "chain {chain_id} is public: anyone can check this with any node of it",
    Trust.PRIVATE: "chain {chain_id} is a private or development network: this is evidence "
                   "only for those who trust that node",
    Trust.LOCAL: "anchored on this machine's own embedded chain: it shows the record has not "
                 "changed since it was anchored here, and is no evidence for anyone else",
    Trust.TIMESTAMP: "an RFC 3161 timestamp by {tsa}, under the root you named ({root}): the "
                     "record existed, unchanged, at {time}; evidence for whoever trusts that "
                     "root",
}
DEV_KEY_NOTE = "; the submitter is a well-known development key, which anyone can use"


def proof_trust(proof: Proof | None) -> Trust | None:
    """What an anchored proof is worth to a reader, before any verification: ``None`` when
    not anchored (``mrv list``, the store's listing, reports and the explorer use it)."""
    if proof is None or proof.anchor is None:
        return None
    a = proof.anchor
    if a.local_only:
        return Trust.LOCAL
    return trust_of("public" if a.chain_id in PUBLIC_CHAIN_IDS else "dev",
                    is_dev_address(a.submitter))


def trust_of(chain_kind: str | None, submitter_is_dev_key: bool) -> Trust:
    """The trust level of a verdict on a chain of this kind ("embedded": this machine's own
    chain; "public": a public preset chain; anything else: a private network), lowered to
    private when a well-known development key anchored it."""
    if chain_kind == "embedded":
        return Trust.LOCAL
    if chain_kind == "public" and not submitter_is_dev_key:
        return Trust.PUBLIC
    return Trust.PRIVATE
