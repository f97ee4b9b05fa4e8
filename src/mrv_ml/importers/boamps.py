"""Importing a BoAmps report (Boavizta's AI energy-report format): one record, marked as
imported, as CodeCarbon's CSV rows are (:mod:`mrv_ml.importers.codecarbon`).

The file is read strictly (no duplicate keys, no NaN, bounded size and nesting) and
validated against the vendored BoAmps schemas (:func:`~mrv_ml.reporting.standards.boamps.
validate_report`) before anything is written. Its one measure is the task's energy
(``powerConsumption``, in ``unit`` when the report names one, else kWh as CodeCarbon's
BoAmps output writes it; a FLOPS unit is not an energy and is refused); a report with
several measures does not say which is the task's energy and is refused. BoAmps holds no
CO2e: it is the energy times ``environment.powerSourceCarbonIntensity``, and a report
without that intensity is refused (a record states its CO2e; it is never guessed). How
each component was measured is ``"unknown (imported)"``. A ``$hash`` is not checked (the
publisher key that would check it is the report's own claim): the provenance says it was
there. The report's fingerprint
(SHA-256 of its RFC 8785 bytes) is ``provenance.source_row_sha256``: importing it again adds
nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml._version import __version__
from mrv_ml.errors import ImportFileError, MRVError
from mrv_ml.importers.codecarbon import UNKNOWN_METHOD, imported_rows, utc_text
from mrv_ml.record.hashing import canonical_bytes
from mrv_ml.record.schema import SCHEMA_VERSION, new_mrv_id, validate_record
from mrv_ml.record.strictjson import parse_json_strict, read_file_bytes
from mrv_ml.units import finite_number

if TYPE_CHECKING:
    from mrv_ml.storage.store import RecordStore

__all__ = ["IMPORTER", "ImportedReport", "import_boamps", "report_to_record"]

IMPORTER = "boamps"
PENDING_REASON = "imported from a BoAmps report; run mrv anchor (or mrv anchor --batch)"
#: kWh per unit of BoAmps' energy units (``measure.unit``).
KWH_PER_UNIT = {"mWh": 1e-6, "Wh": 1e-3, "kWh": 1.0, "MWh": 1e3, "GWh": 1e6,
                "kJoule": 1 / 3600, "MJoule": 1 / 3.6, "GJoule": 1e3 / 3.6,
                "TJoule": 1e6 / 3.6, "PJoule": 1e9 / 3.6, "BTU": 1055.06 / 3.6e6}


def _text(value: Any, most: int = 500) -> str | None:
    return value[:most] if isinstance(value, str) and value.strip() else None


def _start(text: Any, where: str) -> datetime | None:
    """BoAmps' ``YYYY-MM-DD HH:MM:SS`` (no zone: read as UTC, and the provenance says so)."""
    if text is None:
        return None
    try:
        moment = datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ImportFileError(f"{where}: measurementDateTime {str(text)[:40]!r} is not "
                              "YYYY-MM-DD HH:MM:SS") from None
    return moment.replace(tzinfo=timezone.utc)


def _hardware(report: Mapping[str, Any]) -> dict[str, Any]:
    parts = (report.get("infrastructure") or {}).get("components") or []
    cpu = next((p for p in parts if p.get("componentType") == "cpu"), None)
    ram = next((p for p in parts if p.get("componentType") == "ram"), None)
    gpus: list[dict[str, Any]] = []
    for p in parts:
        if p.get("componentType") == "gpu":
            memory = finite_number(p.get("memorySize"))
            count = p.get("nbComponent") if isinstance(p.get("nbComponent"), int) else 1
            gpus += [{"name": _text(p.get("componentName")) or "GPU", "memory_gb": memory}
                     for _ in range(max(0, min(count, 1024)))]
    ram_gb = finite_number(ram.get("memorySize")) if ram else None
    if ram_gb is not None and isinstance(ram.get("nbComponent"), int):  # type: ignore[union-attr]
        ram_gb *= ram["nbComponent"]  # type: ignore[index]
    return {"cpu_model": _text(cpu.get("componentName")) if cpu else None,
            "cpu_physical_cores": None, "cpu_logical_cores": None, "ram_gb": ram_gb,
            "gpu_count": len(gpus), "gpus": [dict(g, index=i) for i, g in enumerate(gpus)],
            "os": _text((report.get("system") or {}).get("os")), "machine": None}


def report_to_record(report: Mapping[str, Any], *, file_name: str, file_sha256: str,
                     imported_at: str) -> dict[str, Any]:
    """The MRV record of a valid BoAmps ``report`` (schema 1.1, a new ``mrv_id``)."""
    where = file_name
    measures = report["measures"]
    if len(measures) != 1:
        raise ImportFileError(f"{where}: {len(measures)} measures: a BoAmps report does not say "
                              "which is the task's energy; import a report with one")
    measure = measures[0]
    unit = measure.get("unit", "kWh")
    if unit not in KWH_PER_UNIT:
        raise ImportFileError(f"{where}: measures[0].unit {str(unit)[:20]!r} is not an energy "
                              f"({', '.join(KWH_PER_UNIT)})")
    power = finite_number(measure.get("powerConsumption"))
    if power is None or power < 0:
        raise ImportFileError(f"{where}: measures[0].powerConsumption is not an energy >= 0")
    energy_kwh = power * KWH_PER_UNIT[unit]
    duration = finite_number(measure.get("measurementDuration"))
    if duration is not None and duration < 0:
        raise ImportFileError(f"{where}: measures[0].measurementDuration is negative")
    env = report.get("environment") or {}
    intensity = finite_number(env.get("powerSourceCarbonIntensity"))
    if intensity is None or intensity < 0:  # a record states its CO2e: never a guess
        raise ImportFileError(f"{where}: environment.powerSourceCarbonIntensity is "
                              f"{'negative' if intensity is not None else 'missing'}: BoAmps "
                              "holds no CO2e, and a record needs the grid's intensity for it")
    start = _start(measure.get("measurementDateTime"), where)
    if start is None:  # a record is of a run at a time: never a made-up one
        raise ImportFileError(f"{where}: measures[0].measurementDateTime is missing: a record "
                              "needs the time of the run")
    task = report["task"]
    algorithm = task["algorithms"][0]
    model = _text(algorithm.get("algorithmName")) or _text(
        algorithm.get("foundationModelName")) or "Unknown"
    tool = _text(measure.get("measurementMethod"), 100) or "unknown"
    unknown = {"method": UNKNOWN_METHOD, "measured": False}
    header = report.get("header") or {}
    unmapped = {"header.reportId": header.get("reportId"),
                "header.publisher.name": (header.get("publisher") or {}).get("name"),
                "task.taskStage": task.get("taskStage"),
                "task.taskFamily": task.get("taskFamily"),
                "quality": report.get("quality"),
                "$hash": "present, not checked" if "$hash" in report else None}
    end = start + timedelta(seconds=duration or 0.0)
    return {
        "schema_version": SCHEMA_VERSION, "mrv_id": new_mrv_id(),
        "experiment": {"name": model, "model_name": model, "dataset_name": "Unknown",
                       "framework": _text(algorithm.get("framework"), 100),
                       "description": f"Imported from a BoAmps report ({file_name}); mrv-ml "
                                      "did not watch this run",
                       "tags": {"imported": IMPORTER}},
        "training": {"epochs": algorithm.get("epochsNumber")
                     if isinstance(algorithm.get("epochsNumber"), int) else None,
                     "batch_size": None, "command": None, "details": {}},
        "outcome": {"status": "completed", "error_type": None, "error_message": None,
                    "exit_code": None},
        "hardware": _hardware(report),
        "energy_emissions": {
            "measurement_tool": tool,
            "measurement_tool_version": _text(measure.get("version"), 100),
            "measurement_status": "measured", "measurement_error": None,
            "energy_kwh": energy_kwh, "cpu_energy_kwh": None, "gpu_energy_kwh": None,
            "ram_energy_kwh": None,
            "co2_kg": energy_kwh * intensity / 1000,
            "duration_seconds": duration, "carbon_intensity_g_per_kwh": intensity,
            "pue": None, "country_iso_code": _text(env.get("country"), 100),
            "region": _text(env.get("location"), 200), "location_source": None,
            "methods": {"cpu": dict(unknown), "gpu": dict(unknown), "ram": dict(unknown)},
            "power_series": None},
        "software": {"python": _text((report.get("software") or {}).get("version"), 50)
                     or "unknown", "mrv_ml": __version__, "codecarbon": None,
                     "frameworks": {}, "os": _text((report.get("system") or {}).get("os"))},
        "source": None, "distributed": None,
        "timestamps": {"start_time": utc_text(start), "end_time": utc_text(end)},
        "provenance": {
            "kind": "imported", "importer": IMPORTER, "importer_version": __version__,
            "measured_by": tool, "source_file_name": file_name,
            "source_file_sha256": file_sha256, "source_row": 1,
            "source_row_sha256": hashlib.sha256(canonical_bytes(report)).hexdigest(),
            "source_timestamp": _text(measure.get("measurementDateTime"), 64),
            "timestamp_timezone": "UTC (BoAmps times carry no zone)",
            "imported_at": imported_at,
            "unmapped_columns": {k: str(v)[:500] for k, v in unmapped.items()
                                 if v is not None}},
    }


@dataclass(frozen=True)
class ImportedReport:
    mrv_id: str
    duplicate: bool  # already imported: ``mrv_id`` is the record that holds it
    dry_run: bool = False


def import_boamps(path: str | Path, store: RecordStore, *, dry_run: bool = False
                  ) -> ImportedReport:
    """Import the BoAmps report at ``path`` into ``store`` as one pending record, unless it
    was imported before. Nothing is written unless the report is valid."""
    from mrv_ml.reporting.standards.boamps import validate_report

    p = Path(path)
    data = read_file_bytes(p)
    try:
        report = parse_json_strict(data, p.name)
    except MRVError as e:  # its message names the file
        raise ImportFileError(str(e)) from None
    if not isinstance(report, dict):
        raise ImportFileError(f"{p.name}: not a BoAmps report (the JSON is not an object)")
    try:
        validate_report(report)
    except MRVError as e:
        raise ImportFileError(f"{p.name}: {e}") from None
    record = report_to_record(report, file_name=p.name,
                              file_sha256=hashlib.sha256(data).hexdigest(),
                              imported_at=datetime.now(timezone.utc).strftime(
                                  "%Y-%m-%dT%H:%M:%SZ"))
    seen = imported_rows(store, IMPORTER).get(record["provenance"]["source_row_sha256"])
    if seen is not None:
        return ImportedReport(seen, duplicate=True, dry_run=dry_run)
    try:
        validate_record(record)
    except MRVError as e:
        raise ImportFileError(f"{p.name}: {e}") from None
    if not dry_run:
        from mrv_ml.anchoring.single import mark_pending

        store.save(record)
        mark_pending(store, record["mrv_id"], PENDING_REASON)
    return ImportedReport(record["mrv_id"], duplicate=False, dry_run=dry_run)
