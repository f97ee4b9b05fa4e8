"""MRV records as an SPDX 3.0.1 document of the AI profile, built with the SPDX project's own
Python bindings (``spdx-python-model``) and checked by them before it is returned.

Mapping (from :class:`~mrv_ml.reporting.standards.evidence.Evidence`, never the record):

* one ``ai_AIPackage`` per distinct model, named after ``experiment.model_name`` (else
  ``experiment.name``, else the MRV ID); several records of one model (a fine-tune and its
  parent, a sweep) are several training runs of it. ``software_primaryPurpose`` is
  ``model``. The AI profile also requires ``suppliedBy``, ``releaseTime``,
  ``software_packageVersion`` and ``software_downloadLocation``, which a record does not
  know: the supplier is an ``Agent`` named ``NOASSERTION``, version and download location
  are ``NOASSERTION``, ``releaseTime`` (and ``builtTime``) the end of the model's latest
  recorded training; the package's ``comment`` says so.
* ``ai_energyConsumption.ai_trainingEnergyConsumption``: one ``ai_EnergyConsumptionDescription``
  per record, ``ai_energyUnit`` ``kilowattHour``, ``ai_energyQuantity`` the record's energy
  (its own figure, as a plain decimal). Each description's ``@id`` is
  ``urn:mrv-ml:spdx:<fingerprint>#training-energy``: SPDX gives it no other field, and its
  lists are unordered, so the ID is what ties it to its record.
* per record, a ``software_File`` named after the record file (``<MRV ID>.json``), purpose
  ``evidence``, linked from its package by a ``hasEvidence`` relationship. It carries the
  MRV ID and the fingerprint (``sha256-jcs:<hex>``) as external identifiers, and the
  fingerprint as its ``verifiedUsing`` SHA-256 ``Hash``, whose ``comment`` says that it is the
  hash of the record's RFC 8785 canonical bytes (what ``mrv verify`` recomputes), not of the
  file's bytes. Its ``comment`` names where the fingerprint is anchored (and at what trust),
  its RFC 3161 timestamps, and the command that verifies it.
* per record, an ``Annotation`` of the package whose ``statement`` is JSON
  (``contentType`` ``application/json``) with what SPDX has no field for: CO2e (kg), the
  energy's and CO2e's ranges where a figure is estimated, each component's method, the
  duration, the grid's intensity and location, PUE, and the measurement tool.
* the document: spdxIds derived from the fingerprints (``urn:mrv-ml:spdx:<SHA-256 of the
  sorted fingerprints>``), ``creationInfo.created`` the newest record's end time (so the same
  records give the same bytes), created by mrv-ml (a ``SoftwareAgent``) using mrv-ml at its
  version (a ``Tool``); ``profileConformance`` core, software and ai.

What is checked before returning: the bindings refuse, as each value is set and when the
document is serialized, what the SPDX model does not allow (types, patterns, vocabularies,
required and maximal counts: the bindings are generated from the SPDX SHACL model), and the
document is read back with the bindings' deserializer and compared with what was exported.
Then the document is checked against SPDX's published 3.0.1 JSON schema, vendored in
``mrv_ml/schema/spdx/3.0.1/spdx-json-schema.json`` (``VENDORED.md``: its source and its
SHA-256, the same as spdx.org's), the first of the two checks of SPDX's validator
(``spdx3-validate``). The second, its SHACL shapes, needs the SPDX model (``spdx-model.ttl``)
and JSON-LD context, which spdx3-validate downloads from spdx.org on each run and which no
package this project can reach ships: :func:`validate` runs both with local copies of the
three files (nothing is ever fetched), and :func:`render` runs it too once the other two are
vendored beside the schema.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml._version import __version__
from mrv_ml.errors import MissingExtraError, RecordError
from mrv_ml.reporting.standards.evidence import Evidence, bound, distinct

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["CONTEXT_URL", "EXTRA", "ID_PREFIX", "SPEC_VERSION", "VALIDATION_FILES",
           "check_schema", "render", "validate", "vendored_validation_data"]

EXTRA = "standards"
SPEC_VERSION = "3.0.1"
CONTEXT_URL = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
ID_PREFIX = "urn:mrv-ml:spdx:"
NOASSERTION = "NOASSERTION"  # SPDX's word for "the creator makes no assertion"
#: The files spdx3-validate downloads for SPDX 3.0.1, as they are named on spdx.org.
VALIDATION_FILES = ("spdx-json-schema.json", "spdx-model.ttl", "spdx-context.jsonld")
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mrv-ml:spdx")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_QUOTE = 200  # longest piece of a library's message quoted in an error


def _decimal(value: float) -> str:
    """The shortest round-tripping digits of ``value`` in positional notation: SPDX's
    ``energyQuantity`` is an ``xsd:decimal``, whose lexical form (and the JSON schema's
    pattern) has no exponent, while the bindings write ``str(value)`` (``2.3e-05``)."""
    return format(Decimal(repr(float(value))), "f")


def _distinct(evidence: Sequence[Evidence]) -> list[Evidence]:
    """The records, each once (:func:`distinct`); their fingerprints make the spdxIds: a
    SHA-256 in hex, nothing else, goes there."""
    records = distinct(evidence, "SPDX")
    for e in records:
        if not _SHA256_HEX.fullmatch(e.fingerprint):
            raise RecordError(f"{e.mrv_id}: {e.fingerprint[:80]!r} is not a SHA-256 "
                              "fingerprint: the record cannot be exported as SPDX")
    return records


def _figures(e: Evidence) -> dict[str, Any]:
    """What the Annotation states of one record: all that SPDX has no field for."""
    f = e.figures
    out: dict[str, Any] = {
        "mrv_id": e.mrv_id, "fingerprint": e.fingerprint_uri, "activity": "training",
        "energy_kwh": f.energy_kwh, "co2e_kg": f.co2_kg}
    # The bounds whenever a figure is not exact (SPDX's energy is one bare quantity).
    if (f.energy_low_kwh, f.energy_high_kwh) != (f.energy_kwh, f.energy_kwh):
        out["energy_range_kwh"] = [bound(f.energy_low_kwh), bound(f.energy_high_kwh)]
    if (f.co2_low_kg, f.co2_high_kg) != (f.co2_kg, f.co2_kg):
        out["co2e_range_kg"] = [bound(f.co2_low_kg), bound(f.co2_high_kg)]
    out["estimated"] = not f.all_measured
    out["components"] = [
        {"name": c.name, "energy_kwh": c.energy_kwh, "method": c.method,
         "measured": c.measured,
         **({"range_kwh": [bound(c.low_kwh), bound(c.high_kwh)]} if c.has_range else {}),
         **({"assumption": c.assumption} if c.assumption else {})}
        for c in f.components]
    optional = {
        "duration_s": f.duration_s, "carbon_intensity_g_per_kwh": f.carbon_intensity_g_per_kwh,
        "grid_method": f.grid_method, "country_iso_code": f.country_iso_code,
        "region": f.region, "location_source": f.location_source, "pue": f.pue,
        "measurement_tool": f.measurement_tool,
        "measurement_tool_version": f.measurement_tool_version}
    out.update((k, v) for k, v in optional.items() if v is not None)
    return out


def _record_comment(e: Evidence) -> str:
    stamps = "".join(f"; RFC 3161 timestamp by {authority} at {when}"
                     for authority, when in e.timestamps)
    return (f"MRV record {e.mrv_id}, fingerprint {e.fingerprint_uri}; anchored: "
            f"{e.anchored_where}{stamps}. Check it with: {e.verify_command} (with the record "
            "and its proof file beside it)")


def _spdx() -> ModuleType:
    try:
        from spdx_python_model import v3_0_1
    except ImportError as missing:
        raise MissingExtraError("SPDX export needs spdx-python-model: pip install "
                                f"'mrv-ml[{EXTRA}]' (import failed: {missing})") from missing
    return v3_0_1


def _document(spdx: ModuleType, records: list[Evidence]) -> Any:
    """The SHACLObjectSet of the SPDX document of ``records``."""
    doc_id = ID_PREFIX + hashlib.sha256(
        "\n".join(sorted(e.fingerprint for e in records)).encode("ascii")).hexdigest()
    info = spdx.CreationInfo(
        specVersion=SPEC_VERSION, created=max(e.end_time for e in records),
        comment="created is the end time of the newest record's training, not the moment of "
                "export, so that the same records give the same document")
    agent = spdx.SoftwareAgent(spdxId=f"{doc_id}#mrv-ml", name="mrv-ml", creationInfo=info)
    info.createdBy.append(agent)
    tool = spdx.Tool(spdxId=f"{doc_id}#mrv-ml-{__version__}",
                     name=f"mrv-ml {__version__}", creationInfo=info)
    info.createdUsing.append(tool)
    supplier = spdx.Agent(
        spdxId=f"{doc_id}#supplier", name=NOASSERTION, creationInfo=info,
        comment="MRV records do not name who supplied a model; SPDX's AI profile requires "
                "a supplier")

    models: dict[str, list[Evidence]] = {}
    for e in records:
        models.setdefault(e.model, []).append(e)
    elements: list[Any] = [agent, tool, supplier]
    packages: list[Any] = []
    for name, runs in sorted(models.items()):
        pkg_id = f"{doc_id}#model-{uuid.uuid5(_UUID_NAMESPACE, name)}"
        trained = max(e.end_time for e in runs)
        package = spdx.ai_AIPackage(
            spdxId=pkg_id, name=name, creationInfo=info,
            software_primaryPurpose=spdx.software_SoftwarePurpose.model,
            software_packageVersion=NOASSERTION, software_downloadLocation=NOASSERTION,
            suppliedBy=supplier, releaseTime=trained, builtTime=trained,
            ai_informationAboutTraining=(
                f"{len(runs)} training run(s) recorded by mrv-ml: "
                + ", ".join(e.mrv_id for e in runs)),
            comment=(
                "Training energy in kWh as the MRV records state it, one "
                "ai_trainingEnergyConsumption entry per record (its @id names the record's "
                "fingerprint); CO2e, the ranges of estimated figures and how each was "
                "obtained are in this package's annotations (JSON), the records' "
                "fingerprints and anchoring on the hasEvidence files. The records name no "
                f"supplier, version, download location or release: those are {NOASSERTION}, "
                "and releaseTime is the end of the latest recorded training."),
            ai_energyConsumption=spdx.ai_EnergyConsumption(
                ai_trainingEnergyConsumption=[
                    spdx.ai_EnergyConsumptionDescription(
                        _id=f"{ID_PREFIX}{e.fingerprint}#training-energy",
                        ai_energyQuantity=e.figures.energy_kwh,
                        ai_energyUnit=spdx.ai_EnergyUnitType.kilowattHour)
                    for e in runs]))
        packages.append(package)
        files = []
        for e in runs:
            base = f"{ID_PREFIX}{e.fingerprint}"
            files.append(spdx.software_File(
                spdxId=f"{base}#record", name=e.record_file_name, creationInfo=info,
                software_primaryPurpose=spdx.software_SoftwarePurpose.evidence,
                contentType="application/json", comment=_record_comment(e),
                externalIdentifier=[
                    spdx.ExternalIdentifier(
                        externalIdentifierType=spdx.ExternalIdentifierType.other,
                        identifier=e.mrv_id, issuingAuthority="mrv-ml",
                        comment="MRV ID: the record's identifier"),
                    spdx.ExternalIdentifier(
                        externalIdentifierType=spdx.ExternalIdentifierType.other,
                        identifier=e.fingerprint_uri, issuingAuthority="mrv-ml",
                        comment="fingerprint: SHA-256 of the record's RFC 8785 (JCS) "
                                "canonical bytes")],
                verifiedUsing=[spdx.Hash(
                    algorithm=spdx.HashAlgorithm.sha256, hashValue=e.fingerprint,
                    comment="SHA-256 of the record's RFC 8785 (JCS) canonical JSON bytes, "
                            "which `mrv verify` recomputes and the anchor registers; not "
                            "of the bytes of the file as stored, which may be formatted "
                            "otherwise")]))
            elements.append(spdx.Annotation(
                spdxId=f"{base}#figures", creationInfo=info, subject=package,
                annotationType=spdx.AnnotationType.other, contentType="application/json",
                statement=json.dumps(_figures(e), sort_keys=True, ensure_ascii=True),
                comment=f"The figures of training run {e.mrv_id} that SPDX has no field "
                        "for: CO2e in kg, the ranges of estimated figures, the methods"))
        elements.extend(files)
        elements.append(spdx.Relationship(
            spdxId=f"{pkg_id}-evidence", creationInfo=info, from_=package, to=files,
            relationshipType=spdx.RelationshipType.hasEvidence,
            comment="the MRV records of the model's training runs"))

    document = spdx.SpdxDocument(
        spdxId=doc_id, creationInfo=info,
        name="mrv-ml: training energy of " + ", ".join(e.mrv_id for e in records),
        profileConformance=[spdx.ProfileIdentifierType.core,
                            spdx.ProfileIdentifierType.software,
                            spdx.ProfileIdentifierType.ai],
        rootElement=packages, element=packages + elements)
    return spdx.SHACLObjectSet([document, *packages, *elements])


def _nodes(data: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``data``, nested ones included."""
    if isinstance(data, dict):
        yield data
        data = list(data.values())
    if isinstance(data, list):
        for item in data:
            yield from _nodes(item)


def _serialized(spdx: ModuleType, objects: Any) -> str:
    data = spdx.JSONLDSerializer().serialize_data(objects, force_at_graph=True)
    for node in _nodes(data):
        if node.get("type") == "ai_EnergyConsumptionDescription":
            # The one float in the document, re-written in xsd:decimal's lexical form (see
            # _decimal) from the bindings' own text, which float() reads back exactly.
            node["ai_energyQuantity"] = _decimal(float(node["ai_energyQuantity"]))
    # ASCII only: a model name's control or bidi characters are escaped, never raw.
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


def _read_back(spdx: ModuleType, text: str, records: list[Evidence]) -> None:
    """Parse ``text`` with the bindings and check that it says what was exported."""
    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().deserialize_data(json.loads(text), objects)
    energy = {d.get_id(): d.ai_energyQuantity
              for p in objects.foreach_type(spdx.ai_AIPackage)
              for d in p.ai_energyConsumption.ai_trainingEnergyConsumption}
    hashes = {f.externalIdentifier[0].identifier: f.verifiedUsing[0].hashValue
              for f in objects.foreach_type(spdx.software_File)}
    expected = {f"{ID_PREFIX}{e.fingerprint}#training-energy": e.figures.energy_kwh
                for e in records}
    if energy != expected or hashes != {e.mrv_id: e.fingerprint for e in records}:
        raise RecordError("the SPDX document does not read back as the records it was made "
                          "of: it is not exported")


def _vendored() -> Path:
    return Path(str(resources.files("mrv_ml") / "schema" / "spdx" / SPEC_VERSION))


def vendored_validation_data() -> Path | None:
    """The folder of the SPDX 3.0.1 files :func:`validate` needs, where all three are
    vendored (``mrv_ml/schema/spdx/3.0.1/``), else None."""
    folder = _vendored()
    return folder if all((folder / name).is_file() for name in VALIDATION_FILES) else None


def check_schema(text: str) -> None:
    """RecordError unless ``text`` is valid under SPDX's published 3.0.1 JSON schema (the
    vendored copy): spdx3-validate's first check, offline."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    schema = json.loads((_vendored() / VALIDATION_FILES[0]).read_text(encoding="utf-8"))
    error = best_match(Draft202012Validator(schema).iter_errors(json.loads(text)))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(the document)"
        raise RecordError(f"the records cannot be expressed as valid SPDX {SPEC_VERSION}: "
                          f"{where}: {' '.join(error.message.split())[:_MAX_QUOTE]}")


def validate(text: str, data_dir: Path) -> None:
    """Validate the SPDX 3.0.1 JSON-LD ``text`` with spdx3-validate: its JSON schema check
    and its SHACL check, with the three files of :data:`VALIDATION_FILES` from ``data_dir``
    (nothing is fetched). RecordError for an invalid document; MissingExtraError when
    spdx3-validate is missing or the files cannot be read."""
    try:
        import rdflib
        from spdx3_validate.core import (
            Document,
            SpdxValidateError,
            check_graph,
            schema_validator,
        )
        from spdx3_validate.spdx_versions import find_version
    except ImportError as missing:
        raise MissingExtraError("validating SPDX needs spdx3-validate: pip install "
                                f"spdx3-validate (import failed: {missing})") from missing
    version = find_version(CONTEXT_URL)
    assert version is not None  # spdx3-validate knows 3.0.1
    try:
        data = json.loads(text)
        context = json.loads((data_dir / VALIDATION_FILES[2]).read_text(encoding="utf-8"))
        # spdx3-validate's Document, with the context given inline instead of fetched.
        graph = rdflib.Graph().parse(
            data=json.dumps({**data, "@context": context["@context"]}), format="json-ld")
        document = Document("the SPDX document", data, graph, version)
        schema = json.loads((data_dir / VALIDATION_FILES[0]).read_text(encoding="utf-8"))
        shacl = rdflib.Graph().parse(str(data_dir / VALIDATION_FILES[1]), format="turtle")
    except (OSError, SpdxValidateError) as unreachable:
        where = f"in {data_dir}"
        raise MissingExtraError(
            f"SPDX validation needs the SPDX {SPEC_VERSION} JSON schema, SHACL model and "
            f"JSON-LD context ({', '.join(VALIDATION_FILES)}), which could not be read "
            f"{where}: {str(unreachable)[:_MAX_QUOTE]}",
            key="spdx_validation_data") from unreachable
    problems = [f"{e.json_path}: {e.message}"
                for e in schema_validator(schema).iter_errors(document.data)]
    problems += check_graph(document.graph, shacl, version, True)
    if problems:
        raise RecordError(f"the records cannot be expressed as valid SPDX {SPEC_VERSION} "
                          f"({len(problems)} problem(s)): "
                          f"{' '.join(problems[0].split())[:_MAX_QUOTE]}")


def render(evidence: Sequence[Evidence]) -> str:
    """The SPDX 3.0 JSON-LD document (validated before it is returned) of the records in
    ``evidence``: one AI package per model; several records of one model (a fine-tune and
    its parent, a sweep) each add a training energy entry."""
    spdx = _spdx()
    records = _distinct(evidence)
    try:
        text = _serialized(spdx, _document(spdx, records))
    except (TypeError, ValueError) as refused:
        # The bindings refuse a value or a count the SPDX model does not allow.
        raise RecordError(f"the records cannot be expressed as SPDX {SPEC_VERSION}: "
                          f"{str(refused)[:_MAX_QUOTE]}") from refused
    _read_back(spdx, text, records)
    check_schema(text)
    data_dir = vendored_validation_data()
    if data_dir is not None:
        validate(text, data_dir)
    return text
