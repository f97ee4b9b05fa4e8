"""``mrv import boamps``: a BoAmps report (one exported by ``mrv export -f boamps``, and
Boavizta's own example's shape) becomes one record marked imported; hostile or invalid
files are refused in one line with nothing written; the same report twice is one record."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import EXIT_BAD_INPUT
from mrv_ml.record.schema import validate_record
from mrv_ml.reporting.standards import boamps
from mrv_ml.reporting.standards.evidence import evidence_of
from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV
from tests.support.records import make_sample_record


def _report() -> dict[str, Any]:
    return boamps.build_report(evidence_of(make_sample_record()), task_family="imageCls")


def _records(store: RecordStore) -> list[dict[str, Any]]:
    return [store.load(s.mrv_id) for s in store.list()]


def test_a_report_becomes_one_imported_record_once(mrv: MRV, data_dir: Path,
                                                   tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    code, out, err = mrv("import", "boamps", str(path), "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["duplicate"] is False
    [record] = _records(RecordStore(data_dir))
    validate_record(record)
    assert record["mrv_id"] == first["mrv_id"]
    ee = record["energy_emissions"]
    assert ee["energy_kwh"] == report["measures"][0]["powerConsumption"]
    assert ee["co2_kg"] == pytest.approx(ee["energy_kwh"] * 366.7 / 1000)
    assert ee["methods"]["cpu"]["method"] == "unknown (imported)"
    assert record["experiment"]["model_name"] == "SimpleCNN"
    assert record["timestamps"]["start_time"] == "2026-11-24T22:00:00.000000Z"
    p = record["provenance"]
    assert p["importer"] == "boamps" and p["kind"] == "imported" and p["source_row"] == 1
    assert p["unmapped_columns"]["task.taskFamily"] == "imageCls"
    # again: nothing new
    code, out, err = mrv("import", "boamps", str(path), "--json")
    assert code == 0 and json.loads(out) == dict(first, duplicate=True), err
    assert len(_records(RecordStore(data_dir))) == 1


def test_units_and_a_boavizta_shaped_measure(mrv: MRV, data_dir: Path, tmp_path: Path
                                             ) -> None:
    report = _report()
    report["measures"][0].update(unit="MJoule", powerConsumption=3.6,
                                 serverSideInference="both")
    path = tmp_path / "mj.json"
    path.write_text(json.dumps(report))
    assert mrv("import", "boamps", str(path))[0] == 0
    [record] = _records(RecordStore(data_dir))
    assert record["energy_emissions"]["energy_kwh"] == pytest.approx(1.0)
    assert record["energy_emissions"]["co2_kg"] == pytest.approx(0.3667)


def _bad(change: Any) -> bytes:
    report = _report()
    if callable(change):
        change(report)
        return json.dumps(report).encode()
    return change


def _two_measures(r: dict[str, Any]) -> None:
    r["measures"].append(copy.deepcopy(r["measures"][0]))


BAD = {
    "not json": (b"{not json", "invalid JSON"),
    "duplicate keys": (b'{"task": 1, "task": 2}', "duplicate"),
    "NaN": (json.dumps(_report()).replace('"powerConsumption": 0.000123',
                                          '"powerConsumption": NaN').encode(), "NaN"),
    "a list": (b"[]", "not an object"),
    "nested too deep": (b"[" * 5000 + b"]" * 5000, "nested"),
    "not BoAmps": (lambda r: r["header"].update(reportStatus="approved"),
                   "header/reportStatus"),
    "FLOPS": (lambda r: r["measures"][0].update(unit="petaFLOPS"), "is not an energy"),
    "negative energy": (lambda r: r["measures"][0].update(powerConsumption=-1.0),
                        "powerConsumption"),
    "two measures": (_two_measures, "2 measures"),
    "no intensity": (lambda r: r.pop("environment"), "powerSourceCarbonIntensity is missing"),
    "no time": (lambda r: r["measures"][0].pop("measurementDateTime"),
                "measurementDateTime is missing"),
    "bad time": (lambda r: r["measures"][0].update(measurementDateTime="yesterday"),
                 "is not YYYY-MM-DD HH:MM:SS"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_reports_are_refused_in_one_line_with_nothing_written(
        case: str, mrv: MRV, data_dir: Path, tmp_path: Path) -> None:
    change, expected = BAD[case]
    path = tmp_path / "report.json"
    path.write_bytes(_bad(change))
    code, out, err = mrv("import", "boamps", str(path))
    assert code == EXIT_BAD_INPUT, out + err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not data_dir.exists() or not list(data_dir.glob("MRV-*"))
