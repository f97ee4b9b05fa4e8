"""End-to-end anchoring and verification latency through mrv-ml's own API.

    .venv/bin/python benchmarks/chain_latency.py [--records 10] [--no-anvil]

For the embedded chain and for anvil (started here): median and p90 time of
``anchor_record`` (connect, pre-check, estimate, sign, send, receipt, proof written)
and of ``verify`` (record load + hash, connect, view calls), and the gas of each
registration read from its receipt beside the seed's quoted 100,000 (the baseline).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support: AnvilNode and sample records

from mrv_ml.anchoring.single import anchor_record  # noqa: E402
from mrv_ml.chain.connection import connect  # noqa: E402
from mrv_ml.config import Settings  # noqa: E402
from mrv_ml.storage.store import RecordStore  # noqa: E402
from mrv_ml.verification.verdict import VerdictStatus  # noqa: E402
from mrv_ml.verification.verifier import verify  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402

SEED_GAS_PER_REGISTRATION = 100_000


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(name: str, settings: Settings, n: int) -> None:
    store = RecordStore(settings.data_dir)
    ids = []
    for _ in range(n + 1):
        record = make_sample_record()
        store.save(record)
        ids.append(record["mrv_id"])
    anchor_record(store, ids.pop(), settings=settings)  # warm-up: imports, first deploy
    anchor_ms, verify_ms, gas = [], [], []
    for mrv_id in ids:
        t0 = time.perf_counter()
        outcome = anchor_record(store, mrv_id, settings=settings)
        anchor_ms.append((time.perf_counter() - t0) * 1000)
        if not outcome.anchored:
            raise SystemExit(f"{name}: anchoring failed: {outcome.error}")
    for mrv_id in ids:
        t0 = time.perf_counter()
        verdict = verify(store.path_for(mrv_id), settings=settings)
        verify_ms.append((time.perf_counter() - t0) * 1000)
        assert verdict.status is VerdictStatus.VALID
    with connect(settings) as conn, conn.session() as w3:
        for mrv_id in ids:
            tx = store.load_proof(mrv_id).anchor.tx_hash  # type: ignore[union-attr]
            gas.append(int(w3.eth.get_transaction_receipt(tx)["gasUsed"]))
    g = statistics.median(gas)
    print(f"{name:<8} anchor  median {statistics.median(anchor_ms):8.1f} ms  "
          f"p90 {_p(anchor_ms, 0.9):8.1f} ms   (n={n})")
    print(f"{name:<8} verify  median {statistics.median(verify_ms):8.1f} ms  "
          f"p90 {_p(verify_ms, 0.9):8.1f} ms")
    print(f"{name:<8} gas per registerMRV: median {g:,.0f} (min {min(gas):,}, max {max(gas):,})"
          f" = {g / SEED_GAS_PER_REGISTRATION:.2f} x the seed's {SEED_GAS_PER_REGISTRATION:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--no-anvil", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("local", Settings(data_dir=Path(tmp) / "local"), args.records)
        if args.no_anvil:
            return
        from tests.support.anvil import AnvilNode, anvil_executable

        exe = anvil_executable()
        if exe is None:
            print("anvil not installed: skipped")
            return
        with AnvilNode(exe) as node:
            settings = Settings(data_dir=Path(tmp) / "anvil", network="anvil", rpc_url=node.url,
                                contract_address=node.deploy_registry())
            run("anvil", settings, args.records)


if __name__ == "__main__":
    os.environ.setdefault("MRV_NO_DOTENV", "1")
    main()
