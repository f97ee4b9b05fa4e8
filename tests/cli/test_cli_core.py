"""`mrv hash | validate | list | show`: exit codes, one-line errors, what is printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_STORE, EXIT_USAGE
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import Proof
from mrv_ml.record.schema import dump_record_bytes
from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV, MRVSubprocess
from tests.support.records import make_sample_record, make_sample_record_1_0

Runner = MRV  # the `mrv` fixture of tests/support/cli.py: (exit code, stdout, stderr)


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def store(data_dir: Path) -> RecordStore:
    return RecordStore(data_dir)


def _record_file(tmp_path: Path, record: dict[str, Any] | None = None,
                 name: str = "record.json") -> Path:
    path = tmp_path / name
    path.write_bytes(dump_record_bytes(record or make_sample_record()))
    return path


# --- hash ---------------------------------------------------------------------------------


def test_hash_prints_the_fingerprint(mrv: Runner, tmp_path: Path) -> None:
    record = make_sample_record()
    path = _record_file(tmp_path, record)
    code, out, err = mrv("hash", str(path))
    assert (code, out, err) == (0, compute_hash(record) + "\n", "")


def test_hash_ignores_formatting_of_the_file(mrv: Runner, tmp_path: Path) -> None:
    record = make_sample_record()
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(dict(reversed(list(record.items())))), encoding="utf-8")
    assert mrv("hash", str(compact))[1] == mrv("hash", str(_record_file(tmp_path, record)))[1]


def test_hash_json(mrv: Runner, tmp_path: Path) -> None:
    record = make_sample_record()
    code, out, _ = mrv("hash", "--json", str(_record_file(tmp_path, record)))
    assert code == 0
    assert json.loads(out) == {"algorithm": "sha256-jcs", "digest": compute_hash(record),
                               "mrv_id": record["mrv_id"]}


def test_hash_reads_standard_input(mrv: Runner) -> None:
    record = make_sample_record()
    assert mrv("hash", "-", input=dump_record_bytes(record))[:2] == (0, compute_hash(record)
                                                                     + "\n")


@pytest.mark.parametrize(("content", "fragment"), [
    (b"not json", "invalid JSON"),
    (b'{"schema_version": "1.0", "mrv_id": "MRV-', "truncated"),
    (b'{"a": NaN}', "NaN is not valid JSON"),
    (b'{"name": "x"}', "not an MRV record"),
    (b'{"schema_version": "9.0", "mrv_id": "x"}', "upgrade mrv-ml"),
])
def test_hash_of_a_bad_file_is_one_line_exit_3(mrv: Runner, tmp_path: Path, content: bytes,
                                               fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out, err = mrv("hash", str(path))
    assert code == EXIT_BAD_INPUT and out == ""
    line = _one_line_error(err)
    assert str(path) in line and fragment in line


def test_hash_of_a_missing_file(mrv: Runner, tmp_path: Path) -> None:
    code, _, err = mrv("hash", str(tmp_path / "absent.json"))
    assert code == EXIT_BAD_INPUT
    assert "no such file" in _one_line_error(err)


def test_hash_no_validate_accepts_any_object_but_not_other_json(mrv: Runner,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "thing.json"
    path.write_text('{"b": 1, "a": "é"}', encoding="utf-8")
    assert mrv("hash", "--no-validate", str(path))[:2] == (0, compute_hash({"a": "é", "b": 1})
                                                          + "\n")
    assert mrv("hash", str(path))[0] == EXIT_BAD_INPUT
    path.write_text("[1, 2]")
    code, _, err = mrv("hash", "--no-validate", str(path))
    assert code == EXIT_BAD_INPUT and "not a JSON object" in err


def test_hash_without_argument_is_a_usage_error(mrv: Runner) -> None:
    assert mrv("hash")[0] == EXIT_USAGE


# --- validate -----------------------------------------------------------------------------


def test_validate_all_good(mrv: Runner, tmp_path: Path) -> None:
    a, b = make_sample_record(), make_sample_record_1_0()  # records of 1.0 stay valid
    pa, pb = _record_file(tmp_path, a, "a.json"), _record_file(tmp_path, b, "b.json")
    code, out, err = mrv("validate", str(pa), str(pb))
    assert code == 0 and err == ""
    assert out.splitlines() == [f"OK {pa} ({a['mrv_id']}, schema 1.1)",
                                f"OK {pb} ({b['mrv_id']}, schema 1.0)"]


def test_validate_reports_each_invalid_file_and_exits_3(mrv: Runner, tmp_path: Path) -> None:
    good = _record_file(tmp_path, name="good.json")
    bad = _record_file(tmp_path, make_sample_record(energy_emissions__co2_kg=-1), "bad.json")
    missing = tmp_path / "missing.json"
    code, out, err = mrv("validate", str(bad), str(good), str(missing))
    assert code == EXIT_BAD_INPUT
    assert out.startswith(f"OK {good} ")
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"INVALID {bad}: energy_emissions.co2_kg: -1 is less than the minimum of 0",
        f"INVALID {missing}: no such file"]


def test_validate_json(mrv: Runner, tmp_path: Path) -> None:
    good = _record_file(tmp_path, name="good.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, out, _ = mrv("validate", "--json", str(good), str(bad))
    results = json.loads(out)
    assert code == EXIT_BAD_INPUT
    assert [r["valid"] for r in results] == [True, False]
    assert results[1]["error"].startswith(f"{bad}: truncated")


# --- list ---------------------------------------------------------------------------------


def test_list_of_an_empty_store(mrv: Runner, data_dir: Path) -> None:
    code, out, _ = mrv("list")
    assert code == 0 and out.strip() == f"No records in {data_dir}."
    assert json.loads(mrv("list", "--json")[1]) == []


def _sidecar(record: dict[str, Any], mode: str | None) -> dict[str, Any]:
    """A well-formed proof sidecar dict: anchored in ``mode``, or with no anchor (None)."""
    data: dict[str, Any] = {"proof_version": "1.0", "mrv_id": record["mrv_id"],
                            "status": "anchored",
                            "record_hash": {"algorithm": "sha256-jcs",
                                            "digest": compute_hash(record)}}
    if mode is not None:
        data["anchor"] = {"mode": mode, "network": "local", "chain_id": 1337,
                          "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20,
                          "tx_hash": "0x" + "ab" * 32, "block_number": 7}
        if mode == "batch":
            data["anchor"]["merkle"] = {"root": "0x" + "33" * 32, "proof": []}
    return data


def _populate(store: RecordStore) -> list[dict[str, Any]]:
    records = [
        make_sample_record(experiment__name="first-run", timestamps__start_time="2026-11-24T20:00:00Z"),
        make_sample_record(experiment__name="second-run", timestamps__start_time="2026-11-24T21:00:00Z",
                           outcome__status="failed"),
        make_sample_record(experiment__name="third-run", timestamps__start_time="2026-11-24T22:00:00Z"),
    ]
    for record in records:
        store.save(record)
    store.save_proof(Proof.from_dict(_sidecar(records[0], "batch")))
    store.save_proof(Proof.from_dict({**_sidecar(records[1], None), "status": "pending",
                                      "pending_reason": "chain unreachable: connection refused"}))
    return records


def test_list_table(mrv: Runner, store: RecordStore) -> None:
    records = _populate(store)
    code, out, err = mrv("list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    rows = [line for line in lines if line.strip().startswith("MRV-")]
    assert [r.split()[0] for r in rows] == [r["mrv_id"][:12] for r in records]
    assert "first-run" in rows[0] and "anchored/batch" in rows[0]
    assert "failed" in rows[1] and "pending" in rows[1]
    assert "third-run" in rows[2] and rows[2].rstrip().endswith("none")
    # every figure through mrv_ml.units, never "1.23e-04"
    assert "24 Nov 2026 20:00 UTC" in rows[0] and "12.5 s" in rows[0] and "123 mWh" in rows[0]
    assert "45.1 mg" in rows[0] and "e-0" not in out
    assert "3 record(s); total " in out


def test_list_json_and_pending(mrv: Runner, store: RecordStore) -> None:
    records = _populate(store)
    listed = json.loads(mrv("list", "--json")[1])
    assert [r["mrv_id"] for r in listed] == [r["mrv_id"] for r in records]
    assert listed[0]["anchor_state"] == "anchored" and listed[0]["anchor_mode"] == "batch"
    assert listed[0]["co2_kg"] == records[0]["energy_emissions"]["co2_kg"]
    pending = json.loads(mrv("list", "--pending", "--json")[1])
    assert [r["mrv_id"] for r in pending] == [records[1]["mrv_id"], records[2]["mrv_id"]]
    out = mrv("list", "--pending")[1]
    assert records[0]["mrv_id"][:12] not in out and records[2]["mrv_id"][:12] in out


def test_list_shows_unreadable_records(mrv: Runner, store: RecordStore) -> None:
    _populate(store)
    broken = make_sample_record()["mrv_id"]
    store.path_for(broken).write_text('{"schema_version": "1.0", "mrv_id": "MRV-')
    code, out, err = mrv("list")
    assert code == 0
    row = next(line for line in out.splitlines() if broken[:12] in line)
    assert "unreadable" in row
    line = _one_line_error(err)
    assert line.startswith("unreadable: ") and str(store.path_for(broken)) in line
    assert "4 record(s)" in out
    assert json.loads(mrv("list", "--json")[1])[-1]["status"] == "unreadable"


def test_list_escapes_terminal_control_characters(mrv: Runner, store: RecordStore) -> None:
    store.save(make_sample_record(experiment__name="evil\x1b[2J[bold]name"))
    out = mrv("list")[1]
    assert "\x1b" not in out
    assert "evil\\x1b[2J[bold]name" in out


def test_list_data_dir_option_wins_over_environment(mrv: Runner, tmp_path: Path,
                                                    store: RecordStore) -> None:
    store.save(make_sample_record())
    other = RecordStore(tmp_path / "elsewhere")
    kept = make_sample_record()
    other.save(kept)
    listed = json.loads(mrv("list", "--json", "--data-dir", str(other.root))[1])
    assert [r["mrv_id"] for r in listed] == [kept["mrv_id"]]


def test_list_of_a_data_dir_that_is_a_file_exits_6(mrv: Runner, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, _, err = mrv("list", "--data-dir", str(blocker))
    assert code == EXIT_STORE
    assert "is not a directory" in _one_line_error(err)


# --- show ---------------------------------------------------------------------------------


def test_show_by_prefix(mrv: Runner, store: RecordStore) -> None:
    records = _populate(store)
    record = records[0]
    code, out, err = mrv("show", record["mrv_id"][4:12])
    assert code == 0 and err == ""
    assert out.startswith(record["mrv_id"] + "\n")
    assert str(store.path_for(record["mrv_id"])) in out
    assert "first-run" in out and "SimpleCNN" in out and "MNIST" in out
    assert f"sha256-jcs {compute_hash(record)}" in out
    assert "anchored" in out and "batch on local (chain 1337)" in out
    assert "123 mWh" in out and "45.1 mg CO2e at 367 g CO2e/kWh" in out
    assert "CPU TDP (estimated)" in out


def test_show_pending_and_unanchored(mrv: Runner, store: RecordStore) -> None:
    records = _populate(store)
    assert "pending (chain unreachable: connection refused)" in mrv("show", records[1]["mrv_id"])[1]
    assert "none (no proof file" in mrv("show", records[2]["mrv_id"])[1]


def test_show_a_file_outside_the_store_with_its_sidecar(mrv: Runner, tmp_path: Path) -> None:
    record = make_sample_record()
    path = _record_file(tmp_path, record, f"{record['mrv_id']}.json")
    (tmp_path / f"{record['mrv_id']}.proof.json").write_text(json.dumps(
        _sidecar(record, "single")))
    code, out, _ = mrv("show", str(path))
    assert code == 0 and "anchored" in out and "single on" in out


def test_show_corrupt_proof_is_said_not_hidden(mrv: Runner, store: RecordStore) -> None:
    record = make_sample_record()
    store.save(record)
    store.proof_path_for(record["mrv_id"]).write_text("{")
    code, out, _ = mrv("show", record["mrv_id"])
    assert code == 0 and "unreadable proof" in out


def test_show_json_prints_the_record(mrv: Runner, store: RecordStore) -> None:
    record = make_sample_record(experiment__description="日本語")
    path = store.save(record)
    code, out, _ = mrv("show", "--json", record["mrv_id"])
    assert code == 0
    assert json.loads(out) == record
    assert out.encode("utf-8") == path.read_bytes()


def test_show_errors(mrv: Runner, store: RecordStore, tmp_path: Path) -> None:
    a = make_sample_record(mrv_id="MRV-abcd0001-0000-4000-8000-000000000001")
    b = make_sample_record(mrv_id="MRV-abcd0002-0000-4000-8000-000000000002")
    store.save(a)
    store.save(b)
    code, _, err = mrv("show", "MRV-ffff0000-0000-4000-8000-000000000000")
    assert code == EXIT_NOT_FOUND and "no record" in _one_line_error(err)
    code, _, err = mrv("show", "ffff")
    assert code == EXIT_NOT_FOUND and "no record matching" in _one_line_error(err)
    code, _, err = mrv("show", "abcd")
    assert code == EXIT_BAD_INPUT and "matches 2 records" in _one_line_error(err)
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": "1.0"}')
    code, _, err = mrv("show", str(bad))
    assert code == EXIT_BAD_INPUT and "not an MRV record" in _one_line_error(err)


@pytest.mark.parametrize("command", ["hash", "validate", "list", "show"])
def test_help(mrv: Runner, command: str) -> None:
    code, out, _ = mrv(command, "--help")
    assert code == 0 and "Usage" in out and "--json" in out


# --- the installed entry point -------------------------------------------------------------


def test_real_entry_point_bad_input_and_store_errors(mrv_subprocess: MRVSubprocess,
                                                     tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"energy": NaN}')
    env = {"MRV_DATA_DIR": str(bad)}  # a file: unusable as a directory
    result = mrv_subprocess("validate", bad, env=env)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in result.stderr and str(bad) in result.stderr
    result = mrv_subprocess("list", env=env)
    assert result.exit_code == EXIT_STORE
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: data directory")


def test_list_limit_shows_the_most_recent(mrv: Runner, store: RecordStore) -> None:
    records = _populate(store)
    listed = json.loads(mrv("list", "--json", "--limit", "2")[1])
    assert [r["mrv_id"] for r in listed] == [r["mrv_id"] for r in records[1:]]
    out = mrv("list", "-n", "1")[1]
    assert records[2]["mrv_id"][:12] in out and records[0]["mrv_id"][:12] not in out
    assert "1 of 3 record(s)" in out
    assert mrv("list", "--limit", "0")[0] == EXIT_USAGE


def test_list_columns_line_up_and_long_names_are_cut(mrv: Runner, store: RecordStore) -> None:
    store.save(make_sample_record(experiment__name="x" * 50,
                                  timestamps__start_time="2026-11-24T20:00:00Z"))
    store.save(make_sample_record(experiment__name="日本語の実験",
                                  timestamps__start_time="2026-11-24T21:00:00Z"))
    lines = mrv("list")[1].splitlines()
    header = next(line for line in lines if line.startswith("ID "))
    rows = [line for line in lines if line.startswith("MRV-")]
    assert "x" * 31 + "…" in rows[0] and "x" * 32 not in rows[0]
    # The Status column starts at the same terminal cell on every line (wide CJK text).
    from rich.cells import cell_len

    starts = [cell_len(line[:line.index(word)]) for line, word in
              [(header, "Status"), (rows[0], "completed"), (rows[1], "completed")]]
    assert len(set(starts)) == 1, starts


def test_the_mrv_helper_isolates_each_call(mrv: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    from mrv_ml import __version__

    monkeypatch.delenv("COLUMNS", raising=False)
    streams = sys.stdin, sys.stdout, sys.stderr
    assert mrv("--version", env={"MRV_QUIET": "1"}) == (0, f"mrv-ml {__version__}\n", "")
    assert (sys.stdin, sys.stdout, sys.stderr) == streams
    assert "COLUMNS" not in os.environ and "MRV_QUIET" not in os.environ
    code, out, err = mrv("no-such-command")
    assert code == EXIT_USAGE and out == "" and "no-such-command" in err
