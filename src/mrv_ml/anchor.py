"""Anchoring: put a stored record's fingerprint on chain and keep the proof sidecar.

The record is already safely stored; nothing here changes it. Any failure — node down,
revert, timeout, node dying between send and receipt, and broken chain configuration
(ConfigError) — leaves the record *pending* with the reason and the attempt appended to
its sidecar; :func:`anchor_record` returns that as an :class:`AnchorOutcome` instead of
raising. Only an unusable store or record raises (there is nothing to anchor then).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal

from mrv_ml.config import Settings
from mrv_ml.errors import EXIT_TRANSACTION, MRVError, RecordError, StoreError
from mrv_ml.hashing import compute_hash, hash_to_bytes32
from mrv_ml.proof import Anchor, Proof
from mrv_ml.store import RecordStore


@dataclass
class AnchorOutcome:
    mrv_id: str
    status: Literal["anchored", "pending"]
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


def _register(store: RecordStore, mrv_id: str, digest: str, conn: Any) -> AnchorOutcome:
    from mrv_ml.chain import registration_events
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

    def remember(tx_hash: str) -> None:
        mark_pending(store, mrv_id, "sent, awaiting receipt", sent_tx=tx_hash)

    receipt = conn.send(conn.registry.functions.registerMRV(mrv_id, hash_to_bytes32(digest)),
                        on_sent=remember)
    proof = _anchored_proof(store, mrv_id, digest, conn, tx_hash=receipt.tx_hash,
                            block_number=receipt.block_number,
                            block_timestamp=receipt.block_timestamp,
                            block_hash=receipt.block_hash)
    return AnchorOutcome(mrv_id, "anchored", receipt.tx_hash, proof)


def _pending(store: RecordStore, mrv_id: str, e: BaseException) -> AnchorOutcome:
    if isinstance(e, MRVError):
        reason, code = str(e), e.exit_code
    else:  # a library bug or an unforeseen node answer: still never lose the record
        reason, code = f"{type(e).__name__}: {e}", EXIT_TRANSACTION
    proof = mark_pending(store, mrv_id, reason)
    return AnchorOutcome(mrv_id, "pending", None, proof, reason, code)


def anchor_record(store: RecordStore, mrv_id: str, *, settings: Settings,
                  connection: Any = None) -> AnchorOutcome:
    """Anchor the stored record ``mrv_id`` (idempotent). Raises only RecordError/StoreError
    when the record itself cannot be read; chain and config failures come back pending."""
    digest = compute_hash(store.load(mrv_id))
    proof = store.load_proof(mrv_id)
    if proof and proof.anchor and proof.record_digest == digest:
        return AnchorOutcome(mrv_id, "anchored", proof.anchor.tx_hash, proof)
    from mrv_ml.chain import connect

    try:
        if connection is not None:
            return _register(store, mrv_id, digest, connection)
        with connect(settings, need_signer=True) as conn:
            return _register(store, mrv_id, digest, conn)
    except (RecordError, StoreError):
        raise
    except Exception as e:
        return _pending(store, mrv_id, e)


def anchor_pending(store: RecordStore, *, settings: Settings,
                   mrv_ids: Iterable[str] | None = None) -> list[AnchorOutcome]:
    """Anchor the given records (default: every pending one) over one connection."""
    from mrv_ml.chain import connect

    ids = list(mrv_ids) if mrv_ids is not None else store.pending_ids()
    if not ids:
        return []
    for mrv_id in ids:
        store.load(mrv_id)  # a wrong ID is bad input: fail before touching the chain
    try:
        conn = connect(settings, need_signer=True)
    except Exception as e:
        return [_pending(store, mrv_id, e) for mrv_id in ids]
    with conn:
        return [anchor_record(store, mrv_id, settings=settings, connection=conn)
                for mrv_id in ids]
