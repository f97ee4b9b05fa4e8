"""Forecasting a run from its progress: the pure math, then the tracker with real CodeCarbon."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from mrv_ml.errors import EXIT_BAD_INPUT, ProgressError
from mrv_ml.record.schema import load_record_file, validate_record
from mrv_ml.run.forecast import (
    Forecaster,
    ProgressPoint,
    check_progress,
    default_warmup,
    forecast,
    point_at,
)
from mrv_ml.run.tracker import MRVTracker
from tests.support.records import make_sample_record

# -- the math ------------------------------------------------------------------------------


def test_linear_extrapolation_from_the_start() -> None:
    made = forecast(ProgressPoint(1, 60.0, 0.01, 0.004), 90, unit="epochs")
    assert made.energy_kwh == pytest.approx(0.9)
    assert made.co2_kg == pytest.approx(0.36)
    assert made.duration_s == pytest.approx(5400.0)
    assert made.made_at_progress == pytest.approx(1 / 90)
    assert made.made_at_s == 60.0
    assert made.method.startswith("linear extrapolation")
    assert "after 1 of 90 epochs" in made.method and "start-up included" in made.method


def test_a_refresh_takes_its_rate_after_the_first_point() -> None:
    # the first epoch cost 3x the others (start-up): the refresh leaves it out of the rate
    first = ProgressPoint(1, 30.0, 0.03, 0.01)
    now = ProgressPoint(3, 50.0, 0.05, 0.02)
    made = forecast(now, 10, since=first, unit="epochs")
    assert made.energy_kwh == pytest.approx(0.05 + 0.01 * 7)
    assert made.co2_kg == pytest.approx(0.02 + 0.005 * 7)
    assert made.duration_s == pytest.approx(50.0 + 10.0 * 7)
    assert "between 1 and 3 of 10 epochs" in made.method
    assert "excluded from the rate" in made.method
    # from the start the start-up would weigh on it
    assert forecast(now, 10).energy_kwh == pytest.approx(0.05 / 3 * 10)


def test_at_the_end_the_forecast_is_the_actual() -> None:
    made = forecast(ProgressPoint(10, 100.0, 0.5, 0.2), 10)
    assert (made.energy_kwh, made.co2_kg, made.duration_s) == (0.5, 0.2, 100.0)
    assert made.made_at_progress == 1.0


@pytest.mark.parametrize(("done", "total", "previous", "key", "words"), [
    (5, None, None, "unknown_total", "total amount of work is unknown"),
    (5, 0, None, "unknown_total", "total must be positive"),
    (5, -3, None, "unknown_total", "total must be positive"),
    (-1, 10, None, "negative_progress", "cannot be negative"),
    (11, 10, None, "progress_over_total", "more than the total"),
    (3, 10, 4, "progress_backwards", r"went backwards \(3 after 4\)"),
    (float("nan"), 10, None, "bad_progress", "finite"),
    (2, float("inf"), None, "bad_progress", "finite"),
    ("two", 10, None, "bad_progress", "must be a number"),
    (True, 10, None, "bad_progress", "must be a number"),
])
def test_progress_that_cannot_be_used_is_a_clear_error(done: object, total: object,
                                                       previous: float | None, key: str,
                                                       words: str) -> None:
    with pytest.raises(ProgressError, match=words) as caught:
        check_progress(done, total, previous)
    assert caught.value.key == key
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in str(caught.value)


def test_no_forecast_before_any_progress() -> None:
    with pytest.raises(ProgressError, match="before any progress"):
        forecast(ProgressPoint(0, 5.0, 0.001, 0.0), 10)


def test_default_warmup_is_one_unit_or_one_percent() -> None:
    assert default_warmup(90) == 1.0
    assert default_warmup(10_000) == 100.0
    with pytest.raises(ProgressError, match="warm-up"):
        Forecaster(warmup=0)


def test_point_at_brings_the_meter_up_to_now() -> None:
    point = point_at(3, now_s=12.0, measured_s=10.0, energy_kwh=0.01, co2_kg=0.004)
    assert (point.elapsed_s, point.energy_kwh, point.co2_kg) == (12.0, pytest.approx(0.012),
                                                                pytest.approx(0.0048))
    with pytest.raises(ProgressError, match="negative"):
        point_at(1, now_s=1.0, measured_s=1.0, energy_kwh=-1.0, co2_kg=0.0)


def test_forecaster_waits_for_the_warmup_then_refreshes() -> None:
    fc = Forecaster()
    reading = ProgressPoint(0, 10.0, 0.001, 0.0005)
    assert fc.update(50, 10_000, reading) is None  # under 1 %: warm-up not done
    assert fc.update(100, 10_000, None) is None  # warm-up done, no figures yet
    first = fc.update(200, 10_000, ProgressPoint(0, 20.0, 0.002, 0.001))
    assert first is not None and first is fc.first and first.energy_kwh == pytest.approx(0.1)
    assert fc.update(200, 10_000, ProgressPoint(0, 21.0, 0.0021, 0.001)) is None  # no new work
    later = fc.update(400, 10_000, ProgressPoint(0, 30.0, 0.003, 0.0015))
    assert later is not None and fc.latest is later and fc.first is first
    assert later.energy_kwh == pytest.approx(0.003 + 0.001 / 200 * 9_600)
    section = fc.to_record()
    assert section is not None
    assert section["made_at_progress"] == 0.02 and section["done"] == 200
    assert section["refreshed"]["made_at_progress"] == 0.04
    with pytest.raises(ProgressError, match="backwards"):
        fc.update(300, 10_000, reading)


def test_forecast_fields_are_valid_in_schema_1_1_and_optional() -> None:
    fc = Forecaster()
    fc.update(1, 4, ProgressPoint(0, 2.0, 1e-6, 4e-7))
    fc.update(2, 4, ProgressPoint(0, 3.0, 2e-6, 8e-7))
    record = make_sample_record()
    validate_record(record)  # a record of this week, without one, stays valid
    record["energy_emissions"]["forecast"] = fc.to_record()
    validate_record(record)
    record["energy_emissions"]["forecast"] = None
    validate_record(record)
    record["energy_emissions"]["forecast"] = {"method": "guess", "made_at_progress": 2.0,
                                              "made_at_s": 1, "energy_kwh": 1, "co2_kg": 1,
                                              "duration_s": 1}
    with pytest.raises(Exception, match="made_at_progress|2.0"):
        validate_record(record)


# -- the tracker, with real CodeCarbon ---------------------------------------------------------


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def test_tracker_forecasts_after_the_warmup_and_keeps_it_beside_the_actual(
        data_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    tracker = MRVTracker("forecast-run", blockchain_enabled=False, heartbeat_s=0)
    with tracker:
        deadline = time.monotonic() + 20
        while tracker._meter.running_totals() is None and time.monotonic() < deadline:  # type: ignore[union-attr]
            _busy(0.2)
        made = []
        for epoch in range(1, 5):
            _busy(0.8)
            made.append(tracker.update_progress(epoch, 4, unit="epochs"))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "forecast for the whole run" in line]
    assert len(lines) == 1  # the first forecast is said; refreshes are recorded
    assert "after 1 of 4 epochs" in lines[0]
    record = load_record_file(Path(str(tracker.record_path)))
    section = record["energy_emissions"]
    planned = section["forecast"]
    assert planned["made_at_progress"] == 0.25
    assert planned["unit"] == "epochs" and planned["total"] == 4
    assert planned["refreshed"]["made_at_progress"] == 1.0
    assert planned["energy_kwh"] == made[0].energy_kwh  # the first one is kept
    # the first epoch held the wait for CodeCarbon's first average: the first forecast is
    # high; the refresh after epoch 2 takes its rate from epoch 1 on and lands near the
    # actual figures of a steady loop
    assert planned["energy_kwh"] > section["energy_kwh"] * 0.8
    refresh = made[1]
    assert refresh is not None and "between 1 and 2 of 4 epochs" in refresh.method
    assert 0.6 < refresh.energy_kwh / section["energy_kwh"] < 1.6
    assert 0.6 < refresh.duration_s / section["duration_seconds"] < 1.6
    assert math.isclose(planned["co2_kg"] / planned["energy_kwh"],
                        section["co2_kg"] / section["energy_kwh"], rel_tol=1e-6)
    assert "budget" not in record  # no budget set: no section


def test_unknown_total_is_one_clear_line_and_no_forecast(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tracker = MRVTracker("no-total", blockchain_enabled=False, heartbeat_s=0)
    with tracker:
        for step in range(1, 6):
            assert tracker.update_progress(step, None) is None  # never raises into the loop
        tracker.update_progress(7, 5)
        tracker.update_progress(-1, 5)
    err = capsys.readouterr().err
    assert err.count("total amount of work is unknown") == 1  # once, not once per step
    assert err.count("more than the total") == 1 and err.count("cannot be negative") == 1
    assert "Traceback" not in err
    record = load_record_file(Path(str(tracker.record_path)))
    assert "forecast" not in record["energy_emissions"]
    assert tracker.forecast is None
