"""The smallest complete use of mrv-ml: measure some work, write the MRV record, anchor its
fingerprint, verify it.

    python examples/simple_example.py            # about 3 seconds of work
    python examples/simple_example.py --seconds 0.5 --no-anchor

With no configuration the fingerprint goes to the embedded local chain under
``mrv_data/chain/``; set ``BLOCKCHAIN_RPC_URL`` (and ``PRIVATE_KEY``) for a real node.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from mrv_ml.units import format_co2_kg, format_energy_kwh
from mrv_wrapper import MRVTracker  # the seed's import path; `mrv_ml` works the same


def busy_work(seconds: float) -> float:
    """Stand-in for training: keeps one CPU core busy for ``seconds``."""
    deadline = time.perf_counter() + seconds
    total = 0.0
    i = 0
    while time.perf_counter() < deadline:
        for _ in range(10_000):
            i += 1
            total += math.sin(i) * math.cos(i)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to work (s)")
    parser.add_argument("--no-anchor", action="store_true", help="write the record only")
    parser.add_argument("--mrv-data-dir", type=Path, default=None,
                        help="record store (default: $MRV_DATA_DIR or ./mrv_data)")
    args = parser.parse_args(argv)

    with MRVTracker(
        experiment_name="simple_example",
        model_name="busy-loop",
        dataset_name="none",
        epochs=1,
        framework="Python",
        storage_dir=args.mrv_data_dir,
        blockchain_enabled=not args.no_anchor,
        description="mrv-ml's simple example: a few seconds of CPU work",
    ) as tracker:
        busy_work(args.seconds)

    energy = tracker.record["energy_emissions"]
    kwh, co2 = format_energy_kwh(energy["energy_kwh"]), format_co2_kg(energy["co2_kg"])
    print(f"MRV ID:   {tracker.mrv_id}")
    print(f"record:   {tracker.record_path}")
    print(f"hash:     {tracker.mrv_hash}")
    print(f"energy:   {kwh}, emissions: {co2}")
    if args.no_anchor:
        print("anchor:   skipped (--no-anchor)")
        return 0
    if tracker.tx_hash is None:
        print(f"anchor:   pending ({tracker.anchor_error}); run `mrv anchor` later")
        return 0
    print(f"tx:       {tracker.tx_hash}")
    verdict = tracker.verify_on_blockchain()
    print(f"verdict:  {verdict.status.value}")
    return 0 if verdict else verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
