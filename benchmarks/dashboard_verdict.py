"""Time from setting a record file on the dashboard's input to the verdict being shown
(mrv serve on the embedded local chain, headless Chromium). Median over repetitions.

Run: .venv/bin/python benchmarks/dashboard_verdict.py [repetitions]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright  # noqa: E402

from mrv_ml.chain.contract import registry_contract  # noqa: E402
from mrv_ml.chain.localchain import LocalChain  # noqa: E402
from mrv_ml.record.hashing import compute_hash, hash_to_bytes32  # noqa: E402
from tests.support.browser import CHROMIUM_ARGS, ServedDashboard  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402


def main(reps: int = 10) -> None:
    tmp = Path(tempfile.mkdtemp())
    served = ServedDashboard(tmp / "mrv_data")
    record = make_sample_record()
    chain = LocalChain.for_data_dir(served.data_dir)
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        tx = reg.functions.registerMRV(record["mrv_id"], hash_to_bytes32(compute_hash(record)))
        w3.eth.wait_for_transaction_receipt(tx.transact({"from": w3.eth.accounts[0]}))
    path = tmp / "record.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    times_s: list[float] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(served.url)
            page.wait_for_selector("body[data-ready='1']")
            for _ in range(reps):
                page.evaluate("() => { document.getElementById('verdict').hidden = true; }")
                start = time.perf_counter()
                page.set_input_files("#file", str(path))
                page.locator("#verdict[data-verdict='VALID']:not([hidden])").wait_for()
                times_s.append(time.perf_counter() - start)
            browser.close()
    finally:
        served.close()
    median_s = statistics.median(times_s)
    print(f"file set -> VALID verdict shown: median {median_s * 1000:.0f} ms over {reps} runs "
          f"(min {min(times_s) * 1000:.0f} ms, max {max(times_s) * 1000:.0f} ms); "
          f"target 1000 ms: {median_s / 1.0:.2f}x of target")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
