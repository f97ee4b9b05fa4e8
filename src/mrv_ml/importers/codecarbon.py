"""Importing measurements mrv-ml did not take: CodeCarbon's ``emissions.csv``.

Each data row of the CSV becomes one MRV record (a new ``mrv_id``) that says, in its
``provenance`` section, that CodeCarbon measured the run and mrv-ml only read the row: the
file's SHA-256, the row, the row's own fingerprint, when it was imported. Columns with a
place in the record go there; the others are kept verbatim in
``provenance.unmapped_columns``; what the CSV does not say stays ``null`` (how each
component was measured is ``"unknown (imported)"``, never a guess).

The whole file is read and every row checked and turned into a valid record before the
first one is written: a bad row (a missing value, NaN, a negative energy, a row with too
many fields) stops the import with one line naming the row and the column, and nothing is
written. Importing the same rows again adds nothing: each record keeps its row's
fingerprint (``provenance.source_row_sha256``, over the row's parsed values, so the file
CodeCarbon keeps appending to can be imported again and only the new rows come in).

CodeCarbon writes its ``timestamp`` (the run's end, to the second) in the local time of
the machine that ran it, without an offset; the importer reads it in the time zone it is
given (default: this machine's) and writes which one into the provenance.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml._version import __version__
from mrv_ml.errors import ImportFileError, MRVError
from mrv_ml.record.hashing import canonical_bytes
from mrv_ml.record.schema import SCHEMA_VERSION, new_mrv_id, validate_record
from mrv_ml.record.strictjson import read_file_bytes

if TYPE_CHECKING:
    from mrv_ml.anchoring.single import AnchorOutcome
    from mrv_ml.config import Settings
    from mrv_ml.storage.store import RecordStore

#: ``provenance.importer`` of records made from CodeCarbon's CSV; also their tag
#: ``imported``, so that ``mrv list --tag imported=codecarbon-csv`` lists them.
IMPORTER = "codecarbon-csv"
#: The method of a component whose measurement the CSV does not describe.
UNKNOWN_METHOD = "unknown (imported)"
#: Columns every CodeCarbon version wrote and without which a row is no measurement.
REQUIRED_COLUMNS = ("timestamp", "duration", "emissions", "energy_consumed")
#: Why a freshly imported record is pending (its sidecar says so until it is anchored).
PENDING_REASON = "imported from CodeCarbon's emissions.csv; run mrv anchor (or mrv anchor --batch)"

# Figures that cannot be negative (energies, emissions, powers, sizes, shares).
_NON_NEGATIVE = frozenset({
    "duration", "emissions", "emissions_rate", "cpu_power", "gpu_power", "ram_power",
    "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "water_consumed",
    "ram_total_size", "cpu_utilization_percent", "gpu_utilization_percent",
    "ram_utilization_percent", "ram_used_gb", "wue", "pue"})
_SIGNED = frozenset({"longitude", "latitude"})
_COUNTS = frozenset({"cpu_count", "gpu_count"})
# Columns the record has a place for; every other non-empty value goes to unmapped_columns.
_MAPPED = frozenset({
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "country_iso_code", "region",
    "os", "python_version", "codecarbon_version", "cpu_count", "cpu_model", "gpu_count",
    "gpu_model", "ram_total_size", "pue"})
_GPU_PART = re.compile(r"^\s*(\d+)\s*x\s*(.+?)\s*$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"))
_MAX_SHOWN = 40  # characters of a bad value quoted in a message


def utc_text(moment: datetime) -> str:
    """A moment as records write times: RFC 3339 in UTC, microseconds, ``Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shown(text: str) -> str:
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...")


# --- reading the file --------------------------------------------------------------------


def decode_csv_bytes(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used). Without ``encoding``: UTF-8, or UTF-8/UTF-16 with a byte
    order mark; anything else is refused (a latin-1 file cannot be told from another
    8-bit encoding: the user names it with ``encoding``)."""
    if not data.strip():
        raise ImportFileError(f"{source}: empty file: no header and no rows")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportFileError(f"{source}: unknown encoding {encoding!r}") from None
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except UnicodeDecodeError as e:
            raise ImportFileError(f"{source}: not {encoding} (byte {data[e.start]:#04x} at "
                                  f"offset {e.start})") from None
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name).removeprefix("\ufeff"), name
            except UnicodeDecodeError as e:
                raise ImportFileError(f"{source}: starts with a {name} byte order mark but is "
                                      f"not {name} (offset {e.start})") from None
    if b"\x00" in data[:200]:
        raise ImportFileError(f"{source}: looks like UTF-16 without a byte order mark; "
                              "give the encoding (--encoding utf-16-le or utf-16-be)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ImportFileError(
            f"{source}: not UTF-8 (byte {data[e.start]:#04x} on line {line}); CodeCarbon "
            "writes UTF-8: if the file was converted, give its encoding "
            "(--encoding latin-1)") from None


def parse_timezone(name: str) -> tzinfo | None:
    """``"local"`` (``None``: this machine's zone at each date), ``"UTC"`` or ``±HH:MM``."""
    if name.lower() == "local":
        return None
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    match = _OFFSET.match(name)
    if match is None or int(match.group(2)) > 23 or int(match.group(3)) > 59:
        raise ImportFileError(f"time zone {name!r}: expected local, UTC or an offset like +02:00")
    sign = -1 if match.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def _zone_text(moment: datetime, assumed: tzinfo | None) -> str:
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    text = f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"local ({text})" if assumed is None else text


# --- one row -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeCarbonRow:
    """One data row of ``emissions.csv``, checked. ``row`` counts data rows from 1 (the
    header is not one); ``line`` is the file's line where the row starts. ``values`` are
    the parsed cells (numbers as floats or ints, text stripped, empty cells absent)."""

    row: int
    line: int
    values: Mapping[str, float | int | str]
    end_time: datetime  # aware
    timestamp_zone: str

    @classmethod
    def parse(cls, header: tuple[str, ...], cells: list[str], *, row: int, line: int,
              zone: tzinfo | None) -> CodeCarbonRow:
        where = f"row {row} (line {line})"
        if len(cells) != len(header):
            raise ImportFileError(f"{where}: {len(cells)} fields, the header has {len(header)}")
        values: dict[str, float | int | str] = {}
        for name, cell in zip(header, cells, strict=True):
            text = cell.strip()
            if not text:
                if name in REQUIRED_COLUMNS:
                    raise ImportFileError(f"{where}, column {name}: empty (required)")
                continue
            values[name] = _cell(name, text, where)
        end = _end_time(str(values["timestamp"]), zone, where)
        return cls(row, line, values, end, _zone_text(end, zone))

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        return float(value) if isinstance(value, (int, float)) else None

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    @property
    def sha256(self) -> str:
        """The row's fingerprint: SHA-256 of its parsed values (RFC 8785), so "8" and
        "8.0", or a re-saved file's other quoting, are the same row."""
        return hashlib.sha256(canonical_bytes(dict(self.values))).hexdigest()

    def to_record(self, *, file_name: str, file_sha256: str, experiment: str | None,
                  imported_at: str) -> dict[str, Any]:
        """The MRV record of this row (schema 1.1, a new ``mrv_id``, not validated here)."""
        duration_s = self.number("duration") or 0.0
        energy_kwh = self.number("energy_consumed") or 0.0
        co2_kg = self.number("emissions") or 0.0
        gpu_count, gpus = self._gpus()
        unknown = {"method": UNKNOWN_METHOD, "measured": False}
        gpu_method = ({"method": "none (no GPU in CodeCarbon's row)", "measured": False}
                      if gpu_count == 0 and "gpu_count" in self.values else dict(unknown))
        cpu_count = self.values.get("cpu_count")
        name = experiment or self.text("project_name") or "codecarbon-import"
        return {
            "schema_version": SCHEMA_VERSION,
            "mrv_id": new_mrv_id(),
            "experiment": {
                "name": name, "model_name": "Unknown", "dataset_name": "Unknown",
                "framework": None,
                "description": f"Imported from CodeCarbon's emissions.csv ({file_name}, row "
                               f"{self.row}); mrv-ml did not watch this run",
                "tags": {"imported": IMPORTER},
            },
            "training": {"epochs": None, "batch_size": None, "command": None, "details": {}},
            # CodeCarbon writes a row when its tracker stops: it does not know how the run
            # ended, and a row is only ever written for a run that got that far.
            "outcome": {"status": "completed", "error_type": None, "error_message": None,
                        "exit_code": None},
            "hardware": {
                "cpu_model": self.text("cpu_model"),
                "cpu_physical_cores": None,
                "cpu_logical_cores": cpu_count if isinstance(cpu_count, int) and cpu_count else None,
                "ram_gb": self.number("ram_total_size"),
                "gpu_count": gpu_count, "gpus": gpus,
                "os": self.text("os"), "machine": None,
            },
            "energy_emissions": {
                "measurement_tool": "CodeCarbon",
                "measurement_tool_version": self.text("codecarbon_version"),
                "measurement_status": "measured",
                "measurement_error": None,
                "energy_kwh": energy_kwh,
                "cpu_energy_kwh": self.number("cpu_energy"),
                "gpu_energy_kwh": self.number("gpu_energy"),
                "ram_energy_kwh": self.number("ram_energy"),
                "co2_kg": co2_kg,
                "duration_seconds": duration_s,
                # CodeCarbon's emissions are its energy times the grid's intensity: the
                # quotient is that intensity exactly, not an estimate of ours.
                "carbon_intensity_g_per_kwh": co2_kg * 1000.0 / energy_kwh if energy_kwh > 0
                else None,
                "pue": self.number("pue"),
                "country_iso_code": self.text("country_iso_code"),
                "region": self.text("region"),
                "location_source": None,
                "methods": {"cpu": dict(unknown), "gpu": gpu_method, "ram": dict(unknown)},
                "power_series": None,
            },
            "software": {"python": self.text("python_version") or "unknown",
                         "mrv_ml": __version__, "codecarbon": self.text("codecarbon_version"),
                         "frameworks": {}, "os": self.text("os")},
            "source": None,
            "distributed": None,
            "timestamps": {"start_time": utc_text(self.end_time - timedelta(seconds=duration_s)),
                           "end_time": utc_text(self.end_time)},
            "provenance": {
                "kind": "imported",
                "importer": IMPORTER,
                "importer_version": __version__,
                "measured_by": "CodeCarbon",
                "source_file_name": file_name,
                "source_file_sha256": file_sha256,
                "source_row": self.row,
                "source_row_sha256": self.sha256,
                "source_timestamp": str(self.values["timestamp"]),
                "timestamp_timezone": self.timestamp_zone,
                "imported_at": imported_at,
                "codecarbon_run_id": self.text("run_id"),
                "codecarbon_experiment_id": self.text("experiment_id"),
                "codecarbon_project_name": self.text("project_name"),
                "unmapped_columns": {k: str(v) for k, v in self.values.items()
                                     if k not in _MAPPED},
            },
        }

    def _gpus(self) -> tuple[int, list[dict[str, Any]]]:
        """(gpu_count, gpus) from ``gpu_count`` and CodeCarbon's ``"2 x NAME"`` model text."""
        count = self.values.get("gpu_count")
        model = self.text("gpu_model")
        gpus: list[dict[str, Any]] = []
        if model:
            parts = [_GPU_PART.match(p) for p in model.split(",")]
            if all(parts):
                for m in parts:
                    assert m is not None
                    gpus += [{"name": m.group(2), "memory_gb": None}] * int(m.group(1))
            else:
                gpus = [{"name": model, "memory_gb": None}] * (int(count) if count else 1)
        gpus = [dict(g, index=i) for i, g in enumerate(gpus)]
        return (int(count) if isinstance(count, int) else len(gpus)), gpus


def _cell(name: str, text: str, where: str) -> float | int | str:
    if name not in _NON_NEGATIVE and name not in _SIGNED and name not in _COUNTS:
        return text
    try:
        number = float(text)
    except ValueError:
        raise ImportFileError(f"{where}, column {name}: {_shown(text)} is not a number") from None
    if not math.isfinite(number):
        raise ImportFileError(f"{where}, column {name}: {text} is not a measurement "
                              "(NaN or infinity)")
    if number < 0 and name not in _SIGNED:
        raise ImportFileError(f"{where}, column {name}: {text} is negative")
    if name == "pue" and number < 1:
        raise ImportFileError(f"{where}, column pue: {text} is below 1 (a PUE is at least 1)")
    if name in _COUNTS:
        if not number.is_integer():
            raise ImportFileError(f"{where}, column {name}: {text} is not a whole number")
        return int(number)
    return number


def _end_time(text: str, zone: tzinfo | None, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        raise ImportFileError(f"{where}, column timestamp: {_shown(text)} is not a date and "
                              "time (CodeCarbon writes 2024-04-13T21:30:53)") from None
    if moment.tzinfo is None:  # CodeCarbon's own: local time of the machine that ran it
        moment = moment.astimezone() if zone is None else moment.replace(tzinfo=zone)
    return moment


# --- the file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeCarbonFile:
    """A checked ``emissions.csv``: its rows, and the rows refused (only when asked to
    skip bad rows; otherwise the first bad row raises)."""

    name: str
    sha256: str
    encoding: str
    columns: tuple[str, ...]
    rows: list[CodeCarbonRow]
    bad_rows: list[str] = field(default_factory=list)


def read_codecarbon_csv(path: str | Path, *, encoding: str | None = None,
                        time_zone: str = "local", skip_bad_rows: bool = False) -> CodeCarbonFile:
    """Read and check CodeCarbon's CSV; :class:`ImportFileError` names the problem (the
    row and the column). With ``skip_bad_rows`` a bad row is listed in ``bad_rows`` and
    left out instead; a file with no usable row is refused either way."""
    p = Path(path)
    data = read_file_bytes(p)
    text, used = decode_csv_bytes(data, str(p), encoding)
    zone = parse_timezone(time_zone)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = tuple(c.strip() for c in next(reader))
    except csv.Error as e:
        raise ImportFileError(f"{p}: line 1: not CSV ({e})") from None
    except StopIteration:
        raise ImportFileError(f"{p}: empty file: no header and no rows") from None
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise ImportFileError(f"{p}: column {', '.join(duplicated)} appears twice in the header")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportFileError(
            f"{p}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (is this CodeCarbon's emissions.csv?)")
    rows: list[CodeCarbonRow] = []
    bad: list[str] = []
    number = 0
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise ImportFileError(f"{p}: line {line}: not CSV ({e})") from None
        if not cells or all(not c.strip() for c in cells):
            continue  # a blank line (CodeCarbon's file ends with one)
        number += 1
        try:
            rows.append(CodeCarbonRow.parse(header, cells, row=number, line=line, zone=zone))
        except ImportFileError as e:
            if not skip_bad_rows:
                raise e.with_prefix(str(p)) from None
            bad.append(str(e))
    if number == 0:
        raise ImportFileError(f"{p}: a header and no rows: nothing to import")
    if not rows:
        raise ImportFileError(f"{p}: no usable row ({len(bad)} bad); the first: {bad[0]}")
    return CodeCarbonFile(p.name, hashlib.sha256(data).hexdigest(), used, header, rows, bad)


# --- into the store ----------------------------------------------------------------------


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run``, would do). ``imported``: (row, mrv_id);
    ``duplicates``: (row, the ID already holding that row); ``outcomes``: anchoring's."""

    source: CodeCarbonFile
    imported: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    outcomes: list[AnchorOutcome] = field(default_factory=list)
    dry_run: bool = False


def imported_rows(store: RecordStore, importer: str = IMPORTER) -> dict[str, str]:
    """``source_row_sha256`` → ``mrv_id`` of every record imported into ``store`` by
    ``importer`` (a CodeCarbon CSV's rows, a BoAmps report). Only records tagged
    ``imported`` are opened (the listing's index has the tags), so a large store of tracked
    runs costs one listing."""
    from mrv_ml.storage.store import UNREADABLE

    found: dict[str, str] = {}
    for summary in store.list():
        if summary.status == UNREADABLE or summary.tags.get("imported") != importer:
            continue
        try:
            record = store.load(summary.mrv_id)
        except MRVError:
            continue  # an unusable record holds no row we could recognise
        provenance = record.get("provenance")
        if isinstance(provenance, dict) and isinstance(provenance.get("source_row_sha256"), str):
            found.setdefault(provenance["source_row_sha256"], summary.mrv_id)
    return found


def import_codecarbon(path: str | Path, store: RecordStore, *, experiment: str | None = None,
                      anchor: bool = False, settings: Settings | None = None,
                      dry_run: bool = False, encoding: str | None = None,
                      time_zone: str = "local", skip_bad_rows: bool = False) -> ImportResult:
    """Import every new row of CodeCarbon's ``emissions.csv`` into ``store``.

    All rows are checked and all records built and validated before the first is written;
    each record is then stored atomically (never overwriting) with a pending proof
    sidecar, and with ``anchor`` anchored the way ``mrv anchor`` does (through the
    registry service when one is configured). Rows already imported are skipped."""
    from datetime import datetime as _dt

    source = read_codecarbon_csv(path, encoding=encoding, time_zone=time_zone,
                                 skip_bad_rows=skip_bad_rows)
    result = ImportResult(source, dry_run=dry_run)
    seen = imported_rows(store)
    imported_at = _dt.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    todo: list[tuple[int, dict[str, Any]]] = []
    for row in source.rows:
        digest = row.sha256
        if digest in seen:
            result.duplicates.append((row.row, seen[digest]))
            continue
        record = row.to_record(file_name=source.name, file_sha256=source.sha256,
                               experiment=experiment, imported_at=imported_at)
        try:
            validate_record(record)
        except MRVError as e:
            raise ImportFileError(f"{source.name}: row {row.row} (line {row.line}): {e}") from None
        seen[digest] = record["mrv_id"]  # the same row twice in one file is one record
        todo.append((row.row, record))
    if dry_run:
        result.imported = [(n, r["mrv_id"]) for n, r in todo]
        return result
    from mrv_ml.anchoring.single import mark_pending

    for n, record in todo:
        store.save(record)
        mark_pending(store, record["mrv_id"], PENDING_REASON)
        result.imported.append((n, record["mrv_id"]))
    if anchor and result.imported:
        result.outcomes = _anchor(store, settings, [i for _, i in result.imported])
    return result


def _anchor(store: RecordStore, settings: Settings | None, ids: list[str]) -> list[AnchorOutcome]:
    from mrv_ml.anchoring.publish import publish
    from mrv_ml.config import load_settings

    return publish(store, settings or load_settings({"data_dir": str(store.root)}), ids)
