"""The one reading of a record that every standard export maps: figures with their ranges
carried through, the fingerprint and the anchoring; a failed measurement or a record changed
since anchoring is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mrv_ml.errors import RecordError
from mrv_ml.measure.uncertainty import RANGES
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import Proof
from mrv_ml.record.trust import Trust
from mrv_ml.reporting.standards.evidence import evidence_of, figures_of, load_evidence
from mrv_ml.storage.store import RecordStore
from tests.support.records import make_sample_record


def estimated_record() -> dict:
    """CPU by CodeCarbon's constant TDP model (x0.4..x2.0), RAM by its model (x0.5..x2.0),
    the world-average grid (x0.05..x1.8)."""
    return make_sample_record(
        energy_emissions__methods__cpu__uncertainty=RANGES["cpu_constant"].to_record(),
        energy_emissions__methods__ram__uncertainty=RANGES["ram_model"].to_record(),
        energy_emissions__methods__grid={
            "method": "world average", "measured": False,
            "uncertainty": RANGES["grid_world_average"].to_record()})


def test_ranges_are_carried_through_by_interval_arithmetic() -> None:
    f = figures_of(estimated_record())
    cpu, gpu, ram = f.components
    assert (cpu.low_kwh, cpu.high_kwh) == pytest.approx((0.0001 * 0.4, 0.0001 * 2.0))
    assert (ram.low_kwh, ram.high_kwh) == pytest.approx((2.3e-05 * 0.5, 2.3e-05 * 2.0))
    assert not gpu.has_range and gpu.energy_kwh == 0.0
    # the total scaled by the components' range (here they add up to it)
    assert f.energy_low_kwh == pytest.approx(0.0001 * 0.4 + 2.3e-05 * 0.5)
    assert f.energy_high_kwh == pytest.approx(0.0001 * 2.0 + 2.3e-05 * 2.0)
    assert f.co2_low_kg == pytest.approx(4.51e-05 * f.energy_low_kwh / 0.000123 * 0.05)
    assert f.co2_high_kg == pytest.approx(4.51e-05 * f.energy_high_kwh / 0.000123 * 1.8)
    assert not f.all_measured and f.widest_factor == pytest.approx(
        max(f.energy_high_kwh / 0.000123, 0.000123 / f.energy_low_kwh))


def test_metered_figures_have_no_range() -> None:
    f = figures_of(make_sample_record(
        energy_emissions__methods__cpu={"method": "RAPL", "measured": True},
        energy_emissions__methods__ram={"method": "RAPL", "measured": True}))
    assert f.all_measured and f.widest_factor == 1.0
    assert (f.energy_low_kwh, f.energy_high_kwh) == (f.energy_kwh, f.energy_kwh)


def test_a_failed_measurement_or_a_changed_record_is_refused() -> None:
    failed = make_sample_record(energy_emissions__measurement_status="failed",
                                energy_emissions__measurement_error="no RAPL access")
    with pytest.raises(RecordError, match="no RAPL access") as e:
        figures_of(failed)
    assert e.value.key == "no_figures"
    record = make_sample_record()
    proof = Proof.new(record["mrv_id"], compute_hash(record))
    record["energy_emissions"]["co2_kg"] = 0.0
    with pytest.raises(RecordError, match="changed since it was anchored"):
        evidence_of(record, proof)


def test_the_evidence_names_the_fingerprint_and_the_anchoring(mrv: object) -> None:
    from mrv_ml.anchoring.single import anchor_record
    from mrv_ml.config import load_settings

    settings = load_settings()
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    record = make_sample_record()
    path = store.save(record)
    [pending] = load_evidence([record["mrv_id"][:12]], settings.data_dir)
    assert pending.anchoring is None and "not anchored" in pending.anchored_where
    assert anchor_record(store, record["mrv_id"], settings=settings).anchored
    [e] = load_evidence([path], settings.data_dir)
    assert e.fingerprint_uri == f"sha256-jcs:{compute_hash(record)}"
    assert e.anchoring is not None and e.anchoring.trust is Trust.LOCAL
    assert e.anchoring.chain_id == 1337 and e.anchoring.tx_hash
    assert e.verify_command == f"mrv verify {Path(path).name}"


def test_distinct_records_each_once_and_refuses_what_no_identifier_may_hold() -> None:
    from mrv_ml.reporting.standards.evidence import distinct

    e = evidence_of(make_sample_record())
    assert distinct([e, e], "X") == [e]
    with pytest.raises(RecordError, match="no record to export as X"):
        distinct([], "X")
    changed = evidence_of({**e.record, "outcome": {"status": "failed"}})
    with pytest.raises(RecordError, match="two different records"):
        distinct([e, changed], "X")
    hostile_id = evidence_of(make_sample_record(mrv_id="MRV-x\n\x1b[2J" + "y" * 10_000))
    with pytest.raises(RecordError, match="is not an MRV ID") as err:
        distinct([hostile_id], "X")
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)
    assert len(str(err.value)) < 300
    no_time = evidence_of(make_sample_record(timestamps={"end_time": "yesterday"}))
    with pytest.raises(RecordError, match="no end time"):
        no_time.end_time  # noqa: B018 - the property raises
