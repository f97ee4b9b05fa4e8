"""Batch anchoring: one ``anchorBatch(root, leafCount)`` transaction for many records.

Each record's fingerprint (32-byte SHA-256 over its JCS form) is a leaf of an OpenZeppelin
StandardMerkleTree; the root goes on chain keyed by (submitter, root), and each record's
sidecar gets its Merkle proof. Verification recomputes the leaf from the local record,
checks the proof against the root, and asks the registry whether that submitter anchored
the root (and whether the contract's own ``verifyBatchProof`` agrees).

Crash safety: before the transaction is sent, a journal ``<data_dir>/batches/<root>.json``
(the ordered leaves and the records of each) is written atomically. A rerun of
:func:`anchor_batch` finds unfinished journals, reads ``getBatch(root, submitter)`` and
completes the sidecars from the chain; it sends the transaction only if the root is not
anchored yet, so a batch is never anchored twice.

Duplicates: an ID named twice is batched once. Two records with the same fingerprint (the
same canonical content) share one leaf: a leaf proves a fingerprint, so both sidecars
carry the same proof and both verify. The tree itself never holds a value twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.anchor import HASH_ALGORITHM, PROOF_VERSION, AnchorOutcome
from mrv_ml.errors import EXIT_TRANSACTION, MRVError, RecordError, StoreError
from mrv_ml.hashing import compute_hash
from mrv_ml.merkle import (
    LEAF_ENCODING,
    PROOF_FORMAT,
    StandardMerkleTree,
    to_bytes32,
    verify_proof,
)
from mrv_ml.verify import Verdict, VerdictStatus

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.store import RecordStore

JOURNAL_DIR = "batches"
JOURNAL_FORMAT = "mrv-ml batch journal"
JOURNAL_VERSION = 1
LOCK_TIMEOUT_S = 600.0
MAX_LEAVES = 2**32 - 1  # leafCount is a uint32 on chain
_ZERO_ADDRESS = "0x" + "0" * 40


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


# --- journal ----------------------------------------------------------------------------


def journal_dir(store: RecordStore) -> Path:
    return store.root / JOURNAL_DIR


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise StoreError(f"cannot write the batch journal {path}: {e.strerror or e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_journal(path: Path) -> dict[str, Any] | None:
    # A torn, foreign or hand-edited file is skipped, not trusted. Nothing is lost by that:
    # the root depends only on the set of fingerprints, so re-batching the same records
    # finds the same root on chain and completes from it instead of anchoring again.
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
        return None
    leaves, records = data.get("leaves"), data.get("records")
    if not isinstance(data.get("root"), str) or not isinstance(leaves, list) or not leaves \
            or not all(isinstance(v, str) for v in leaves) or not isinstance(records, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) and "0x" + v in leaves
                       for k, v in records.items()):
        return None
    return data


def unfinished_journals(store: RecordStore) -> list[tuple[Path, dict[str, Any]]]:
    """Journals of batches whose proofs were not all written yet, oldest first."""
    folder = journal_dir(store)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("0x*.json"), key=lambda p: p.stat().st_mtime):
        data = _read_journal(path)
        if data is not None and data.get("status") != "complete":
            out.append((path, data))
    return out


# --- anchoring --------------------------------------------------------------------------


@dataclass(frozen=True)
class _BatchOnChain:
    tx_hash: str | None
    block_number: int | None
    block_timestamp: int


def _batch_events(conn: Any, root: str, submitter: str | None) -> list[Any]:
    filters: dict[str, Any] = {"root": to_bytes32(root)}
    if submitter:
        filters["submitter"] = submitter

    def query(registry: Any) -> list[Any]:
        return list(registry.events.BatchAnchored.get_logs(argument_filters=filters,
                                                           from_block=0, to_block="latest"))

    return list(conn.call(query))


def _find_on_chain(conn: Any, root: str, submitter: str) -> _BatchOnChain | None:
    ts, _count = conn.call(lambda r: r.functions.getBatch(to_bytes32(root), submitter).call())
    if int(ts) == 0:
        return None
    try:
        logs = _batch_events(conn, root, submitter)
    except MRVError:
        logs = []  # nodes limiting log ranges: the entry itself is the evidence
    if logs:
        return _BatchOnChain(_hex(logs[0]["transactionHash"]), int(logs[0]["blockNumber"]),
                             int(ts))
    return _BatchOnChain(None, None, int(ts))


def _proof_for(store: RecordStore, mrv_id: str, digest: str, conn: Any, root: str,
               proof_path: list[str], leaf_index: int, leaf_count: int,
               onchain: _BatchOnChain) -> dict[str, Any]:
    proof = store.load_proof(mrv_id) or {}
    proof.update({"proof_version": PROOF_VERSION, "mrv_id": mrv_id,
                  "record_hash": {"algorithm": HASH_ALGORITHM, "digest": digest},
                  "status": "anchored"})
    proof.setdefault("attempts", [])
    proof.pop("pending_reason", None)
    tx = onchain.tx_hash
    proof["anchor"] = {
        "mode": "batch", "network": conn.network.name, "chain_id": conn.chain_id,
        "contract_address": conn.registry_address, "submitter": conn.signer_address,
        "tx_hash": tx, "block_number": onchain.block_number,
        "block_timestamp": onchain.block_timestamp,
        "confirmations": conn.network.confirmations,
        "explorer_url": conn.explorer_tx_url(tx) if tx else None,
        "merkle": {"format": PROOF_FORMAT, "leaf_encoding": list(LEAF_ENCODING), "root": root,
                   "proof": proof_path, "leaf_index": leaf_index, "leaf_count": leaf_count},
    }
    return proof


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
    onchain = _find_on_chain(conn, root, submitter)
    if onchain is None:
        def remember(tx_hash: str) -> None:
            journal.update(status="sent", tx_hash=tx_hash, sent_at=_now())
            _write_json_atomic(path, journal)

        receipt = conn.send(conn.registry.functions.anchorBatch(to_bytes32(root), len(leaves)),
                            on_sent=remember)
        onchain = _BatchOnChain(receipt.tx_hash, receipt.block_number, receipt.block_timestamp)
    journal.update(status="mined", tx_hash=onchain.tx_hash, block_number=onchain.block_number,
                   block_timestamp=onchain.block_timestamp, chain_id=conn.chain_id,
                   contract_address=conn.registry_address, submitter=submitter,
                   network=conn.network.name)
    _write_json_atomic(path, journal)
    index_of = {leaf: n for n, leaf in enumerate(leaves)}
    outcomes = []
    for mrv_id, digest in journal["records"].items():
        n = index_of["0x" + digest]
        proof = _proof_for(store, mrv_id, digest, conn, root, tree.get_proof(n), n,
                           len(leaves), onchain)
        store.save_proof(mrv_id, proof)
        outcomes.append(AnchorOutcome(mrv_id, "anchored", onchain.tx_hash, proof))
    journal.update(status="complete", completed_at=_now())
    _write_json_atomic(path, journal)
    return outcomes


def _pending_outcomes(store: RecordStore, mrv_ids: Iterable[str], e: BaseException
                      ) -> list[AnchorOutcome]:
    from mrv_ml.anchor import mark_pending

    if isinstance(e, MRVError):
        reason, code = str(e), e.exit_code
    else:  # a library bug or an unforeseen node answer: the records stay safe and pending
        reason, code = f"{type(e).__name__}: {e}", EXIT_TRANSACTION
    return [AnchorOutcome(i, "pending", None, mark_pending(store, i, f"batch: {reason}"),
                          reason, code) for i in mrv_ids]


def _matches(journal: Mapping[str, Any], conn: Any) -> bool:
    # A journal sent on another network/contract/key is that chain's business.
    if not journal.get("tx_hash"):
        return True
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
        "status": "prepared", "created_at": _now(), "tx_hash": None,
    }
    path = journal_dir(store) / f"{tree.root}.json"
    existing = _read_journal(path) if path.exists() else None
    if existing is not None:
        # Same root = same leaves: a rerun of the same batch; keep what it already knows.
        existing["records"] = {**existing.get("records", {}), **dict(digests)}
        journal = existing
    _write_json_atomic(path, journal)
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
    from mrv_ml.chain import connect

    digests: dict[str, str] = {}
    for mrv_id in ids:
        digest = compute_hash(store.load(mrv_id))  # a wrong ID is bad input: before the chain
        proof = store.load_proof(mrv_id)
        if not named and proof and proof.get("status") == "anchored":
            continue
        digests[mrv_id] = digest
    journals = unfinished_journals(store)
    if not digests and not journals:
        return []
    try:
        conn = connection if connection is not None else connect(settings, need_signer=True)
    except (RecordError, StoreError):
        raise
    except Exception as e:
        return _pending_outcomes(store, digests, e)
    outcomes: list[AnchorOutcome] = []
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
                proof = store.load_proof(mrv_id) or {}
                if proof.get("status") == "anchored" and \
                        proof.get("record_hash", {}).get("digest") == digests[mrv_id]:
                    outcomes.append(AnchorOutcome(mrv_id, "anchored",
                                                  (proof.get("anchor") or {}).get("tx_hash"),
                                                  proof))
                    del digests[mrv_id]
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


# --- verification -----------------------------------------------------------------------


class _BatchCache:
    """(root, submitter) -> (timestamp, leafCount); tx per root; other anchorers per root."""

    def __init__(self) -> None:
        self.batches: dict[tuple[str, str], tuple[int, int]] = {}
        self.events: dict[tuple[str, str], tuple[str | None, int | None]] = {}
        self.checked: set[tuple[str, str]] = set()
        self.memo: dict[bytes, bytes] = {}  # node hashes shared by proofs of the same trees


def _merkle_fields(proof: Mapping[str, Any], mrv_id: str) -> tuple[str, list[str], str]:
    anchor = proof.get("anchor") if isinstance(proof, Mapping) else None
    merkle = anchor.get("merkle") if isinstance(anchor, Mapping) else None
    if not isinstance(merkle, Mapping):
        raise RecordError(f"the proof of {mrv_id} has no anchor.merkle section")
    if merkle.get("format", PROOF_FORMAT) != PROOF_FORMAT or \
            list(merkle.get("leaf_encoding", LEAF_ENCODING)) != list(LEAF_ENCODING):
        raise RecordError(f"the proof of {mrv_id} uses an unsupported Merkle format "
                          f"{str(merkle.get('format'))[:40]!r}")
    root, path = merkle.get("root"), merkle.get("proof")
    if not isinstance(root, str) or not isinstance(path, list) or \
            not all(isinstance(p, str) for p in path):
        raise RecordError(f"the proof of {mrv_id} has a malformed merkle root or proof")
    try:
        root = _hex(to_bytes32(root))
        path = [_hex(to_bytes32(p)) for p in path]
    except MRVError as e:
        raise RecordError(f"the proof of {mrv_id} is malformed: {e}") from None
    assert isinstance(anchor, Mapping)
    return root, path, str(anchor.get("submitter") or "")


def verify_batched(record_hash: str, mrv_id: str, proof: Mapping[str, Any], conn: Any, *,
                   expected_submitter: str | None = None,
                   summary: Mapping[str, Any] | None = None,
                   cross_check: bool = True, _cache: _BatchCache | None = None) -> Verdict:
    """Verdict for a batch-anchored record from its LOCAL hash and its proof sidecar.

    NOT_FOUND: the submitter never anchored the proof's root (and nobody else did);
    SUBMITTER_MISMATCH: only another address anchored it; TAMPERED: the proof does not link
    this hash to the anchored root (record changed, a sibling changed, another record's
    proof) or the contract's ``verifyBatchProof`` disagrees; VALID otherwise. RecordError for
    a malformed sidecar; ChainUnavailableError when the chain cannot be read.
    """
    from mrv_ml.verify import _checked_address

    cache = _cache or _BatchCache()
    root, path, proof_submitter = _merkle_fields(proof, mrv_id)
    submitter = expected_submitter or proof_submitter
    if not submitter or submitter == _ZERO_ADDRESS:
        raise RecordError(f"the proof of {mrv_id} names no submitter; pass one to verify against")
    submitter = _checked_address(submitter, "submitter")
    local_hex = record_hash.removeprefix("0x")
    anchor = proof.get("anchor") or {}
    summary = summary or {}
    local_ok = verify_proof(root, local_hex, path, cache.memo)
    details: list[str] = []

    def verdict(status: VerdictStatus, ts: int | None, who: str | None,
                tx: str | None = None, block: int | None = None) -> Verdict:
        return Verdict(status=status, mrv_id=mrv_id, local_hash=local_hex,
                       onchain_hash=root.removeprefix("0x") if ts else None, timestamp=ts,
                       submitter=who, expected_submitter=submitter, tx_hash=tx,
                       block_number=block, chain_id=conn.chain_id,
                       contract_address=conn.registry_address, network=conn.network.name,
                       mode="batch", co2_kg=summary.get("co2_kg"),
                       energy_kwh=summary.get("energy_kwh"),
                       explorer_url=conn.explorer_tx_url(tx) if tx else None,
                       detail="; ".join(details))

    key = (root, submitter.lower())
    if key not in cache.batches:
        ts, count = conn.call(lambda r: r.functions.getBatch(to_bytes32(root), submitter).call())
        cache.batches[key] = (int(ts), int(count))
    ts, count = cache.batches[key]
    if ts == 0:
        others = [e for e in _cached_events(conn, cache, root, None)
                  if str(e["args"]["submitter"]).lower() != submitter.lower()]
        if others and local_ok:
            who = str(others[0]["args"]["submitter"])
            details.append(f"root {root} was anchored only by {who}, not by {submitter}")
            return verdict(VerdictStatus.SUBMITTER_MISMATCH, int(others[0]["args"]["timestamp"]),
                           who, _hex(others[0]["transactionHash"]),
                           int(others[0]["blockNumber"]))
        details.append(f"{submitter} never anchored batch root {root} on {conn.network.name}")
        return verdict(VerdictStatus.NOT_FOUND, None, None)
    onchain_ok: bool | None = None
    if cross_check or key not in cache.checked:
        onchain_ok = bool(conn.call(lambda r: r.functions.verifyBatchProof(
            to_bytes32(root), submitter, to_bytes32(local_hex),
            [to_bytes32(p) for p in path]).call()))
        if onchain_ok and local_ok:
            cache.checked.add(key)
    if anchor.get("tx_hash") and str(anchor.get("submitter", "")).lower() == submitter.lower() \
            and anchor.get("chain_id") in (None, conn.chain_id):
        tx, block = anchor.get("tx_hash"), anchor.get("block_number")
    else:
        found = _cached_events(conn, cache, root, submitter)
        tx = _hex(found[0]["transactionHash"]) if found else None
        block = int(found[0]["blockNumber"]) if found else None
    if not local_ok or onchain_ok is False:
        if local_ok != (onchain_ok is not False):
            details.append("the registry's verifyBatchProof disagrees with the local check")
        details.append(f"the Merkle proof does not link this record's hash to root {root} "
                       "(record changed, or the proof belongs to another record)")
        return verdict(VerdictStatus.TAMPERED, ts, submitter, tx, block)
    leaf_count = (anchor.get("merkle") or {}).get("leaf_count")
    if isinstance(leaf_count, int) and leaf_count != count:
        details.append(f"the proof says {leaf_count} leaves, the chain says {count}")
    return verdict(VerdictStatus.VALID, ts, submitter, tx, block)


def _cached_events(conn: Any, cache: _BatchCache, root: str, submitter: str | None
                   ) -> list[Any]:
    key = (root, (submitter or "").lower())
    if key not in cache.events:
        try:
            cache.events[key] = _batch_events(conn, root, submitter)  # type: ignore[assignment]
        except MRVError as e:
            from mrv_ml.errors import ChainUnavailableError

            if isinstance(e, ChainUnavailableError):
                raise
            cache.events[key] = []  # type: ignore[assignment]
    return cache.events[key]  # type: ignore[return-value]


def _record_files(paths: Iterable[str | Path]) -> list[Path]:
    from mrv_ml.store import PROOF_SUFFIX

    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(sorted(f for f in path.glob("*.json")
                                if not f.name.endswith(PROOF_SUFFIX)
                                and not f.name.startswith(".")))
        elif path.exists():
            files.append(path)
        else:
            raise RecordError(f"no such file or directory: {path}")
    return files


def verify_many(paths: Iterable[str | Path], *, settings: Settings,
                expected_submitter: str | None = None, connection: Any = None,
                cross_check_all: bool = False) -> list[Verdict]:
    """Verify every record file under ``paths`` (files or directories) over one connection.

    Batch-anchored records read each distinct (root, submitter) once from the chain; the
    registry's ``verifyBatchProof`` is asked once per root (every record with
    ``cross_check_all``), the other proofs are checked locally against that on-chain root.
    Single-anchored records go through :func:`mrv_ml.verify.verify`. A record without any
    proof sidecar is verified as single (the registry may still hold it).
    """
    from mrv_ml.chain import connect
    from mrv_ml.record import load_record_file, summarize
    from mrv_ml.store import PROOF_SUFFIX, read_proof_file
    from mrv_ml.verify import verify

    files = _record_files(paths)
    if not files:
        return []
    loaded = []
    for f in files:
        data = load_record_file(f)
        stem = f.name[:-5] if f.name.endswith(".json") else f.name
        loaded.append((f, data, read_proof_file(f.with_name(stem + PROOF_SUFFIX))))
    if not settings.contract_address and not settings.rpc_url:
        for _f, _d, proof in loaded:
            anchor = (proof or {}).get("anchor") or {}
            if anchor.get("contract_address") and \
                    str(anchor.get("network", "")).lower() == settings.network.lower():
                settings = settings.replace(contract_address=anchor["contract_address"])
                break
    conn = connection if connection is not None else connect(settings)
    cache = _BatchCache()
    verdicts = []
    try:
        for f, data, proof in loaded:
            anchor = (proof or {}).get("anchor") or {}
            if isinstance(anchor, Mapping) and anchor.get("mode") == "batch":
                assert proof is not None
                verdicts.append(verify_batched(
                    compute_hash(data), str(data["mrv_id"]), proof, conn,
                    expected_submitter=expected_submitter, summary=summarize(data),
                    cross_check=cross_check_all, _cache=cache))
            else:
                verdicts.append(verify(f, proof=proof, expected_submitter=expected_submitter,
                                       settings=settings, connection=conn))
    finally:
        if connection is None:
            conn.close()
    return verdicts
