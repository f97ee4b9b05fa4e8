"""Repairing a record a run has produced: values JSON cannot hold, or the schema refuses,
become ``null`` (or are dropped from a free-form section), each one named in the record
(:func:`repair_record`), so the measurement is never lost for a bad value beside it.
"""

from __future__ import annotations

import copy
from typing import Any

from jsonschema.exceptions import best_match

from mrv_ml.errors import RecordError, SchemaValidationError
from mrv_ml.record.hashing import first_offending, is_unrepresentable
from mrv_ml.record.schema import (
    _describe,
    _field_path,
    _is_unicode,
    _power_series_problem,
    _validator,
    check_record_header,
    validate_record,
)

#: Where the notes of :func:`repair_record` go (``training.details`` is free-form).
DROPPED_NOTE_KEY = "mrv_dropped_values"
_MAX_REPAIRS = 50


def _unrepresentable(value: Any) -> bool:
    """A leaf that JSON/RFC 8785 cannot carry exactly (or at all)."""
    if isinstance(value, str):
        return not _is_unicode(value)
    if value is None or isinstance(value, (bool, int, float)):
        return is_unrepresentable(value)  # NaN, infinity, integers beyond 2^53
    return True  # sets, datetimes, objects...


def _set_path(record: dict[str, Any], parts: list[Any], value: Any) -> None:
    target: Any = record
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


def repair_record(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A record a run has produced, made storable: every value JSON cannot hold (NaN, a set,
    an integer beyond 2^53, a lone surrogate) and every value the schema refuses is replaced
    by ``null`` (or, in a free-form section, dropped), and each is named in
    ``training.details.mrv_dropped_values``. The measurement is never lost for a bad value
    reported beside it. Returns (record, notes), the record validated; raises the schema
    error if it cannot help.
    """
    try:
        validate_record(record)
        return record, []  # the usual case: one validation, the one writing needs anyway
    except RecordError:
        pass
    repaired = copy.deepcopy(record)
    notes: list[str] = []
    for _ in range(_MAX_REPAIRS):
        bad = first_offending(repaired, _unrepresentable)
        if bad is None:
            break
        path, value = bad
        notes.append(f"{path}: {_short_repr(value)} cannot be represented in JSON")
        _set_path(repaired, _split_path(path), None)
    for _ in range(_MAX_REPAIRS):
        error = best_match(_validator(check_record_header(repaired)).iter_errors(repaired))
        if error is None or not error.absolute_path:
            break
        parts = list(error.absolute_path)
        if "power_series" in parts[:-1]:  # a series is kept whole or not at all
            parts = parts[:parts.index("power_series") + 1]
        parent: Any = repaired
        for part in parts[:-1]:
            parent = parent[part]
        free_form = len(parts) >= 2 and parts[-2] in ("details", "tags")
        if parent.get(parts[-1]) is None and not free_form:
            raise SchemaValidationError(f"{_field_path(parts)}: {_describe(error)}")
        notes.append(f"{_field_path(parts)}: {_short_repr(error.instance)} refused "
                     f"({_describe(error)})")
        if free_form:
            del parent[parts[-1]]
        else:
            parent[parts[-1]] = None
    problem = _power_series_problem(repaired)
    if problem is not None:
        _drop_power_series(repaired)
        notes.append(f"{problem}: the power series was dropped")
    if notes:
        details = repaired.setdefault("training", {}).setdefault("details", {})
        if isinstance(details, dict):
            details[DROPPED_NOTE_KEY] = notes
    validate_record(repaired)  # what could not be mended is raised here
    return repaired, notes


def _drop_power_series(record: dict[str, Any]) -> None:
    """Every power series of ``record`` set to ``null`` (the totals stand without them)."""
    sections = [record.get("energy_emissions")]
    distributed = record.get("distributed")
    if isinstance(distributed, dict) and isinstance(distributed.get("ranks"), list):
        sections += [rank.get("energy_emissions") for rank in distributed["ranks"]
                     if isinstance(rank, dict)]
    for section in sections:
        if isinstance(section, dict) and section.get("power_series") is not None:
            section["power_series"] = None


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _split_path(path: str) -> list[Any]:
    """``a.b[2].c`` -> ``["a", "b", 2, "c"]`` (the paths :func:`first_offending` gives)."""
    parts: list[Any] = []
    for piece in path.split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indexes)
    return parts
