"""A submission's body, checked before anything is written: its fields, the signature
(it must recover its signer), and a record sent for publishing (valid, this ID's, hashing
to the fingerprint given, within the size limit); then the record's searchable copies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mrv_ml.anchoring.wire import SUBMISSION_FIELDS
from mrv_ml.errors import RecordError

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _checked(data: Any, max_record_bytes: int) -> dict[str, Any]:
    """The submission's fields, checked: RecordError (400) names what is wrong."""
    from mrv_ml.chain.signing import recover_signer
    from mrv_ml.record.hashing import canonical_bytes, compute_hash
    from mrv_ml.record.schema import MRV_ID_PATTERN, validate_record

    if not isinstance(data, dict):
        raise RecordError("the body must be a JSON object")
    unknown = set(data) - set(SUBMISSION_FIELDS)
    if unknown:
        raise RecordError(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    fingerprint, mrv_id = data.get("fingerprint"), data.get("mrv_id")
    if not isinstance(fingerprint, str) or not _FINGERPRINT.fullmatch(fingerprint):
        raise RecordError("fingerprint must be 64 lowercase hex digits (sha256-jcs)",
                          key="bad_fingerprint")
    if not isinstance(mrv_id, str) or not MRV_ID_PATTERN.fullmatch(mrv_id):
        raise RecordError("mrv_id must be MRV-<uuid4>", key="bad_mrv_id")
    out: dict[str, Any] = {"fingerprint": fingerprint, "mrv_id": mrv_id}
    signer, signature = data.get("signer"), data.get("signature")
    if (signer is None) != (signature is None):
        raise RecordError("signer and signature come together", key="bad_signature")
    if signature is not None:
        recovered = recover_signer(mrv_id, fingerprint, signature)
        if not isinstance(signer, str) or recovered.lower() != signer.lower():
            raise RecordError(f"the signature is by {recovered}, not by the signer given",
                              key="bad_signature")
        out.update(signer=recovered, signature=signature.lower())
    record = data.get("record")
    if record is not None:
        if not isinstance(record, dict):
            raise RecordError("record must be a JSON object")
        validate_record(record)
        if record.get("mrv_id") != mrv_id:
            raise RecordError("the record's mrv_id is not the mrv_id given",
                              key="record_mismatch")
        if compute_hash(record) != fingerprint:
            raise RecordError("the record does not hash to the fingerprint given",
                              key="fingerprint_mismatch")
        canonical = canonical_bytes(record)
        if len(canonical) > max_record_bytes:
            raise RecordError(f"the record is larger than {max_record_bytes:,} bytes",
                              key="too_large")
        out["record_json"] = canonical
        out["record_fields"] = _searchable(record, out.get("signer"))
    return out


def _searchable(record: Mapping[str, Any], signer: str | None) -> dict[str, Any]:
    """The columns a search reads. Their text holds no NUL (PostgreSQL's text cannot, and a
    query cannot ask for one): U+FFFD stands in. The record itself is kept byte for byte."""
    experiment = record.get("experiment") or {}
    energy = record.get("energy_emissions") or {}
    times = record.get("timestamps") or {}
    tags = {_no_nul(k): _no_nul(v) for k, v in (experiment.get("tags") or {}).items()}
    return {"experiment": _no_nul(experiment.get("name") or ""),
            "model_name": _no_nul(experiment.get("model_name")), "tags": tags,
            "started_at": times.get("start_time"), "energy_kwh": energy.get("energy_kwh"),
            "co2_kg": energy.get("co2_kg"), "signer": signer,
            "status": (record.get("outcome") or {}).get("status"),
            "dataset_name": _no_nul(experiment.get("dataset_name")),
            "duration_s": energy.get("duration_seconds")}


def _no_nul(text: Any) -> Any:
    return text.replace("\x00", "\ufffd") if isinstance(text, str) else text
