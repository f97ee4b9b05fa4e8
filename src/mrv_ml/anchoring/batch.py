"""Batch anchoring: one ``anchorBatch(root, leafCount)`` transaction for many records.

Each record's fingerprint (32-byte SHA-256 over its JCS form) is a leaf of an OpenZeppelin
StandardMerkleTree; the root goes on chain keyed by (submitter, root), and each record's
sidecar gets its Merkle proof. Verification recomputes the leaf from the local record,
checks the proof against the root, and asks the registry whether that submitter anchored
the root: that is :mod:`mrv_ml.verification.verifier`'s job, beside single records.

Crash safety: before the transaction is sent, a journal ``<data_dir>/batches/<root>.json``
(the ordered leaves and the records of each) is written atomically. A rerun of
:func:`anchor_batch` finds unfinished journals, reads ``getBatch(root, submitter)`` and
completes the sidecars from the chain; it sends the transaction only if the root is not
anchored yet, so a batch is never anchored twice (a journal names the chain its
transaction went to as soon as it is sent). A pending record that a killed ``mrv anchor``
already registered alone is completed as such from the chain, never batched as well.

Duplicates: an ID named twice is batched once. Two records with the same fingerprint (the
same canonical content) share one leaf: a leaf proves a fingerprint, so both sidecars
carry the same proof and both verify. The tree itself never holds a value twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.anchoring.single import (
    AnchorOutcome,
    complete_registered,
    failure,
    mark_pending,
    may_be_registered,
    now_utc,
    usable,
)
from mrv_ml.errors import ConfigError, MRVError, RecordError, StoreError
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.merkle import StandardMerkleTree, to_bytes32
from mrv_ml.record.proof import Anchor, MerklePart, Proof
from mrv_ml.storage.journal import (
    JOURNAL_FORMAT,
    JOURNAL_VERSION,
    journal_dir,
    read_journal,
    unfinished_journals,
    write_journal,
)

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.storage.store import RecordStore

LOCK_TIMEOUT_S = 600.0
MAX_LEAVES = 2**32 - 1  # leafCount is a uint32 on chain


# --- anchoring --------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOnChain:
    """A root's anchoring as the chain holds it."""

    tx_hash: str | None
    block_number: int | None
    block_timestamp: int
    block_hash: str | None = None


def find_on_chain(conn: Any, root: str, submitter: str) -> BatchOnChain | None:
    """Whether ``submitter`` anchored ``root`` on the connected registry, and where (the
    registry's own entry decides; its event, when the node serves logs, says where)."""
    from mrv_ml.chain.events import batch_events

    ts, _count = conn.call(lambda r: r.functions.getBatch(to_bytes32(root), submitter).call())
    if int(ts) == 0:
        return None
    try:
        logs = batch_events(conn, root, submitter=submitter)
    except MRVError:
        logs = []  # nodes limiting log ranges: the entry itself is the evidence
    if logs:
        return BatchOnChain(logs[0].tx_hash, logs[0].block_number, int(ts),
                             conn.block_hash(logs[0].block_number))
    return BatchOnChain(None, None, int(ts))


def _proof_for(store: RecordStore, mrv_id: str, digest: str, conn: Any, root: str,
               proof_path: list[str], leaf_index: int, leaf_count: int,
               onchain: BatchOnChain) -> Proof:
    proof = store.load_proof(mrv_id) or Proof.new(mrv_id, digest)
    tx = onchain.tx_hash
    anchor = Anchor(
        mode="batch", network=conn.network.name, chain_id=conn.chain_id,
        contract_address=conn.registry_address, submitter=conn.signer_address,
        tx_hash=tx, block_number=onchain.block_number, block_hash=onchain.block_hash,
        block_timestamp=onchain.block_timestamp, registry_block=conn.registry_block,
        confirmations=conn.network.confirmations,
        explorer_url=conn.explorer_tx_url(tx) if tx else None,
        merkle=MerklePart(root=root, proof=tuple(proof_path), leaf_index=leaf_index,
                          leaf_count=leaf_count))
    return proof.anchored(anchor, digest)


def _complete(store: RecordStore, path: Path, journal: dict[str, Any], conn: Any
              ) -> list[AnchorOutcome]:
    """Send the journal's batch unless the chain already holds it, then write the proofs."""
    root = str(journal["root"])
    leaves = [str(v) for v in journal["leaves"]]
    tree = StandardMerkleTree.of(leaves)
    if tree.root != root:
        raise StoreError(f"batch journal {path} is corrupt (its leaves give root {tree.root}); "
                         "move it away to continue")
    submitter = conn.signer_address
    onchain = find_on_chain(conn, root, submitter)
    if onchain is None:
        def remember(tx_hash: str) -> None:
            # with the chain it went to: a rerun completes it there (see _matches)
            journal.update(status="sent", tx_hash=tx_hash, sent_at=now_utc(),
                           chain_id=conn.chain_id, contract_address=conn.registry_address,
                           submitter=submitter)
            write_journal(path, journal)

        receipt = conn.send(conn.registry.functions.anchorBatch(to_bytes32(root), len(leaves)),
                            on_sent=remember)
        onchain = BatchOnChain(receipt.tx_hash, receipt.block_number, receipt.block_timestamp,
                                receipt.block_hash)
    journal.update(status="mined", tx_hash=onchain.tx_hash, block_number=onchain.block_number,
                   block_timestamp=onchain.block_timestamp, chain_id=conn.chain_id,
                   contract_address=conn.registry_address, submitter=submitter,
                   network=conn.network.name)
    write_journal(path, journal)
    index_of = {leaf: n for n, leaf in enumerate(leaves)}
    outcomes = []
    for mrv_id, digest in journal["records"].items():
        n = index_of["0x" + digest]
        proof = _proof_for(store, mrv_id, digest, conn, root, tree.get_proof(n), n,
                           len(leaves), onchain)
        store.save_proof(proof)
        outcomes.append(AnchorOutcome(mrv_id, "anchored", onchain.tx_hash, proof))
    journal.update(status="complete", completed_at=now_utc())
    write_journal(path, journal)
    return outcomes


def _pending_outcomes(store: RecordStore, mrv_ids: Iterable[str], e: BaseException
                      ) -> list[AnchorOutcome]:
    reason, code = failure(e)
    return [AnchorOutcome(i, "pending", None, mark_pending(store, i, f"batch: {reason}"),
                          reason, code) for i in mrv_ids]


def _registered_alone(store: RecordStore, digests: dict[str, str], conn: Any
                      ) -> list[AnchorOutcome]:
    """Take out of ``digests`` the records this key already registered alone (a run killed
    after sending the registration, before writing the proof, left them pending): their
    proofs are completed from the chain, since batching them too would anchor them twice.
    A record whose registration cannot be read, or holds another hash, stays pending. Only
    records whose sidecar says a registration may have been sent are looked up: a batch of
    10,000 fresh records costs no read at all."""
    outcomes: list[AnchorOutcome] = []
    suspects = [i for i in digests if may_be_registered(store.load_proof(i))]
    if not suspects:
        return outcomes
    with conn.session():  # the embedded chain: one lock for all the reads
        for mrv_id in suspects:
            digest = digests[mrv_id]
            try:
                done = complete_registered(store, mrv_id, digest, conn)
            except (RecordError, StoreError):
                raise
            except Exception as e:
                done = _pending_outcomes(store, [mrv_id], e)[0]
            if done is not None:
                outcomes.append(done)
                del digests[mrv_id]
    return outcomes


def _matches(journal: Mapping[str, Any], conn: Any) -> bool:
    # A journal sent on another network/contract/key is that chain's business.
    if not journal.get("tx_hash"):
        return True
    if journal.get("chain_id") is None:
        # Sent by a version whose journal did not yet name its chain: the transaction, if
        # this chain has it, says so (a signed transaction's hash is its chain's alone).
        return conn.transaction_block(str(journal["tx_hash"])) is not None
    return (journal.get("chain_id") == conn.chain_id
            and str(journal.get("contract_address", "")).lower() == conn.registry_address.lower()
            and str(journal.get("submitter", "")).lower() == str(conn.signer_address).lower())


def _new_journal(store: RecordStore, digests: Mapping[str, str]) -> tuple[Path, dict[str, Any]]:
    leaves = sorted({"0x" + d for d in digests.values()})  # distinct fingerprints, stable order
    if len(leaves) > MAX_LEAVES:
        raise RecordError(f"a batch holds at most {MAX_LEAVES} records")
    tree = StandardMerkleTree.of(leaves)
    journal: dict[str, Any] = {
        "format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "root": tree.root,
        "leaf_count": len(leaves), "leaves": leaves, "records": dict(digests),
        "status": "prepared", "created_at": now_utc(), "tx_hash": None,
    }
    path = journal_dir(store) / f"{tree.root}.json"
    existing = read_journal(path) if path.exists() else None
    if existing is not None:
        # Same root = same leaves: a rerun of the same batch; keep what it already knows.
        existing["records"] = {**existing.get("records", {}), **dict(digests)}
        journal = existing
    write_journal(path, journal)
    return path, journal


def anchor_batch(store: RecordStore, mrv_ids: Sequence[str] | None = None, *,
                 settings: Settings, connection: Any = None) -> list[AnchorOutcome]:
    """Anchor the pending records (or those named) with one ``anchorBatch`` transaction.

    Unfinished batches from an interrupted run are completed first (from the chain if
    their transaction landed, otherwise by sending it). Returns one outcome per record
    (empty list: nothing to anchor). Raises only RecordError/StoreError for unusable
    records or IDs; chain and config failures leave the records pending with the reason.
    """
    import filelock

    named = mrv_ids is not None
    ids = list(dict.fromkeys(mrv_ids if mrv_ids is not None else store.pending_ids()))
    if not ids and not unfinished_journals(store):
        return []  # nothing to do: no lock file, no chain
    lock_path = journal_dir(store) / ".lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        # One batch run per store at a time: two runs would build the same root and
        # the second transaction would revert as already anchored.
        with filelock.FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S):
            return _anchor_batch(store, ids, named, settings, connection)
    except filelock.Timeout:
        raise StoreError(f"another batch anchoring run holds {lock_path} "
                         f"(waited {LOCK_TIMEOUT_S:.0f} s)") from None
    except OSError as e:
        raise StoreError(f"cannot lock {lock_path}: {e.strerror or e}") from e


def _anchor_batch(store: RecordStore, ids: list[str], named: bool, settings: Settings,
                  connection: Any) -> list[AnchorOutcome]:
    from mrv_ml.chain.connection import connect

    ids, unusable = usable(store, ids)  # a wrong ID raises here, before the chain
    digests: dict[str, str] = {}
    for mrv_id in ids:
        digest = compute_hash(store.load(mrv_id))
        proof = store.load_proof(mrv_id)
        if not named and proof and proof.status == "anchored":
            continue
        digests[mrv_id] = digest
    journals = unfinished_journals(store)
    if not digests and not journals:
        return unusable
    try:
        conn = connection if connection is not None else connect(settings, need_signer=True)
    except (RecordError, StoreError, ConfigError):
        raise  # not the records' fault: one error, no sidecar touched
    except Exception as e:
        return unusable + _pending_outcomes(store, digests, e)
    outcomes: list[AnchorOutcome] = list(unusable)
    try:
        for path, journal in journals:
            if not _matches(journal, conn):
                continue
            for mrv_id in journal.get("records", {}):
                digests.pop(mrv_id, None)  # finished below from the journal, not re-batched
            try:
                outcomes.extend(_complete(store, path, journal, conn))
            except (RecordError, StoreError):
                raise
            except Exception as e:
                outcomes.extend(_pending_outcomes(store, journal.get("records", {}), e))
        if named:
            # An explicitly named record already anchored with this very content stays as is.
            for mrv_id in list(digests):
                proof = store.load_proof(mrv_id)
                if proof and proof.anchor and proof.record_digest == digests[mrv_id]:
                    outcomes.append(AnchorOutcome(mrv_id, "anchored", proof.anchor.tx_hash,
                                                  proof))
                    del digests[mrv_id]
        if digests:
            outcomes.extend(_registered_alone(store, digests, conn))
        if digests:
            path, journal = _new_journal(store, digests)
            try:
                outcomes.extend(_complete(store, path, journal, conn))
            except (RecordError, StoreError):
                raise
            except Exception as e:
                outcomes.extend(_pending_outcomes(store, digests, e))
    finally:
        if connection is None:
            conn.close()
    return outcomes
