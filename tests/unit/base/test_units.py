"""The one formatter: what Python shows (hand-checked), and that the page's units.js shows
exactly the same for every case of data/format_cases.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mrv_ml import units

REPO = Path(__file__).resolve().parents[3]
CASES = REPO / "src" / "mrv_ml" / "data" / "format_cases.json"


@pytest.mark.parametrize(("fn", "value", "expected"), [
    # the four spellings of one figure, now one
    (units.format_energy_kwh, 0.00003013976150766977, "30.1 mWh"),
    (units.format_co2_kg, 1.43164e-05, "14.3 mg CO2e"),
    (units.format_energy_kwh, 0.06e-3, "60 mWh"),
    (units.format_co2_kg, 28.6e-6, "28.6 mg CO2e"),
    (units.format_energy_kwh, 4.2, "4.2 kWh"),
    (units.format_energy_kwh, 1350.0, "1.35 MWh"),
    (units.format_energy_kwh, 0.9997, "1 kWh"),        # rounds up into the next unit
    (units.format_energy_kwh, 0.0, "0 Wh"),
    (units.format_energy_kwh, None, "—"),
    (units.format_energy_kwh, float("nan"), "—"),
    (units.format_energy_kwh, 1e-15, "< 0.001 µWh"),
    (units.format_mass_kg, 1200.0, "1.2 t"),
    (units.format_duration_s, 8.2, "8.2 s"),
    (units.format_duration_s, 750.0, "12.5 min"),
    (units.format_duration_s, 12312.0, "3.42 h"),
    (units.format_duration_s, 3600.0 * 1234, "1,230 h"),
    (units.format_power_w, 41.25, "41.3 W"),           # a tie, away from zero
    (units.format_power_w, 0.35, "350 mW"),
    (units.format_number, 0.125, "0.125"),
    (units.format_number, 2.675, "2.67"),               # 2.675 is 2.67499999... in binary
    (units.format_intensity_g_per_kwh, 475.0, "475 g CO2e/kWh"),
    (units.format_date, "2026-11-27T22:00:00-03:00", "28 Nov 2026"),
    (units.format_datetime, "2026-11-27T10:05:00Z", "27 Nov 2026 10:05 UTC"),
    (units.format_date, "2026-11-27", "—"),            # no time, no offset: no moment
    (units.format_date, "2026-02-30T00:00:00Z", "—"),
])
def test_what_python_shows(fn: Any, value: Any, expected: str) -> None:
    assert fn(value) == expected


def test_share() -> None:
    assert units.format_share(1, 3) == "33.3 %"
    assert units.format_share(1, 0) == "—"
    assert units.format_share(None, 1) == "—"


def test_no_figure_has_more_than_three_significant_digits() -> None:
    for case in json.loads(CASES.read_text(encoding="utf-8")):
        number = case["expected"].split(" ")[0].lstrip("<-").replace(",", "")
        if number.replace(".", "").isdigit():
            significant = number.replace(".", "").lstrip("0").rstrip("0") or "0"
            assert len(significant) <= 3, case


def test_case_table_is_python_and_up_to_date() -> None:
    cases = json.loads(CASES.read_text(encoding="utf-8"))
    assert len(cases) > 1000
    for case in cases:
        assert getattr(units, case["fn"])(*case["args"]) == case["expected"], case
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_format_cases.py"),
                             "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.browser
def test_page_formats_every_case_as_python(page: Any, dashboard_server: Any) -> None:
    cases = json.loads(CASES.read_text(encoding="utf-8"))
    page.goto(dashboard_server.url)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    shown = page.evaluate(
        """async (cases) => {
             const { FORMATTERS } = await import(new URL("units.js", location.href).href);
             return cases.map((c) => FORMATTERS[c.fn](...c.args));
           }""", cases)
    wrong = [(c["fn"], c["args"], c["expected"], s)
             for c, s in zip(cases, shown, strict=True) if s != c["expected"]]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:5]}"
