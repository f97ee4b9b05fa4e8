"""MRV records: identity, the JSON Schema and validation, reading and writing a record.

A record is a plain ``dict`` (JSON object) whose shape is fixed by the JSON Schema of
its version, shipped in ``schema/mrv-record-<version>.schema.json`` (1.1 adds
``energy_emissions.power_series``; 1.0 records are still read and verified, each against
its own version's schema). This module checks records
(:func:`validate_record`), reads them strictly from bytes or files
(:func:`parse_record_bytes`, :func:`load_record_file`, over
:mod:`mrv_ml.record.strictjson`), writes them (:func:`dump_record_bytes`) and condenses
them for listings (:func:`summarize`). Repairing a run's record is
:mod:`mrv_ml.record.repair`.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from mrv_ml._version import __version__
from mrv_ml.errors import (
    NonFiniteNumberError,
    NotARecordError,
    RecordError,
    SchemaValidationError,
    UnknownSchemaVersionError,
)
from mrv_ml.record.strictjson import dump_json_bytes, parse_json_strict, read_file_bytes

#: The schema version this release writes.
SCHEMA_VERSION = "1.2"
#: Every schema version this release can read and verify, oldest first.
SUPPORTED_SCHEMA_VERSIONS: tuple[str, ...] = ("1.0", "1.1", "1.2")
#: The arrays of a power series (schema 1.1), one value per interval each.
POWER_SERIES_ARRAYS = ("start_offset_s", "duration_s", "cpu_power_w", "gpu_power_w",
                       "ram_power_w", "measured")

#: An MRV ID: "MRV-" and a lowercase UUID version 4 (what :func:`new_mrv_id` makes).
MRV_ID_PATTERN = re.compile(
    r"^MRV-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)

# Integers beyond ±(2**53 - 1) lose precision in JavaScript and RFC 8785 refuses them.
_MAX_SAFE_INTEGER = 2**53 - 1
# Longest instance text quoted in an error message, so messages stay one short line.
_MAX_QUOTE_CHARS = 80

# RFC 3339 date-time (what JSON Schema's "date-time" format means); jsonschema only
# checks this format when an optional package is installed, so we check it ourselves.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def new_mrv_id() -> str:
    """A fresh record ID: ``"MRV-"`` followed by a random UUID (version 4)."""
    return f"MRV-{uuid.uuid4()}"


def schema_path(version: str = SCHEMA_VERSION) -> Path:
    """Location of the JSON Schema file for ``version`` inside the installed package."""
    return Path(str(resources.files("mrv_ml") / "schema" / f"mrv-record-{version}.schema.json"))


@functools.cache
def _load_schema(version: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path(version).read_text(encoding="utf-8"))
    return schema


def load_schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema (as a fresh dict the caller may modify) for records of ``version``."""
    return copy.deepcopy(_load_schema(version))


def is_rfc3339(value: object) -> bool:
    """Whether a string is an RFC 3339 date-time (zone included); other types pass."""
    if not isinstance(value, str):
        return True  # formats only constrain strings; "type" catches the rest
    match = _RFC3339.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        # Leap seconds (":60") are legal in RFC 3339 but not in datetime.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60


@functools.cache
def _validator(version: str) -> Draft202012Validator:
    checker = FormatChecker()
    checker.checks("date-time")(is_rfc3339)
    schema = _load_schema(version)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=checker)


@functools.cache
def _fast_validator(version: str) -> Any:
    """The same schema compiled by jsonschema-rs: answers "valid?" some 50x faster, which
    matters when verifying thousands of records. It only ever lets a record through; the
    Python validator stays the reference and words every error."""
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(
        _load_schema(version), validate_formats=True, formats={"date-time": is_rfc3339})


def _surely_valid(version: str, instance: Any) -> bool:
    try:
        return bool(_fast_validator(version).is_valid(instance))
    except Exception:  # e.g. an integer beyond 64 bits: let the reference validator judge
        return False


def warm_up_validator(version: str = SCHEMA_VERSION) -> None:
    """Load and compile the schema now (the tracker does it while training runs)."""
    _validator(version)
    _fast_validator(version)


def _field_path(parts: Any) -> str:
    """``energy_emissions.co2_kg`` / ``hardware.gpus[0].name`` from a path deque."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(error: ValidationError) -> str:
    """One readable line for a schema error, without dumping whole sub-objects."""
    message = error.message
    instance_text = repr(error.instance)
    if len(instance_text) > _MAX_QUOTE_CHARS and message.startswith(instance_text):
        # "{...huge dict...} is not of type 'null'" -> "object is not of type 'null'"
        kind = type(error.instance).__name__
        kind = {"dict": "object", "list": "array", "str": "string"}.get(kind, kind)
        message = f"{kind} value" + message[len(instance_text):]
    if error.validator == "pattern" and list(error.absolute_path) == ["mrv_id"]:
        message = f"{error.instance!r} is not \"MRV-\" followed by a lowercase UUID version 4"
    if "then" in error.absolute_schema_path:
        # A conditional rule (failed measurement -> null figures): say which condition.
        message += " (because of measurement_status)"
    message = _one_line(message)
    if len(message) > 300:
        message = message[:297] + "..."
    return message


def _is_unicode(text: str) -> bool:
    """False for strings holding lone surrogates, which UTF-8 (and RFC 8785) cannot encode."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_json_values(value: Any, path: str) -> bool:
    """Refuse what JSON (and RFC 8785) cannot carry faithfully, naming the field.

    Returns whether ``value`` holds containers that are JSON-like but not ``dict`` or
    ``list`` (other mappings, tuples), which jsonschema does not treat as objects/arrays.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NonFiniteNumberError(
                f"{path or 'record'}: {value!r} is not a finite number; JSON cannot represent it"
            )
        return False
    if isinstance(value, str):
        if not _is_unicode(value):
            raise SchemaValidationError(
                f"{path or 'record'}: text contains a lone surrogate (not valid Unicode)",
                key="lone_surrogate")
        return False
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise SchemaValidationError(
                f"{path or 'record'}: integer {value} is outside ±(2**53-1) and cannot be "
                "represented exactly in JSON/JavaScript", key="unsafe_integer")
        return False
    if isinstance(value, Mapping):
        foreign = not isinstance(value, dict)
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaValidationError(
                    f"{path or 'record'}: key {key!r} is not a string"
                )
            if not _is_unicode(key):
                raise SchemaValidationError(
                    f"{path or 'record'}: key {key!r} contains a lone surrogate",
                    key="lone_surrogate")
            foreign |= _check_json_values(item, f"{path}.{key}" if path else key)
        return foreign
    if isinstance(value, (list, tuple)):
        foreign = isinstance(value, tuple)
        for index, item in enumerate(value):
            foreign |= _check_json_values(item, f"{path}[{index}]")
        return foreign
    raise SchemaValidationError(
        f"{path or 'record'}: a {type(value).__name__} is not a JSON value"
    )


def _version_key(version: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return None


def validate_record(record: Mapping[str, Any]) -> None:
    """Check that ``record`` is a well-formed MRV record of a known schema version.

    Order matters for the message the user sees: first "is this a record at all"
    (:class:`NotARecordError`), then the version (:class:`UnknownSchemaVersionError`),
    then values JSON cannot hold (:class:`NonFiniteNumberError`), then the schema
    (:class:`SchemaValidationError`, naming the field path and the problem).
    """
    version = check_record_header(record)
    instance: Any = record
    if _check_json_values(record, ""):
        # jsonschema's "object" means dict and "array" list: check the JSON form instead.
        instance = json.loads(json.dumps(record, default=dict))
    if not _surely_valid(version, instance):
        error = best_match(_validator(version).iter_errors(instance))
        if error is not None:
            path = _field_path(error.absolute_path) or "record"
            raise SchemaValidationError(f"{path}: {_describe(error)}")
    problem = _power_series_problem(instance)
    if problem is not None:
        raise SchemaValidationError(problem)


def _power_series_problem(record: Mapping[str, Any]) -> str | None:
    """What JSON Schema cannot say about power series: their arrays are of one length.
    Checks the record's own series and each rank's; the first problem, or ``None``."""
    places: list[tuple[str, Any]] = [("energy_emissions", record.get("energy_emissions"))]
    distributed = record.get("distributed")
    if isinstance(distributed, Mapping) and isinstance(distributed.get("ranks"), list):
        places += [(f"distributed.ranks[{i}].energy_emissions", rank.get("energy_emissions"))
                   for i, rank in enumerate(distributed["ranks"]) if isinstance(rank, Mapping)]
    for path, energy in places:
        series = energy.get("power_series") if isinstance(energy, Mapping) else None
        if not isinstance(series, Mapping):
            continue
        lengths = {name: len(series[name]) for name in POWER_SERIES_ARRAYS
                   if isinstance(series.get(name), list)}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
            return (f"{path}.power_series: its arrays must have one length each "
                    f"(one value per interval), not {shown}")
    return None


def check_record_header(record: Any) -> str:
    """The cheap part of :func:`validate_record`: is it a record, of a known version?

    Returns the schema version. Used alone where full validation would be too slow
    (listing thousands of stored records).
    """
    if not isinstance(record, Mapping):
        kind = {"list": "an array", "str": "a string", "NoneType": "null", "bool": "a boolean",
                "int": "a number", "float": "a number"}.get(type(record).__name__, "not an object")
        raise NotARecordError(f"not an MRV record: the JSON is {kind}, not an object")
    if "proof_version" in record or ("record_hash" in record and "schema_version" not in record):
        raise NotARecordError(
            f"this is a proof file (for {str(record.get('mrv_id'))[:60]}), not a record: "
            "verify the record; its proof is found beside it", key="is_proof_file")
    if "schema_version" not in record or "mrv_id" not in record:
        missing = [k for k in ("schema_version", "mrv_id") if k not in record]
        raise NotARecordError(
            f"not an MRV record: no {' and no '.join(missing)} field"
        )
    version = record["schema_version"]
    if not isinstance(version, str):
        raise NotARecordError(
            f"not an MRV record: schema_version is {json.dumps(version, default=repr)}, "
            "not a string"
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        known = ", ".join(SUPPORTED_SCHEMA_VERSIONS)
        own, oldest = _version_key(version), _version_key(SUPPORTED_SCHEMA_VERSIONS[0])
        if own is not None and oldest is not None and own < oldest:
            raise UnknownSchemaVersionError(
                f"schema_version {version!r} is older than mrv-ml {__version__} reads "
                f"(known: {known}); this record was written by an earlier format"
            )
        raise UnknownSchemaVersionError(
            f"schema_version {version!r} is not known to mrv-ml {__version__} "
            f"(known: {known}); upgrade mrv-ml"
        )
    return version


def parse_record_bytes(data: bytes, source: str) -> dict[str, Any]:
    """Parse and validate a record from raw file bytes; errors start with ``source``."""
    value = parse_json_strict(data, source)
    try:
        validate_record(value)
    except RecordError as e:
        raise e.with_prefix(source) from e
    record: dict[str, Any] = value
    return record


def load_record_file(path: str | Path) -> dict[str, Any]:
    """Read, parse strictly and validate the record in ``path``.

    Every error is a :class:`RecordError` subclass whose message starts with the path.
    """
    return parse_record_bytes(read_file_bytes(path), str(path))


def dump_record_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes of a record file (see :func:`dump_json_bytes`); refuses NaN/infinity."""
    return dump_json_bytes(record)


def section(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A record's section, empty when it is missing or not an object (a damaged record
    still lists and reports)."""
    value = record.get(name)
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def summarize(record: Mapping[str, Any]) -> dict[str, Any]:
    """The figures a listing shows, tolerant of missing fields.

    Keys: ``mrv_id, experiment, model_name, dataset_name, status,
    measurement_status, start_time, end_time, duration_s, energy_kwh, co2_kg, tags``
    (``tags``: ``experiment.tags``, ``{}`` when it is not an object).
    """
    experiment = section(record, "experiment")
    outcome = section(record, "outcome")
    energy = section(record, "energy_emissions")
    timestamps = section(record, "timestamps")
    tags = experiment.get("tags")
    return {
        "mrv_id": _text(record.get("mrv_id")),
        "experiment": _text(experiment.get("name")),
        "model_name": _text(experiment.get("model_name")),
        "dataset_name": _text(experiment.get("dataset_name")),
        "status": _text(outcome.get("status")),
        "measurement_status": _text(energy.get("measurement_status")),
        "start_time": _text(timestamps.get("start_time")),
        "end_time": _text(timestamps.get("end_time")),
        "duration_s": _number(energy.get("duration_seconds")),
        "energy_kwh": _number(energy.get("energy_kwh")),
        "co2_kg": _number(energy.get("co2_kg")),
        "tags": dict(tags) if isinstance(tags, Mapping) else {},
    }
