"""Batch anchoring: gas per record and verification throughput.

    .venv/bin/python benchmarks/batch_anchoring.py [--records 1000] [--baseline 100] [--no-anvil]

Prints, on the embedded chain and on anvil (started here):
- gas of one anchorBatch transaction for batches of 1, 10, 100, 1,000 and 10,000 records,
  amortised per record, beside the gas of one registerMRV (the single-anchoring baseline);
- records/s of ``verify.verify_files`` over ``--records`` batch-anchored records (real stored
  records, anchored with ``batch.anchor_batch``) beside the baseline of verifying them one
  by one with ``verify.verify`` (a connection per record, as for single files), measured
  on the first ``--baseline`` records in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support: sample records, the anvil node
os.environ.setdefault("MRV_NO_DOTENV", "1")

from mrv_ml.anchoring import batch  # noqa: E402
from mrv_ml.chain.connection import connect  # noqa: E402
from mrv_ml.config import Settings, load_settings  # noqa: E402
from mrv_ml.record.merkle import StandardMerkleTree  # noqa: E402
from mrv_ml.storage.store import RecordStore  # noqa: E402
from mrv_ml.verification.verdict import VerdictStatus  # noqa: E402
from mrv_ml.verification.verifier import verify, verify_files  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402

BATCH_SIZES = (1, 10, 100, 1_000, 10_000)
TARGET_GAS_PER_RECORD_AT_1000 = 100


def gas_table(settings: Settings) -> tuple[int, dict[int, int]]:
    """(registerMRV gas, {batch size: anchorBatch gas}); every figure from a mined receipt."""
    with connect(settings, need_signer=True) as conn:
        single = conn.send(conn.registry.functions.registerMRV(
            f"MRV-bench-{time.time_ns()}", os.urandom(32))).gas_used
        batches = {}
        for n in BATCH_SIZES:
            tree = StandardMerkleTree.of([os.urandom(32) for _ in range(n)])
            receipt = conn.send(conn.registry.functions.anchorBatch(tree.root_bytes, n))
            batches[n] = receipt.gas_used
    return single, batches


def throughput(settings: Settings, n_records: int, n_baseline: int) -> dict[str, float]:
    store = RecordStore(settings.data_dir)
    for _ in range(n_records):
        store.save(make_sample_record())
    start = time.perf_counter()
    outcomes = batch.anchor_batch(store, settings=settings)
    anchor_s = time.perf_counter() - start
    assert len(outcomes) == n_records and all(o.anchored for o in outcomes)
    with connect(settings) as conn:
        gas = int(conn.w3.eth.get_transaction_receipt(outcomes[0].tx_hash)["gasUsed"])
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        results = verify_files([store.root], settings=settings)
        runs.append(time.perf_counter() - start)
        assert [r.verdict.status if r.verdict else r.error for r in results] == \
            [VerdictStatus.VALID] * n_records
    files = sorted(p for p in store.root.glob("MRV-*.json") if not p.name.endswith(".proof.json"))
    start = time.perf_counter()
    for path in files[:n_baseline]:
        assert verify(path, settings=settings).status is VerdictStatus.VALID
    one_by_one_s = time.perf_counter() - start
    return {"anchor_s": anchor_s, "gas": gas, "many_s": statistics.median(runs),
            "many_rps": n_records / statistics.median(runs),
            "single_rps": n_baseline / one_by_one_s}


def report(name: str, settings_for: Any, n_records: int, n_baseline: int) -> bool:
    with tempfile.TemporaryDirectory(prefix="mrv-bench-gas-") as d:
        single, batches = gas_table(settings_for(Path(d)))
    print(f"\n== {name} ==")
    print(f"registerMRV (one record, single anchoring): {single:>8,} gas/record")
    ok = True
    for n, gas in batches.items():
        per = gas / n
        print(f"anchorBatch of {n:>6,} records: {gas:>8,} gas  = {per:>10,.1f} gas/record"
              f"  ({single / per:,.0f}x less than single)")
        if n == 1_000 and per >= TARGET_GAS_PER_RECORD_AT_1000:
            ok = False
    with tempfile.TemporaryDirectory(prefix="mrv-bench-verify-") as d:
        t = throughput(settings_for(Path(d)), n_records, n_baseline)
    print(f"anchor_batch of {n_records:,} stored records: {t['anchor_s']:.2f} s, "
          f"{t['gas']:,} gas ({t['gas'] / n_records:.1f} gas/record)")
    print(f"verify_files over {n_records:,} batched records: {t['many_rps']:,.0f} records/s "
          f"({t['many_s'] * 1000:.0f} ms, median of 3)")
    print(f"baseline, verify() one by one ({n_baseline} records): {t['single_rps']:,.1f} records/s"
          f"  -> verify_files is {t['many_rps'] / t['single_rps']:,.0f}x faster")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--no-anvil", action="store_true")
    args = parser.parse_args()
    ok = report("embedded chain (py-evm)",
                lambda d: load_settings({"data_dir": d}), args.records, args.baseline)
    if not args.no_anvil:
        from tests.support.anvil import AnvilNode, anvil_executable

        executable = anvil_executable()
        if executable is None:
            print("\nanvil not installed (npm ci): skipped")
        else:
            with AnvilNode(executable) as node:
                def on_anvil(d: Path) -> Settings:
                    return load_settings({"data_dir": d, "network": "localhost",
                                          "rpc_url": node.url,
                                          "contract_address": node.deploy_registry()})

                ok = report(f"anvil ({node.url})", on_anvil, args.records, args.baseline) and ok
    print(f"\ngas/record at 1,000 < {TARGET_GAS_PER_RECORD_AT_1000}: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
