"""The batch journal (``<data_dir>/batches/<root>.json``): written before a batch's
transaction is sent, so that a run killed at any point is completed from the chain and a
batch is never anchored twice. Every anchoring path honours it (see :mod:`mrv_ml.anchoring.batch`,
which writes and completes journals, and :mod:`mrv_ml.anchoring.single`, which never anchors alone a
record that an unfinished batch holds)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.storage import atomicfile

if TYPE_CHECKING:
    from mrv_ml.storage.store import RecordStore

JOURNAL_DIR = "batches"
JOURNAL_FORMAT = "mrv-ml batch journal"
JOURNAL_VERSION = 1


def journal_dir(store: RecordStore) -> Path:
    return store.root / JOURNAL_DIR


def write_journal(path: Path, journal: Mapping[str, Any]) -> None:
    atomicfile.write_json(path, journal, what="the batch journal")


def read_journal(path: Path) -> dict[str, Any] | None:
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
        data = read_journal(path)
        if data is not None and data.get("status") != "complete":
            out.append((path, data))
    return out




def in_unfinished_batch(store: RecordStore) -> dict[str, Path]:
    """Record ID -> the journal of the unfinished batch that holds it."""
    return {mrv_id: path for path, journal in unfinished_journals(store)
            for mrv_id in journal.get("records", {})}
