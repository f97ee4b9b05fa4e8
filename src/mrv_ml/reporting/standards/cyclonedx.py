"""MRV records as a CycloneDX 1.6 ML-BOM, built and validated with cyclonedx-python-lib.

Mapping (from :class:`~mrv_ml.reporting.standards.evidence.Evidence`, never the record):

* one component of type ``machine-learning-model`` per distinct model, named after
  ``experiment.model_name`` (else ``experiment.name``, else the MRV ID); several records of
  one model (a fine-tune and its parent, a sweep) are several training runs of that
  component. Its ``bom-ref`` is a UUIDv5 of the name, so it is the same on every export.
* per record, on that component: an external reference of type ``attestation`` (the record
  is a machine-readable statement of fact, fingerprinted and anchored), url
  ``urn:mrv:<MRV ID>``, its ``hashes`` the SHA-256 fingerprint and its comment naming it
  ``sha256-jcs:<hex>`` (SHA-256 of the record's RFC 8785 bytes: what ``mrv verify``
  recomputes) and the verify command.
* per record, on that component, the figures as properties
  ``mrv-ml:training:<MRV ID>:<field>``, named after CycloneDX 1.6's
  ``modelCard.considerations.environmentalConsiderations.energyConsumptions[]``:
  ``activity`` (``training``), ``activityEnergyCost.kWh``, ``co2CostEquivalent.kgCO2e``,
  ``energyProvider.<cpu|gpu|ram>.kWh`` with ``energyProvider.<cpu|gpu|ram>`` describing how
  it was obtained (measured or estimated, the method, its range); ranges as
  ``*.low.*``/``*.high.*``; duration, grid intensity and its method, location, PUE, tool.
* per record, the component's ``modelCard.considerations.environmentalConsiderations.
  energyConsumptions[]`` entry itself: activity ``training``, the energy as
  ``activityEnergyCost`` (kWh), the CO2e as ``co2CostEquivalent`` (1.6 knows only
  ``tCO2eq``: kg / 1000), one ``energyProviders`` entry (1.6's providers are utilities by
  organization and energy source: the grid where the run was, source ``unknown``, the
  energy it provided) and properties naming the MRV ID and the fingerprint.
  cyclonedx-python-lib 11 has no ``modelCard`` yet (its ``Component.model_card`` is a TODO;
  CycloneDX/cyclonedx-python-lib#912, PR #914), so this one object is added to the
  library's output as JSON, and the whole document is then checked by the library's own
  strict 1.6 validator, which knows ``modelCard``. 1.6's energy model cannot state ranges,
  "estimated" or a per-component split: those stay in the properties above.
* metadata: the tool (mrv-ml and its version); the timestamp is the newest record's end
  time and the serial number a UUIDv5 of the sorted fingerprints, so the same records give
  the same bytes; properties ``mrv-ml:record:<MRV ID>:<field>`` with each record's
  fingerprint, where it is anchored (and at what trust), its RFC 3161 timestamps and the
  command that verifies it.

The document is validated with the library's strict JSON validator before it is returned.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mrv_ml._version import __version__
from mrv_ml.errors import MissingExtraError, RecordError
from mrv_ml.reporting.standards.evidence import Component as Part
from mrv_ml.reporting.standards.evidence import Evidence, bound, distinct

if TYPE_CHECKING:
    from cyclonedx.model import Property

__all__ = ["EXTRA", "NAMESPACE", "SPEC_VERSION", "render"]

EXTRA = "standards"
SPEC_VERSION = "1.6"
NAMESPACE = "mrv-ml"  # the properties' taxonomy prefix
#: The UUIDv5 namespace of the serial number and the components' bom-refs: fixed, so that
#: re-exporting the same records gives the same document.
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mrv-ml:cyclonedx")
_MAX_QUOTE = 80  # longest piece of input quoted in an error message


def _model_ref(name: str) -> str:
    return f"mrv-ml-model-{uuid.uuid5(_UUID_NAMESPACE, 'model:' + name)}"


def _num(value: float) -> str:
    return repr(float(value))  # shortest round-tripping form: the record's own figure


def _bound(value: float) -> str:
    return _num(bound(value))


def _method(part: Part) -> str:
    how = "measured" if part.measured else "not measured" if part.method == "none" \
        else "estimated"
    text = f"{part.name}: {how} ({part.method}), {_num(part.energy_kwh)} kWh"
    if part.has_range:
        text += f", range {_bound(part.low_kwh)} to {_bound(part.high_kwh)} kWh"
    if part.assumption:
        text += f"; assumption: {part.assumption}"
    return text


def _training(e: Evidence) -> Iterator[tuple[str, str]]:
    """The record's figures, as (field, value) under ``mrv-ml:training:<MRV ID>:``."""
    f = e.figures
    yield "activity", "training"
    yield "fingerprint", e.fingerprint_uri
    yield "activityEnergyCost.kWh", _num(f.energy_kwh)
    yield "co2CostEquivalent.kgCO2e", _num(f.co2_kg)
    # The bounds whenever a figure is not exact (CycloneDX's measures are bare values).
    if (f.energy_low_kwh, f.energy_high_kwh) != (f.energy_kwh, f.energy_kwh):
        yield "activityEnergyCost.low.kWh", _bound(f.energy_low_kwh)
        yield "activityEnergyCost.high.kWh", _bound(f.energy_high_kwh)
    if (f.co2_low_kg, f.co2_high_kg) != (f.co2_kg, f.co2_kg):
        yield "co2CostEquivalent.low.kgCO2e", _bound(f.co2_low_kg)
        yield "co2CostEquivalent.high.kgCO2e", _bound(f.co2_high_kg)
    if f.components:  # all_measured holds of no component at all: say nothing then
        yield "energyMethod", "measured" if f.all_measured else "estimated (in part or whole)"
    for part in f.components:
        yield f"energyProvider.{part.name}.kWh", _num(part.energy_kwh)
        yield f"energyProvider.{part.name}", _method(part)
        if part.has_range:
            yield f"energyProvider.{part.name}.low.kWh", _bound(part.low_kwh)
            yield f"energyProvider.{part.name}.high.kWh", _bound(part.high_kwh)
    if f.duration_s is not None:
        yield "durationSeconds", _num(f.duration_s)
    if f.carbon_intensity_g_per_kwh is not None:
        yield "carbonIntensity.gCO2e/kWh", _num(f.carbon_intensity_g_per_kwh)
    if f.grid_method is not None:
        yield "carbonIntensity.method", f.grid_method
    if (f.grid_low_factor, f.grid_high_factor) != (1.0, 1.0):
        yield "carbonIntensity.range", (f"x{_num(f.grid_low_factor)} to "
                                        f"x{_num(f.grid_high_factor)} of the figure")
    location = "/".join(p for p in (f.country_iso_code, f.region) if p)
    if location:
        yield "location", location
    if f.location_source is not None:
        yield "location.source", f.location_source
    if f.pue is not None:
        yield "pue", _num(f.pue)
    tool = f.measurement_tool + (f" {f.measurement_tool_version}"
                                 if f.measurement_tool_version else "")
    yield "measurementTool", tool


def _record(e: Evidence) -> Iterator[tuple[str, str]]:
    """Where a reader checks the record, as (field, value) under ``mrv-ml:record:<ID>:``."""
    yield "fingerprint", e.fingerprint_uri
    yield "model", e.model
    yield "anchoredWhere", e.anchored_where
    yield "verifyCommand", e.verify_command
    a = e.anchoring
    if a is not None:
        yield "anchor.trust", a.trust.value
        yield "anchor.trustNote", a.trust_note
        yield "anchor.chainId", str(a.chain_id)
        yield "anchor.contract", a.contract_address
        yield "anchor.submitter", a.submitter
        if a.tx_hash:
            yield "anchor.txHash", a.tx_hash
        if a.block_number is not None:
            yield "anchor.blockNumber", str(a.block_number)
        if a.merkle_root:
            yield "anchor.merkleRoot", a.merkle_root
    for authority, when in e.timestamps:
        yield "rfc3161Timestamp", f"{authority} at {when}"


def _properties(prefix: str, fields: Iterator[tuple[str, str]]) -> list[Property]:
    from cyclonedx.model import Property

    return [Property(name=f"{prefix}:{name}", value=value) for name, value in fields]


def _validated(text: str) -> str:
    from cyclonedx.exception import MissingOptionalDependencyException
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    except MissingOptionalDependencyException as e:
        raise MissingExtraError("validating CycloneDX needs cyclonedx-python-lib's "
                                f"json-validation extra: pip install 'mrv-ml[{EXTRA}]'") from e
    if error is not None:
        message = str(getattr(error.data, "message", error))
        raise RecordError("the records cannot be expressed as valid CycloneDX "
                          f"{SPEC_VERSION}: {message[:200]}")
    return text


def render(evidence: Sequence[Evidence]) -> str:
    """The CycloneDX 1.6 JSON document (validated before it is returned) of the records
    in ``evidence``: one model per record, or several records of one model (a fine-tune
    and its parent, a sweep)."""
    try:
        from cyclonedx.exception import CycloneDxException
        from cyclonedx.model import (
            ExternalReference,
            ExternalReferenceType,
            HashAlgorithm,
            HashType,
            Property,
            XsUri,
        )
        from cyclonedx.model.bom import Bom, BomMetaData
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.model.tool import ToolRepository
        from cyclonedx.output.json import JsonV1Dot6
    except ImportError as missing:
        raise MissingExtraError("CycloneDX export needs cyclonedx-python-lib: pip install "
                                f"'mrv-ml[{EXTRA}]' (import failed: {missing})") from missing

    records = distinct(evidence, "CycloneDX")
    models: dict[str, list[Evidence]] = {}
    for e in records:
        models.setdefault(e.model, []).append(e)
    try:
        components = []
        for name, runs in models.items():
            props = [p for e in runs for p in _properties(f"{NAMESPACE}:training:{e.mrv_id}",
                                                          _training(e))]
            refs = [ExternalReference(
                type=ExternalReferenceType.ATTESTATION, url=XsUri(f"urn:mrv:{e.mrv_id}"),
                comment=(f"MRV record {e.mrv_id}, fingerprint {e.fingerprint_uri} (SHA-256 "
                         "of its RFC 8785 canonical JSON); check it with: "
                         f"{e.verify_command}"),
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=e.fingerprint)])
                for e in runs]
            components.append(Component(
                type=ComponentType.MACHINE_LEARNING_MODEL, name=name,
                bom_ref=_model_ref(name),
                description=(f"{len(runs)} training run(s) recorded by mrv-ml: energy (kWh) "
                             f"and CO2e (kg) of each in properties {NAMESPACE}:training:"
                             "<MRV ID>:*, its fingerprint in an attestation reference"),
                properties=props, external_references=refs))
        meta = [p for e in records for p in _properties(f"{NAMESPACE}:record:{e.mrv_id}",
                                                        _record(e))]
        meta.append(Property(
            name=f"{NAMESPACE}:note",
            value="the energy model of CycloneDX 1.6 (modelCard.considerations."
                  "environmentalConsiderations.energyConsumptions) is given as the "
                  f"{NAMESPACE}:training:* properties of each model component, with the "
                  "ranges and methods it has no field for"))
        bom = Bom(
            serial_number=uuid.uuid5(_UUID_NAMESPACE,
                                     "\n".join(sorted(e.fingerprint for e in records))),
            components=components,
            metadata=BomMetaData(
                timestamp=max(e.end_time for e in records),
                tools=ToolRepository(components=[Component(
                    type=ComponentType.APPLICATION, name="mrv-ml", version=__version__)]),
                properties=meta))
        text = JsonV1Dot6(bom).output_as_string(indent=2)
    except CycloneDxException as refused:
        raise RecordError(f"the records cannot be expressed as CycloneDX {SPEC_VERSION}: "
                          f"{str(refused)[:200]}") from refused
    return _validated(_with_model_cards(text, models)) + "\n"


def _energy_consumption(e: Evidence) -> dict[str, Any]:
    f = e.figures
    where = "/".join(p for p in (f.country_iso_code, f.region) if p) or "location unknown"
    kwh = {"value": f.energy_kwh, "unit": "kWh"}
    return {
        "activity": "training",
        "energyProviders": [{
            "description": (f"the electricity grid where the run was ({where}), as "
                            f"{f.measurement_tool} found it; "
                            + "; ".join(_method(part) for part in f.components)),
            "organization": {"name": f"electricity grid ({where})"},
            "energySource": "unknown", "energyProvided": kwh}],
        "activityEnergyCost": kwh,
        "co2CostEquivalent": {"value": f.co2_kg / 1000, "unit": "tCO2eq"},
        "properties": [{"name": f"{NAMESPACE}:mrvId", "value": e.mrv_id},
                       {"name": f"{NAMESPACE}:fingerprint", "value": e.fingerprint_uri},
                       {"name": f"{NAMESPACE}:verifyCommand", "value": e.verify_command}]}


def _with_model_cards(text: str, models: Mapping[str, Sequence[Evidence]]) -> str:
    """The library's document with each model component's ``modelCard`` energy entries."""
    doc = json.loads(text)
    by_ref = {_model_ref(name): runs for name, runs in models.items()}
    for component in doc.get("components", []):
        runs = by_ref.get(component.get("bom-ref"))
        if runs is not None:
            component["modelCard"] = {"considerations": {"environmentalConsiderations": {
                "energyConsumptions": [_energy_consumption(e) for e in runs]}}}
    return json.dumps(doc, indent=2, ensure_ascii=True)
