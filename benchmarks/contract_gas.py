"""Gas and time of the MRVRegistry on the embedded chain and on anvil.

    .venv/bin/python benchmarks/contract_gas.py [--records 300] [--no-anvil]

Prints: gas of registerMRV (first registrant, later claimant) and anchorBatch beside the
seed's quoted ~100,000 gas per registration (the baseline); anchorBatch gas amortised
per record; time per registration and per view call on the embedded chain and on anvil
(started here); time to open a local-chain session after a few hundred blocks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support.anvil starts the node

from mrv_ml.chain.contract import registry_contract  # noqa: E402
from mrv_ml.chain.localchain import LocalChain  # noqa: E402

SEED_GAS_PER_REGISTRATION = 100_000  # quoted in the seed's architecture guide
FLOOR_GAS = 21_000 + 2 * 22_100  # base transaction + two new storage slots


def per_call_ms(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000


def measure(name: str, w3: Any, reg: Any, sender: str, other: str, n: int) -> dict[str, float]:
    """Gas and time on one backend; every registration is a mined, receipted transaction."""
    ids = [f"BENCH-{name}-{os.getpid()}-{time.time_ns()}-{i}" for i in range(n)]

    def register(mrv_id: str, who: str) -> Any:
        tx = reg.functions.registerMRV(mrv_id, os.urandom(32)).transact(
            {"from": who, "gas": 200_000}
        )
        return w3.eth.wait_for_transaction_receipt(tx)

    first = register(ids[0], sender)["gasUsed"]
    later = register(ids[0], other)["gasUsed"]
    tx = reg.functions.anchorBatch(os.urandom(32), 1000).transact({"from": sender, "gas": 200_000})
    batch = w3.eth.wait_for_transaction_receipt(tx)["gasUsed"]
    it = iter(ids[1:])
    register_ms = per_call_ms(lambda: register(next(it), sender), n - 1)
    view_ms = per_call_ms(lambda: reg.functions.verifyMRVHash(ids[0], b"\x01" * 32).call(), 200)
    get_ms = per_call_ms(lambda: reg.functions.getMRVHashBy(ids[0], sender).call(), 200)
    return {
        "first": first,
        "later": later,
        "batch": batch,
        "register_ms": register_ms,
        "view_ms": view_ms,
        "get_ms": get_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="registrations per backend")
    parser.add_argument("--no-anvil", action="store_true", help="skip the anvil measurements")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        chain = LocalChain(Path(tmp) / "chain")
        with chain.session() as w3:
            reg = registry_contract(w3, chain.registry_address(w3))
            a, b = list(w3.eth.accounts)[:2]
            results["embedded"] = measure("local", w3, reg, a, b, args.records)
            head = w3.eth.block_number
        opens = []
        for _ in range(20):
            start = time.perf_counter()
            with chain.session() as w3:
                opened = time.perf_counter()
                assert w3.eth.block_number > 0
            opens.append((opened - start) * 1000)
        start = time.perf_counter()
        for i in range(20):  # a whole anchor: open, register, commit, close
            with chain.session() as w3:
                reg = registry_contract(w3, chain.registry_address(w3))
                tx = reg.functions.registerMRV(f"SESSION-{i}", os.urandom(32)).transact({"from": a})
                w3.eth.wait_for_transaction_receipt(tx)
        session_anchor_ms = (time.perf_counter() - start) / 20 * 1000
        db_kib = (Path(tmp) / "chain" / "chain.sqlite").stat().st_size / 1024

    if not args.no_anvil:
        from tests.support.anvil import AnvilNode, anvil_executable

        executable = anvil_executable()
        if executable is None:
            print("anvil not installed (npm ci): skipping anvil")
        else:
            with AnvilNode(executable) as node:
                w3 = node.w3()
                reg = registry_contract(w3, node.deploy_registry())
                results["anvil"] = measure(
                    "anvil",
                    w3,
                    reg,
                    node.accounts[0].address,
                    node.accounts[1].address,
                    args.records,
                )

    e = results["embedded"]
    print("MRVRegistry gas (solc 0.8.30, optimizer 200 runs, evm cancun)")
    print(
        f"  registerMRV, first registrant : {e['first']:>7,.0f} gas   "
        f"{e['first'] / SEED_GAS_PER_REGISTRATION:.2f} x the seed's ~{SEED_GAS_PER_REGISTRATION:,} "
        f"(floor 21,000 + 2 new slots = {FLOOR_GAS:,})"
    )
    print(
        f"  registerMRV, later claimant   : {e['later']:>7,.0f} gas   "
        f"{e['later'] / SEED_GAS_PER_REGISTRATION:.2f} x seed"
    )
    print(
        f"  anchorBatch                   : {e['batch']:>7,.0f} gas   "
        f"{e['batch'] / SEED_GAS_PER_REGISTRATION:.2f} x seed"
    )
    for size in (1, 10, 100, 1_000, 10_000):
        print(
            f"    amortised over {size:>6,} records: {e['batch'] / size:>9,.1f} gas/record "
            f"({e['batch'] / size / e['first']:.4f} x a single registration)"
        )
    if "anvil" in results and results["anvil"]["first"] != e["first"]:
        print(f"  (anvil measured {results['anvil']['first']:,.0f} for the first registrant)")
    print()
    print(f"Time ({args.records} registrations per backend, each mined and receipted)")
    for name, r in results.items():
        print(
            f"  {name:<8}: {r['register_ms']:6.2f} ms/registration   "
            f"{r['view_ms']:6.3f} ms/verifyMRVHash call   {r['get_ms']:6.3f} ms/getMRVHashBy call"
        )
    if "anvil" in results:
        print(
            f"  embedded / anvil registration time: "
            f"{e['register_ms'] / results['anvil']['register_ms']:.2f} x"
        )
    print()
    print(f"Embedded chain after {head + 20} blocks ({db_kib:,.0f} KiB on disk)")
    print(
        f"  session open (lock + SQLite + chain at head + Web3): median "
        f"{statistics.median(opens):.2f} ms, max {max(opens):.2f} ms"
    )
    print(
        f"  whole anchor in its own session (open, deploy check, register, commit): "
        f"{session_anchor_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
