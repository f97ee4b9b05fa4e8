"""Records: the schema, validation messages, strict reading and writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from mrv_ml import __version__
from mrv_ml.errors import (
    EXIT_BAD_INPUT,
    NonFiniteNumberError,
    NotARecordError,
    NotJSONError,
    RecordError,
    SchemaValidationError,
    UnknownSchemaVersionError,
)
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.schema import (
    MRV_ID_PATTERN,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    dump_record_bytes,
    load_record_file,
    load_schema,
    new_mrv_id,
    parse_record_bytes,
    summarize,
    validate_record,
)
from tests.support.records import DELETE, make_sample_record, make_sample_record_1_0


def test_new_mrv_id_is_unique_and_matches_the_schema_pattern() -> None:
    ids = {new_mrv_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(MRV_ID_PATTERN.match(i) for i in ids)
    validate_record(make_sample_record(mrv_id=ids.pop()))


def test_schema_is_valid_draft_2020_12_and_closed_at_the_top() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {
        "schema_version", "mrv_id", "experiment", "training", "outcome", "hardware",
        "energy_emissions", "software", "source", "distributed", "timestamps"}
    assert SCHEMA_VERSION in SUPPORTED_SCHEMA_VERSIONS
    schema["title"] = "changed"  # the caller's copy, not the cached one
    assert load_schema()["title"] != "changed"


def test_sample_record_is_valid_and_summarized() -> None:
    record = make_sample_record()
    validate_record(record)
    summary = summarize(record)
    assert summary["mrv_id"] == record["mrv_id"]
    assert summary["experiment"] == "mnist-baseline"
    assert summary["model_name"] == "SimpleCNN"
    assert summary["status"] == "completed"
    assert summary["start_time"] == "2026-11-24T22:00:00.000000Z"
    assert summary["duration_s"] == 12.5
    assert summary["energy_kwh"] == 0.000123
    assert summary["co2_kg"] == 0.0000451


def test_summarize_tolerates_missing_sections() -> None:
    assert summarize({"mrv_id": "MRV-x"})["co2_kg"] is None


@pytest.mark.parametrize("overrides", [
    {"experiment__tags": {"anything": {"nested": [1, 2]}}},
    {"training__details": {"lr": 0.1, "schedule": {"warmup": 100}}},
    {"training__command": ["python", "train.py"]},
    {"source": None},
    {"distributed": {"world_size": 2, "backend": "gloo", "missing_ranks": [],
                     "ranks": [{"rank": 0, "hostname": "a", "hardware": None,
                                "energy_emissions": None}]}},
    {"energy_emissions__measurement_status": "failed", "energy_emissions__energy_kwh": None,
     "energy_emissions__co2_kg": None, "energy_emissions__measurement_error": "no RAPL"},
    {"hardware__gpu_count": 1, "hardware__gpus": [{"index": 0, "name": "A100", "memory_gb": 40}]},
    {"timestamps__start_time": "2026-11-24T23:00:00+01:00"},
    {"outcome__status": "failed", "outcome__error_type": "RuntimeError",
     "outcome__error_message": "CUDA OOM", "outcome__exit_code": 1},
])
def test_valid_variants_are_accepted(overrides: dict[str, Any]) -> None:
    validate_record(make_sample_record(**overrides))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"energy_emissions__co2_kg": -1},
     "energy_emissions.co2_kg: -1 is less than the minimum of 0"),
    ({"energy_emissions__energy_kwh": "0.5"},
     "energy_emissions.energy_kwh: '0.5' is not of type 'number', 'null'"),
    ({"outcome__status": "done"}, "outcome.status: 'done' is not one of"),
    ({"energy_emissions__location_source": "guessed"}, "energy_emissions.location_source:"),
    ({"energy_emissions__measurement_status": "estimated"},
     "energy_emissions.measurement_status:"),
    ({"foreign_field": 1}, "record: Additional properties are not allowed ('foreign_field'"),
    ({"experiment": DELETE}, "record: 'experiment' is a required property"),
    ({"experiment__name": DELETE}, "experiment: 'name' is a required property"),
    ({"experiment__name": ""}, "experiment.name:"),
    ({"mrv_id": "MRV-123"}, "mrv_id: 'MRV-123' is not \"MRV-\" followed by a lowercase UUID"),
    ({"mrv_id": "MRV-FC25BA52-F439-4834-BE2B-2DBAE1E03437"}, "mrv_id:"),
    ({"timestamps__start_time": "2026-13-40T25:00:00Z"},
     "timestamps.start_time: '2026-13-40T25:00:00Z' is not a 'date-time'"),
    ({"timestamps__end_time": "yesterday"}, "timestamps.end_time:"),
    ({"hardware__gpus": [{"index": 0}]}, "hardware.gpus[0]: 'name' is a required property"),
    ({"hardware__ram_gb": -2}, "hardware.ram_gb:"),
    ({"distributed": {"world_size": 2}}, "distributed: 'ranks' is a required property"),
    ({"energy_emissions__measurement_status": "failed"},
     "energy_emissions.energy_kwh: 0.000123 is not of type 'null' (because of measurement_status)"),
    ({"energy_emissions__energy_kwh": None},
     "energy_emissions.energy_kwh: None is not of type 'number'"),
    ({"energy_emissions__pue": 0.5}, "energy_emissions.pue: 0.5 is less than the minimum of 1"),
    ({"source__git_commit": "not-a-sha"}, "source.git_commit:"),
    ({"schema_version": "1.0", "training__epochs": 2**60},
     "training.epochs: integer 1152921504606846976 is outside"),
])
def test_schema_violations_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaValidationError) as info:
        validate_record(make_sample_record(**overrides))
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_messages_stay_short_for_large_wrong_values() -> None:
    big = {f"key{i}": "x" * 50 for i in range(200)}
    with pytest.raises(SchemaValidationError) as info:
        validate_record(make_sample_record(source=[big]))
    assert str(info.value).startswith("source: ")
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(("value", "field"), [
    (float("nan"), "energy_emissions.co2_kg"),
    (float("inf"), "energy_emissions.co2_kg"),
    (float("-inf"), "energy_emissions.co2_kg"),
])
def test_non_finite_numbers_name_the_field(value: float, field: str) -> None:
    with pytest.raises(NonFiniteNumberError, match=rf"^{field}: "):
        validate_record(make_sample_record(energy_emissions__co2_kg=value))


@pytest.mark.parametrize(("value", "message"), [
    ([1, 2], "not an MRV record: the JSON is an array"),
    ("MRV", "not an MRV record: the JSON is a string"),
    (None, "not an MRV record: the JSON is null"),
    (42, "not an MRV record: the JSON is a number"),
    ({"name": "package.json"}, "not an MRV record: no schema_version and no mrv_id field"),
    ({"schema_version": "1.0"}, "not an MRV record: no mrv_id field"),
    ({"schema_version": 1.0, "mrv_id": "x"}, "not an MRV record: schema_version is 1.0"),
])
def test_json_that_is_not_a_record(value: Any, message: str) -> None:
    with pytest.raises(NotARecordError, match=f"^{message}"):
        validate_record(value)


def test_unknown_schema_version_is_checked_before_the_schema() -> None:
    # Otherwise broken: the version must still be what the user is told about.
    with pytest.raises(UnknownSchemaVersionError) as info:
        validate_record({"schema_version": "9.0", "mrv_id": "MRV-x", "future": True})
    assert str(info.value) == (f"schema_version '9.0' is not known to mrv-ml {__version__} "
                               "(known: 1.0, 1.1, 1.2); upgrade mrv-ml")


def test_older_schema_version_says_so() -> None:
    with pytest.raises(UnknownSchemaVersionError, match="'0.1' is older"):
        validate_record(make_sample_record(schema_version="0.1"))


def test_all_record_errors_exit_with_bad_input() -> None:
    for error in (NotJSONError, NotARecordError, SchemaValidationError,
                  UnknownSchemaVersionError, NonFiniteNumberError):
        assert issubclass(error, RecordError)
        assert error("x").exit_code == EXIT_BAD_INPUT


# --- reading files ----------------------------------------------------------------------


def _write(tmp_path: Path, data: bytes, name: str = "record.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_load_record_file_round_trip(tmp_path: Path) -> None:
    record = make_sample_record(experiment__description="日本語 é 🌱")
    path = _write(tmp_path, dump_record_bytes(record))
    loaded = load_record_file(path)
    assert loaded == record
    assert compute_hash(loaded) == compute_hash(record)


@pytest.mark.parametrize(("data", "error", "fragment"), [
    (b"", NotJSONError, "not JSON: the file is empty"),
    (b"   \n", NotJSONError, "not JSON: the file is empty"),
    (b"hello, world", NotJSONError, "invalid JSON"),
    (b"\xff\xfe{}", NotJSONError, "invalid UTF-8 at byte 0"),
    (b"\xef\xbb\xbf{}", NotJSONError, "byte-order mark"),
    (b'{"schema_version": "1.0", "mrv_id": "MRV-', NotJSONError, "truncated"),
    (b'{"a": NaN}', NotJSONError, "NaN is not valid JSON"),
    (b'{"a": Infinity}', NotJSONError, "Infinity is not valid JSON"),
    (b'{"a": -Infinity}', NotJSONError, "-Infinity is not valid JSON"),
    (b'{"a": 1, "a": 2}', NotJSONError, "duplicate key 'a'"),
    (b"[" * 100_000 + b"]" * 100_000, NotJSONError, "invalid JSON"),
    (b"[1, 2]", NotARecordError, "not an MRV record"),
    (b'{"name": "x"}', NotARecordError, "not an MRV record"),
    (b'{"schema_version": "9.0", "mrv_id": "MRV-x"}', UnknownSchemaVersionError, "upgrade mrv-ml"),
])
def test_bad_files_give_one_line_errors_naming_the_file(
        tmp_path: Path, data: bytes, error: type[RecordError], fragment: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(error) as info:
        load_record_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert fragment in text
    assert "\n" not in text


def test_nan_literal_inside_a_real_record_file(tmp_path: Path) -> None:
    text = dump_record_bytes(make_sample_record(energy_emissions__co2_kg=0.25)).decode()
    path = _write(tmp_path, text.replace('"co2_kg": 0.25', '"co2_kg": NaN').encode())
    with pytest.raises(NotJSONError, match="NaN is not valid JSON"):
        load_record_file(path)


def test_schema_violation_in_a_file_names_file_and_field(tmp_path: Path) -> None:
    record = make_sample_record(energy_emissions__co2_kg=-1)
    path = _write(tmp_path, json.dumps(record).encode())
    with pytest.raises(SchemaValidationError) as info:
        load_record_file(path)
    assert str(info.value) == f"{path}: energy_emissions.co2_kg: -1 is less than the minimum of 0"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no such file"):
        load_record_file(tmp_path / "absent.json")
    with pytest.raises(RecordError, match="is a directory"):
        load_record_file(tmp_path)


def test_parse_record_bytes_uses_the_source_name() -> None:
    with pytest.raises(NotJSONError, match="^upload.json: "):
        parse_record_bytes(b"{", "upload.json")


# --- writing ------------------------------------------------------------------------------


def test_dump_record_bytes_layout() -> None:
    record = make_sample_record(experiment__description="é")
    data = dump_record_bytes(record)
    text = data.decode("utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "distributed": null,\n  "energy_emissions": {')
    assert '"description": "é"' in text  # raw UTF-8, not \\u00e9
    assert json.loads(text) == record


def test_dump_record_bytes_refuses_nan_naming_the_field() -> None:
    record = make_sample_record()
    record["hardware"]["gpus"] = [{"index": 0, "name": "x", "memory_gb": float("nan")}]
    with pytest.raises(NonFiniteNumberError, match=r"^hardware\.gpus\[0\]\.memory_gb: "):
        dump_record_bytes(record)


def test_dump_record_bytes_refuses_non_json_types() -> None:
    with pytest.raises(RecordError):
        dump_record_bytes({"when": object()})


def test_json_like_containers_validate_like_their_json() -> None:
    from types import MappingProxyType

    record = make_sample_record()
    record["experiment"] = MappingProxyType(record["experiment"])
    record["hardware"]["gpus"] = ({"index": 0, "name": "A100", "memory_gb": 40.0},)
    validate_record(MappingProxyType(record))
    record["hardware"]["gpus"] = ({"index": -1, "name": "A100"},)
    with pytest.raises(SchemaValidationError, match=r"^hardware\.gpus\[0\]\.index: -1"):
        validate_record(record)


def test_lone_surrogates_are_refused_naming_the_field() -> None:
    with pytest.raises(SchemaValidationError, match=r"^experiment\.name: .*lone surrogate"):
        validate_record(make_sample_record(experiment__name="bad \ud800 text"))
    with pytest.raises(SchemaValidationError, match=r"^experiment\.tags: key"):
        validate_record(make_sample_record(experiment__tags={"\udfff": 1}))
    with pytest.raises(RecordError, match="lone surrogate"):
        dump_record_bytes({"k": "\ud800"})


def test_deep_nesting_is_refused_even_when_a_library_raised_the_recursion_limit(
        tmp_path: Path) -> None:
    # torch and friends raise sys.getrecursionlimit(); json's C decoder trusts it and a
    # hostile file would then overflow the C stack (a segfault, seen in this suite).
    import sys

    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        with pytest.raises(NotJSONError, match="nested 200000 levels deep"):
            load_record_file(path)
    finally:
        sys.setrecursionlimit(old)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, prefix + (index,))
    return out


_SAMPLE = make_sample_record(hardware__gpus=[{"index": 0, "name": "H100", "memory_mb": 81559}])
_AWKWARD_TEXT = st.sampled_from([
    "", "Unknown", "2026-11-25T10:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T23:59:60Z",
    "2026-11-25t10:00:00.5+01:00", "2026-11-25 10:00:00Z", "2026-11-25T10:00:00",
    _SAMPLE["mrv_id"], _SAMPLE["mrv_id"] + "\n", _SAMPLE["mrv_id"].upper(), "1.0", "2.0",
    "measured", "failed", "estimated", "RAPL", "completed", "a" * 64, "0" * 40, "ü\u0000"])
_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                       _AWKWARD_TEXT)
_JSON_VALUE = st.recursive(_JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fast_validator_never_accepts_what_the_reference_rejects(data: Any) -> None:
    # jsonschema-rs only short-cuts "valid"; a record it lets through must be one the Python
    # validator (which words every error) accepts too.
    from mrv_ml.record.schema import _surely_valid, _validator

    record = json.loads(json.dumps(_SAMPLE))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(record) or [("mrv_id",)]))
        parent: Any = record
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = data.draw(_JSON_VALUE)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    if _surely_valid(SCHEMA_VERSION, record):
        assert next(_validator(SCHEMA_VERSION).iter_errors(record), None) is None, record


@pytest.mark.parametrize("make", [make_sample_record, make_sample_record_1_0])
def test_fast_and_reference_validators_agree_on_the_sample_and_on_a_bad_timestamp(
        make: Any) -> None:
    from mrv_ml.record.schema import _fast_validator

    version = make()["schema_version"]
    assert _fast_validator(version).is_valid(make())
    bad = make(timestamps__start_time="2026-02-30T00:00:00Z")
    assert not _fast_validator(version).is_valid(bad)
    with pytest.raises(SchemaValidationError, match=r"^timestamps\.start_time: "):
        validate_record(bad)
