"""The AI Act's energy section (Annex XI 1.2(d)(e)): the records' energy and time, compute
stated or estimated (and said to be), the method, and how to verify each figure."""

from __future__ import annotations

import json
import re

import pytest

from mrv_ml.errors import RecordError
from mrv_ml.reporting.standards import ai_act
from mrv_ml.reporting.standards.evidence import evidence_of
from tests.support.records import make_sample_record
from tests.unit.reporting.standards.test_evidence import estimated_record


def _json_block(markdown: str) -> dict:
    m = re.search(r"```json\n(.*)\n```", markdown, re.S)
    assert m is not None
    value: dict = json.loads(m.group(1))
    return value


def test_a_pre_training_and_its_fine_tune_in_one_section() -> None:
    parent, tune = estimated_record(), make_sample_record(
        energy_emissions__methods__cpu={"method": "RAPL", "measured": True},
        energy_emissions__methods__ram={"method": "RAPL", "measured": True})
    evidence = [evidence_of(parent), evidence_of(tune)]
    text = ai_act.render(evidence, ai_act.compute_of(parameters=7e9, tokens=2e12))
    s = _json_block(text)
    assert s["training_compute"] == {"flops": pytest.approx(6 * 7e9 * 2e12),
                                     "basis": "estimated",
                                     "how": s["training_compute"]["how"]}
    assert "estimated: C ≈ 6 · N · D" in text
    assert s["energy_consumption"]["total_kwh"] == pytest.approx(2 * 0.000123)
    assert s["energy_consumption"]["known_or_estimated"] == "estimated"  # the parent's TDP
    assert s["training_time"]["total_s"] == 25.0
    for e in evidence:
        assert e.fingerprint_uri in text and e.mrv_id in text
        assert f"mrv verify {e.record_file_name}" in text
    assert "Annex XI, Section 1, point 2(d) and (e)" in text


def test_metered_energy_is_known_and_stated_flops_are_stated() -> None:
    metered = make_sample_record(
        energy_emissions__methods__cpu={"method": "RAPL", "measured": True},
        energy_emissions__methods__ram={"method": "RAPL", "measured": True})
    s = ai_act.section([evidence_of(metered)], ai_act.compute_of(training_flops=3.1e18))
    assert s["energy_consumption"]["known_or_estimated"] == "known (metered)"
    assert s["training_compute"]["basis"] == "stated"
    assert ai_act.compute_of().basis == "not stated"


def test_half_an_estimate_or_a_bad_number_is_refused() -> None:
    with pytest.raises(RecordError, match="both --parameters and --tokens"):
        ai_act.compute_of(parameters=7e9)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(RecordError, match="positive"):
            ai_act.compute_of(training_flops=bad)


def test_record_text_cannot_break_the_table() -> None:
    record = make_sample_record(energy_emissions__measurement_tool="Code|Carbon\n\x1b[2J")
    text = ai_act.render([evidence_of(record)], ai_act.compute_of())
    table = [line for line in text.splitlines() if line.startswith("| Method")]
    assert len(table) == 1 and "\x1b" not in text.split("```json")[0]
    assert table[0].count(" | ") == 1  # the pipe in the tool's name is escaped
