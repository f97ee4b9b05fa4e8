"""The registry database's checks on what it is given: fingerprints, IDs, addresses, hex
values, times and numbers, and a published record's searchable fields as table rows.
RecordError names what is wrong, before any database work.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mrv_ml.errors import RecordError
from mrv_ml.record.schema import MRV_ID_PATTERN
from mrv_ml.registry_service.db.schema import MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS, UTC

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_HASH32 = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")


def _fingerprint(value: str) -> str:
    if not isinstance(value, str) or not _FINGERPRINT.fullmatch(value):
        raise RecordError(f"a fingerprint is 64 lowercase hex digits, not {str(value)[:80]!r}")
    return value


def _mrv_id(value: str) -> str:
    if not isinstance(value, str) or not MRV_ID_PATTERN.fullmatch(value):
        raise RecordError(f"not an MRV record ID: {str(value)[:80]!r}")
    return value


def _address(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise RecordError(f"{what} is not an address: {str(value)[:80]!r}")
    from eth_utils import to_checksum_address

    return str(to_checksum_address(value))


def _hex_value(value: str, pattern: re.Pattern[str], what: str, size: str) -> str:
    lowered = value.lower() if isinstance(value, str) else ""
    if not pattern.fullmatch(lowered):
        raise RecordError(f"{what} must be {size} hex with 0x, not {str(value)[:80]!r}")
    return lowered


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise RecordError(f"{what} must be a datetime with a time zone")
    return value.astimezone(UTC)


def _timestamp(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(f"{what} is not an ISO 8601 time: {value[:80]!r}") from None
    return _aware(value, what)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"{what} must be a finite number or null, not {value!r}")
    return float(value)


_RECORD_FIELDS = {"experiment", "model_name", "tags", "started_at", "energy_kwh", "co2_kg",
                  "signer", "status", "dataset_name", "duration_s"}


def _record_row(mrv_id: str, fingerprint: str, record_json: str | bytes,
                fields: Mapping[str, Any], signer: str | None,
                now: datetime) -> tuple[dict[str, Any], list[dict[str, str]]]:
    unknown = set(fields) - _RECORD_FIELDS
    if unknown:
        raise RecordError(f"unknown record fields: {', '.join(sorted(unknown))}")
    if isinstance(record_json, bytes):
        try:
            record_json = record_json.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("the record is not UTF-8") from None
    experiment = fields.get("experiment")
    if not isinstance(experiment, str) or not experiment:
        raise RecordError("a published record needs its experiment's name")
    model_name = fields.get("model_name")
    if model_name is not None and not isinstance(model_name, str):
        raise RecordError("model_name must be text")
    tags = fields.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise RecordError("tags must be an object")
    row = {
        "mrv_id": mrv_id, "fingerprint": fingerprint, "record_json": record_json,
        "experiment": experiment, "model_name": model_name, "tags": dict(tags),
        "signer": _address(fields["signer"], "signer") if "signer" in fields else signer,
        "started_at": _timestamp(fields.get("started_at"), "started_at"),
        "energy_kwh": _number(fields.get("energy_kwh"), "energy_kwh"),
        "co2_kg": _number(fields.get("co2_kg"), "co2_kg"),
        "published_at": now,
        "status": _short_text(fields.get("status"), "status", 16),
        "dataset_name": _short_text(fields.get("dataset_name"), "dataset_name", None),
        "duration_s": _number(fields.get("duration_s"), "duration_s"),
    }
    tag_rows = []
    for key, value in tags.items():
        text = value if isinstance(value, str) else json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(key) <= MAX_TAG_KEY_CHARS and len(text) <= MAX_TAG_VALUE_CHARS:
            tag_rows.append({"mrv_id": mrv_id, "key": key, "value": text})
    return row, tag_rows


def _short_text(value: Any, what: str, limit: int | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        raise RecordError(f"{what} must be text" + (f" of at most {limit} characters"
                                                     if limit else ""))
    return value
