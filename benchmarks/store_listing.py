#!/usr/bin/env python3
"""How fast is `RecordStore.list()` on a large store?

Creates N valid records (default 10,000; every third one with a proof sidecar) in a
temporary directory, then times, in the same run:

- baseline: list the directory and ``json.loads`` every record file (the naive way);
- cold ``list()``: no ``.index.json`` (first listing, or after the cache was deleted);
- warm ``list()``: cache present, nothing changed (the usual ``mrv list``);
- warm ``list()`` after one record was added and one proof changed.

Prints the median of each and the ratios against the baseline. The page cache is warmed
first, so all figures are CPU cost, not disk latency.

Usage:  python benchmarks/store_listing.py [--count 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.support.records

from mrv_ml.record.schema import dump_record_bytes  # noqa: E402
from mrv_ml.record.strictjson import dump_json_bytes  # noqa: E402
from mrv_ml.storage.store import INDEX_FILE, RecordStore  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402


def populate(root: Path, count: int) -> None:
    # Written directly (no per-file fsync) so that setting up 10,000 files is quick;
    # the files are byte-identical to what RecordStore.save writes.
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        record = make_sample_record(
            experiment__name=f"run-{i:05d}",
            timestamps__start_time=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T"
                                   f"{i % 24:02d}:{i % 60:02d}:00.000000Z",
            energy_emissions__co2_kg=i * 1e-6,
        )
        (root / f"{record['mrv_id']}.json").write_bytes(dump_record_bytes(record))
        if i % 3 == 0:
            proof = {"proof_version": "1.0", "mrv_id": record["mrv_id"], "status": "anchored",
                     "anchor": {"mode": "batch", "network": "local", "chain_id": 1337}}
            (root / f"{record['mrv_id']}.proof.json").write_bytes(dump_json_bytes(proof))


def baseline(root: Path) -> int:
    """The naive listing: parse every record file."""
    records = []
    for name in os.listdir(root):
        if name.startswith("MRV-") and name.endswith(".json") and not name.endswith(".proof.json"):
            with open(root / name, "rb") as handle:
                records.append(json.loads(handle.read()))
    return len(records)


def timed(fn: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None
          ) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mrv-bench-") as tmp:
        root = Path(tmp) / "mrv_data"
        start = time.perf_counter()
        populate(root, args.count)
        print(f"created {args.count} records in {time.perf_counter() - start:.1f} s ({root})")
        store = RecordStore(root)
        index = root / INDEX_FILE

        baseline(root)  # warm the page cache for everyone
        t_base, n_base = timed(lambda: baseline(root), args.repeat)
        t_cold, listed = timed(store.list, max(1, args.repeat // 2),
                               before=lambda: index.unlink(missing_ok=True))
        assert n_base == len(listed) == args.count, (n_base, len(listed))
        store.list()
        t_warm, listed = timed(store.list, args.repeat)
        assert len(listed) == args.count

        def change() -> None:
            store.save(make_sample_record())  # a real, fsynced save
            victim = listed[len(listed) // 2]
            store.save_proof(victim.mrv_id, {"mrv_id": victim.mrv_id, "status": "pending",
                                             "n": time.perf_counter_ns()})

        t_changed, _ = timed(store.list, args.repeat, before=change)
        index_kib = index.stat().st_size / 1024

    print(f"{'':34}{'median':>10}{'vs baseline':>14}")
    rows = [("baseline: json.loads every file", t_base),
            ("cold list() (no cache)", t_cold),
            ("warm list() (cache, no change)", t_warm),
            ("warm list() after 1 add + 1 proof", t_changed)]
    for label, seconds in rows:
        print(f"{label:34}{seconds * 1000:8.0f} ms{t_base / seconds:12.1f}x")
    print(f"index file: {index_kib:.0f} KiB for {args.count} records; "
          f"warm listing is {t_cold / t_warm:.1f}x faster than cold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
