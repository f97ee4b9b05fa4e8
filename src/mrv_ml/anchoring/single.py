"""Anchoring: put a stored record's fingerprint on chain and keep the proof sidecar.

The record is already safely stored; nothing here changes it. Any failure — node down,
revert, timeout, node dying between send and receipt, and broken chain configuration
(ConfigError) — leaves the record *pending* with the reason and the attempt appended to
its sidecar; :func:`anchor_record` returns that as an :class:`AnchorOutcome` instead of
raising. Only an unusable store or record raises (there is nothing to anchor then).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal

from mrv_ml.config import Settings, redact_text
from mrv_ml.errors import (
    EXIT_TRANSACTION,
    ConfigError,
    MRVError,
    RecordError,
    RecordNotFoundError,
    StoreError,
)
from mrv_ml.record.hashing import compute_hash, hash_to_bytes32
from mrv_ml.record.proof import Anchor, Proof
from mrv_ml.storage.journal import in_unfinished_batch
from mrv_ml.storage.store import RecordStore


@dataclass
class AnchorOutcome:
    mrv_id: str
    status: Literal["anchored", "pending", "unusable"]  # unusable: the stored record is bad
    tx_hash: str | None = None
    proof: Proof | None = None
    error: str | None = None
    error_exit_code: int | None = None

    @property
    def anchored(self) -> bool:
        return self.status == "anchored"


def now_utc() -> str:
    """Now, as the sidecars and journals write it (RFC 3339, seconds, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _current_proof(store: RecordStore, mrv_id: str, digest: str) -> Proof:
    return store.load_proof(mrv_id) or Proof.new(mrv_id, digest)


def mark_pending(store: RecordStore, mrv_id: str, reason: str, *,
                 sent_tx: str | None = None) -> Proof:
    """Record that ``mrv_id`` is not anchored yet and why; returns the sidecar written.
    An already anchored sidecar is returned unchanged."""
    digest = compute_hash(store.load(mrv_id))
    proof = _current_proof(store, mrv_id, digest)
    if proof.status == "anchored":
        return proof
    reason = redact_text(reason)  # sidecars are shared: never an endpoint's credentials
    proof = replace(proof.pending(reason, at=now_utc(), sent_tx=sent_tx), record_digest=digest)
    store.save_proof(proof)
    return proof


def _anchored_proof(store: RecordStore, mrv_id: str, digest: str, conn: Any, *,
                    tx_hash: str | None, block_number: int | None,
                    block_timestamp: int | None, block_hash: str | None) -> Proof:
    anchor = Anchor(
        mode="single", network=conn.network.name, chain_id=conn.chain_id,
        contract_address=conn.registry_address, submitter=conn.signer_address,
        tx_hash=tx_hash, block_number=block_number, block_hash=block_hash,
        block_timestamp=block_timestamp, registry_block=conn.registry_block,
        confirmations=conn.network.confirmations,
        explorer_url=conn.explorer_tx_url(tx_hash) if tx_hash else None)
    proof = _current_proof(store, mrv_id, digest).anchored(anchor, digest)
    store.save_proof(proof)
    return proof


def complete_registered(store: RecordStore, mrv_id: str, digest: str, conn: Any
                        ) -> AnchorOutcome | None:
    """If this key already registered ``mrv_id`` on the connected registry (sent by a run
    killed before it wrote the proof), write the proof from the chain and return it, never
    sending again; ``None`` if it is not registered. Registered with another hash:
    TransactionFailedError. Every anchoring path asks this before sending a record."""
    from mrv_ml.chain.events import registration_events
    from mrv_ml.errors import TransactionFailedError

    submitter = conn.signer_address
    onchain, _ts = conn.call(lambda r: r.functions.getMRVHashBy(mrv_id, submitter).call())
    onchain_hex = bytes(onchain).hex()
    if onchain_hex == digest:
        # Sent earlier (e.g. crash before the receipt): complete from the chain, never resend.
        try:
            events = registration_events(conn, mrv_id, submitter=submitter, hash_hex=digest)
        except MRVError:
            events = []  # some nodes refuse whole-chain log queries; the entry itself suffices
        ev = events[0] if events else None
        proof = _anchored_proof(store, mrv_id, digest, conn,
                                tx_hash=ev.tx_hash if ev else None,
                                block_number=ev.block_number if ev else None,
                                block_timestamp=ev.timestamp if ev else int(_ts),
                                block_hash=conn.block_hash(ev.block_number) if ev else None)
        return AnchorOutcome(mrv_id, "anchored", ev.tx_hash if ev else None, proof)
    if any(onchain):
        raise TransactionFailedError(
            f"{submitter} already registered {mrv_id} with another hash (0x{onchain_hex[:16]}...);"
            " the stored record differs from what was anchored")
    return None


# Written into the sidecar before a single registration is sent: a run killed between the
# node taking the transaction and the proof being written leaves this mark, and only records
# so marked need the chain asked before they are batched (see may_be_registered).
SENDING = "sending its registration"


def may_be_registered(proof: Proof | None) -> bool:
    """Whether a single registration of this record may have been sent by a run that died
    before writing the proof (the chain must then be asked before anchoring it otherwise)."""
    return proof is not None and any(a.tx_hash or a.error == SENDING for a in proof.attempts)


def _register(store: RecordStore, mrv_id: str, digest: str, conn: Any) -> AnchorOutcome:
    done = complete_registered(store, mrv_id, digest, conn)
    if done is not None:
        return done

    def remember(tx_hash: str) -> None:
        mark_pending(store, mrv_id, "sent, awaiting receipt", sent_tx=tx_hash)

    mark_pending(store, mrv_id, SENDING)

    receipt = conn.send(conn.registry.functions.registerMRV(mrv_id, hash_to_bytes32(digest)),
                        on_sent=remember)
    proof = _anchored_proof(store, mrv_id, digest, conn, tx_hash=receipt.tx_hash,
                            block_number=receipt.block_number,
                            block_timestamp=receipt.block_timestamp,
                            block_hash=receipt.block_hash)
    return AnchorOutcome(mrv_id, "anchored", receipt.tx_hash, proof)


def failure(e: BaseException) -> tuple[str, int]:
    """(reason, exit code) of an anchoring failure; the reason is redacted (it is printed
    and written into the shared sidecar)."""
    if isinstance(e, MRVError):
        return redact_text(str(e)), e.exit_code
    # a library bug or an unforeseen node answer: still never lose the record
    return redact_text(f"{type(e).__name__}: {e}"), EXIT_TRANSACTION


def _pending(store: RecordStore, mrv_id: str, e: BaseException) -> AnchorOutcome:
    reason, code = failure(e)
    proof = mark_pending(store, mrv_id, reason)
    return AnchorOutcome(mrv_id, "pending", None, proof, reason, code)


def anchor_record(store: RecordStore, mrv_id: str, *, settings: Settings,
                  connection: Any = None) -> AnchorOutcome:
    """Anchor the stored record ``mrv_id`` (idempotent on the chain it is anchored on; a
    record anchored only on the embedded chain is anchored again when the connection is to
    another chain, the local anchor kept in the proof's history). Raises only
    RecordError/StoreError when the record itself cannot be read; chain and config failures
    come back pending."""
    digest = compute_hash(store.load(mrv_id))
    proof = store.load_proof(mrv_id)
    from mrv_ml.chain.connection import connect

    try:
        if connection is not None:
            return _anchor_on(store, mrv_id, digest, proof, connection)
        if proof and proof.anchor and proof.record_digest == digest and \
                not (_local_only(proof) and settings.network_chosen):
            return AnchorOutcome(mrv_id, "anchored", proof.anchor.tx_hash, proof)
        with connect(settings, need_signer=True) as conn:
            return _anchor_on(store, mrv_id, digest, proof, conn)
    except (RecordError, StoreError):
        raise
    except Exception as e:
        return _pending(store, mrv_id, e)


def _local_only(proof: Proof | None) -> bool:
    return proof is not None and proof.anchor is not None and proof.anchor.local_only


def _anchor_on(store: RecordStore, mrv_id: str, digest: str, proof: Proof | None,
               conn: Any) -> AnchorOutcome:
    anchored_here = proof is not None and proof.anchor is not None and \
        proof.record_digest == digest and \
        not (_local_only(proof) and conn._local is None)
    if anchored_here:
        assert proof is not None and proof.anchor is not None
        return AnchorOutcome(mrv_id, "anchored", proof.anchor.tx_hash, proof)
    return _register(store, mrv_id, digest, conn)


#: A registration this recent is re-checked by ``mrv anchor``: a reorganisation deeper than
#: this is beyond what the chains mrv-ml knows finalise within.
REORG_WINDOW_BLOCKS = 128


def _dropped_by_reorg(conn: Any, proof: Proof) -> bool:
    """Whether the block that held this proof's anchoring transaction is no longer on the
    chain: a reorganisation on a node, or, for the embedded chain, a lost or recreated
    ``chain/`` (checked at any depth). The proof no longer holds."""
    a = proof.anchor
    if a is None or a.block_hash is None or a.block_number is None or \
            a.chain_id != conn.chain_id or _local_only(proof) != (conn._local is not None):
        return False
    if conn._local is None:
        latest, _finalized = conn.head()
        if latest - a.block_number >= REORG_WINDOW_BLOCKS:
            return False
    held = conn.block_hash(a.block_number)
    return held is None or held.lower() != a.block_hash.lower()


def _anchored_proofs(store: RecordStore) -> Iterable[Proof]:
    for summary in store.list():
        if summary.anchor_state == "anchored":
            proof = store.load_proof(summary.mrv_id)
            if proof is not None and proof.anchor is not None:
                yield proof


def _reorg_candidates(store: RecordStore) -> bool:
    """Whether any anchor could have been dropped (its block hash known to the proof):
    only then is a chain asked when nothing is pending."""
    return any(p.anchor is not None and p.anchor.block_hash is not None
               for p in _anchored_proofs(store))


def _reorganised(store: RecordStore, conn: Any) -> list[str]:
    """Anchors on this chain whose block is gone (a node's reorganisation, a lost embedded
    chain): back to pending (the lost anchor kept in the history), so that this run anchors
    them again. Sidecars are read one at a time, never all held."""
    def checkable() -> Iterator[Proof]:
        return (p for p in _anchored_proofs(store) if p.anchor is not None and
                p.anchor.block_hash is not None and p.anchor.block_number is not None)

    if conn._local is not None:
        # The embedded chain is lost or replaced whole, never in part: if its newest anchor
        # still holds, they all do (one look instead of one per record).
        newest = max(checkable(), key=lambda p: p.anchor.block_number or 0,  # type: ignore[union-attr]
                     default=None)
        if newest is None or not _dropped_by_reorg(conn, newest):
            return []
    lost = "the local chain was lost" if conn._local is not None else "reorg"
    dropped = []
    with conn.session():  # one lock for the embedded chain, however many look-ups
        for proof in checkable():
            if not _dropped_by_reorg(conn, proof):
                continue
            assert proof.anchor is not None
            reason = (f"{lost}: block {proof.anchor.block_number} no longer holds "
                      f"{proof.anchor.tx_hash} on chain {conn.chain_id}")
            store.save_proof(replace(proof.pending(reason, at=now_utc()),
                                     record_digest=compute_hash(store.load(proof.mrv_id))))
            dropped.append(proof.mrv_id)
    return dropped


def usable(store: RecordStore, ids: Iterable[str]) -> tuple[list[str], list[AnchorOutcome]]:
    """(IDs whose stored record can be anchored, an outcome for each that cannot): one bad
    record never holds back the others. An ID with no record at all is the caller's error
    and raises, before any chain is touched."""
    good: list[str] = []
    bad: list[AnchorOutcome] = []
    for mrv_id in ids:
        try:
            store.load(mrv_id)
        except RecordNotFoundError:
            raise
        except RecordError as e:
            bad.append(AnchorOutcome(mrv_id, "unusable", None, None, str(e), e.exit_code))
            continue
        good.append(mrv_id)
    return good, bad


def anchor_pending(store: RecordStore, *, settings: Settings,
                   mrv_ids: Iterable[str] | None = None) -> list[AnchorOutcome]:
    """Anchor the given records (default: every pending one, records whose recent anchor a
    reorganisation dropped, and, when the network is another than the embedded chain and
    was chosen, the records anchored only on the embedded chain) over one connection."""
    from mrv_ml.chain.connection import connect

    ids, unusable = usable(store, list(mrv_ids) if mrv_ids is not None else store.pending_ids())
    # A record an unfinished batch holds may already be anchored in it: anchoring it alone
    # too would anchor it twice. Only the batch path completes it.
    in_batch = in_unfinished_batch(store)
    unusable += [AnchorOutcome(i, "pending", None, store.load_proof(i),
                               f"part of an unfinished batch ({in_batch[i].name}): "
                               "`mrv anchor --batch` completes it", EXIT_TRANSACTION)
                 for i in ids if i in in_batch]
    ids = [i for i in ids if i not in in_batch]
    if mrv_ids is None and settings.network_chosen:
        ids += [s.mrv_id for s in store.list() if s.anchor_state == "anchored"
                and s.mrv_id not in ids and _local_only(store.load_proof(s.mrv_id))]
    if not ids and (mrv_ids is not None or not _reorg_candidates(store)):
        return unusable  # nothing to do: no chain is touched
    try:
        conn = connect(settings, need_signer=True)
    except ConfigError:
        raise  # the settings are wrong, not the records: one error, no sidecar touched
    except Exception as e:
        return unusable + [_pending(store, mrv_id, e) for mrv_id in ids]
    with conn:
        if conn._local is not None:  # the embedded chain re-anchors nothing
            ids = [i for i in ids if not _local_only(store.load_proof(i))]
        if mrv_ids is None:
            ids += [i for i in _reorganised(store, conn) if i not in ids]
        return unusable + [anchor_record(store, mrv_id, settings=settings, connection=conn)
                           for mrv_id in ids]
