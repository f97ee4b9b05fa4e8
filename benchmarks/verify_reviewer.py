"""A reviewer's `mrv verify DIR`: throughput through a provider-like proxy, and memory.

    .venv/bin/python benchmarks/verify_reviewer.py [--records 1000] [--memory 1000,10000]

On a fresh anvil (started here), ``--records`` records are anchored in one Merkle batch by
an author; the records and proofs are then verified as a reviewer would (only an endpoint,
no configuration), printing:

- records/s of ``mrv verify DIR`` (the whole process, start-up included) straight to anvil,
  and through tests/support/provider.py (a proxy limiting eth_getLogs to 10,000 blocks, as
  hosted providers do), with the ratio;
- the peak resident memory of ``mrv verify DIR --json`` for each size in ``--memory``, with
  the ratio to the smallest: the directory is streamed, so it should stay flat.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mrv_ml.anchoring import batch  # noqa: E402
from mrv_ml.chain.deploy import deploy  # noqa: E402
from mrv_ml.chain.localchain import anvil_dev_accounts  # noqa: E402
from mrv_ml.config import Secret, Settings  # noqa: E402
from mrv_ml.storage.store import RecordStore  # noqa: E402
from mrv_ml.verification.verifier import verify_files  # noqa: E402
from tests.support.anvil import AnvilNode, anvil_executable, rpc  # noqa: E402
from tests.support.cli import mrv_command  # noqa: E402
from tests.support.provider import ProviderProxy  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402


def author(node: AnvilNode, data_dir: Path, n: int) -> None:
    settings = Settings(data_dir=data_dir, network="anvil", rpc_url=node.url,
                        private_key=Secret(anvil_dev_accounts()[0].key.hex()))
    if not (data_dir / "deployments.json").exists():
        deploy(settings)
    store = RecordStore(data_dir)
    for _ in range(n):
        store.save(make_sample_record())
    outcomes = batch.anchor_batch(store, settings=settings)
    assert len(outcomes) == n and all(o.anchored for o in outcomes)


def reviewer(folder: Path, url: str, *extra: str) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in KiB) of `mrv verify folder --rpc-url url`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([*mrv_command(), "verify", str(folder), "--rpc-url", url, *extra],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(folder.parent),
                               "MRV_NO_DOTENV": "1"}, timeout=3600)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"mrv verify failed ({done.returncode}): {done.stderr[-300:]}")
    return seconds, done.returncode, max(peak, before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--memory", default="1000,10000")
    parser.add_argument("--blocks", type=int, default=2000,
                        help="empty blocks mined between the registry and the batch")
    args = parser.parse_args()
    executable = anvil_executable()
    if executable is None:
        raise SystemExit("anvil is not installed: run npm ci")
    with AnvilNode(executable) as node, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for _ in range(args.blocks // 1000):
            rpc(node.url, "anvil_mine", [hex(1000)], timeout_s=600)
        data_dir = root / "author"
        author(node, data_dir, args.records)
        n = args.records
        in_process = {}
        for name, url in (("direct", node.url), ("proxy", None)):
            with ProviderProxy(node.url, max_log_range=10_000) as proxy:
                settings = Settings(data_dir=root / "reviewer", rpc_url=url or proxy.url)
                runs = []
                for _ in range(3):
                    start = time.perf_counter()
                    results = verify_files([data_dir], settings=settings)
                    runs.append(time.perf_counter() - start)
                    assert all(r.verdict and r.verdict.status.value == "VALID" for r in results)
            in_process[name] = sorted(runs)[1]
        direct, _, _ = reviewer(data_dir, node.url)
        with ProviderProxy(node.url, max_log_range=10_000) as proxy:
            proxied, _, _ = reviewer(data_dir, proxy.url)
        print(f"{n:,} batched records on anvil ({args.blocks:,} blocks between registry and "
              "batch), verified as a reviewer (only an endpoint):")
        print(f"  verify_files, in process (median of 3): direct "
              f"{n / in_process['direct']:7,.0f} records/s, through the 10,000-block-limit "
              f"proxy {n / in_process['proxy']:7,.0f} records/s "
              f"= {in_process['direct'] / in_process['proxy']:.2f}x the direct rate")
        print(f"  mrv verify DIR, whole process (start-up, web3 import ~1 s): direct "
              f"{n / direct:7,.0f} records/s ({direct:.2f} s), through the proxy "
              f"{n / proxied:7,.0f} records/s ({proxied:.2f} s)")
        sizes = [int(x) for x in args.memory.split(",") if x]
        peaks = {}
        for size in sizes:
            folder = root / f"mem-{size}"
            author(node, folder, size)
            seconds, _, _ = reviewer(folder, node.url, "--json")
            # ru_maxrss of children is the max over all children so far: measure in a fresh
            # interpreter per size to read each peak on its own.
            probe = subprocess.run(
                [sys.executable, "-c",
                 "import resource, subprocess, sys; subprocess.run(sys.argv[1:], "
                 "stdout=subprocess.DEVNULL, check=True); "
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
                 *mrv_command(), "verify", str(folder), "--rpc-url", node.url, "--json"],
                capture_output=True, text=True, timeout=3600,
                env={"PATH": "/usr/bin:/bin", "HOME": str(root), "MRV_NO_DOTENV": "1"})
            peaks[size] = int(probe.stdout.strip()) / 1024
            print(f"  {size:>7,} records: peak RSS {peaks[size]:6.1f} MiB, "
                  f"{size / seconds:6,.0f} records/s")
        base = peaks[sizes[0]]
        for size in sizes[1:]:
            print(f"  peak at {size:,} / peak at {sizes[0]:,}: {peaks[size] / base:.2f}x "
                  "(target: within 1.2x)")


if __name__ == "__main__":
    main()
