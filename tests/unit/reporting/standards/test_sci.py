"""SCI (ISO/IEC 21031): the score recomputes from the records' figures, every term shown,
ranges carried through, M never silent, R as declared."""

from __future__ import annotations

import json

import pytest

from mrv_ml.errors import RecordError
from mrv_ml.reporting.standards import sci
from mrv_ml.reporting.standards.evidence import evidence_of
from tests.support.records import make_sample_record
from tests.unit.reporting.standards.test_evidence import estimated_record

NO_M = sci.Embodied(0, None)


def test_the_score_recomputes_from_the_records_figures() -> None:
    record = make_sample_record()
    unit = sci.parse_functional_unit("1M training tokens=2.5")
    doc = json.loads(sci.render([evidence_of(record)], unit, NO_M))
    ee = record["energy_emissions"]
    e_times_i = ee["energy_kwh"] * ee["carbon_intensity_g_per_kwh"]
    assert doc["terms"]["E_kwh"] == ee["energy_kwh"]
    assert doc["terms"]["E_times_I_g_co2e"] == pytest.approx(e_times_i)
    assert doc["terms"]["E_times_I_g_co2e"] == pytest.approx(ee["co2_kg"] * 1000, rel=1e-3)
    assert doc["sci"]["value_g_co2e_per_unit"] == pytest.approx(e_times_i / 2.5)
    assert doc["sci"]["functional_unit"] == "1M training tokens" and doc["terms"]["R"] == 2.5
    assert any("M is left out" in n for n in doc["notes"])
    [r] = doc["records"]
    assert r["mrv_id"] == record["mrv_id"] and r["fingerprint"].startswith("sha256-jcs:")


def test_embodied_emissions_are_amortised_over_the_lifetime() -> None:
    record = make_sample_record(energy_emissions__duration_seconds=3600.0 * 10)
    m = sci.Embodied(2000.0, 4.0, share=0.5)
    s = sci.score([evidence_of(record)], sci.parse_functional_unit("sample=1000"), m)
    expected_m = 2000 * 1000 * 10 / (4 * 365.25 * 24) * 0.5
    assert s.m_g == pytest.approx(expected_m)
    assert s.sci_g_per_unit == pytest.approx((s.operational_g + expected_m) / 1000)


def test_ranges_are_carried_through() -> None:
    s = sci.score([evidence_of(estimated_record())], sci.parse_functional_unit("epoch"), NO_M)
    f = evidence_of(estimated_record()).figures
    assert s.r == 2  # the record's epochs
    assert s.sci_low_g_per_unit == pytest.approx(
        f.energy_low_kwh * 366.7 * 0.05 / 2)
    assert s.sci_high_g_per_unit == pytest.approx(f.energy_high_kwh * 366.7 * 1.8 / 2)
    assert s.sci_low_g_per_unit < s.sci_g_per_unit < s.sci_high_g_per_unit


def test_several_records_add_their_energy_and_embodied_time() -> None:
    parent, tune = make_sample_record(), make_sample_record(
        energy_emissions__energy_kwh=0.000246, energy_emissions__co2_kg=9.02e-05)
    s = sci.score([evidence_of(parent), evidence_of(tune)],
                  sci.parse_functional_unit("FLOP=1e15"), NO_M)
    assert s.e_kwh == pytest.approx(0.000369)
    assert s.operational_g == pytest.approx(0.000369 * 366.7)


@pytest.mark.parametrize("text", ["tokens", "tokens=0", "tokens=-3", "=5", "x=nan",
                                  "x=inf", "x=1e999", "tokens=ten"])
def test_a_bad_functional_unit_is_refused(text: str) -> None:
    with pytest.raises(RecordError, match="--functional-unit"):
        sci.parse_functional_unit(text)


def test_inconsistent_figures_or_a_bad_embodied_input_are_refused() -> None:
    liar = make_sample_record(energy_emissions__co2_kg=1.0)  # not E x I
    with pytest.raises(RecordError, match="disagree"):
        sci.score([evidence_of(liar)], sci.parse_functional_unit("x=1"), NO_M)
    with pytest.raises(RecordError, match="--lifetime-years"):
        sci.Embodied(100.0, None)
    with pytest.raises(RecordError, match="--hardware-share"):
        sci.Embodied(100.0, 4.0, share=1.5)
    with pytest.raises(RecordError, match="--embodied-kg"):
        sci.Embodied(-1.0, 4.0)
    no_epochs = make_sample_record(training__epochs=None)
    with pytest.raises(RecordError, match="epochs"):
        sci.score([evidence_of(no_epochs)], sci.parse_functional_unit("epoch"), NO_M)
