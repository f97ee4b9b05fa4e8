"""The CycloneDX 1.6 ML-BOM export, checked with cyclonedx-python-lib itself: the document
validates against the strict 1.6 schema, reads back with the library, and carries each
record's energy, CO2e, ranges, MRV ID and fingerprint; same records, same bytes."""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.standards]
require_optional(pytestmark)

from cyclonedx.model import ExternalReferenceType, HashAlgorithm  # noqa: E402
from cyclonedx.model.bom import Bom  # noqa: E402
from cyclonedx.model.component import Component, ComponentType  # noqa: E402
from cyclonedx.schema import SchemaVersion  # noqa: E402
from cyclonedx.validation.json import JsonStrictValidator  # noqa: E402

from mrv_ml._version import __version__  # noqa: E402
from mrv_ml.errors import MissingExtraError, RecordError  # noqa: E402
from mrv_ml.record.trust import Trust  # noqa: E402
from mrv_ml.reporting.standards.cyclonedx import render  # noqa: E402
from mrv_ml.reporting.standards.evidence import Anchoring, Evidence, evidence_of  # noqa: E402
from tests.support.records import DELETE, make_sample_record  # noqa: E402
from tests.unit.reporting.standards.test_evidence import estimated_record  # noqa: E402


def _read(text: str) -> Bom:
    """The document, validated by the library's strict 1.6 validator, read back by it."""
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom: Bom = Bom.from_json(json.loads(text))  # type: ignore[attr-defined]
    return bom


def _props(owner: Any, prefix: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in owner.properties:
        if p.name.startswith(prefix):
            out.setdefault(p.name[len(prefix):], []).append(p.value)
    return out


def _models(bom: Bom) -> list[Component]:
    return [c for c in bom.components if c.type is ComponentType.MACHINE_LEARNING_MODEL]


def test_round_trip_carries_energy_co2_mrv_id_and_fingerprint() -> None:
    record = make_sample_record()
    e = evidence_of(record)
    text = render([e])
    bom = _read(text)
    assert json.loads(text)["specVersion"] == "1.6"
    [model] = _models(bom)
    assert model.name == "SimpleCNN"
    run = _props(model, f"mrv-ml:training:{e.mrv_id}:")
    assert run["activity"] == ["training"]
    ee = record["energy_emissions"]
    assert float(run["activityEnergyCost.kWh"][0]) == pytest.approx(ee["energy_kwh"])
    assert float(run["co2CostEquivalent.kgCO2e"][0]) == pytest.approx(ee["co2_kg"])
    for name in ("cpu", "gpu", "ram"):
        assert float(run[f"energyProvider.{name}.kWh"][0]) == pytest.approx(
            ee[f"{name}_energy_kwh"])
    assert run["energyProvider.cpu"] == ["cpu: estimated (TDP), 0.0001 kWh"]
    assert run["energyProvider.gpu"] == ["gpu: not measured (none), 0.0 kWh"]
    assert run["fingerprint"] == [e.fingerprint_uri]
    assert e.fingerprint_uri.startswith("sha256-jcs:")
    # a metered-free but rangeless record states no bounds
    assert not any(".low." in k or ".high." in k for k in run)
    [ref] = model.external_references
    assert ref.type is ExternalReferenceType.ATTESTATION
    assert str(ref.url) == f"urn:mrv:{e.mrv_id}"
    assert ref.comment is not None and e.fingerprint_uri in ref.comment
    assert e.verify_command in ref.comment
    [digest] = ref.hashes
    assert (digest.alg, digest.content) == (HashAlgorithm.SHA_256, e.fingerprint)
    # metadata: the tool, the record's own end time, where it is anchored, how to verify
    assert bom.metadata.timestamp.isoformat() == "2026-11-24T22:00:12.500000+00:00"
    [tool] = bom.metadata.tools.components
    assert (tool.name, tool.version) == ("mrv-ml", __version__)
    meta = _props(bom.metadata, f"mrv-ml:record:{e.mrv_id}:")
    assert meta["fingerprint"] == [e.fingerprint_uri]
    assert meta["anchoredWhere"] == ["not anchored on any chain"]
    assert meta["verifyCommand"] == [f"mrv verify {e.mrv_id}.json"]


def test_an_anchored_record_names_its_chain_transaction_and_timestamps() -> None:
    e = dataclasses.replace(
        evidence_of(make_sample_record()),
        anchoring=Anchoring("single", 11155111, "sepolia", "0x" + "ab" * 20, "0x" + "cd" * 20,
                            "0x" + "ef" * 32, 1234, None, Trust.PUBLIC, "chain is public"),
        timestamps=(("FreeTSA", "2026-11-24T22:01:00Z"),))
    meta = _props(_read(render([e])).metadata, f"mrv-ml:record:{e.mrv_id}:")
    assert meta["anchoredWhere"] == [e.anchored_where]
    assert "sepolia (chain 11155111)" in meta["anchoredWhere"][0]
    assert meta["anchor.txHash"] == ["0x" + "ef" * 32]
    assert meta["anchor.blockNumber"] == ["1234"]
    assert meta["anchor.trust"] == ["public"]
    assert meta["rfc3161Timestamp"] == ["FreeTSA at 2026-11-24T22:01:00Z"]
    assert "anchor.merkleRoot" not in meta


def test_records_of_one_model_share_a_component_and_models_get_their_own() -> None:
    parent = evidence_of(make_sample_record(timestamps__end_time="2026-11-20T10:00:00Z"))
    tuned = evidence_of(make_sample_record(energy_emissions__energy_kwh=0.5))
    other = evidence_of(make_sample_record(experiment__model_name="ResNet-50"))
    [model] = _models(_read(render([parent, tuned])))
    assert len(model.external_references) == 2
    for e in (parent, tuned):
        run = _props(model, f"mrv-ml:training:{e.mrv_id}:")
        assert run["activity"] == ["training"]
        assert float(run["activityEnergyCost.kWh"][0]) == e.figures.energy_kwh
    bom = _read(render([parent, tuned, other]))
    by_name = {c.name: c for c in _models(bom)}
    assert set(by_name) == {"SimpleCNN", "ResNet-50"}
    assert len(by_name["SimpleCNN"].external_references) == 2
    assert [str(r.url) for r in by_name["ResNet-50"].external_references] == [
        f"urn:mrv:{other.mrv_id}"]
    # the newest record's end time, whichever order they came in
    assert bom.metadata.timestamp.isoformat() == "2026-11-24T22:00:12.500000+00:00"


def test_the_model_name_falls_back_to_the_experiment_then_the_mrv_id() -> None:
    named = evidence_of(make_sample_record(experiment__model_name=DELETE))
    bare = evidence_of(make_sample_record(experiment__model_name=None,
                                          experiment__name=DELETE))
    names = {c.name for c in _models(_read(render([named, bare])))}
    assert names == {"mnist-baseline", bare.mrv_id}


def test_the_same_records_give_the_same_bytes() -> None:
    a, b = (evidence_of(make_sample_record()) for _ in range(2))
    first = render([a, b])
    assert render([a, b]) == first
    assert render([b, a, a]) == first  # order and repetition do not change the document
    assert render([a]) != first  # another set of records, another serial number
    assert json.loads(render([a]))["serialNumber"] != json.loads(first)["serialNumber"]


def test_ranges_and_estimates_are_stated_not_dropped() -> None:
    e = evidence_of(estimated_record())
    f = e.figures
    [model] = _models(_read(render([e])))
    run = _props(model, f"mrv-ml:training:{e.mrv_id}:")
    assert float(run["activityEnergyCost.low.kWh"][0]) == pytest.approx(f.energy_low_kwh)
    assert float(run["activityEnergyCost.high.kWh"][0]) == pytest.approx(f.energy_high_kwh)
    assert float(run["co2CostEquivalent.low.kgCO2e"][0]) == pytest.approx(f.co2_low_kg)
    assert float(run["co2CostEquivalent.high.kgCO2e"][0]) == pytest.approx(f.co2_high_kg)
    assert run["energyProvider.cpu"] == ["cpu: estimated (TDP), 0.0001 kWh, range 4e-05 to "
                                         "0.0002 kWh"]
    assert float(run["energyProvider.ram.low.kWh"][0]) == pytest.approx(2.3e-05 * 0.5)
    assert run["energyMethod"] == ["estimated (in part or whole)"]
    assert run["carbonIntensity.method"] == ["world average"]
    assert run["carbonIntensity.range"] == ["x0.05 to x1.8 of the figure"]


def test_bad_input_is_refused_with_a_one_line_record_error() -> None:
    failed = make_sample_record(energy_emissions__measurement_status="failed",
                                energy_emissions__measurement_error="no RAPL access")
    with pytest.raises(RecordError, match="no RAPL access"):
        evidence_of(failed)  # render is never reached with a record without figures
    with pytest.raises(RecordError, match="no record"):
        render([])
    e = evidence_of(make_sample_record())  # (the shared checks: test_evidence.py)
    # what the schema refuses is caught by the validator before anything is returned
    garbled = dataclasses.replace(e, fingerprint="not-hex")
    with pytest.raises(RecordError, match="cannot be expressed as valid CycloneDX 1.6"):
        render([garbled])
    no_time = evidence_of(make_sample_record(timestamps={"end_time": "yesterday"}))
    with pytest.raises(RecordError, match="no end time"):
        render([no_time])


def test_a_hostile_model_name_is_exported_exactly_and_safely() -> None:
    name = "Simple\x1b[2J\x00\x07\n\u0085\u202eCNN" + "x" * 10_000
    e = evidence_of(make_sample_record(experiment__model_name=name))
    text = render([e])
    assert text.isascii() and not any(ch < " " and ch != "\n" for ch in text)
    [model] = _models(_read(text))
    assert model.name == name
    assert _props(model, f"mrv-ml:training:{e.mrv_id}:")["fingerprint"] == [e.fingerprint_uri]


def test_render_takes_evidence_only_and_warns_of_nothing() -> None:
    # the CLI's call: a sequence of Evidence, a str back (one JSON document, one newline)
    e: Evidence = evidence_of(make_sample_record())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = render((e,))
    assert text.endswith("}\n") and json.loads(text)["bomFormat"] == "CycloneDX"


def test_without_the_library_the_extra_to_install_is_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cyclonedx.output.json", None)  # import fails
    with pytest.raises(MissingExtraError, match=r"pip install 'mrv-ml\[standards\]'"):
        render([evidence_of(make_sample_record())])


def test_the_model_card_holds_the_energy_consumptions_of_cyclonedx_1_6() -> None:
    """The fields 1.6 added for the EU AI Act, as its own schema defines them: the library
    reading this back has no model card yet, so the JSON is read (and the whole document was
    validated by the library's strict 1.6 validator before render returned it)."""
    parent, tune = make_sample_record(), make_sample_record(
        energy_emissions__energy_kwh=0.000246, energy_emissions__co2_kg=9.02e-05)
    text = render([evidence_of(parent), evidence_of(tune)])
    [model] = [c for c in json.loads(text)["components"]
               if c["type"] == "machine-learning-model"]
    runs = model["modelCard"]["considerations"]["environmentalConsiderations"][
        "energyConsumptions"]
    by_id = {next(p["value"] for p in r["properties"] if p["name"] == "mrv-ml:mrvId"): r
             for r in runs}
    for record in (parent, tune):
        run = by_id[record["mrv_id"]]
        ee = record["energy_emissions"]
        assert run["activity"] == "training"
        assert run["activityEnergyCost"] == {"value": ee["energy_kwh"], "unit": "kWh"}
        assert run["co2CostEquivalent"]["unit"] == "tCO2eq"
        assert run["co2CostEquivalent"]["value"] == pytest.approx(ee["co2_kg"] / 1000)
        [provider] = run["energyProviders"]
        assert provider["energySource"] == "unknown" and "FRA" in provider["description"]
        assert provider["energyProvided"]["value"] == ee["energy_kwh"]
        fingerprint = evidence_of(record).fingerprint_uri
        assert {"name": "mrv-ml:fingerprint", "value": fingerprint} in run["properties"]
