"""BoAmps: a record as Boavizta's report, validated against the vendored schemas, read back
by CodeCarbon's own BoAmps model, its quality tier derived from the ranges, its ``$hash`` a
signature that ``cryptography`` checks."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mrv_ml.errors import RecordError
from mrv_ml.reporting.standards import boamps
from mrv_ml.reporting.standards.evidence import evidence_of
from mrv_ml.verification.keys import load_signing_key
from tests.support.keys import key_pair
from tests.support.records import make_sample_record
from tests.unit.reporting.standards.test_evidence import estimated_record

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=timezone.utc)
METERED = {"energy_emissions__methods__cpu": {"method": "RAPL", "measured": True},
           "energy_emissions__methods__ram": {"method": "RAPL", "measured": True}}


def _report(record: dict[str, Any], **options: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(boamps.render([evidence_of(record)], now=NOW,
                                                     **options))
    return value


def test_the_report_validates_names_the_record_and_reads_back_in_codecarbon() -> None:
    from codecarbon.output_methods.boamps.models import BoAmpsReport

    record = make_sample_record(**METERED)
    e = evidence_of(record)
    report = _report(record, task_family="imageClassification")
    assert report["header"]["reportId"] == record["mrv_id"]
    assert report["header"]["reportDatetime"] == "2026-12-08 12:00:00"
    assert e.fingerprint_uri in report["task"]["taskDescription"]
    assert f"mrv verify {record['mrv_id']}.json" in report["task"]["taskDescription"]
    [measure] = report["measures"]
    assert measure["powerConsumption"] == record["energy_emissions"]["energy_kwh"]
    assert measure["measurementDuration"] == record["energy_emissions"]["duration_seconds"]
    assert measure["measurementDateTime"] == "2026-11-24 22:00:00"
    assert report["environment"] == {"country": "FRA", "powerSourceCarbonIntensity": 366.7}
    assert report["quality"] == "high" and "$hash" not in report  # metered; unsigned
    # CodeCarbon's BoAmps model reads every field back unchanged (field names agree)
    assert BoAmpsReport.from_dict(copy.deepcopy(report)).to_dict() == report


def test_an_invalid_report_is_refused_naming_the_field() -> None:
    report = boamps.build_report(evidence_of(make_sample_record()), now=NOW)
    boamps.validate_report(report)
    bad = copy.deepcopy(report)
    bad["header"]["reportStatus"] = "approved"
    with pytest.raises(RecordError, match="header/reportStatus"):
        boamps.validate_report(bad)
    bad = copy.deepcopy(report)
    bad["measures"][0]["powerConsumption"] = "12 kWh"
    with pytest.raises(RecordError, match="measures/0/powerConsumption"):
        boamps.validate_report(bad)
    bad = copy.deepcopy(report)
    del bad["infrastructure"]["components"]
    with pytest.raises(RecordError, match="components"):
        boamps.validate_report(bad)


@pytest.mark.parametrize(("low", "high", "tier"), [
    (0.95, 1.05, "high"), (0.9, 1.1, "high"), (0.85, 1.2, "medium"), (0.6, 1.4, "low"),
    (0.4, 2.0, None)])
def test_the_quality_tier_follows_the_ranges(low: float, high: float, tier: str | None
                                             ) -> None:
    ranged = {"low_factor": low, "high_factor": high, "basis": "test", "reference": "x"}
    record = make_sample_record(
        energy_emissions__methods__cpu={"method": "TDP", "measured": False,
                                        "uncertainty": ranged},
        energy_emissions__methods__ram={"method": "RAPL", "measured": True})
    report = _report(record)
    assert report.get("quality") == tier
    if tier is None:
        assert "no quality is stated" in report["task"]["taskDescription"]
    assert boamps.quality_of(evidence_of(estimated_record()).figures) is None


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_a_signed_report_carries_a_hash_anyone_checks(kind: str, tmp_path: Path) -> None:
    path, public = key_pair(tmp_path, kind)
    report = _report(make_sample_record(), key=load_signing_key(path))
    h = report["$hash"]
    assert h["cryptographicAlgorithm"] == ("EDDSA" if kind == "ed25519" else "ECDSA")
    assert h["hashAlgorithm"] == "SHA-256"
    shipped = serialization.load_pem_public_key(
        report["header"]["publisher"]["publicKey"].encode())
    assert shipped.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo) == \
        public.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = base64.b64decode(h["value"])

    def check(r: dict[str, Any]) -> None:
        data = boamps.signed_bytes(r)
        if kind == "ed25519":
            public.verify(signature, hashlib.sha256(data).digest())
        else:
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))

    check(report)  # raises unless the signature is this key's over these bytes
    changed = copy.deepcopy(report)
    changed["measures"][0]["powerConsumption"] /= 2
    with pytest.raises(InvalidSignature):
        check(changed)


def test_one_task_per_report_and_a_bad_infra_type_are_refused() -> None:
    two = [evidence_of(make_sample_record()), evidence_of(make_sample_record())]
    with pytest.raises(RecordError, match="one task per report"):
        boamps.render(two)
    with pytest.raises(RecordError, match="--infra-type"):
        boamps.render(two[:1], infra_type="cloud")


def test_the_vendored_schemas_are_the_files_vendored_md_names() -> None:
    from importlib import resources

    folder = resources.files("mrv_ml") / "schema" / "boamps"
    listed = (folder / "VENDORED.md").read_text()
    for name in boamps.VENDORED:
        schema = json.loads((folder / f"{name}_schema.json").read_text())
        assert schema["id"] == f"{boamps.SCHEMA_BASE}{name}_schema.json"
        assert f"`{name}_schema.json`" in listed
    assert "Creative Commons Attribution 4.0" in listed
