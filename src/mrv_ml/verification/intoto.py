"""The in-toto Statement v1 of a record: its subjects (the artifacts the researcher
names, then the record itself) and its predicate (``PREDICATE_TYPE``, documented in
docs/predicate-mrv-v1.md: the record's figures and its anchoring as the proof claims it);
built for export, and read back from a payload whose signature has been checked.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import RecordError
from mrv_ml.record.hashing import HASH_ALGORITHM, compute_hash
from mrv_ml.verification.dsse import malformed

if TYPE_CHECKING:
    from mrv_ml.record.proof import Proof

__all__ = ["FINGERPRINT_KEY", "PREDICATE_TYPE", "RECORD_MEDIA_TYPE", "STATEMENT_TYPE",
           "Statement", "Subject", "build_predicate", "build_statement", "file_sha256",
           "read_statement"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://mrv-ml.org/attestation/training-energy/v1"
#: The record subject's second digest: the fingerprint the chain anchors (RFC 8785 +
#: SHA-256, lowercase hex), under the name the proof sidecars already use for it.
FINGERPRINT_KEY = HASH_ALGORITHM
RECORD_MEDIA_TYPE = "application/vnd.mrv-ml.record+json"

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a regular file's bytes, read in chunks (model weights may be large)."""
    p = Path(path)
    try:
        if not stat.S_ISREG(p.stat().st_mode):
            raise RecordError(f"{p}: not a regular file")
        digest = hashlib.sha256()
        with p.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    except FileNotFoundError:
        raise RecordError(f"{p}: no such file") from None
    except PermissionError:
        raise RecordError(f"{p}: permission denied") from None
    except OSError as e:
        raise RecordError(f"{p}: cannot be read: {e.strerror or e}") from None


def _anchoring(proof: Proof | None) -> dict[str, Any] | None:
    """The anchoring as the proof claims it; the trust is the proof's claim before any
    verification (``record.trust.proof_trust``), which only ``mrv verify`` turns into a fact."""
    from mrv_ml.record.trust import proof_trust

    if proof is None:
        return None
    a = proof.anchor
    if a is None:
        return {"status": "pending", "mode": None, "network": None, "chain_id": None,
                "registry": None, "submitter": None, "tx_hash": None, "block_number": None,
                "block_hash": None, "merkle_root": None, "trust_claimed": None}
    trust = proof_trust(proof)
    return {"status": "anchored", "mode": a.mode, "network": a.network,
            "chain_id": a.chain_id, "registry": a.contract_address, "submitter": a.submitter,
            "tx_hash": a.tx_hash, "block_number": a.block_number, "block_hash": a.block_hash,
            "merkle_root": a.merkle.root if a.merkle is not None else None,
            "trust_claimed": trust.value if trust is not None else None}


def build_predicate(record: Mapping[str, Any], record_name: str,
                    proof: Proof | None) -> dict[str, Any]:
    """The predicate of ``PREDICATE_TYPE`` for ``record`` (docs/predicate-mrv-v1.md)."""
    ee = record["energy_emissions"]
    exp, hw = record["experiment"], record["hardware"]
    return {
        "record": {"mrv_id": record["mrv_id"], "name": record_name,
                   "schema_version": record["schema_version"],
                   "fingerprint": {"algorithm": HASH_ALGORITHM,
                                   "digest": compute_hash(record)}},
        "experiment": {"name": exp.get("name"), "model_name": exp.get("model_name"),
                       "dataset_name": exp.get("dataset_name"),
                       "framework": exp.get("framework")},
        "outcome_status": record["outcome"]["status"],
        "measurement": {
            "tool": ee.get("measurement_tool"), "tool_version": ee.get("measurement_tool_version"),
            "status": ee.get("measurement_status"),
            "energy_kwh": ee.get("energy_kwh"), "cpu_energy_kwh": ee.get("cpu_energy_kwh"),
            "gpu_energy_kwh": ee.get("gpu_energy_kwh"),
            "ram_energy_kwh": ee.get("ram_energy_kwh"), "co2_kg": ee.get("co2_kg"),
            "duration_s": ee.get("duration_seconds"),
            "carbon_intensity_g_per_kwh": ee.get("carbon_intensity_g_per_kwh"),
            "pue": ee.get("pue"), "country_iso_code": ee.get("country_iso_code"),
            "region": ee.get("region")},
        "hardware": {"cpu_model": hw.get("cpu_model"), "gpu_count": hw.get("gpu_count"),
                     "gpu_models": [g.get("name") for g in hw.get("gpus") or []]},
        # an imported record says how it was measured (schema 1.1's optional field)
        "provenance": record.get("provenance"),
        "started_at": record["timestamps"].get("start_time"),
        "ended_at": record["timestamps"].get("end_time"),
        "anchoring": _anchoring(proof),
    }


def build_statement(record: Mapping[str, Any], record_name: str, record_sha256: str,
                    proof: Proof | None, subjects: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The in-toto Statement v1: ``subjects`` ((name, sha256) of each artifact), then the
    record (its file's SHA-256 and its fingerprint)."""
    names = [name for name, _ in subjects] + [record_name]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise RecordError(f"two subjects are named {dup!r}: subjects are named by file "
                          "name, rename one")
    descriptors: list[dict[str, Any]] = [{"name": n, "digest": {"sha256": d}}
                                         for n, d in subjects]
    descriptors.append({"name": record_name, "mediaType": RECORD_MEDIA_TYPE,
                        "digest": {"sha256": record_sha256,
                                   FINGERPRINT_KEY: compute_hash(record)}})
    return {"_type": STATEMENT_TYPE, "subject": descriptors, "predicateType": PREDICATE_TYPE,
            "predicate": build_predicate(record, record_name, proof)}


@dataclass(frozen=True)
class Subject:
    name: str
    digest: Mapping[str, str]


@dataclass(frozen=True)
class Statement:
    subjects: tuple[Subject, ...]  # the artifacts, without the record
    record: Subject
    mrv_id: str
    predicate: Mapping[str, Any]


def read_statement(payload: bytes, source: str) -> Statement:
    """The statement of a payload whose signature has been checked."""
    from mrv_ml.errors import NotJSONError
    from mrv_ml.record.strictjson import parse_json_strict

    try:
        value = parse_json_strict(payload, f"{source}: payload")
    except NotJSONError as e:
        raise malformed(source, f"the payload is not JSON ({e.key})") from None
    if not isinstance(value, dict) or value.get("_type") != STATEMENT_TYPE:
        raise malformed(source, f"the payload is not an in-toto Statement ({STATEMENT_TYPE})")
    if value.get("predicateType") != PREDICATE_TYPE:
        raise malformed(source, f"predicateType {value.get('predicateType')!r} is not "
                                 f"mrv-ml's {PREDICATE_TYPE}", key="unknown_predicate")
    predicate = value.get("predicate")
    rec = predicate.get("record") if isinstance(predicate, dict) else None
    mrv_id = rec.get("mrv_id") if isinstance(rec, dict) else None
    if not isinstance(mrv_id, str) or not isinstance(predicate, dict):
        raise malformed(source, "the predicate names no record (predicate.record.mrv_id)")
    raw = value.get("subject")
    if not isinstance(raw, list) or not raw:
        raise malformed(source, "the statement has no subjects")
    subjects: list[Subject] = []
    for i, s in enumerate(raw):
        digest = s.get("digest") if isinstance(s, dict) else None
        if not isinstance(s.get("name"), str) or not isinstance(digest, dict) or not all(
                isinstance(v, str) for v in digest.values()) or "sha256" not in digest:
            raise malformed(source, f"subject {i} has no name or no sha256 digest")
        subjects.append(Subject(s["name"], dict(digest)))
    records = [s for s in subjects if FINGERPRINT_KEY in s.digest]
    if len(records) != 1:
        raise malformed(source, f"{len(records)} subjects carry a {FINGERPRINT_KEY} digest; "
                                 "the record is exactly one")
    return Statement(tuple(s for s in subjects if s is not records[0]), records[0], mrv_id,
                     predicate)
