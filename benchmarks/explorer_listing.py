#!/usr/bin/env python3
"""How fast is the explorer over 10,000 runs, end to end?

Builds, in a temporary directory, a store of N records (default 10,000: five experiments,
two teams, twelve months, 1 in 10 failed runs, 1 in 25 failed measurements, a third with
an anchored proof, a sixth pending) and a SQLite registry database with the same N
records published (a third anchored in one batch), then times, in the same run:

- ``mrv serve`` (a real server over HTTP, warm listing cache): the baseline
  ``GET /api/records`` (every summary, no filter), ``GET /api/explore`` filtered by
  experiment and sorted by energy, by outcome, and by tag (the server keeps the listing
  between requests), and once more after a sidecar changed (the store listed again);
- the registry (uvicorn over the app): the baseline ``GET /v1/records?limit=100`` (one
  keyset page) and ``GET /v1/explore`` with the same filters (totals in SQL);
- the page in Chromium: from navigation to the explorer's first 100 rows and totals
  shown, then one page flip, for both sources.

Each HTTP figure is the median of --repeat requests, measured from the request to the
parsed JSON. Prints the figures and each one's ratio to its baseline.

Usage:  python benchmarks/explorer_listing.py [--count 10000] [--repeat 7] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.support

from mrv_ml.record.hashing import canonical_bytes, compute_hash  # noqa: E402
from mrv_ml.record.schema import dump_record_bytes  # noqa: E402
from mrv_ml.record.strictjson import dump_json_bytes  # noqa: E402
from mrv_ml.storage.store import RecordStore  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402

EXPERIMENTS = ("resnet", "bert", "mnist", "gpt-small", "unet")


def make_records(count: int) -> list[dict[str, Any]]:
    records = []
    for i in range(count):
        overrides: dict[str, Any] = {
            "experiment__name": EXPERIMENTS[i % len(EXPERIMENTS)],
            "experiment__tags": {"team": "green" if i % 2 else "blue", "seed": str(i)},
            "timestamps__start_time": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T"
                                      f"{i % 24:02d}:{i % 60:02d}:00.000000Z",
            "energy_emissions__energy_kwh": 0.001 * (1 + i % 997),
            "energy_emissions__co2_kg": 0.0004 * (1 + i % 991),
            "energy_emissions__duration_seconds": 10.0 * (1 + i % 613),
        }
        if i % 10 == 3:
            overrides |= {"outcome__status": "failed", "outcome__error_type": "RuntimeError"}
        if i % 25 == 7:
            overrides |= {"energy_emissions__measurement_status": "failed",
                          "energy_emissions__energy_kwh": None,
                          "energy_emissions__co2_kg": None}
        records.append(make_sample_record(**overrides))
    return records


def populate_store(root: Path, records: list[dict[str, Any]]) -> None:
    # Written directly (no per-file fsync), byte-identical to RecordStore.save.
    root.mkdir(parents=True, exist_ok=True)
    for i, record in enumerate(records):
        (root / f"{record['mrv_id']}.json").write_bytes(dump_record_bytes(record))
        status = "anchored" if i % 3 == 0 else "pending" if i % 6 == 1 else None
        if status is None:
            continue
        proof: dict[str, Any] = {"proof_version": "1.0", "mrv_id": record["mrv_id"],
                                 "record_hash": {"algorithm": "sha256-jcs",
                                                 "digest": compute_hash(record)},
                                 "status": status}
        if status == "anchored":
            proof["anchor"] = {"mode": "batch", "network": "local", "chain_id": 1337,
                               "contract_address": "0x" + "11" * 20,
                               "submitter": "0x" + "22" * 20, "tx_hash": "0x" + "33" * 32,
                               "block_number": 3,
                               "merkle": {"format": "openzeppelin-standard-merkle-tree-v1",
                                          "leaf_encoding": ["bytes32"], "root": "0x" + "44" * 32,
                                          "proof": [], "leaf_index": 0, "leaf_count": 1}}
        (root / f"{record['mrv_id']}.proof.json").write_bytes(dump_json_bytes(proof))


def populate_registry(url: str, records: list[dict[str, Any]]) -> None:
    from mrv_ml.registry_service.db import open_database
    from mrv_ml.registry_service.submission import _searchable

    with open_database(url) as db:
        for start in range(0, len(records), 500):
            chunk = records[start:start + 500]
            db.submit_many([{"fingerprint": compute_hash(r), "mrv_id": r["mrv_id"],
                             "record_json": canonical_bytes(r),
                             "record_fields": _searchable(r, None)} for r in chunk])
        anchored = [compute_hash(r) for i, r in enumerate(records) if i % 3 == 0]
        batch = db.create_batch("0x" + "55" * 32, anchored, chain_id=31337,
                                registry_address="0x" + "11" * 20, submitter="0x" + "22" * 20)
        db.mark_sent(batch.id, "0x" + "66" * 32)
        db.mark_anchored(batch.id, block_number=5, block_hash="0x" + "77" * 32,
                         block_timestamp=1764000000, gas_used=100000)


@contextmanager
def serve_store(root: Path) -> Iterator[str]:
    from tests.support.browser import ServedDashboard

    served = ServedDashboard(root)
    try:
        yield served.url.rstrip("/")
    finally:
        served.close()


@contextmanager
def serve_registry(database: str) -> Iterator[str]:
    from mrv_ml.registry_service.app import ServiceConfig, ServiceState, create_app
    from mrv_ml.registry_service.db import open_database
    from mrv_ml.registry_service.proofs import ChainFacts
    from tests.support.anvil import free_port
    from tests.support.registry import serving

    db = open_database(database)
    port = free_port()
    facts = ChainFacts(network="anvil", chain_id=31337, contract_address="0x" + "11" * 20,
                       operator="0x" + "22" * 20, registry_block=1, confirmations=0)
    state = ServiceState(db, facts, ServiceConfig(base_url=f"http://127.0.0.1:{port}",
                                                  interval_s=3600.0))
    try:
        with serving(create_app(state), port) as base:
            yield base
    finally:
        state.writer.close()
        db.close()


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=120) as answer:
        return json.loads(answer.read())


def timed(fn: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None
          ) -> tuple[float, Any]:
    """store_listing's median timing, after one warm call (caches, connections, plans)."""
    from benchmarks.store_listing import timed as median_time

    fn()
    return median_time(fn, repeat, before)


def http_rows(base: str, baseline_path: str, explore_path: str, repeat: int,
              change: Callable[[], None] | None = None) -> list[tuple[str, float, float, str]]:
    t_base, _ = timed(lambda: fetch(base + baseline_path), repeat)
    rows = [(f"baseline GET {baseline_path}", t_base, 1.0, "")]
    for label, query in (("experiment=bert, sort=-energy", "experiment=bert&sort=-energy"),
                         ("status=failed, sort=-co2", "status=failed&sort=-co2"),
                         ("tag=team=green, sort=date", "tag=team%3Dgreen&sort=date")):
        url = f"{base}{explore_path}?{query}"
        t, body = timed(lambda url=url: fetch(url), repeat)  # type: ignore[misc]
        rows.append((f"explore {label}", t, t / t_base,
                     f"{body['count']} match, {len(body['rows'])} rows"))
    if change is not None:  # the store changed since the last request: listed again
        url = f"{base}{explore_path}?experiment=bert&sort=-energy"
        t, body = timed(lambda: fetch(url), repeat, before=change)
        rows.append(("explore experiment=bert after a sidecar changed", t, t / t_base,
                     f"{body['count']} match, {len(body['rows'])} rows"))
    return rows


def browser_rows(urls: dict[str, str]) -> list[tuple[str, float, float, str]]:
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            for name, url in urls.items():
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(120_000)
                page.goto(url)  # once for the browser's cache of the page's modules
                page.wait_for_selector("#explorer[data-count]:not([data-loading])")
                start = time.perf_counter()
                page.goto(url)
                page.wait_for_selector("#explorer[data-count]:not([data-loading])")
                t_first = time.perf_counter() - start
                count = page.get_attribute("#explorer", "data-count")
                shown = page.locator("#ex-rows tr").count()
                start = time.perf_counter()
                page.click("#ex-next")
                page.wait_for_selector("#explorer:not([data-loading])")
                page.wait_for_function("() => new URLSearchParams(location.search)"
                                       ".get('page') === '2'")
                t_flip = time.perf_counter() - start
                rows.append((f"page ({name}): load to list shown", t_first, 0.0,
                             f"{count} runs, {shown} rows drawn"))
                rows.append((f"page ({name}): next 100 rows", t_flip, 0.0, ""))
                page.close()
        finally:
            browser.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mrv-bench-") as tmp:
        start = time.perf_counter()
        records = make_records(args.count)
        root = Path(tmp) / "mrv_data"
        populate_store(root, records)
        RecordStore(root).list()  # the listing cache, as after the first `mrv list`
        database = str(Path(tmp) / "registry.sqlite")
        populate_registry(database, records)
        print(f"created {args.count} records in a store and a SQLite registry in "
              f"{time.perf_counter() - start:.1f} s")
        results: list[tuple[str, float, float, str]] = []
        with serve_store(root) as store_url, serve_registry(database) as registry_url:
            store = RecordStore(root)
            victim = records[1]["mrv_id"]

            def change() -> None:  # a pending sidecar rewritten, as anchoring does
                proof = store.load_proof(victim)
                assert proof is not None
                store.save_proof(proof)

            results += [("mrv serve: " + r[0], *r[1:])
                        for r in http_rows(store_url, "/api/records", "/api/explore",
                                           args.repeat, change)]
            results += [("registry: " + r[0], *r[1:])
                        for r in http_rows(registry_url, "/v1/records?limit=100",
                                           "/v1/explore", args.repeat)]
            if not args.no_browser:
                results += browser_rows({
                    "mrv serve": f"{store_url}/?view=explore&sort=-energy",
                    "registry": f"{registry_url}/explorer/?view=explore&sort=-energy"})

    print(f"{'':58}{'median':>10}{'vs baseline':>13}")
    for label, seconds, ratio, note in results:
        shown = f"{ratio:11.2f}x" if ratio else f"{'':12}"
        print(f"{label:58}{seconds * 1000:8.0f} ms{shown}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
