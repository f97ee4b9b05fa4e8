"""A record as a BoAmps report (Boavizta's AI energy-report format), validated against
Boavizta's published schemas before it is returned.

The schemas are vendored in ``src/mrv_ml/schema/boamps/`` (CC BY 4.0; ``VENDORED.md``
names each file's commit). One of them, ``measure_schema.json``, was not obtainable when
they were vendored: the ``measures`` items are checked against the measure fields of
CodeCarbon's own BoAmps model (``codecarbon.output_methods.boamps.models.BoAmpsMeasure``,
the other reading of the format this project depends on), as a schema derived from that
dataclass at run time: the field names and their JSON types, the two fields every BoAmps
measure has (``measurementMethod``, ``powerConsumption``) required, nothing else added;
and the tests read every exported report back with CodeCarbon's model.

What comes from where:

- ``header.reportId`` is the MRV ID; ``header.reportDatetime`` the moment of export (UTC,
  BoAmps' ``YYYY-MM-DD HH:MM:SS``).
- ``task``: stage ``training``; the family from ``--task-family`` (the record cannot
  know it: ``unspecified`` otherwise, never a guess); one algorithm (the model's name, the
  framework and its version, the epochs, the optimizer the record names); one input
  dataset of type ``other`` (the record says its name, which BoAmps has no field for).
  ``taskDescription`` carries what BoAmps cannot: the MRV ID, the fingerprint
  (``sha256-jcs:…``), where it is anchored and at what trust, the verify command, the
  dataset's name, and each estimated figure's range.
- ``measures``: one, the record's: the tool (``codecarbon``) and its version, the CPU's
  and GPU's methods as tracking modes, ``powerConsumption`` the energy in kWh (as
  CodeCarbon's own BoAmps output writes it), the duration and start.
- ``infrastructure``: ``--infra-type`` (``other`` otherwise); the CPU, the GPUs by model
  with their count and memory, the RAM.
- ``environment``: the country (ISO 3166 alpha-3, as CodeCarbon names it) and the grid's
  carbon intensity, when the record has a country.
- ``quality``: derived from the ranges, not asserted: ``high`` when every figure is
  within ±10 % (metered, or an estimate whose range is that narrow), ``medium`` within
  ±25 %, ``low`` within ±50 %; beyond that none of BoAmps' tiers is true, so ``quality``
  is left out and ``taskDescription`` says how far the energy may be off.
- ``$hash``, only when signed (``--key``): BoAmps defines it as the publisher's signature
  of the hash of the report's minimized JSON without ``$hash``. Minimized here is RFC 8785
  (the report's canonical bytes, as for records). ECDSA keys sign those bytes with
  ECDSA-SHA-256 (P-384: SHA-384), Ed25519 keys sign their SHA-256 digest; ``value`` is the
  signature in base64 and ``header.publisher.publicKey`` the public key (PEM). An unsigned
  report has no ``$hash``: every field of it is required and claims a signature. The
  record's fingerprint is in the signed text (``taskDescription``), so the signature
  covers it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import RecordError
from mrv_ml.record.hashing import canonical_bytes
from mrv_ml.record.schema import is_rfc3339
from mrv_ml.reporting.standards.evidence import Evidence, Figures
from mrv_ml.reporting.text import field_at
from mrv_ml.units import utc_moment

if TYPE_CHECKING:
    from mrv_ml.verification.keys import SigningKey

__all__ = ["BOAMPS_SPEC_URI", "INFRA_TYPES", "build_report", "quality_of", "render",
           "signed_bytes", "validate_report"]

#: Where the vendored schemas come from, as their ``id``s name them.
SCHEMA_BASE = "https://raw.githubusercontent.com/Boavizta/BoAmps/main/model/"
BOAMPS_SPEC_URI = "https://github.com/Boavizta/BoAmps/tree/main/model"
FORMAT_VERSION = "1.1.0"  # BoAmps' release of the vendored schemas (its RELEASENOTE.md)
VENDORED = ("report", "algorithm", "dataset", "hardware")
INFRA_TYPES = ("publicCloud", "privateCloud", "onPremise", "other")
#: BoAmps' quality tiers: the largest relative error each allows.
QUALITY_TIERS = (("high", 1.10), ("medium", 1.25), ("low", 1.50))


def _schema(name: str) -> dict[str, Any]:
    text = (resources.files("mrv_ml") / "schema" / "boamps" / f"{name}_schema.json").read_text(
        encoding="utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


def _measure_schema() -> dict[str, Any]:
    """The measure fields of CodeCarbon's BoAmps model, as a schema (see the docstring)."""
    from codecarbon.output_methods.boamps.models import BoAmpsMeasure, snake_to_camel

    kinds = {str: "string", float: "number", int: "integer"}
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(BoAmpsMeasure):
        (kind,) = [t for t in typing.get_args(typing.get_type_hints(BoAmpsMeasure)[f.name])
                   if t is not type(None)]
        properties[snake_to_camel(f.name)] = {"type": kinds[kind]}
    # Other fields are let through (BoAmps' own examples carry ``unit``, which CodeCarbon's
    # model lacks): what is known is typed, nothing is invented.
    return {"$schema": "http://json-schema.org/draft-04/schema#",
            "id": SCHEMA_BASE + "measure_schema.json", "type": "object",
            "properties": properties, "required": ["measurementMethod", "powerConsumption"]}


def validate_report(report: Mapping[str, Any]) -> None:
    """RecordError naming the first problem, unless ``report`` is a valid BoAmps report."""
    from jsonschema import Draft4Validator
    from jsonschema.exceptions import best_match
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schemas = {n: _schema(n) for n in VENDORED}
    schemas["measure"] = _measure_schema()
    registry: Registry[Any] = Registry().with_resources(
        (SCHEMA_BASE + f"{n}_schema.json", Resource.from_contents(s, DRAFT4))
        for n, s in schemas.items())
    error = best_match(Draft4Validator(schemas["report"], registry=registry)
                       .iter_errors(report))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(the report)"
        raise RecordError(f"BoAmps report: {where}: {error.message[:300]}",
                          key="invalid_boamps")


def quality_of(figures: Figures) -> str | None:
    """The BoAmps tier the ranges support, or None when none of them is true."""
    factor = figures.widest_factor
    return next((tier for tier, most in QUALITY_TIERS if factor <= most), None)


def _when(text: Any) -> str | None:
    """An RFC 3339 time as BoAmps writes times (``YYYY-MM-DD HH:MM:SS``, UTC)."""
    moment = utc_moment(text) if is_rfc3339(text) else None
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else None


def _description(e: Evidence, quality: str | None) -> str:
    f = e.figures
    parts = [f"MRV record {e.mrv_id}, fingerprint {e.fingerprint_uri} (SHA-256 of the "
             f"record's RFC 8785 bytes); anchored: {e.anchored_where}; verify: "
             f"{e.verify_command} (with its .proof.json beside it)."]
    dataset = field_at(e.record, "experiment", "dataset_name")
    if dataset:
        parts.append(f"Dataset: {dataset}.")
    ranges = [f"{c.name} {c.method}: {c.low_kwh:.6g}-{c.high_kwh:.6g} kWh"
              for c in f.components if c.has_range]
    if ranges:
        parts.append(f"Estimated figures and their ranges: {'; '.join(ranges)}; energy "
                     f"{f.energy_low_kwh:.6g}-{f.energy_high_kwh:.6g} kWh, CO2e "
                     f"{f.co2_low_kg:.6g}-{f.co2_high_kg:.6g} kg.")
    if quality is None:
        parts.append(f"The energy may be off by up to x{f.widest_factor:.3g}: wider than "
                     "BoAmps' lowest quality tier (+/-50 %), so no quality is stated.")
    parts.append(f"CO2e {f.co2_kg:.6g} kg at {f.carbon_intensity_g_per_kwh or '?'} "
                 f"g/kWh ({f.grid_method or 'grid intensity as CodeCarbon found it'}).")
    return " ".join(parts)


def _algorithm(record: Mapping[str, Any]) -> dict[str, Any]:
    framework = field_at(record, "experiment", "framework")
    versions = field_at(record, "software", "frameworks")
    algorithm = {
        "algorithmName": field_at(record, "experiment", "model_name")
        or field_at(record, "experiment", "name"),
        "framework": framework,
        "frameworkVersion": versions.get(framework) if isinstance(versions, Mapping)
        and isinstance(framework, str) else None,
        "epochsNumber": field_at(record, "training", "epochs"),
        "optimizer": field_at(record, "training", "details", "optimizer"),
    }
    return {k: v for k, v in algorithm.items()
            if isinstance(v, str) and v or isinstance(v, int) and not isinstance(v, bool)}


def _components(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cpu = field_at(record, "hardware", "cpu_model")
    out.append({"componentType": "cpu", "nbComponent": 1,
                **({"componentName": str(cpu)} if cpu else {})})
    gpus: dict[str, list[Any]] = {}
    for gpu in field_at(record, "hardware", "gpus") or []:
        if isinstance(gpu, Mapping) and isinstance(gpu.get("name"), str):
            gpus.setdefault(gpu["name"], []).append(gpu.get("memory_gb"))
    for name, memories in gpus.items():
        gpu_entry: dict[str, Any] = {"componentName": name, "componentType": "gpu",
                                     "nbComponent": len(memories)}
        if isinstance(memories[0], (int, float)) and not isinstance(memories[0], bool):
            gpu_entry["memorySize"] = round(memories[0])
        out.append(gpu_entry)
    ram = field_at(record, "hardware", "ram_gb")
    if isinstance(ram, (int, float)) and not isinstance(ram, bool):
        out.append({"componentType": "ram", "nbComponent": 1, "memorySize": round(ram)})
    return out


def build_report(e: Evidence, *, task_family: str | None = None, infra_type: str = "other",
                 now: datetime | None = None) -> dict[str, Any]:
    """The unsigned BoAmps report of ``e`` (see the module's docstring)."""
    if infra_type not in INFRA_TYPES:
        raise RecordError(f"--infra-type {infra_type[:40]!r}: one of {', '.join(INFRA_TYPES)}")
    f, record = e.figures, e.record
    quality = quality_of(f)
    methods = {c.name: c.method for c in f.components}
    measure = {"measurementMethod": f.measurement_tool.lower(),
               "version": f.measurement_tool_version,
               "cpuTrackingMode": methods.get("cpu"), "gpuTrackingMode": methods.get("gpu"),
               "powerConsumption": f.energy_kwh, "measurementDuration": f.duration_s,
               "measurementDateTime": _when(field_at(record, "timestamps", "start_time"))}
    os_name = field_at(record, "hardware", "os")
    report: dict[str, Any] = {
        "header": {
            "formatVersion": FORMAT_VERSION, "formatVersionSpecificationUri": BOAMPS_SPEC_URI,
            "reportId": e.mrv_id,
            "reportDatetime": (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
            .strftime("%Y-%m-%d %H:%M:%S"),
            "reportStatus": "final",
            "publisher": {"confidentialityLevel": "public"}},
        "task": {"taskStage": "training",
                 "taskFamily": task_family or str(field_at(record, "experiment", "tags",
                                                           "task_family") or "unspecified"),
                 "algorithms": [_algorithm(record)],
                 "dataset": [{"dataUsage": "input", "dataType": "other"}],
                 "taskDescription": _description(e, quality)},
        "measures": [{k: v for k, v in measure.items() if v is not None}],
        "system": {"os": str(os_name).split("-", 1)[0].lower() if os_name else "unknown"},
        "software": {"language": "python",
                     **({"version": str(field_at(record, "software", "python"))}
                        if field_at(record, "software", "python") else {})},
        "infrastructure": {"infraType": infra_type, "components": _components(record)},
    }
    if f.country_iso_code:
        env: dict[str, Any] = {"country": f.country_iso_code}
        if f.region:
            env["location"] = f.region
        if f.carbon_intensity_g_per_kwh is not None:
            env["powerSourceCarbonIntensity"] = f.carbon_intensity_g_per_kwh
        report["environment"] = env
    if quality is not None:
        report["quality"] = quality
    return report


def signed_bytes(report: Mapping[str, Any]) -> bytes:
    """What ``$hash`` signs: the report's RFC 8785 bytes without ``$hash``."""
    return canonical_bytes({k: v for k, v in report.items() if k != "$hash"})


def _sign(report: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    report["header"]["publisher"]["publicKey"] = key.public_pem().strip()
    data = signed_bytes(report)
    if key.kind == "ed25519":  # EdDSA over the digest of the hash BoAmps names first
        algorithm, hash_name = "EDDSA", "SHA-256"
        signature = key.signer.sign(hashlib.sha256(data).digest()).signature
    else:  # ECDSA hashes as it signs: ECDSA-SHA-256 (P-384: SHA-384) over the bytes
        algorithm, hash_name = "ECDSA", "SHA-384" if key.kind == "ecdsa-p384" else "SHA-256"
        signature = key.signer.sign(data).signature
    report["$hash"] = {"hashAlgorithm": hash_name, "cryptographicAlgorithm": algorithm,
                       "value": base64.b64encode(bytes.fromhex(signature)).decode("ascii")}
    return report


def render(evidence: Sequence[Evidence], *, key: SigningKey | None = None,
           task_family: str | None = None, infra_type: str = "other",
           now: datetime | None = None) -> str:
    """The BoAmps report of the one record in ``evidence`` as JSON, validated (and signed
    with ``key``). BoAmps holds one task per report: several records are refused."""
    if len(evidence) != 1:
        raise RecordError(f"BoAmps holds one task per report: export each of the "
                          f"{len(evidence)} records on its own")
    report = build_report(evidence[0], task_family=task_family, infra_type=infra_type,
                          now=now)
    if key is not None:
        report = _sign(report, key)
    validate_report(report)
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
