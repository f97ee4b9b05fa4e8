"""What does MRVTracker add around and during a training run, next to bare CodeCarbon?

Measured in one run, each start/stop figure in a fresh process (CodeCarbon caches its
hardware detection per process, and a user's training script is a fresh process):

- bare CodeCarbon ``OfflineEmissionsTracker``: time inside ``start()`` (before training can
  begin) and inside ``stop()``;
- ``MRVTracker`` (no chain, and on the embedded local chain): time from ``__enter__`` to the
  first line of user code, and from the last line to ``__exit__`` returning (this includes
  writing the record, and anchoring when enabled);
- steady-state slowdown of a CPU-bound loop under MRVTracker vs bare, interleaved rounds.

    .venv/bin/python benchmarks/tracker_overhead.py [--repeats 3] [--work-s 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

_BARE = textwrap.dedent("""
    import json, time
    from codecarbon import OfflineEmissionsTracker
    t = OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False,
                                log_level="critical", allow_multiple_runs=True)
    a = time.perf_counter(); t.start(); b = time.perf_counter()
    end = b + {work_s}
    while time.perf_counter() < end: sum(range(1000))
    c = time.perf_counter(); t.stop(); d = time.perf_counter()
    print(json.dumps({{"before_s": b - a, "after_s": d - c}}))
""")

_TRACKED = textwrap.dedent("""
    import json, time
    from mrv_ml import MRVTracker
    tracker = MRVTracker("overhead", blockchain_enabled={chain}, quiet=True)
    a = time.perf_counter()
    with tracker:
        b = time.perf_counter()
        end = b + {work_s}
        while time.perf_counter() < end: sum(range(1000))
        c = time.perf_counter()
    d = time.perf_counter()
    gap = tracker.record["energy_emissions"]["intervals"][0]["end_offset_s"]
    print(json.dumps({{"before_s": b - a, "after_s": d - c, "tx": tracker.tx_hash,
                      "gap_s": gap}}))
""")


def _fresh(code: str, data_dir: str) -> dict[str, Any]:
    env = dict(os.environ, MRV_DATA_DIR=data_dir, MRV_QUIET="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _loop(iterations: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return time.perf_counter() - start


def steady_state(rounds: int, iterations: int, data_dir: str) -> tuple[float, float]:
    from mrv_ml import MRVTracker

    bare, tracked = [], []
    # Warm CodeCarbon's detection once so the tracked rounds measure steady state only.
    with MRVTracker("warm-up", blockchain_enabled=False, quiet=True, storage_dir=data_dir):
        time.sleep(2.0)
    for index in range(rounds):
        order = (False, True) if index % 2 == 0 else (True, False)
        for under_tracker in order:
            if under_tracker:
                with MRVTracker("steady", blockchain_enabled=False, quiet=True,
                                storage_dir=data_dir):
                    time.sleep(2.0)  # let CodeCarbon's start-up thread finish first
                    tracked.append(_loop(iterations))
            else:
                time.sleep(2.0)  # the same pause as the tracked side: only the tracker differs
                bare.append(_loop(iterations))
    return statistics.median(bare), statistics.median(tracked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-s", type=float, default=4.0,
                        help="seconds of simulated training per start/stop run")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=8_000_000)
    parser.add_argument("--no-chain", action="store_true", help="skip the local-chain variant")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir:
        rows: dict[str, list[dict[str, Any]]] = {"bare CodeCarbon": [], "MRVTracker (no chain)": [],
                                                   "MRVTracker + local chain": []}
        for _ in range(args.repeats):
            rows["bare CodeCarbon"].append(_fresh(_BARE.format(work_s=args.work_s), data_dir))
            rows["MRVTracker (no chain)"].append(
                _fresh(_TRACKED.format(work_s=args.work_s, chain=False), data_dir))
            if not args.no_chain:
                rows["MRVTracker + local chain"].append(
                    _fresh(_TRACKED.format(work_s=args.work_s, chain=True), data_dir))

        print(f"start/stop latency, fresh process each, median of {args.repeats}:")
        print(f"{'':28} {'before user code':>18} {'after user code':>17}")
        medians = {}
        for name, samples in rows.items():
            if not samples:
                continue
            before = statistics.median(s["before_s"] for s in samples)
            after = statistics.median(s["after_s"] for s in samples)
            medians[name] = (before, after)
            note = ""
            if name.endswith("local chain") and not any(s.get("tx") for s in samples):
                note = "  (NOT anchored: no tx; figure excludes the chain)"
            print(f"{name:28} {before:16.3f} s {after:15.3f} s{note}")
        cc_before, cc_after = medians["bare CodeCarbon"]
        for name in ("MRVTracker (no chain)", "MRVTracker + local chain"):
            if name not in medians:
                continue
            before, after = medians[name]
            print(f"ratio {name} / bare CodeCarbon: before {before / cc_before:.3f}x, "
                  f"after {after / cc_after:.2f}x")
        print("targets: before <= 0.300 s, after <= 0.500 s")
        gaps = [s["gap_s"] for s in rows["MRVTracker (no chain)"]]
        print(f"CodeCarbon ready (end of the extrapolated interval) under a CPU-bound "
              f"Python loop: median {statistics.median(gaps):.2f} s after start")

        bare, tracked = steady_state(args.rounds, args.iterations, data_dir)
        print(f"\nsteady state, CPU-bound loop of {args.iterations:,} iterations, "
              f"median of {args.rounds} interleaved rounds:")
        print(f"bare {bare:.3f} s, under MRVTracker {tracked:.3f} s, "
              f"slowdown {100 * (tracked / bare - 1):+.2f}% (target < 1%)")


if __name__ == "__main__":
    main()
