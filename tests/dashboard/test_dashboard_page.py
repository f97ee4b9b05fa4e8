"""The record page in real headless Chromium against `mrv serve` on the embedded chain: the
verdict first as one sentence (summary.js), the power chart (chart.js), the energy split and
the measurement quality (quality.js), every figure through units.js."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.chain.contract import registry_contract
from mrv_ml.chain.localchain import LocalChain
from mrv_ml.record.hashing import compute_hash, hash_to_bytes32
from tests.support.browser import ARTIFACTS, ServedDashboard, screenshot
from tests.support.records import DELETE, make_sample_record

pytestmark = pytest.mark.browser

WORLD_NOTE = ("no country configured: CodeCarbon's world-average carbon intensity applies; "
              "set MRV_COUNTRY (ISO 3166 alpha-3) for a country-specific figure")


def _series(n: int, extrapolated: int = 1) -> dict[str, Any]:
    """A power series of ``n`` intervals of 2 s, the first ``extrapolated`` not measured."""
    starts, durations = [], []
    t = 0.0
    for i in range(n):
        d = 1.437 if i == 0 else 2.0
        starts.append(round(t, 3))
        durations.append(d)
        t += d
    return {"source": "CodeCarbon periodic measurements (every 2 s)",
            "start_offset_s": starts, "duration_s": durations,
            "cpu_power_w": [round(20 + 9 * ((i * 7) % 5) / 4, 3) for i in range(n)],
            "gpu_power_w": [round(60 + 25 * ((i * 3) % 7) / 6, 3) if i > 2 else 0.0 for i in range(n)],
            "ram_power_w": [6.624] * n,
            "measured": [i >= extrapolated for i in range(n)],
            "points_measured": n - extrapolated, "downsampled": False}


def _record_with_series(n: int = 40, **overrides: Any) -> dict[str, Any]:
    """A 1.1 record whose figures have the digits a real run writes (floats, not round)."""
    series = _series(n)
    duration = sum(series["duration_s"])
    values: dict[str, Any] = dict(
        schema_version="1.1",
        experiment__model_name="ResNet18", experiment__dataset_name="CIFAR-10",
        training__epochs=1,
        energy_emissions__power_series=series,
        energy_emissions__duration_seconds=duration + 0.000123456789,
        energy_emissions__energy_kwh=0.0011306813976150767,
        energy_emissions__cpu_energy_kwh=0.00026713976150766977,
        energy_emissions__gpu_energy_kwh=0.0007930123456789012,
        energy_emissions__ram_energy_kwh=0.00007053928041835,
        energy_emissions__co2_kg=0.000542727071,
        energy_emissions__carbon_intensity_g_per_kwh=480.0012345678,
        energy_emissions__location_source="default", energy_emissions__country_iso_code="WLD",
        energy_emissions__notes=[WORLD_NOTE],
        energy_emissions__intervals=[
            {"start_offset_s": 0.0, "end_offset_s": 1.437, "measured": False,
             "method": "extrapolated from CodeCarbon's average power over the measured "
                       "interval; CodeCarbon was still detecting hardware"},
            {"start_offset_s": 1.437, "end_offset_s": duration, "method": "CodeCarbon",
             "measured": True}],
        energy_emissions__methods={
            "cpu": {"method": "estimated from TDP (constant)", "measured": False,
                    "tdp_w": 65.0, "generic_tdp": True},
            "gpu": {"method": "NVML power readings", "measured": False},
            "ram": {"method": "estimated from installed memory size", "measured": False}},
    )
    values.update(overrides)
    return make_sample_record(**values)


def _anchor(served: ServedDashboard, record: dict[str, Any]) -> None:
    chain = LocalChain.for_data_dir(served.data_dir)
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        tx = reg.functions.registerMRV(record["mrv_id"], hash_to_bytes32(compute_hash(record)))
        w3.eth.wait_for_transaction_receipt(tx.transact({"from": w3.eth.accounts[0]}))


def _open(page: Any, served: ServedDashboard, query: str = "") -> None:
    page.goto(served.url + query)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)


def _drop(page: Any, tmp_path: Path, record: dict[str, Any], name: str = "r.json") -> None:
    path = tmp_path / name
    path.write_text(json.dumps(record), encoding="utf-8")
    page.set_input_files("#file", str(path))


def _shown(page: Any, served: ServedDashboard, tmp_path: Path, record: dict[str, Any],
           verdict: str = "VALID") -> None:
    _open(page, served)
    _drop(page, tmp_path, record)
    page.locator(f"#verdict[data-verdict='{verdict}']:not([hidden])").wait_for()


# --- the sentence, as a pure function ------------------------------------------------------

_RESNET = dict(experiment__model_name="ResNet18", experiment__dataset_name="CIFAR-10",
               training__epochs=1, energy_emissions__energy_kwh=0.00006,
               energy_emissions__co2_kg=0.0000286, energy_emissions__duration_seconds=8.0,
               timestamps__start_time="2026-11-27T10:00:00.000000Z")
_ANCHORED_AT = 1795737600  # 2026-11-27 00:00 UTC


def _sentences(page: Any, cases: list[tuple[dict[str, Any], Any]]) -> list[str]:
    return list(page.evaluate(
        """async (cases) => {
             const { summarySentence } = await import(new URL("summary.js", location.href).href);
             return cases.map(([record, facts]) => summarySentence(record, facts));
           }""", cases))


def test_summary_sentence_cases(page: Any, dashboard_server: ServedDashboard) -> None:
    _open(page, dashboard_server)
    valid = {"status": "VALID", "reason": "registered", "trust": "local only", "chainId": 1337,
             "timestamp": _ANCHORED_AT, "blockNumber": 1234, "batch": False, "devKey": False}
    base = make_sample_record(**_RESNET)
    cases: dict[str, tuple[dict[str, Any], Any]] = {
        "valid_local": (base, valid),
        "valid_anvil": (base, dict(valid, trust="private network", chainId=31337, devKey=True)),
        "valid_public_batch": (base, dict(valid, trust="public", chainId=11155111, batch=True,
                                          blockNumber=None)),
        "tampered": (base, dict(valid, status="TAMPERED", reason="hash_differs")),
        "pending": (base, {"status": "NOT_FOUND", "reason": "not_anchored_yet"}),
        "mismatch": (base, {"status": "SUBMITTER_MISMATCH", "reason": "hash_registered_by_other"}),
        "error": (base, {"error": "proof_needed"}),
        "unverified": (base, None),
        "failed_measurement": (make_sample_record(
            **dict(_RESNET, energy_emissions__measurement_status="failed",
                   energy_emissions__energy_kwh=None, energy_emissions__co2_kg=None)), valid),
        "failed_run": (make_sample_record(**dict(_RESNET, outcome__status="failed")), valid),
        "no_model_no_dataset": (make_sample_record(
            **dict(_RESNET, experiment__model_name="Unknown",
                   experiment__dataset_name=DELETE)), valid),
    }
    got = dict(zip(cases, _sentences(page, list(cases.values())), strict=True))
    assert got["valid_local"] == (
        "ResNet18 on CIFAR-10, 1 epoch: 60 mWh, 28.6 mg CO2e in 8 s on 27 Nov 2026; unchanged "
        "since it was anchored on 27 Nov 2026 at block 1,234 (local only: proves nothing to "
        "anyone but its author).")
    assert "(private network: " in got["valid_anvil"]
    assert "well-known development key" in got["valid_anvil"]
    assert "anchored in a batch on 27 Nov 2026 (public: anyone can check it with any node of " \
           "chain 11155111)" in got["valid_public_batch"]
    assert got["tampered"].startswith("ResNet18 on CIFAR-10, 1 epoch: the file says 60 mWh")
    assert "TAMPERED: the file differs from what was anchored on 27 Nov 2026" in got["tampered"]
    assert "never anchored" in got["pending"] and "SUBMITTER MISMATCH" in got["mismatch"]
    assert "could not be verified" in got["error"] and "not checked" in got["unverified"]
    assert "energy not measured (the measurement failed) in 8 s" in got["failed_measurement"]
    assert "CO2e" not in got["failed_measurement"]
    assert got["failed_run"].startswith("ResNet18 on CIFAR-10, 1 epoch (the run failed): ")
    assert got["no_model_no_dataset"].startswith("mnist-baseline, 1 epoch: 60 mWh")
    for name in ("tampered", "pending", "mismatch", "error", "unverified"):
        # never calls the figures verified, never says unchanged
        assert "these figures are not verified." in got[name], name
        assert "unchanged" not in got[name] and "VALID" not in got[name], name


# --- the page at two widths ----------------------------------------------------------------

@pytest.mark.parametrize(("width", "height"), [(375, 667), (1280, 800)])
def test_verdict_and_sentence_on_the_first_screen(browser: Any, dashboard_server: ServedDashboard,
                                                  tmp_path: Path, width: int, height: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(60000)
    page = context.new_page()
    try:
        record = _record_with_series()
        _anchor(dashboard_server, record)
        _shown(page, dashboard_server, tmp_path, record)
        screenshot(page, f"record_{width}")  # before the checks: a failure is seen too
        page.screenshot(path=str(ARTIFACTS / f"record_{width}_first_screen.png"))
        for selector in ("#verdict", "#verdict-title", "#verdict-sentence"):
            box = page.locator(selector).bounding_box()
            assert box is not None and 0 <= box["y"] < height, (selector, box)
        sentence = page.locator("#verdict-sentence").bounding_box()
        assert sentence["y"] + sentence["height"] <= height  # the whole sentence, not its start
        assert page.inner_text("#verdict-sentence").startswith("ResNet18 on CIFAR-10, 1 epoch: ")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # connected: the connection is folded away; the drop zone is one line
        assert page.get_attribute("#conn", "open") is None
        assert "compact" in (page.get_attribute("#input", "class") or "")
        assert page.locator("#drop").bounding_box()["height"] < 60
    finally:
        context.close()


def test_connection_opens_only_when_it_needs_the_reader(page: Any,
                                                        dashboard_server: ServedDashboard) -> None:
    _open(page, dashboard_server)
    assert page.get_attribute("#conn", "open") is None
    assert "chain id 1337" in page.inner_text("#conn > summary")
    _open(page, dashboard_server, "?rpc=http://127.0.0.1:9/&contract=0x" + "11" * 20)
    assert page.get_attribute("#conn", "open") is not None
    assert "RPC unreachable" in page.inner_text("#status")


# --- chart, split, measurement quality -----------------------------------------------------

def test_power_chart_has_every_point_and_marks_the_extrapolated(
        page: Any, dashboard_server: ServedDashboard, tmp_path: Path) -> None:
    record = _record_with_series(n=300)
    _anchor(dashboard_server, record)
    _shown(page, dashboard_server, tmp_path, record)
    chart = page.locator("#power svg.power-chart")
    assert chart.get_attribute("data-points") == "300"  # the series' length, no more, no less
    assert chart.get_attribute("data-extrapolated") == "1"
    assert page.locator("#power rect[data-extrapolated]").count() == 1
    assert page.locator("#power path[data-component]").count() == 3
    # one rectangle per interval with power, in each layer (CPU and RAM: all 300; GPU: 297)
    counts = page.evaluate("""() => [...document.querySelectorAll('#power path[data-component]')]
        .map(p => (p.getAttribute('d').match(/M/g) || []).length)""")
    assert counts == [300, 297, 300]
    legend = page.inner_text("#power .legend")
    for label in ("CPU · mean", "GPU · mean", "RAM · mean 6.62 W", "extrapolated, not measured (1.44 s)"):
        assert label in legend
    axis = page.locator("#power .axis text").all_text_contents()
    assert "0 W" in axis and "0 s" in axis and any(t.endswith(" min") for t in axis), axis
    split = page.locator("#split li").all_inner_texts()
    assert split == ["CPU 23.6 % · 267 mWh", "GPU 70.1 % · 793 mWh", "RAM 6.24 % · 70.5 mWh"]
    assert page.locator("#split svg rect").count() == 3


def test_measurement_quality_is_stated_honestly(page: Any, dashboard_server: ServedDashboard,
                                                tmp_path: Path) -> None:
    record = _record_with_series()
    _anchor(dashboard_server, record)
    _shown(page, dashboard_server, tmp_path, record)
    body = page.inner_text("main")
    assert "CodeCarbon · measured" not in body and "(measured)" not in body
    quality = page.inner_text("#quality")
    assert "CodeCarbon 3.3.2 · estimated (no hardware energy counters)" in quality
    assert "CPU\nestimated from TDP (constant); TDP 65 W, a generic figure" in quality
    assert "1.44 s (1.81 % of the run) extrapolated from CodeCarbon's average power" in quality
    assert "480 g CO2e/kWh, world average: no country was configured" in quality
    assert WORLD_NOTE in quality
    assert "1 (no data-centre overhead counted)" in quality
    assert "Measurement\nestimated" in page.inner_text("#summary")

    measured = _record_with_series(
        energy_emissions__methods={"cpu": {"method": "RAPL energy counters", "measured": True},
                                   "gpu": {"method": "none (no GPU detected)", "measured": False},
                                   "ram": {"method": "RAPL energy counters", "measured": True}},
        energy_emissions__location_source="configured", energy_emissions__country_iso_code="FRA",
        energy_emissions__region="IDF", energy_emissions__notes=DELETE, energy_emissions__pue=1.2,
        energy_emissions__intervals=[{"start_offset_s": 0.0, "end_offset_s": 8.0,
                                      "method": "extrapolated from CodeCarbon's power reading "
                                                "(it was ready only after the run ended)",
                                      "measured": False}],
        energy_emissions__duration_seconds=8.0)
    _anchor(dashboard_server, measured)
    _drop(page, tmp_path, measured, "m.json")
    page.locator(f"#verdict[data-verdict='VALID'] #evidence:has-text('{compute_hash(measured)}')"
                 ).wait_for()
    quality = page.inner_text("#quality")
    assert "CodeCarbon 3.3.2 · measured (hardware energy counters)" in quality
    assert "not present (none (no GPU detected))" in quality
    assert "the whole run (8 s, 100 %) is extrapolated" in quality
    assert "configured: FRA, IDF" in quality and "world average" not in quality
    assert "1.2 (data-centre overhead included in the total)" in quality


def test_schema_1_0_record_shows_a_note_instead_of_a_chart(
        page: Any, dashboard_server: ServedDashboard, tmp_path: Path) -> None:
    record = make_sample_record(schema_version="1.0", energy_emissions__power_series=DELETE)
    _anchor(dashboard_server, record)
    _shown(page, dashboard_server, tmp_path, record)
    assert page.locator("#power svg").count() == 0
    assert "records of schema 1.0 carry no power series" in page.inner_text("#power")
    assert page.locator("#split li").all_inner_texts() == [
        "CPU 81.3 % · 100 mWh", "GPU 0 % · 0 Wh", "RAM 18.7 % · 23 mWh"]
    # a series the page cannot trust to draw: a note, never a half-drawn chart
    for bad in ({**_series(5), "gpu_power_w": [1.0] * 4},
                {**_series(5), "cpu_power_w": ["1", 2, 3, 4, 5]},
                {**_series(5), "ram_power_w": [-1.0] * 5},
                _series(1001)):
        odd = make_sample_record(schema_version="1.1", energy_emissions__power_series=bad)
        _drop(page, tmp_path, odd, "odd.json")
        page.locator(f"#run:has-text('{odd['mrv_id']}')").wait_for()  # rendered with it
        assert page.locator("#power svg").count() == 0
        assert "power series is unusable" in page.inner_text("#power")


# --- every figure through units.js ---------------------------------------------------------

# A number followed by a unit the page shows (what units.js writes, and a few plain units).
_FIGURE = re.compile(r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?)\s?(µWh|mWh|kWh|MWh|GWh|Wh|mW|kW|MW|W|µg|mg|"
                     r"kg|kt|g|t|min|s|h|%|GB)(?![A-Za-z0-9])")


def _significant(number: str) -> int:
    digits = number.replace(",", "")
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.lstrip("0").rstrip("0")) or 1


def _figures(page: Any) -> list[str]:
    # what a person reads as figures; hashes, addresses, IDs and the raw JSON stay out
    text = page.evaluate("""() => ['#verdict-sentence', '#record-sentence', '#summary', '#power',
        '#split', '#quality', '#run']
        .map(s => document.querySelector(s)).filter(Boolean).map(e => e.innerText)
        .concat([...document.querySelectorAll('#power svg text, #power svg title')].map(t => t.textContent))
        .join('\\n')""")
    return [m.group(0) for m in _FIGURE.finditer(text)]


def test_no_figure_has_more_than_four_significant_digits(
        page: Any, dashboard_server: ServedDashboard, tmp_path: Path) -> None:
    assert _significant("0.00003013976150766977") == 16 and _significant("1,230") == 3
    record = _record_with_series()
    _anchor(dashboard_server, record)
    _shown(page, dashboard_server, tmp_path, record)
    shown = _figures(page)
    assert len(shown) > 30, shown  # the test reads the figures it means to
    too_long = [f for f in shown if _significant(_FIGURE.match(f).group(1)) > 4]  # type: ignore[union-attr]
    assert not too_long, too_long
    assert "1.13 Wh" in page.inner_text("#summary")
    # and without a verdict (not anchored: the page asks for the proof), the sentence heads
    # the record, says the figures are not verified, and its figures are as short
    _drop(page, tmp_path, _record_with_series(), "n.json")
    page.locator("#error[data-key='proof_needed']").wait_for()
    sentence = page.inner_text("#record-sentence")
    assert "could not be verified, so these figures are not verified" in sentence
    assert page.is_hidden("#verdict")
    shown = _figures(page)
    assert shown and all(_significant(_FIGURE.match(f).group(1)) <= 4 for f in shown), shown  # type: ignore[union-attr]
    screenshot(page, "record_not_verified")


def test_sentence_through_an_rpc_endpoint_says_private_network(
        page: Any, dashboard_server: ServedDashboard, tmp_path: Path) -> None:
    # Through a URL the page cannot know the chain is this machine's own: dev chain 1337,
    # anchored with a well-known development key, is a private network, and says so.
    record = _record_with_series()
    _anchor(dashboard_server, record)
    chain = LocalChain.for_data_dir(dashboard_server.data_dir)
    with chain.session() as w3:
        registry = chain.registry_address(w3)
    _open(page, dashboard_server, f"?rpc={dashboard_server.url}rpc&contract={registry}")
    _drop(page, tmp_path, record)
    page.locator("#verdict[data-verdict='VALID']:not([hidden])").wait_for()
    assert page.get_attribute("#verdict", "data-trust") == "private network"
    sentence = page.inner_text("#verdict-sentence")
    assert sentence.startswith("ResNet18 on CIFAR-10, 1 epoch: 1.13 Wh, 543 mg CO2e in 1.32 min")
    assert sentence.endswith("(private network: evidence only for those who trust that network; "
                             "the submitter is a well-known development key).")
