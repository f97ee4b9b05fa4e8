"""The SPDX 3.0.1 AI-profile export, checked with the SPDX project's own libraries: the
document reads back with spdx-python-model's deserializer (and re-serializes under its
SHACL-derived checks), spdx3-validate validates it where the SPDX files are vendored (not
yet), and it carries each record's training energy, MRV ID, fingerprint, CO2e and ranges;
same records, same bytes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.standards]
require_optional(pytestmark)

from spdx_python_model import load_data  # noqa: E402
from spdx_python_model import v3_0_1 as spdx  # noqa: E402

from mrv_ml._version import __version__  # noqa: E402
from mrv_ml.errors import MissingExtraError, RecordError  # noqa: E402
from mrv_ml.record.hashing import compute_hash  # noqa: E402
from mrv_ml.reporting.standards.evidence import Evidence, evidence_of  # noqa: E402
from mrv_ml.reporting.standards.spdx_ai import (  # noqa: E402
    ID_PREFIX,
    VALIDATION_FILES,
    render,
    validate,
    vendored_validation_data,
)
from tests.support.records import make_sample_record  # noqa: E402
from tests.unit.reporting.standards.test_evidence import estimated_record  # noqa: E402

KWH = spdx.ai_EnergyUnitType.kilowattHour


def _read(text: str) -> Any:
    """The document as spdx-python-model reads it, after checking that the bindings
    serialize it again (their encoder refuses missing required properties and counts)."""
    model, objects = load_data(json.loads(text))
    assert model is spdx
    again = spdx.JSONLDSerializer().serialize_data(objects, force_at_graph=True)
    assert again["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    return objects


def _one(objects: Any, typ: type) -> Any:
    [found] = list(objects.foreach_type(typ))
    return found


def _figures(objects: Any, e: Evidence) -> dict[str, Any]:
    [note] = [a for a in objects.foreach_type(spdx.Annotation)
              if a.get_id() == f"{ID_PREFIX}{e.fingerprint}#figures"]
    assert note.contentType == "application/json"
    figures: dict[str, Any] = json.loads(note.statement)
    return figures


def _spdx3_validate(text: str) -> None:
    """spdx3-validate's JSON schema and SHACL checks where the SPDX files are vendored in
    the package (not yet: spdx.org could not be reached where this was built; the bindings'
    own checks and the read-back stand meanwhile). Nothing is fetched."""
    data = vendored_validation_data()
    if data is not None:
        validate(text, data)


def test_round_trip_carries_the_energy_the_mrv_id_and_the_fingerprint() -> None:
    record = make_sample_record()
    e = evidence_of(record)
    text = render([e])
    _spdx3_validate(text)
    objects = _read(text)

    doc = _one(objects, spdx.SpdxDocument)
    assert set(doc.profileConformance) == {spdx.ProfileIdentifierType.core,
                                           spdx.ProfileIdentifierType.software,
                                           spdx.ProfileIdentifierType.ai}
    assert doc.creationInfo.specVersion == "3.0.1"
    assert doc.creationInfo.created.isoformat() == "2026-11-24T22:00:12+00:00"  # end time
    assert [t.name for t in doc.creationInfo.createdUsing] == [f"mrv-ml {__version__}"]
    assert [a.name for a in doc.creationInfo.createdBy] == ["mrv-ml"]

    package = _one(objects, spdx.ai_AIPackage)
    assert [p.get_id() for p in doc.rootElement] == [package.get_id()]
    assert package.name == "SimpleCNN"
    assert package.software_primaryPurpose == spdx.software_SoftwarePurpose.model
    # what the AI profile requires of an AIPackage is there
    assert package.suppliedBy and package.releaseTime and package.software_packageVersion
    assert package.software_downloadLocation
    [entry] = package.ai_energyConsumption.ai_trainingEnergyConsumption
    assert entry.ai_energyQuantity == record["energy_emissions"]["energy_kwh"]
    assert entry.ai_energyUnit == KWH
    assert entry.get_id() == f"{ID_PREFIX}{compute_hash(record)}#training-energy"

    evidence = _one(objects, spdx.Relationship)
    assert evidence.relationshipType == spdx.RelationshipType.hasEvidence
    assert evidence.from_ is package
    [file] = evidence.to
    assert file.name == f"{record['mrv_id']}.json"
    assert file.software_primaryPurpose == spdx.software_SoftwarePurpose.evidence
    assert [i.identifier for i in file.externalIdentifier] == [
        record["mrv_id"], f"sha256-jcs:{compute_hash(record)}"]
    [digest] = file.verifiedUsing
    assert (digest.algorithm, digest.hashValue) == (spdx.HashAlgorithm.sha256,
                                                    compute_hash(record))
    assert "RFC 8785" in digest.comment and "not of the bytes of the file" in digest.comment
    assert e.anchored_where in file.comment and e.verify_command in file.comment

    figures = _figures(objects, e)
    assert figures["co2e_kg"] == record["energy_emissions"]["co2_kg"]  # CO2e never dropped
    assert (figures["mrv_id"], figures["fingerprint"]) == (e.mrv_id, e.fingerprint_uri)
    assert "energy_range_kwh" not in figures  # the sample record's methods state no range


def test_two_records_of_one_model_are_one_package_with_two_training_entries() -> None:
    parent = make_sample_record(energy_emissions__energy_kwh=2.5)
    tuned = make_sample_record(energy_emissions__energy_kwh=0.25,
                               timestamps__end_time="2026-11-25T08:00:00Z")
    other = make_sample_record(experiment__model_name=None, experiment__name="sweep-7")
    es = [evidence_of(r) for r in (parent, tuned, other)]
    text = render(es)
    _spdx3_validate(text)
    objects = _read(text)
    packages = {p.name: p for p in objects.foreach_type(spdx.ai_AIPackage)}
    assert set(packages) == {"SimpleCNN", "sweep-7"}  # model_name, else experiment.name
    entries = {d.get_id(): d.ai_energyQuantity
               for d in packages["SimpleCNN"].ai_energyConsumption.ai_trainingEnergyConsumption}
    assert entries == {f"{ID_PREFIX}{e.fingerprint}#training-energy": e.figures.energy_kwh
                       for e in es[:2]}
    assert packages["SimpleCNN"].releaseTime.isoformat() == "2026-11-25T08:00:00+00:00"
    assert _one(objects, spdx.SpdxDocument).creationInfo.created.isoformat() \
        == "2026-11-25T08:00:00+00:00"  # the newest record's end time
    files = {r.from_.name: sorted(f.name for f in r.to)
             for r in objects.foreach_type(spdx.Relationship)}
    assert files == {"SimpleCNN": sorted(f"{r['mrv_id']}.json" for r in (parent, tuned)),
                     "sweep-7": [f"{other['mrv_id']}.json"]}
    for e in es:
        assert _figures(objects, e)["energy_kwh"] == e.figures.energy_kwh


def test_the_same_records_give_the_same_bytes_in_any_order_and_process() -> None:
    records = [make_sample_record(mrv_id="MRV-00000000-0000-4000-8000-000000000001"),
               make_sample_record(mrv_id="MRV-00000000-0000-4000-8000-000000000002",
                                  energy_emissions__energy_kwh=1.0)]
    es = [evidence_of(r) for r in records]
    text = render(es)
    assert render(es[::-1]) == text == render(es + es[:1])  # a record given twice is once
    # another process with another hash seed: nothing depends on set or dict order
    script = ("import json, sys; from mrv_ml.reporting.standards.evidence import evidence_of; "
              "from mrv_ml.reporting.standards.spdx_ai import render; "
              "sys.stdout.write(render([evidence_of(r) for r in json.load(sys.stdin)]))")
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps(records),
                         capture_output=True, text=True, check=True, timeout=300,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.stdout == text


def test_estimated_figures_carry_their_ranges() -> None:
    e = evidence_of(estimated_record())
    text = render([e])
    _spdx3_validate(text)
    objects = _read(text)
    f = e.figures
    figures = _figures(objects, e)
    assert figures["estimated"] is True
    assert figures["energy_range_kwh"] == pytest.approx([f.energy_low_kwh, f.energy_high_kwh])
    assert figures["co2e_range_kg"] == pytest.approx([f.co2_low_kg, f.co2_high_kg])
    assert figures["co2e_range_kg"][0] < figures["co2e_kg"] < figures["co2e_range_kg"][1]
    cpu = next(c for c in figures["components"] if c["name"] == "cpu")
    assert cpu["range_kwh"] == pytest.approx([0.0001 * 0.4, 0.0001 * 2.0])
    assert cpu["measured"] is False
    assert figures["grid_method"] == "world average"


def test_a_tiny_energy_is_written_as_a_plain_decimal() -> None:
    # SPDX's energyQuantity is an xsd:decimal: no exponent in its lexical form, where the
    # bindings alone would write str(2.3e-05) == "2.3e-05".
    e = evidence_of(make_sample_record(energy_emissions__energy_kwh=2.3e-05))
    text = render([e])
    [node] = [n for n in json.loads(text)["@graph"]
              if n["type"] == "ai_EnergyConsumptionDescription"]
    assert node["ai_energyQuantity"] == "0.000023"
    [entry] = _one(_read(text), spdx.ai_AIPackage).ai_energyConsumption \
        .ai_trainingEnergyConsumption
    assert entry.ai_energyQuantity == 2.3e-05
    _spdx3_validate(text)


def test_a_hostile_model_name_is_exported_exactly_and_safely() -> None:
    name = "Simple\x1b[2J\x00\x07\n\u0085\u202eCNN" + "x" * 10_000
    e = evidence_of(make_sample_record(experiment__model_name=name))
    text = render([e])
    assert text.isascii() and not any(ch < " " and ch != "\n" for ch in text)
    _spdx3_validate(text)
    package = _one(_read(text), spdx.ai_AIPackage)
    assert package.name == name


def test_bad_input_is_refused_with_a_one_line_record_error() -> None:
    with pytest.raises(RecordError, match="no record"):
        render([])
    e = evidence_of(make_sample_record())  # (the shared checks: test_evidence.py)
    no_time = evidence_of(make_sample_record(timestamps={"end_time": "yesterday"}))
    with pytest.raises(RecordError, match="no end time"):
        render([no_time])
    garbled = dataclasses.replace(e, fingerprint="not hex")  # it goes into the spdxIds
    with pytest.raises(RecordError, match="is not a SHA-256 fingerprint"):
        render([garbled])
    # what the SPDX model refuses (the bindings check each value as it is set) is a
    # RecordError, not a traceback: here an energy that is no number
    nonsense = dataclasses.replace(e, figures=dataclasses.replace(e.figures, energy_kwh="x"))
    with pytest.raises(RecordError, match="cannot be expressed as SPDX 3.0.1"):
        render([nonsense])


def test_validation_data_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    text = render([evidence_of(make_sample_record())])
    with pytest.raises(MissingExtraError, match=f"could not be read in {tmp_path}") as err:
        validate(text, tmp_path)
    assert all(name in str(err.value) for name in VALIDATION_FILES)


def test_a_missing_library_is_named_with_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spdx_python_model", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'mrv-ml\[standards\]'"):
        render([evidence_of(make_sample_record())])


def test_spdx3_validates_own_json_schema_check_agrees_with_the_export() -> None:
    """The vendored schema is spdx.org's (its SHA-256), and spdx3-validate's own JSON-schema
    check passes what render returns and fails what SPDX refuses."""
    import hashlib
    from importlib import resources

    from spdx3_validate.core import schema_validator

    from mrv_ml.reporting.standards.spdx_ai import check_schema

    file = resources.files("mrv_ml") / "schema" / "spdx" / "3.0.1" / VALIDATION_FILES[0]
    assert hashlib.sha256(file.read_bytes()).hexdigest() == \
        "582c64e809d5b3ef9bd0c4de13a32391b47b0284a3e8d199569fb96f649234b1"
    validator = schema_validator(json.loads(file.read_text()))
    text = render([evidence_of(make_sample_record())])
    assert list(validator.iter_errors(json.loads(text))) == []
    broken = json.loads(text)
    quantities = [n for n in _nodes(broken) if "ai_energyQuantity" in n]
    assert quantities
    for node in quantities:
        node["ai_energyQuantity"] = "2.3e-05"  # an exponent: not an xsd:decimal
    assert list(validator.iter_errors(broken)) != []
    with pytest.raises(RecordError, match="cannot be expressed as valid SPDX 3.0.1"):
        check_schema(json.dumps(broken))


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _nodes(v)
    elif isinstance(value, list):
        for v in value:
            yield from _nodes(v)
