"""Power series (schema 1.1): the collector, its bounds, energy conservation, the schema, and
records of schema 1.0 still read, validated and verified."""

from __future__ import annotations

import copy
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrv_ml.config import Settings, load_settings
from mrv_ml.errors import ConfigError, SchemaValidationError
from mrv_ml.measure.meter import EnergyMeter
from mrv_ml.measure.series import (
    MAX_SERIES_POINTS,
    Interval,
    PowerSeriesCollector,
    codecarbon_handler,
    downsample,
    series_energy_kwh,
)
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.repair import repair_record
from mrv_ml.record.schema import (
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    load_record_file,
    validate_record,
)
from tests.support.records import make_sample_record, make_sample_record_1_0

ARRAYS = ("start_offset_s", "duration_s", "cpu_power_w", "gpu_power_w", "ram_power_w",
          "measured")


def _kwh(watts: float, seconds: float) -> float:
    return watts * seconds / 3.6e6


def _check_shape(series: dict[str, Any]) -> None:
    lengths = {len(series[name]) for name in ARRAYS}
    assert len(lengths) == 1
    (n,) = lengths
    assert 1 <= n <= MAX_SERIES_POINTS
    for i in range(n - 1):  # intervals tile the time they cover
        assert series["start_offset_s"][i] + series["duration_s"][i] == pytest.approx(
            series["start_offset_s"][i + 1], abs=1.5e-3)
    assert all(d > 0 for d in series["duration_s"])
    assert all(p >= 0 for name in ("cpu_power_w", "gpu_power_w", "ram_power_w")
               for p in series[name])


# -- the collector ---------------------------------------------------------------------------


def test_schema_versions() -> None:
    assert SCHEMA_VERSION == "1.2"
    assert SUPPORTED_SCHEMA_VERSIONS == ("1.0", "1.1", "1.2")


def test_a_short_run_gives_one_point_per_measurement_after_the_extrapolated_gap() -> None:
    collector = PowerSeriesCollector(2.0)
    collector.add(0.01, 0.0, 0.0, 0.0, counted=False)  # CodeCarbon's reading as it starts
    for _ in range(4):
        collector.add(2.0, _kwh(40.0, 2.0), 0.0, _kwh(3.0, 2.0))
    collector.add(0.003, _kwh(40.0, 0.003), 0.0, 0.0)  # the reading at stop()
    gap = Interval(0.0, 1.5, 40.0 * 1.5, 0.0, 3.0 * 1.5, measured=False)
    series = collector.power_series(offset_s=1.5, gap=gap, pue=1.0)
    assert series is not None
    _check_shape(series)
    assert series["source"] == "CodeCarbon periodic measurements (every 2 s)"
    assert series["measured"] == [False, True, True, True, True]
    assert series["start_offset_s"] == [0.0, 1.5, 3.51, 5.51, 7.51]
    assert series["cpu_power_w"][0] == 40.0
    assert series["points_measured"] == 4
    assert series["downsampled"] is False


def test_powers_are_given_without_the_pue() -> None:
    collector = PowerSeriesCollector(2.0)
    collector.add(2.0, _kwh(60.0, 2.0), 0.0, 0.0)  # CodeCarbon's figure, PUE 1.5 included
    series = collector.power_series(pue=1.5)
    assert series is not None and series["cpu_power_w"] == [40.0]


def test_the_last_interval_is_cut_at_the_end_of_the_run_energy_kept() -> None:
    collector = PowerSeriesCollector(2.0)
    collector.add(2.0, _kwh(10.0, 2.0), 0.0, 0.0)
    collector.add(2.0, _kwh(10.0, 2.0), 0.0, 0.0)
    series = collector.power_series(run_duration_s=3.0)
    assert series is not None
    assert series["start_offset_s"] == [0.0, 2.0] and series["duration_s"] == [2.0, 1.0]
    assert series_energy_kwh(series, "cpu") == pytest.approx(_kwh(10.0, 4.0))


def test_nothing_reported_gives_no_series() -> None:
    assert PowerSeriesCollector(2.0).power_series(gap=Interval(0, 1, 1, 0, 0, False)) is None


def test_downsampling_never_merges_measured_with_extrapolated() -> None:
    points = [Interval(0, 1, 1, 0, 0, False, 0), Interval(1, 1, 2, 0, 0, True, 1),
              Interval(2, 1, 3, 0, 0, True, 1), Interval(3, 1, 4, 0, 0, True, 1)]
    merged = downsample(points)
    assert [(p.start_s, p.duration_s, p.cpu_j, p.measured) for p in merged] == [
        (0, 1, 1, False), (1, 2, 5, True), (3, 1, 4, True)]


_DELTAS = st.lists(st.tuples(st.floats(0.0, 30.0), st.floats(0.0, 500.0),
                             st.floats(0.0, 800.0), st.floats(0.0, 50.0)),
                   min_size=1, max_size=1500)


@settings(max_examples=60, deadline=None)
@given(deltas=_DELTAS, gap_s=st.floats(0.0, 10.0), gap_w=st.floats(0.0, 300.0),
       pue=st.floats(1.0, 3.0))
def test_property_energy_is_conserved_within_a_tenth_of_a_percent(
        deltas: list[tuple[float, float, float, float]], gap_s: float, gap_w: float,
        pue: float) -> None:
    # Powers in watts, CodeCarbon's energies with the PUE, as a real run reports them.
    collector = PowerSeriesCollector(2.0)
    totals = [gap_w * gap_s * pue, 0.0, 0.0]  # joules, PUE included
    for seconds, cpu_w, gpu_w, ram_w in deltas:
        energies = [_kwh(w * pue, seconds) for w in (cpu_w, gpu_w, ram_w)]
        collector.add(seconds, *energies)
        for i, e in enumerate(energies):
            totals[i] += e * 3.6e6
        assert collector.stored <= 2 * MAX_SERIES_POINTS
    gap = Interval(0.0, gap_s, gap_w * gap_s * pue, 0.0, 0.0, measured=False)
    series = collector.power_series(offset_s=gap_s, gap=gap, pue=pue)
    # Intervals are kept to the millisecond: a part that rounds to nothing and has no
    # neighbour of its kind to give its energy to is dropped (a start-up gap under 0.5 ms).
    measured_s = sum(seconds for seconds, *_ in deltas)
    if round(gap_s, 3) == 0:
        totals[0] -= gap_w * gap_s * pue
    if round(gap_s + measured_s, 3) == round(gap_s, 3):
        totals = [totals[0] - sum(_kwh(c * pue, d) for d, c, *_ in deltas) * 3.6e6, 0.0, 0.0]
    if series is None:
        assert round(gap_s + measured_s, 3) == 0
        return
    _check_shape(series)
    assert series["measured"].count(False) <= 1
    for name, total_j in zip(("cpu", "gpu", "ram"), totals, strict=True):
        series_j = series_energy_kwh(series, name) * 3.6e6 * pue
        assert series_j == pytest.approx(total_j, rel=1e-3, abs=1e-6)


def test_a_week_long_run_stays_at_most_300_points_in_bounded_memory() -> None:
    collector = PowerSeriesCollector(6.0)
    tracemalloc.start()
    try:
        peak_after_1000 = 0
        for i in range(100_000):
            watts = 40.0 + (i % 17)
            collector.add(6.0, _kwh(watts, 6.0), _kwh(250.0, 6.0), _kwh(5.0, 6.0))
            assert collector.stored <= 2 * MAX_SERIES_POINTS
            if i == 1000:
                peak_after_1000 = tracemalloc.get_traced_memory()[0]
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert current < peak_after_1000 + 200_000  # no growth with the number of readings
    gap = Interval(0.0, 2.0, 80.0, 500.0, 10.0, measured=False)
    series = collector.power_series(offset_s=2.0, gap=gap)
    assert series is not None
    _check_shape(series)
    assert len(series["duration_s"]) <= MAX_SERIES_POINTS
    assert series["points_measured"] == 100_000
    assert series["downsampled"] is True
    assert series["start_offset_s"][-1] + series["duration_s"][-1] == pytest.approx(600_002.0)
    expected_cpu = sum(_kwh(40.0 + (i % 17), 6.0) for i in range(100_000)) + 80.0 / 3.6e6
    assert series_energy_kwh(series, "cpu") == pytest.approx(expected_cpu, rel=1e-3)
    record = make_sample_record(energy_emissions__power_series=series)
    validate_record(record)


def test_the_codecarbon_handler_never_raises_into_codecarbon() -> None:
    collector = PowerSeriesCollector(2.0)
    handler = codecarbon_handler(collector)
    good = SimpleNamespace(duration=2.0, cpu_energy=1e-5, gpu_energy=0.0, ram_energy=1e-6,
                           energy_consumed=1.1e-5, emissions=5e-6)
    handler.live_out(good, good)
    handler.live_out(good, SimpleNamespace(duration=float("nan")))
    handler.out(good, "not emissions data")
    assert collector.errors == 2
    totals = collector.running_totals()
    assert totals is not None and totals.energy_kwh == pytest.approx(1.1e-5)


# -- EnergyMeter ----------------------------------------------------------------------------


def test_the_heartbeat_figures_include_the_extrapolated_start_up_interval() -> None:
    meter = EnergyMeter(Settings())
    meter._t0, meter._cc_start = 100.0, 103.0  # CodeCarbon measured from 3 s into the run
    handler = codecarbon_handler(meter.series)
    first = SimpleNamespace(duration=0.2, cpu_energy=1e-7, gpu_energy=0.0, ram_energy=0.0,
                            energy_consumed=1e-7, emissions=5e-8)
    handler.live_out(first, first)
    assert meter.running_totals() is None  # a fraction of a second is no average yet
    six = SimpleNamespace(duration=6.0, cpu_energy=6e-6, gpu_energy=0.0, ram_energy=0.0,
                          energy_consumed=6e-6, emissions=3e-6)
    handler.live_out(six, six)
    totals = meter.running_totals()
    assert totals is not None
    measured = meter.series.running_totals()
    assert measured is not None
    # 3 s before CodeCarbon was ready, at the measured interval's average power
    scale = 1 + 3.0 / measured.elapsed_s
    assert totals.elapsed_s == pytest.approx(measured.elapsed_s + 3.0)
    assert totals.energy_kwh == pytest.approx(measured.energy_kwh * scale)
    assert totals.co2_kg == pytest.approx(measured.co2_kg * scale)


def test_the_meter_series_with_real_codecarbon_matches_the_record_energies() -> None:
    meter = EnergyMeter(Settings(), measure_power_secs=0.5)
    meter.start()
    assert meter._thread is not None
    meter._thread.join(60)
    end = time.perf_counter() + 2.2
    while time.perf_counter() < end:
        sum(range(1000))
    section = meter.stop().to_record_section()
    series = section["power_series"]
    assert series is not None, section
    _check_shape(series)
    assert series["measured"][0] is False and all(series["measured"][1:])
    assert series["points_measured"] >= 3
    assert series["source"] == "CodeCarbon periodic measurements (every 0.5 s)"
    end_s = series["start_offset_s"][-1] + series["duration_s"][-1]
    assert end_s == pytest.approx(section["duration_seconds"], abs=2e-3)
    for name in ("cpu", "gpu", "ram"):
        in_series = series_energy_kwh(series, name) * section["pue"]
        assert in_series == pytest.approx(section[f"{name}_energy_kwh"], rel=1e-3, abs=1e-12)
    validate_record(make_sample_record(energy_emissions=section))


def test_a_failed_measurement_has_no_series() -> None:
    def broken() -> None:
        raise RuntimeError("no hardware for you")

    meter = EnergyMeter(Settings(), tracker_factory=broken)
    meter.start()
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "failed"
    assert section["power_series"] is None
    validate_record(make_sample_record(energy_emissions=section))


def test_the_measurement_interval_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().measure_power_secs == 2.0
    assert load_settings(environ={"MRV_MEASURE_POWER_SECS": "0.5"}, use_dotenv=False,
                         cwd=Path("/")).measure_power_secs == 0.5
    assert EnergyMeter(Settings(measure_power_secs=5.0)).series.measure_power_secs == 5.0
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(ConfigError, match="measure_power_secs"):
            load_settings(environ={"MRV_MEASURE_POWER_SECS": bad}, use_dotenv=False,
                          cwd=Path("/"))


# -- the schema -----------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["cpu_power_w"].append(1.0), "one length"),
    (lambda s: s["ram_power_w"].__setitem__(0, -1.0), "less than the minimum"),
    (lambda s: s.__setitem__("measured", [1] * 7), "not of type 'boolean'"),
    (lambda s: s.__setitem__("extra", 1), "Additional properties"),
    (lambda s: s.pop("downsampled"), "'downsampled' is a required property"),
    (lambda s: [s[k].extend(s[k][-1:] * 300) for k in ARRAYS], "too long"),
])
def test_the_schema_refuses_a_malformed_series(change: Any, message: str) -> None:
    record = make_sample_record()
    change(record["energy_emissions"]["power_series"])
    with pytest.raises(SchemaValidationError, match=message):
        validate_record(record)


def test_a_malformed_series_is_dropped_by_repair_never_the_record() -> None:
    for change in (lambda s: s["cpu_power_w"].append(1.0),
                   lambda s: s["ram_power_w"].__setitem__(0, -1.0)):
        record = make_sample_record()
        change(record["energy_emissions"]["power_series"])
        repaired, notes = repair_record(record)
        assert repaired["energy_emissions"]["power_series"] is None
        assert notes and "power_series" in notes[0]
        assert repaired["energy_emissions"]["energy_kwh"] == record["energy_emissions"][
            "energy_kwh"]


def test_the_sample_series_holds_the_sample_energies() -> None:
    ee = make_sample_record()["energy_emissions"]
    for name in ("cpu", "gpu", "ram"):
        assert series_energy_kwh(ee["power_series"], name) * ee["pue"] == pytest.approx(
            ee[f"{name}_energy_kwh"], rel=1e-3, abs=1e-15)


def test_a_null_or_absent_series_is_valid() -> None:
    validate_record(make_sample_record(energy_emissions__power_series=None))
    record = make_sample_record()
    del record["energy_emissions"]["power_series"]
    validate_record(record)


@pytest.mark.distributed
def test_distributed_totals_carry_no_series_and_each_rank_keeps_its_own() -> None:
    from mrv_ml.integrations.distributed import aggregate_energy, build_distributed_section

    ee = make_sample_record()["energy_emissions"]
    parts = [{"rank": r, "local_rank": r, "hostname": f"host{r}", "hardware": None,
              "energy_emissions": copy.deepcopy(ee) if r == 0 else dict(ee, power_series=None),
              "outcome": {"status": "completed"}, "start_time": None, "end_time": None}
             for r in range(2)]
    totals = aggregate_energy(parts)
    assert totals["power_series"] is None
    record = make_sample_record(energy_emissions=totals,
                                distributed=build_distributed_section(parts, 2, "gloo", [], 5.0))
    validate_record(record)
    ranks = record["distributed"]["ranks"]
    assert ranks[0]["energy_emissions"]["power_series"] == ee["power_series"]
    ranks[0]["energy_emissions"]["power_series"]["duration_s"].pop()
    with pytest.raises(SchemaValidationError, match=r"distributed\.ranks\[0\]"):
        validate_record(record)


# -- records of schema 1.0 -----------------------------------------------------------------


def test_a_1_0_record_validates_against_its_own_schema(tmp_path: Path) -> None:
    from mrv_ml.record.schema import _validator

    old = make_sample_record_1_0()
    validate_record(old)
    assert not _validator("1.1").is_valid(old)  # so validate_record used 1.0's schema
    assert _validator("1.0").is_valid(old)
    path = tmp_path / "old.json"
    path.write_text(__import__("json").dumps(old))
    assert load_record_file(path) == old
    # 1.1's own rules do not apply to it: 1.0 had no power_series; unknown energy fields
    # were allowed there, and stay allowed (an old record must keep its verdict).
    validate_record(make_sample_record_1_0(energy_emissions__power_series={"x": 1}))


def test_a_1_0_record_is_anchored_and_verified() -> None:
    from mrv_ml.anchoring.single import anchor_record
    from mrv_ml.storage.store import RecordStore
    from mrv_ml.verification.verdict import VerdictStatus
    from mrv_ml.verification.verifier import verify

    store = RecordStore(load_settings().data_dir)
    old = make_sample_record_1_0()
    path = store.save(old)
    anchor_record(store, old["mrv_id"], settings=load_settings())
    verdict = verify(path)
    assert verdict.status is VerdictStatus.VALID
    assert verdict.record_hash == compute_hash(old)
