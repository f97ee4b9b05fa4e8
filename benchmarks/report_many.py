#!/usr/bin/env python3
"""How long does `mrv report` take over many records, per format?

Creates N valid schema-1.1 records (default 1,000), each with a full power series of 300
intervals, in a temporary store (every other one with an anchored proof), then times, in
the same run, the median of ``--repeat`` runs of:

- ``select``: resolving the store, reading and fingerprinting every record, its proof;
- each format of :func:`mrv_ml.reporting.many_records.render` over the selection (text, latex, csv, json,
  html), with the size of what it writes.

Usage:  python benchmarks/report_many.py [--count 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.support.records

from mrv_ml.record.hashing import compute_hash  # noqa: E402
from mrv_ml.record.proof import Proof  # noqa: E402
from mrv_ml.reporting import many_records as paper  # noqa: E402
from mrv_ml.reporting.runs import Run  # noqa: E402
from mrv_ml.storage.selection import select  # noqa: E402
from mrv_ml.storage.store import RecordStore  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402

POINTS = 300


def _record(i: int) -> dict[str, Any]:
    series = {"source": "CodeCarbon periodic measurements (every 2 s)",
              "start_offset_s": [2.0 * k for k in range(POINTS)], "duration_s": [2.0] * POINTS,
              "cpu_power_w": [30.0 + k % 9 for k in range(POINTS)],
              "gpu_power_w": [250.0 + (k * 7) % 40 for k in range(POINTS)],
              "ram_power_w": [6.5] * POINTS, "measured": [k > 0 for k in range(POINTS)],
              "points_measured": POINTS, "downsampled": False}
    return make_sample_record(experiment__name=f"sweep-{i % 10}",
                              energy_emissions__duration_seconds=2.0 * POINTS,
                              energy_emissions__power_series=series)


def _proof(record: dict[str, Any]) -> Proof:
    return Proof.from_dict({
        "proof_version": "1.0", "mrv_id": record["mrv_id"],
        "record_hash": {"algorithm": "sha256-jcs", "digest": compute_hash(record)},
        "status": "anchored",
        "anchor": {"mode": "single", "network": "sepolia", "chain_id": 11155111,
                   "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20,
                   "tx_hash": "0x" + "ab" * 32, "block_number": 3}})


def _median(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore(tmp)
        for i in range(args.count):
            record = _record(i)
            store.save(record)
            if i % 2 == 0:
                store.save_proof(_proof(record))
        seconds, chosen = _median(lambda: select([], store), args.repeat)
        print(f"{args.count} records, {POINTS} power intervals each")
        print(f"select: {seconds * 1000:8.1f} ms")
        runs = [Run(s) for s in chosen]
        for fmt in paper.FORMATS:
            seconds, text = _median(lambda fmt=fmt: paper.render(runs, fmt), args.repeat)
            print(f"{fmt:>6}: {seconds * 1000:8.1f} ms  {len(text.encode()) / 1e6:7.2f} MB")


if __name__ == "__main__":
    main()
