"""What the registry hands back for a submission: a pending receipt until the fingerprint's
batch is anchored, then the complete, self-contained proof.

The complete proof is an ordinary proof sidecar (:class:`mrv_ml.record.proof.Proof`) of a batch
anchor, the same format ``mrv anchor --batch`` writes: chain id, registry address, the
operator as submitter, transaction, block, and the OpenZeppelin Merkle proof from the
fingerprint to the root. Verifying it needs the record, this proof and any node of that
chain, never the registry. The registry's part (its URL, when it received the fingerprint)
rides along under ``registries``, the researcher's signature under ``signature``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from mrv_ml.anchoring.wire import proof_document
from mrv_ml.errors import RegistryConflictError
from mrv_ml.record.merkle import StandardMerkleTree
from mrv_ml.record.proof import Anchor, MerklePart, Proof, RegistryReceipt, Signature
from mrv_ml.registry_service.db import Batch, RegistryDB, Submission


@dataclass(frozen=True)
class ChainFacts:
    """What the service knows of the chain it anchors on, for the proofs it writes."""

    network: str
    chain_id: int
    contract_address: str
    operator: str
    registry_block: int | None
    confirmations: int | None
    explorer_tx_template: str | None = None  # "https://…/tx/{tx}"

    def explorer_url(self, tx_hash: str | None) -> str | None:
        if not tx_hash or not self.explorer_tx_template:
            return None
        return self.explorer_tx_template.format(tx=tx_hash)


def receipt(base_url: str, submission: Submission) -> RegistryReceipt:
    return RegistryReceipt(base_url, submission.received_at.isoformat().replace("+00:00", "Z"))


def signature_of(submission: Submission) -> Signature | None:
    if submission.signer is None or submission.signature is None:
        return None
    from mrv_ml.chain.signing import SIGNATURE_SCHEME

    return Signature(SIGNATURE_SCHEME, submission.signer, submission.signature)


class ProofBuilder:
    """Proof documents for submissions; the Merkle tree of each anchored batch is built
    once and kept (a batch never changes once anchored)."""

    def __init__(self, db: RegistryDB, facts: ChainFacts, base_url: str,
                 cached_trees: int = 32) -> None:
        self.db, self.facts, self.base_url = db, facts, base_url
        self._trees: OrderedDict[int, tuple[StandardMerkleTree, dict[str, int]]] = \
            OrderedDict()
        self._cached_trees = cached_trees
        self._lock = threading.Lock()

    def document(self, submission: Submission) -> dict[str, Any]:
        """``{"status": "pending"|"anchored", "proof": <sidecar>}`` for one submission."""
        return self.document_for(submission, self.db.batch_of(submission.fingerprint))

    def document_for(self, submission: Submission, batch: Batch | None) -> dict[str, Any]:
        """:meth:`document` with the submission's batch already read (``None``: pending),
        as :meth:`RegistryDB.submit` returns it: no second transaction per submission."""
        proof = Proof(mrv_id=submission.mrv_id, record_digest=submission.fingerprint,
                      registries=(receipt(self.base_url, submission),),
                      signature=signature_of(submission))
        if batch is None or batch.status != "anchored":
            proof = replace(proof, pending_reason=f"submitted to the registry at "
                                                  f"{self.base_url}; awaiting its next "
                                                  "anchored batch (mrv anchor --upgrade)")
            return proof_document("pending", proof.to_dict())
        proof = replace(proof, status="anchored",
                        anchor=self._anchor(batch, submission.fingerprint))
        return proof_document("anchored", proof.to_dict())

    def _tree(self, batch: Batch) -> tuple[StandardMerkleTree, dict[str, int]]:
        with self._lock:
            if batch.id in self._trees:
                self._trees.move_to_end(batch.id)
                return self._trees[batch.id]
        leaves = ["0x" + f for f in self.db.batch_leaves(batch.id)]
        tree = StandardMerkleTree.of(leaves)
        if tree.root != batch.root:  # the database and the chain must tell the same story
            raise RegistryConflictError(f"the leaves of batch {batch.id} give root {tree.root}, "
                                        f"not the anchored {batch.root}")
        entry = (tree, {leaf: n for n, leaf in enumerate(leaves)})
        with self._lock:
            self._trees[batch.id] = entry
            while len(self._trees) > self._cached_trees:
                self._trees.popitem(last=False)
        return entry

    def _anchor(self, batch: Batch, fingerprint: str) -> Anchor:
        tree, index_of = self._tree(batch)
        index = index_of["0x" + fingerprint]
        facts = self.facts
        return Anchor(
            mode="batch", network=facts.network, chain_id=batch.chain_id,
            contract_address=batch.registry_address, submitter=batch.submitter,
            tx_hash=batch.tx_hash, block_number=batch.block_number,
            block_hash=batch.block_hash, block_timestamp=batch.block_timestamp,
            registry_block=facts.registry_block, confirmations=facts.confirmations,
            explorer_url=facts.explorer_url(batch.tx_hash),
            merkle=MerklePart(root=batch.root, proof=tuple(tree.get_proof(index)),
                              leaf_index=index, leaf_count=batch.leaf_count))
