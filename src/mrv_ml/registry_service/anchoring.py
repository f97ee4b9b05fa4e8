"""The registry's anchoring: the pending fingerprints of every interval as one Merkle tree,
its root put on chain with one ``anchorBatch`` transaction paid by the operator's key.

Crash safety rests on the database and on the contract. A batch is written (``built``,
its leaves taken) before its transaction is sent, the transaction hash as soon as the
node accepts it (``sent``), the block once mined (``anchored``). On start, and before
every new batch, unfinished batches are finished first: the registry contract is asked
whether the operator anchored that root (``getBatch``): if so, the batch is recorded from
the chain; if its transaction is still pending at the node, it is waited for; if not, it
is sent. The contract refuses a root its submitter already anchored,
so a root is never anchored twice, even by two processes that both believe they lead.

Only the process holding :meth:`RegistryDB.anchoring_leader` anchors; every process
serves reads. :class:`AnchoringLoop` runs :meth:`BatchAnchorer.run_once` every interval
in a thread of the service.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from mrv_ml.anchoring.batch import BatchOnChain, find_on_chain
from mrv_ml.errors import MRVError
from mrv_ml.record.merkle import StandardMerkleTree, to_bytes32
from mrv_ml.registry_service.db import Batch, RegistryDB

log = logging.getLogger("mrv_ml.registry_service")

DEFAULT_MAX_LEAVES = 100_000  # per transaction: a bigger backlog goes out over several


@dataclass
class BatchAnchorer:
    """Anchors the database's pending leaves over one chain connection (with a signer)."""

    db: RegistryDB
    conn: Any  # mrv_ml.chain.connection.ChainConnection
    max_leaves: int = DEFAULT_MAX_LEAVES

    @property
    def operator(self) -> str:
        return str(self.conn.signer_address)

    def run_once(self) -> list[Batch]:
        """If this process leads: finish unfinished batches, then anchor what is pending
        (up to ``max_leaves`` per batch: a bigger backlog goes out in full batches, one
        after the other). What arrives meanwhile waits for the next interval: a steady
        stream of submissions must not become a transaction per block. The batches
        anchored."""
        with self.db.anchoring_leader() as leading:
            if not leading:
                return []
            done = [self.finish(b) for b in self.db.unfinished_batches()]
            while True:
                batch = self.anchor_pending()
                if batch is None:
                    return done
                done.append(batch)
                if batch.leaf_count < self.max_leaves:
                    return done

    def anchor_pending(self) -> Batch | None:
        """One new batch of pending leaves, anchored; ``None`` when nothing is pending."""
        fingerprints = sorted(self.db.pending_fingerprints(self.max_leaves))
        if not fingerprints:
            return None
        tree = StandardMerkleTree.of(["0x" + f for f in fingerprints])
        batch = self.db.create_batch(tree.root, fingerprints, chain_id=self.conn.chain_id,
                                     registry_address=self.conn.registry_address,
                                     submitter=self.operator)
        log.info("batch built", extra={"batch": batch.id, "root": batch.root,
                                       "leaves": batch.leaf_count})
        return self.finish(batch)

    def finish(self, batch: Batch) -> Batch:
        """Record the batch from the chain if its root is anchored there, else send it."""
        if batch.chain_id != self.conn.chain_id or \
                batch.registry_address.lower() != str(self.conn.registry_address).lower() or \
                batch.submitter.lower() != self.operator.lower():
            raise MRVError(f"batch {batch.id} was built for chain {batch.chain_id}, registry "
                           f"{batch.registry_address}, operator {batch.submitter}; this "
                           "service runs another: start it with the configuration that built "
                           "the batch")
        onchain = find_on_chain(self.conn, batch.root, self.operator)
        gas_used = batch.gas_used or 0
        if onchain is None and batch.tx_hash is not None:
            # Sent before a restart and not mined yet: wait for that transaction rather
            # than send a second one, which could only revert (or queue behind it).
            mined_gas = self._wait_for_sent(batch.tx_hash)
            if mined_gas is not None:
                onchain = find_on_chain(self.conn, batch.root, self.operator)
                gas_used = mined_gas
        if onchain is None:
            receipt = self.conn.send(
                self.conn.registry.functions.anchorBatch(to_bytes32(batch.root),
                                                         batch.leaf_count),
                on_sent=lambda tx_hash: self.db.mark_sent(batch.id, tx_hash))
            onchain = BatchOnChain(receipt.tx_hash, receipt.block_number,
                                   receipt.block_timestamp, receipt.block_hash)
            gas_used = receipt.gas_used
        elif not gas_used and onchain.tx_hash is not None:
            # Mined before a crash recorded its receipt: the gas spent is read back, so
            # the gas metric counts every transaction.
            gas_used = self._gas_of(onchain.tx_hash)
        if onchain.block_number is None or onchain.block_hash is None or onchain.tx_hash is None:
            # Anchored (the contract says so) but the node serves no logs for it: where is
            # unknown yet. Leave the batch unfinished; a later run asks again.
            raise MRVError(f"batch {batch.id}'s root is anchored but the node does not tell "
                           "where (no event log): will ask again")
        anchored = self.db.mark_anchored(batch.id, block_number=onchain.block_number,
                                         block_hash=onchain.block_hash,
                                         block_timestamp=onchain.block_timestamp,
                                         gas_used=gas_used, tx_hash=onchain.tx_hash)
        log.info("batch anchored", extra={"batch": batch.id, "root": batch.root,
                                          "tx": onchain.tx_hash, "block": onchain.block_number,
                                          "gas": gas_used, "leaves": batch.leaf_count})
        return anchored

    def _wait_for_sent(self, tx_hash: str) -> int | None:
        """The gas used by ``tx_hash``, a batch transaction sent earlier, once it is mined
        (waited for, as long as a send waits); ``None`` when the node does not know it
        (dropped: the batch is sent again) or it failed."""
        from web3.exceptions import TransactionNotFound

        timeout_s = self.conn.settings.tx_timeout_s
        with self.conn.session() as w3:
            try:
                w3.eth.get_transaction(tx_hash)
            except TransactionNotFound:
                return None
            except Exception as e:
                raise self.conn._translate(e) from e
            log.info("waiting for a batch transaction sent before", extra={"tx": tx_hash})
            try:
                receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s,
                                                              poll_latency=0.1)
            except Exception as e:
                if type(e).__name__ == "TimeExhausted":
                    raise MRVError(f"batch transaction {tx_hash} still not mined after "
                                   f"{timeout_s:g} s: will wait again") from e
                raise self.conn._translate(e) from e
        return int(receipt["gasUsed"]) if receipt["status"] == 1 else None

    def _gas_of(self, tx_hash: str) -> int:
        """The gas ``tx_hash`` used; 0 (unknown) if the node cannot tell: a metric never
        holds a batch back."""
        try:
            with self.conn.session() as w3:
                return int(w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])
        except Exception as e:  # noqa: BLE001 - any failure: the gas stays unknown
            log.warning("gas of an anchored batch unknown", extra={"tx": tx_hash,
                                                                   "error": str(e)[:200]})
            return 0


class AnchoringLoop:
    """``anchorer.run_once()`` every ``interval_s`` seconds in a thread, until stopped.

    A failure (chain down, database down) is logged and tried again next interval: the
    batches wait, the service keeps serving. :meth:`stop` lets a batch being sent finish
    (or, if the process dies first, the next start finishes it)."""

    def __init__(self, anchorer: BatchAnchorer, interval_s: float) -> None:
        self.anchorer = anchorer
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mrv-registry-anchoring",
                                        daemon=True)
        self.last_error: str | None = None
        self.last_run_at: float | None = None

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Anchor now rather than at the end of the interval (tests, shutdown)."""
        self._wake.set()

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.anchorer.run_once()
                self.last_error = None
            except MRVError as e:
                self.last_error = str(e)
                log.warning("anchoring failed; trying again next interval",
                            extra={"error": str(e)})
            except Exception as e:  # noqa: BLE001 - the loop must outlive any one failure
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("anchoring failed unexpectedly")
            self.last_run_at = time.time()
            remaining = self.interval_s - (time.monotonic() - started)
            if remaining > 0:
                self._wake.wait(remaining)
            self._wake.clear()
