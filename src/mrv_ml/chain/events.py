"""Scans of the registry's event logs (``MRVRegistered``, ``BatchAnchored``), asked in
block ranges that public providers accept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mrv_ml.chain.connection import ChainConnection, as_hex
from mrv_ml.errors import ChainReadError

LOG_RANGE_BLOCKS = 10_000  # what public providers commonly allow per eth_getLogs
MIN_LOG_RANGE_BLOCKS = 125  # halving a refused range stops here (then the refusal stands)


@dataclass(frozen=True)
class Registration:
    """One ``MRVRegistered`` event."""

    submitter: str
    hash_hex: str
    timestamp: int
    tx_hash: str
    block_number: int


def event_logs(conn: ChainConnection, event: str, filters: dict[str, Any], *,
               address: str | None = None, from_block: int | None = None,
               to_block: int | None = None) -> list[Any]:
    """Logs of ``event`` on the registry (or the one at ``address``) from ``from_block``
    (default: where the registry was deployed, if known) to ``to_block`` (default: the
    latest block), asked in ranges of at most :data:`LOG_RANGE_BLOCKS`; a range the node
    refuses is halved (down to :data:`MIN_LOG_RANGE_BLOCKS`), since providers limit
    ``eth_getLogs`` ranges."""
    first = from_block if from_block is not None else (conn.registry_block or 0)
    if to_block is not None:
        latest = to_block
    else:
        with conn.session() as w3, conn.node_errors():
            latest = int(w3.eth.block_number)
    out: list[Any] = []
    size, block = LOG_RANGE_BLOCKS, first
    def query(low: int, high: int) -> Callable[[Any], Any]:
        return lambda registry: registry.events[event].get_logs(
            argument_filters=filters, from_block=low, to_block=high)

    while block <= latest:
        end = min(block + size - 1, latest)
        try:
            out.extend(conn.call(query(block, end), address=address))
        except ChainReadError:
            if size <= MIN_LOG_RANGE_BLOCKS:
                raise
            size = max((end - block + 1) // 2, MIN_LOG_RANGE_BLOCKS)  # of what was asked
            continue
        block = end + 1
    return out


def registration_events(conn: ChainConnection, mrv_id: str, *, submitter: str | None = None,
                        hash_hex: str | None = None, address: str | None = None,
                        from_block: int | None = None, to_block: int | None = None
                        ) -> list[Registration]:
    """``MRVRegistered`` events for ``mrv_id`` (topic idKey), optionally filtered by submitter
    and hash, oldest first (see :func:`event_logs` for the block range)."""
    from mrv_ml.chain.contract import id_key

    filters: dict[str, Any] = {"idKey": id_key(mrv_id)}
    if submitter:
        filters["submitter"] = submitter
    if hash_hex:
        filters["hash"] = bytes.fromhex(hash_hex.removeprefix("0x"))
    return [Registration(submitter=str(log["args"]["submitter"]),
                         hash_hex=bytes(log["args"]["hash"]).hex(),
                         timestamp=int(log["args"]["timestamp"]),
                         tx_hash=as_hex(log["transactionHash"]),
                         block_number=int(log["blockNumber"]))
            for log in event_logs(conn, "MRVRegistered", filters, address=address,
                                  from_block=from_block, to_block=to_block)]


def blocks_at(conn: ChainConnection, timestamp: int, first: int, latest: int
              ) -> tuple[int, int] | None:
    """The blocks from ``first`` to ``latest`` whose timestamp is ``timestamp`` (several
    blocks may share one second), found by bisection over headers: some 2·log2(blocks)
    header reads, where a log scan from the deployment would ask thousands of ranges on a
    public chain. ``None`` when no block has that timestamp. Block timestamps never
    decrease, so the bisection is sound on any EVM chain."""
    def first_after(bound: int, strictly: bool) -> int:
        low, high = first, latest + 1  # the first block whose timestamp passes ``bound``
        while low < high:
            middle = (low + high) // 2
            at = conn.block_timestamp(middle)
            if at > bound or (not strictly and at == bound):
                high = middle
            else:
                low = middle + 1
        return low

    start, end = first_after(timestamp, strictly=False), first_after(timestamp, strictly=True)
    return (start, end - 1) if start < end else None


def find_registration(conn: ChainConnection, mrv_id: str, *, submitter: str, hash_hex: str,
                      timestamp: int, address: str | None = None, from_block: int = 0
                      ) -> Registration | None:
    """The ``MRVRegistered`` event of one single registration the contract holds (its
    submitter, hash and timestamp, as ``getMRVHash*`` answered): the blocks of that
    timestamp are found by bisection, then only they are asked for logs. ``None`` when no
    such event is there (a node that lies, or prunes logs)."""
    with conn.session() as w3, conn.node_errors():
        latest = int(w3.eth.block_number)
    window = blocks_at(conn, timestamp, from_block, latest)
    if window is None:
        return None
    found = [r for r in registration_events(conn, mrv_id, submitter=submitter,
                                            hash_hex=hash_hex, address=address,
                                            from_block=window[0], to_block=window[1])
             if r.timestamp == timestamp]
    return found[0] if found else None


@dataclass(frozen=True)
class BatchAnchoring:
    """One ``BatchAnchored`` event."""

    root: str  # 0x + 64 hex
    submitter: str
    leaf_count: int
    timestamp: int
    tx_hash: str
    block_number: int


def batch_events(conn: ChainConnection, root: str | None, *, submitter: str | None = None,
                 address: str | None = None, from_block: int | None = None
                 ) -> list[BatchAnchoring]:
    """``BatchAnchored`` events for ``root`` (``None``: every root), optionally by one
    submitter, oldest first."""
    filters: dict[str, Any] = {}
    if root is not None:
        filters["root"] = bytes.fromhex(root.removeprefix("0x"))
    if submitter:
        filters["submitter"] = submitter
    return [BatchAnchoring(root=as_hex(log["args"]["root"]),
                           submitter=str(log["args"]["submitter"]),
                           leaf_count=int(log["args"]["leafCount"]),
                           timestamp=int(log["args"]["timestamp"]),
                           tx_hash=as_hex(log["transactionHash"]),
                           block_number=int(log["blockNumber"]))
            for log in event_logs(conn, "BatchAnchored", filters, address=address,
                                  from_block=from_block)]
