"""``mrv import codecarbon``: CodeCarbon's emissions.csv (written here by real CodeCarbon,
and with the column sets of older versions) becomes records that say they were imported,
validate, hash, anchor on the embedded chain and verify; bad files are refused in one line
with nothing written."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import EXIT_BAD_INPUT, ImportFileError
from mrv_ml.importers.codecarbon import (
    IMPORTER,
    UNKNOWN_METHOD,
    import_codecarbon,
    read_codecarbon_csv,
)
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.schema import validate_record
from mrv_ml.reporting.one_record import summary_rows
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.verdict import VerdictStatus
from mrv_ml.verification.verifier import verify
from tests.support.cli import MRV

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def real_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """emissions.csv as the installed CodeCarbon writes it, around a short busy loop."""
    from codecarbon import OfflineEmissionsTracker

    out = tmp_path_factory.mktemp("codecarbon")
    tracker = OfflineEmissionsTracker(save_to_file=True, output_dir=str(out),
                                      country_iso_code="FRA", measure_power_secs=1,
                                      log_level="error", project_name="busy-loop")
    tracker.start()
    deadline, n = time.monotonic() + 1.5, 0
    while time.monotonic() < deadline:
        n += 1
    tracker.stop()
    return out / "emissions.csv"


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _records(store: RecordStore) -> list[dict[str, Any]]:
    return [store.load(s.mrv_id) for s in store.list()]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


# --- real CodeCarbon ---------------------------------------------------------------------


def test_real_codecarbon_row_becomes_a_verified_imported_record(real_csv: Path,
                                                                 data_dir: Path) -> None:
    [row] = _csv_rows(real_csv)
    store = RecordStore(data_dir)
    result = import_codecarbon(real_csv, store, anchor=True, time_zone="UTC")
    [(n, mrv_id)] = result.imported
    assert n == 1 and [o.anchored for o in result.outcomes] == [True]
    record = store.load(mrv_id)
    validate_record(record)
    assert len(compute_hash(record)) == 64
    verdict = verify(store.path_for(mrv_id))
    assert verdict.status is VerdictStatus.VALID and verdict.trust == "local only"

    ee = record["energy_emissions"]
    assert ee["energy_kwh"] == float(row["energy_consumed"])
    assert ee["co2_kg"] == float(row["emissions"])
    assert ee["duration_seconds"] == float(row["duration"])
    for c in ("cpu", "gpu", "ram"):
        assert ee[f"{c}_energy_kwh"] == float(row[f"{c}_energy"])
    assert ee["measurement_tool_version"] == row["codecarbon_version"] == record["software"][
        "codecarbon"]
    assert ee["country_iso_code"] == "FRA" and ee["pue"] == float(row["pue"])
    assert ee["carbon_intensity_g_per_kwh"] == pytest.approx(
        float(row["emissions"]) * 1000 / float(row["energy_consumed"]))
    assert ee["methods"]["cpu"] == {"method": UNKNOWN_METHOD, "measured": False}
    assert ee["location_source"] is None and ee["power_series"] is None
    hw = record["hardware"]
    assert hw["cpu_model"] == row["cpu_model"] and hw["cpu_logical_cores"] == int(
        float(row["cpu_count"]))
    assert hw["ram_gb"] == float(row["ram_total_size"]) and hw["os"] == row["os"]
    assert record["software"]["python"] == row["python_version"]
    # CodeCarbon's timestamp is the end; the start is the end minus the duration
    end = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=timezone.utc)
    assert record["timestamps"]["end_time"] == end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    start = end - timedelta(seconds=float(row["duration"]))
    assert record["timestamps"]["start_time"] == start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    p = record["provenance"]
    assert p["kind"] == "imported" and p["importer"] == IMPORTER
    assert p["measured_by"] == "CodeCarbon" and p["source_row"] == 1
    assert p["source_file_sha256"] == result.source.sha256
    assert p["codecarbon_run_id"] == row["run_id"] and p["codecarbon_project_name"] == "busy-loop"
    assert p["codecarbon_experiment_id"] == row["experiment_id"]
    assert p["source_timestamp"] == row["timestamp"] and p["timestamp_timezone"] == "UTC+00:00"
    assert p["unmapped_columns"]["cpu_power"] == row["cpu_power"]
    assert p["unmapped_columns"]["tracking_mode"] == row["tracking_mode"]
    assert record["experiment"]["name"] == "busy-loop"
    assert record["experiment"]["tags"] == {"imported": IMPORTER}
    assert record["mrv_id"] != row["run_id"]


def test_cli_imports_once_then_skips_and_anchors_later(real_csv: Path, data_dir: Path,
                                                       mrv: MRV, tmp_path: Path) -> None:
    code, out, err = mrv("import", "codecarbon", str(real_csv), "--experiment", "resnet-sweep")
    assert code == 0, err
    assert "1 of 1 rows imported" in out and "mrv anchor --batch" in out
    store = RecordStore(data_dir)
    [summary] = store.list()
    assert summary.anchor_state == "pending" and summary.experiment == "resnet-sweep"

    # the same file again: nothing new
    code, out, _ = mrv("import", "codecarbon", str(real_csv))
    assert code == 0 and "already imported as " + summary.mrv_id in out
    assert len(store.list()) == 1

    # CodeCarbon appends to its file: only the new row comes in
    grown = _copy(real_csv, tmp_path / "emissions.csv")
    [row] = _csv_rows(real_csv)
    row.update(run_id="00000000-0000-4000-8000-000000000001", timestamp="2026-01-02T03:04:05")
    with grown.open("a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, fieldnames=list(row)).writerow(row)
    code, out, _ = mrv("import", "codecarbon", str(grown), "--json")
    answer = json.loads(out)
    assert code == 0 and [d["row"] for d in answer["imported"]] == [2]
    assert answer["duplicates"] == [{"row": 1, "mrv_id": summary.mrv_id}]
    assert len(store.list()) == 2
    code, out, _ = mrv("list", "--tag", f"imported={IMPORTER}", "--json")
    assert code == 0 and len(json.loads(out)) == 2

    code, out, err = mrv("anchor", "--batch")
    assert code == 0, err
    for s in store.list():
        code, out, err = mrv("verify", str(s.path))
        assert code == 0 and "VALID" in out, err


def test_cli_anchor_option_and_show(real_csv: Path, data_dir: Path, mrv: MRV) -> None:
    code, out, err = mrv("import", "codecarbon", str(real_csv), "--anchor")
    assert code == 0, err
    assert "anchored in tx 0x" in out
    [summary] = RecordStore(data_dir).list()
    assert summary.anchor_state == "anchored"
    code, out, _ = mrv("show", summary.mrv_id)
    assert code == 0
    assert "imported from CodeCarbon's emissions.csv (emissions.csv, row 1" in out
    assert "mrv-ml did not watch" in out and "unknown (imported) (estimated)" not in out


def test_dry_run_writes_nothing(real_csv: Path, data_dir: Path, mrv: MRV) -> None:
    code, out, _ = mrv("import", "codecarbon", str(real_csv), "--dry-run")
    assert code == 0 and "row 1: would import as MRV-" in out
    assert not data_dir.exists() or not list(data_dir.iterdir())


# --- older CodeCarbon versions -----------------------------------------------------------

# Column sets of earlier releases (names only): 1.x (2022, no codecarbon_version, no pue),
# 2.x (2024: codecarbon_version and pue, no experiment_id), and an early file with only the
# totals and the location.
V1_HEADER = ("timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,"
             "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,"
             "country_iso_code,region,cloud_provider,cloud_region,os,python_version,cpu_count,"
             "cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,"
             "on_cloud")
V1_ROW = ("2022-11-26T10:32:27,codecarbon,cc2e23fa-52a8-4ea3-a4dc-f039451bcdc4,3600.5,0.125,"
          "3.47e-05,42.5,250.0,11.9,0.0425,0.25,0.0119,0.3044,Germany,DEU,,,,"
          "Linux-5.15.0-x86_64-with-glibc2.31,3.8.10,16,Intel(R) Xeon(R) Gold 6226R CPU @ 2.90GHz,"
          "2,2 x Tesla V100S-PCIE-32GB,8.7,49.4,62.5,machine,N")
V2_HEADER = ("timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,"
             "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,"
             "country_iso_code,region,cloud_provider,cloud_region,os,python_version,"
             "codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,"
             "ram_total_size,tracking_mode,on_cloud,pue")
V2_ROW = ("2024-04-13T21:30:53,3CABTP,2012a217-6530-46c0-b1d2-9c3929fb2397,1.3259670734405518,"
          "1.5712467392432068e-07,1.18e-07,7.5,0.0,5.9,2.76e-06,0.0,2.17e-06,4.93e-06,Canada,CAN,"
          "quebec,gcp,northamerica-northeast1,Windows-10-10.0.22631-SP0,3.11.5,2.3.4,8,"
          "AMD Ryzen 7 5800H,,,-73.6,45.5,15.8,process,Y,1.1")
EARLY_HEADER = ("timestamp,project_name,run_id,duration,emissions,energy_consumed,country_name,"
                "country_iso_code,region,on_cloud,cloud_provider,cloud_region")
EARLY_ROW = "2021-03-01T09:00:00,bert,1b9c2b9e-5ef0-4c7a-9d1b-3f2c0d7e9a11,120.0,0.0021,0.0052,France,FRA,,N,,"


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(("header", "row"), [(V1_HEADER, V1_ROW), (V2_HEADER, V2_ROW),
                                             (EARLY_HEADER, EARLY_ROW)],
                         ids=["1.x", "2.x", "early"])
def test_older_column_sets_import_and_verify(header: str, row: str, data_dir: Path,
                                             tmp_path: Path) -> None:
    path = _write(tmp_path / "emissions.csv", f"{header}\n{row}\n")
    store = RecordStore(data_dir)
    [(_, mrv_id)] = import_codecarbon(path, store, anchor=True, time_zone="UTC").imported
    record = store.load(mrv_id)
    assert verify(store.path_for(mrv_id)).status is VerdictStatus.VALID
    values = dict(zip(header.split(","), row.split(","), strict=True))
    ee = record["energy_emissions"]
    assert ee["energy_kwh"] == float(values["energy_consumed"])
    assert ee["co2_kg"] == float(values["emissions"])
    assert ee["measurement_tool_version"] == (values.get("codecarbon_version") or None)
    assert ee["pue"] == (float(values["pue"]) if "pue" in values else None)
    for c in ("cpu", "gpu", "ram"):  # absent columns: null, never 0
        expected = float(values[f"{c}_energy"]) if f"{c}_energy" in values else None
        assert ee[f"{c}_energy_kwh"] == expected
    assert record["provenance"]["codecarbon_run_id"] == values["run_id"]


def test_gpu_model_text_becomes_gpus(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "e.csv", f"{V1_HEADER}\n{V1_ROW}\n")
    [(_, mrv_id)] = import_codecarbon(path, RecordStore(data_dir), time_zone="UTC").imported
    record = RecordStore(data_dir).load(mrv_id)
    hw = record["hardware"]
    assert hw["gpu_count"] == 2
    assert hw["gpus"] == [{"index": 0, "name": "Tesla V100S-PCIE-32GB", "memory_gb": None},
                          {"index": 1, "name": "Tesla V100S-PCIE-32GB", "memory_gb": None}]
    assert record["energy_emissions"]["methods"]["gpu"]["method"] == UNKNOWN_METHOD
    assert record["provenance"]["unmapped_columns"]["longitude"] == "8.7"


def test_timezone_of_the_timestamps(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "e.csv", f"{EARLY_HEADER}\n{EARLY_ROW}\n")
    store = RecordStore(data_dir)
    [(_, mrv_id)] = import_codecarbon(path, store, time_zone="+02:00").imported
    record = store.load(mrv_id)
    assert record["timestamps"]["end_time"] == "2021-03-01T07:00:00.000000Z"
    assert record["timestamps"]["start_time"] == "2021-03-01T06:58:00.000000Z"
    assert record["provenance"]["timestamp_timezone"] == "UTC+02:00"


# --- bad input: one line, exit 3, nothing written ----------------------------------------


def _bad(header: str, *rows: str) -> str:
    return header + "\n" + "".join(r + "\n" for r in rows)


V2_VALUES = V2_ROW.split(",")


def _v2(**changes: str) -> str:
    names = V2_HEADER.split(",")
    values = list(V2_VALUES)
    for k, v in changes.items():
        values[names.index(k)] = v
    return ",".join(values)


BAD_FILES = {
    "missing columns": (_bad("timestamp,project_name,run_id,duration", "2024-01-01T00:00:00,p,r,1"),
                        "missing required columns emissions, energy_consumed"),
    "NaN": (_bad(V2_HEADER, V2_ROW, _v2(cpu_energy="nan")),
            "row 2 (line 3), column cpu_energy: nan is not a measurement (NaN or infinity)"),
    "infinity": (_bad(V2_HEADER, _v2(emissions="inf")),
                 "row 1 (line 2), column emissions: inf is not a measurement"),
    "negative": (_bad(V2_HEADER, V2_ROW, V2_ROW.replace("2024-04-13", "2024-04-14"),
                      _v2(energy_consumed="-0.5")),
                 "row 3 (line 4), column energy_consumed: -0.5 is negative"),
    "not a number": (_bad(V2_HEADER, _v2(duration="12 s")),
                     "row 1 (line 2), column duration: '12 s' is not a number"),
    "empty required": (_bad(V2_HEADER, _v2(emissions="")),
                       "row 1 (line 2), column emissions: empty (required)"),
    "PUE below 1": (_bad(V2_HEADER, _v2(pue="0.9")), "column pue: 0.9 is below 1"),
    "bad timestamp": (_bad(V2_HEADER, _v2(timestamp="yesterday")),
                      "row 1 (line 2), column timestamp: 'yesterday' is not a date and time"),
    "too many fields": (_bad(V2_HEADER, V2_ROW, V2_ROW + ",extra"),
                        "row 2 (line 3): 32 fields, the header has 31"),
    "too few fields": (_bad(V2_HEADER, ",".join(V2_VALUES[:-3])),
                       "row 1 (line 2): 28 fields, the header has 31"),
    "empty file": ("", "empty file"),
    "blank lines only": ("\n\n", "empty file"),
    "header only": (V2_HEADER + "\n", "a header and no rows: nothing to import"),
    "duplicate column": (_bad(V2_HEADER + ",pue", V2_ROW + ",1.0"), "column pue appears twice"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_bad_files_are_refused_in_one_line_with_nothing_written(case: str, mrv: MRV,
                                                                 data_dir: Path,
                                                                 tmp_path: Path) -> None:
    text, expected = BAD_FILES[case]
    path = _write(tmp_path / "emissions.csv", text)
    code, out, err = mrv("import", "codecarbon", str(path))
    assert code == EXIT_BAD_INPUT
    assert expected in err and str(path) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not data_dir.exists() or not list(data_dir.glob("MRV-*"))


def test_latin1_is_refused_unless_named(mrv: MRV, data_dir: Path, tmp_path: Path) -> None:
    text = _bad(V2_HEADER, _v2(cpu_model="Intel(R) Core(TM) i7 – Québec lab"))
    path = _write(tmp_path / "emissions.csv", text.replace("–", "-"), "latin-1")
    code, _, err = mrv("import", "codecarbon", str(path))
    assert code == EXIT_BAD_INPUT
    assert "not UTF-8 (byte 0xe9 on line 2)" in err and "--encoding latin-1" in err
    assert len(err.strip().splitlines()) == 1
    assert not data_dir.exists() or not list(data_dir.glob("MRV-*"))
    code, out, err = mrv("import", "codecarbon", str(path), "--encoding", "latin-1")
    assert code == 0, err
    [record] = _records(RecordStore(data_dir))
    assert record["hardware"]["cpu_model"] == "Intel(R) Core(TM) i7 - Québec lab"
    code, _, err = mrv("import", "codecarbon", str(path), "--encoding", "klingon")
    assert code == EXIT_BAD_INPUT and "unknown encoding 'klingon'" in err


def test_utf16_with_a_byte_order_mark_is_read_without_one_refused(
        data_dir: Path, tmp_path: Path, mrv: MRV) -> None:
    text = _bad(V2_HEADER, V2_ROW)
    with_bom = _write(tmp_path / "bom.csv", text, "utf-16")  # Python writes the BOM
    source = read_codecarbon_csv(with_bom)
    assert source.encoding == "utf-16" and len(source.rows) == 1
    sig = _write(tmp_path / "sig.csv", text, "utf-8-sig")  # Excel's "CSV UTF-8"
    assert read_codecarbon_csv(sig).rows[0].values == source.rows[0].values
    bare = _write(tmp_path / "bare.csv", text, "utf-16-le")
    code, _, err = mrv("import", "codecarbon", str(bare))
    assert code == EXIT_BAD_INPUT and "looks like UTF-16 without a byte order mark" in err
    assert not data_dir.exists() or not list(data_dir.glob("MRV-*"))


def test_bad_row_after_good_ones_writes_nothing_and_skip_bad_rows_imports_the_rest(
        mrv: MRV, data_dir: Path, tmp_path: Path) -> None:
    rows = [V2_ROW, V2_ROW.replace("21:30:53", "21:40:00"), _v2(ram_energy="NaN"),
            V2_ROW.replace("21:30:53", "22:00:00") + ",1"]
    path = _write(tmp_path / "emissions.csv", _bad(V2_HEADER, *rows))
    code, _, err = mrv("import", "codecarbon", str(path))
    assert code == EXIT_BAD_INPUT and "row 3 (line 4), column ram_energy" in err
    assert not data_dir.exists() or not list(data_dir.glob("MRV-*"))

    code, out, err = mrv("import", "codecarbon", str(path), "--skip-bad-rows")
    assert code == 0
    assert "2 of 4 rows imported" in out and "2 bad" in out
    assert "skipped: row 3 (line 4), column ram_energy" in err
    assert "skipped: row 4 (line 5): 32 fields" in err
    assert len(RecordStore(data_dir).list()) == 2


def test_the_same_row_twice_in_one_file_is_one_record(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "e.csv", _bad(V2_HEADER, V2_ROW, V2_ROW))
    result = import_codecarbon(path, RecordStore(data_dir))
    assert len(result.imported) == 1 and result.duplicates[0][0] == 2


def test_row_fingerprint_ignores_number_formatting(tmp_path: Path) -> None:
    a = read_codecarbon_csv(_write(tmp_path / "a.csv", _bad(V2_HEADER, V2_ROW)))
    b = read_codecarbon_csv(_write(tmp_path / "b.csv", _bad(V2_HEADER, _v2(cpu_count="8.0"))))
    assert a.rows[0].sha256 == b.rows[0].sha256 and a.sha256 != b.sha256


def test_bad_timezone_option(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="expected local, UTC or an offset"):
        read_codecarbon_csv(_write(tmp_path / "e.csv", _bad(V2_HEADER, V2_ROW)),
                            time_zone="Mars/Olympus")


def test_a_directory_or_missing_file(mrv: MRV, tmp_path: Path) -> None:
    code, _, err = mrv("import", "codecarbon", str(tmp_path / "nope.csv"))
    assert code == EXIT_BAD_INPUT and "no such file" in err
    code, _, err = mrv("import", "codecarbon", str(tmp_path))
    assert code == EXIT_BAD_INPUT and "is a directory" in err


# --- what readers see --------------------------------------------------------------------


def test_summary_rows_say_imported(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "e.csv", _bad(V2_HEADER, V2_ROW))
    [(_, mrv_id)] = import_codecarbon(path, RecordStore(data_dir)).imported
    rows = {r.label: r for r in summary_rows(RecordStore(data_dir).load(mrv_id))}
    assert "mrv-ml did not watch this run" in rows["provenance"].value
    assert rows["provenance"].tone == "warn"
    assert "unknown (imported)" in rows["measured by"].value
    assert "estimated" not in rows["measured by"].value


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_page_quality_rows_say_imported(tmp_path: Path, data_dir: Path) -> None:
    path = _write(tmp_path / "e.csv", _bad(V2_HEADER, V2_ROW))
    [(_, mrv_id)] = import_codecarbon(path, RecordStore(data_dir)).imported
    record = RecordStore(data_dir).load(mrv_id)
    script = textwrap.dedent(f"""
        const q = await import({json.dumps((ROOT / "src/mrv_ml/dashboard/quality.js").as_uri())});
        const record = JSON.parse(process.argv[1]);
        console.log(JSON.stringify({{rows: q.qualityRows(record),
                                     short: q.qualityShort(record.energy_emissions)}}));
    """)
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(record)],
                          capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(done.stdout)
    rows = dict(answer["rows"])
    assert rows["Provenance"] == ("imported from CodeCarbon's emissions.csv; mrv-ml did not "
                                  "watch this run")
    assert rows["Measurement"].startswith("CodeCarbon 2.3.4 · unknown: imported")
    assert rows["CPU"] == UNKNOWN_METHOD and rows["GPU"] == UNKNOWN_METHOD
    assert rows["Not measured"] == "unknown: CodeCarbon's CSV does not say"
    assert answer["short"] == "unknown"
