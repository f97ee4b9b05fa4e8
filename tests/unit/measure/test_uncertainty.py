"""Each component's method, assumption and range; CodeCarbon changing its method mid-run;
the ranges shown by `mrv show` (report.summary_rows) and the page (quality.js)."""

from __future__ import annotations

import json
import subprocess
import textwrap
import types
from pathlib import Path

import pytest

from mrv_ml.config import Settings
from mrv_ml.measure import methods
from mrv_ml.measure.meter import EnergyMeter
from mrv_ml.measure.uncertainty import RANGES, bounds_kwh
from mrv_ml.record.schema import validate_record
from mrv_ml.reporting.one_record import summary_rows
from tests.support.records import make_sample_record

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "uncertainty.md").read_text(encoding="utf-8")


def test_every_range_is_documented_and_ordered() -> None:
    for key, rng in RANGES.items():
        assert 0 < rng.low_factor <= 1 <= rng.high_factor, key
        assert f'<a id="{rng.anchor}"></a>' in DOC, f"docs/uncertainty.md lacks #{rng.anchor}"


def test_estimates_carry_assumption_and_range_from_real_codecarbon() -> None:
    meter = EnergyMeter(Settings())
    meter.start()
    section = meter.stop().to_record_section()
    cpu, ram, grid = (section["methods"][c] for c in ("cpu", "ram", "grid"))
    assert cpu["measured"] is False  # no RAPL readable here
    assert "TDP" in cpu["assumption"] and "CodeCarbon" in cpu["assumption"]
    assert cpu["uncertainty"]["reference"].startswith("docs/uncertainty.md#cpu-")
    assert "5 W per DIMM" in ram["assumption"]
    assert ram["uncertainty"] == RANGES["ram_model"].to_record()
    assert grid["uncertainty"] == RANGES["grid_world_average"].to_record()  # no country
    assert "uncertainty" not in section["methods"]["gpu"]  # no GPU: nothing to range
    validate_record(make_sample_record(energy_emissions=section))


def test_a_configured_country_has_no_world_average_range() -> None:
    meter = EnergyMeter(Settings(country_iso_code="FRA"))
    meter.start()
    section = meter.stop().to_record_section()
    assert "uncertainty" not in section["methods"]["grid"]


def test_codecarbon_falling_back_mid_run_is_stated() -> None:
    """The real CodeCarbon's CPU object switches method during the run (as its RAPL
    reader failing over to a TDP estimate would): the record says so."""
    meter = EnergyMeter(Settings())
    meter.start()
    assert meter._thread is not None
    meter._thread.join(60)
    cpu = next(hw for hw in meter._tracker._hardware if type(hw).__name__ == "CPU")
    before = cpu._mode
    cpu._mode = "constant" if before != "constant" else "cpu_load"
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "measured"  # never a crash
    assert section["methods"]["cpu"]["method_changed_during_run"] is True
    [note] = [n for n in section["notes"] if "CPU method changed" in n]
    assert methods.CPU_METHODS[before][0] in note and "mixes both" in note
    validate_record(make_sample_record(energy_emissions=section))


def test_a_gpu_counter_falling_back_to_power_readings_is_seen() -> None:
    def gpu(fallback: bool) -> object:
        device = types.SimpleNamespace(_use_power_fallback=fallback)
        hw = type("GPU", (), {})()
        hw.devices = types.SimpleNamespace(devices=[device])  # type: ignore[attr-defined]
        return types.SimpleNamespace(_hardware=[hw])

    watch = methods.ModeWatch()
    watch.observe(gpu(False))
    watch.observe(gpu(True))
    assert watch.changes == [
        "CodeCarbon's GPU method changed during the run, from NVML total-energy counter to "
        f"{methods.GPU_POWER}: the GPU figure mixes both methods"]
    entry = methods.methods(gpu(True), watch.changes)["gpu"]
    assert entry["uncertainty"] == RANGES["gpu_nvml_power"].to_record()
    assert entry["method_changed_during_run"] is True


def _record_with_ranges() -> dict:
    record = make_sample_record()
    ee = record["energy_emissions"]
    ee["cpu_energy_kwh"] = 0.0001
    ee["methods"]["cpu"] = {"method": "estimated from CPU load and TDP", "measured": False,
                            "uncertainty": RANGES["cpu_load"].to_record()}
    ee["methods"]["grid"] = methods.grid_method("default")
    ee["carbon_intensity_g_per_kwh"] = 475.0
    return record


def test_mrv_show_gives_the_range_through_units() -> None:
    rows = {r.label: r.value for r in summary_rows(_record_with_ranges())}
    assert "CPU 100 mWh (estimated from CPU load and TDP; range 50 mWh–150 mWh)" in rows["energy"]
    assert "at 475 g CO2e/kWh (range 23.8 g CO2e/kWh–855 g CO2e/kWh)" in rows["emissions"]
    assert bounds_kwh(1.0, {"method": "RAPL", "measured": True}) is None


def test_the_page_gives_the_range_through_units() -> None:
    script = textwrap.dedent(f"""
        const q = await import({json.dumps((ROOT / "src/mrv_ml/dashboard/quality.js").as_uri())});
        const record = JSON.parse(process.argv[1]);
        console.log(JSON.stringify(q.qualityRows(record)));
    """)
    done = subprocess.run(["node", "--input-type=module", "-e", script,
                           json.dumps(_record_with_ranges())],
                          capture_output=True, text=True, timeout=60, check=True)
    rows = dict(json.loads(done.stdout))
    assert rows["CPU"] == "estimated from CPU load and TDP; range 50 mWh–150 mWh"
    assert rows["Grid intensity"].endswith("; range 23.8 g CO2e/kWh–855 g CO2e/kWh")


@pytest.mark.parametrize("component", ["cpu", "ram", "gpu"])
def test_a_malformed_range_shows_no_range(component: str) -> None:
    record = make_sample_record()
    record["energy_emissions"]["methods"][component] = {"method": "x", "measured": False,
                                                        "uncertainty": {"low_factor": "a"}}
    summary_rows(record)  # no error: a record read from a file is untrusted
