"""EnergyMeter with the real CodeCarbon: figures, methods, intervals, and failure."""

from __future__ import annotations

import sys
import time

import pytest

from mrv_ml.config import Settings
from mrv_ml.measure.meter import DEFAULT_COUNTRY, EnergyMeter


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def test_measures_with_codecarbon_and_labels_every_interval() -> None:
    meter = EnergyMeter(Settings())
    meter.start()
    # Let CodeCarbon finish its detection (slow on a loaded machine) so the run has both
    # an extrapolated and a measured interval.
    assert meter._thread is not None
    meter._thread.join(60)
    _busy(0.3)
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "measured"
    assert section["measurement_tool"] == "CodeCarbon"
    assert section["energy_kwh"] > 0
    parts = section["cpu_energy_kwh"] + section["gpu_energy_kwh"] + section["ram_energy_kwh"]
    assert section["energy_kwh"] == pytest.approx(parts * section["pue"], rel=1e-6)
    assert section["co2_kg"] == pytest.approx(
        section["energy_kwh"] * section["carbon_intensity_g_per_kwh"] / 1000, rel=1e-6)
    # The intervals tile the whole run, and each says how it was measured.
    intervals = section["intervals"]
    assert intervals[0]["start_offset_s"] == 0.0
    assert intervals[0]["measured"] is False and "extrapolated" in intervals[0]["method"]
    assert intervals[1]["measured"] is True
    assert intervals[0]["end_offset_s"] == intervals[1]["start_offset_s"]
    assert intervals[-1]["end_offset_s"] == pytest.approx(section["duration_seconds"], abs=0.05)
    # No GPU here, and CPU power is an estimate: the record must not claim otherwise.
    assert section["methods"]["gpu"]["measured"] is False
    assert section["methods"]["ram"]["measured"] is False
    assert set(section["methods"]) == {"cpu", "gpu", "ram", "grid"}


def test_default_location_is_world_average_and_says_so() -> None:
    meter = EnergyMeter(Settings())
    meter.start()
    section = meter.stop().to_record_section()
    assert section["country_iso_code"] == DEFAULT_COUNTRY
    assert section["location_source"] == "default"
    assert section["carbon_intensity_g_per_kwh"] == pytest.approx(475.0)
    assert any("MRV_COUNTRY" in note for note in section["notes"])


def test_configured_country_changes_the_intensity() -> None:
    meter = EnergyMeter(Settings(country_iso_code="fra"))
    meter.start()
    _busy(0.2)
    section = meter.stop().to_record_section()
    assert section["country_iso_code"] == "FRA"
    assert section["location_source"] == "configured"
    assert "notes" not in section
    assert section["carbon_intensity_g_per_kwh"] < 200  # France's nuclear-heavy mix


def test_codecarbon_failing_to_start_gives_a_failed_measurement_not_numbers() -> None:
    def broken() -> None:
        raise RuntimeError("no hardware for you")

    meter = EnergyMeter(Settings(), tracker_factory=broken)
    meter.start()
    result = meter.stop()
    section = result.to_record_section()
    assert section["measurement_status"] == "failed"
    assert "no hardware for you" in section["measurement_error"]
    for key in ("energy_kwh", "cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh", "co2_kg"):
        assert section[key] is None
    assert section["duration_seconds"] >= 0


def _offline(tracker_class: type) -> object:
    """A quiet offline CodeCarbon tracker of ``tracker_class`` (a subclass that misbehaves)."""
    return tracker_class(country_iso_code="USA", save_to_file=False, log_level="critical",
                         allow_multiple_runs=True)


def test_a_codecarbon_ready_after_stop_gave_up_is_stopped_not_left_running(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A CodeCarbon that finished starting after stop() stopped waiting kept its scheduler
    thread running, and `mrv run` never exited (seen once on a loaded CI machine)."""
    import threading

    from codecarbon import OfflineEmissionsTracker

    from mrv_ml.measure import meter as measurement

    started, stopped = threading.Event(), threading.Event()

    class SlowStart(OfflineEmissionsTracker):  # type: ignore[misc]
        def start(self) -> None:
            time.sleep(0.6)  # longer than stop() waits below
            super().start()
            started.set()

        def stop(self) -> float | None:
            stopped.set()
            return super().stop()

    monkeypatch.setattr(measurement, "START_JOIN_TIMEOUT_S", 0.1)
    meter = EnergyMeter(Settings(), tracker_factory=lambda: _offline(SlowStart))
    meter.start()
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "failed"
    assert "did not finish starting" in section["measurement_error"]
    assert started.wait(30) and stopped.wait(30)  # started late, and stopped at once


def test_codecarbon_failing_to_stop_gives_a_failed_measurement() -> None:
    from codecarbon import OfflineEmissionsTracker

    class StopFails(OfflineEmissionsTracker):  # type: ignore[misc]
        def stop(self) -> float | None:
            raise OSError("disk on fire")

    meter = EnergyMeter(Settings(), tracker_factory=lambda: _offline(StopFails))
    meter.start()
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "failed"
    assert "disk on fire" in section["measurement_error"]
    assert section["energy_kwh"] is None


def test_codecarbon_ready_only_after_the_run_counts_no_energy_from_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = EnergyMeter._make_tracker

    def slow(self: EnergyMeter) -> object:
        time.sleep(1.0)  # CodeCarbon becomes ready well after the run below ends
        return real(self)

    monkeypatch.setattr(EnergyMeter, "_make_tracker", slow)
    meter = EnergyMeter(Settings())
    meter.start()
    _busy(0.2)
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "measured"
    (only,) = section["intervals"]  # no "measured" interval: CodeCarbon saw none of the run
    assert only["measured"] is False and "after the run ended" in only["method"]
    assert only["end_offset_s"] == pytest.approx(section["duration_seconds"], abs=1e-6)
    assert section["energy_kwh"] > 0
    parts = section["cpu_energy_kwh"] + section["gpu_energy_kwh"] + section["ram_energy_kwh"]
    assert section["energy_kwh"] == pytest.approx(parts * section["pue"], rel=1e-6)
    # The estimate covers ~0.2 s of power, nothing like CodeCarbon's post-run seconds.
    watts = section["energy_kwh"] * 3.6e6 / section["duration_seconds"]
    assert 0 < watts < 1000


def test_gil_switch_interval_is_shortened_only_while_codecarbon_starts() -> None:
    original = sys.getswitchinterval()
    meter = EnergyMeter(Settings())
    meter.start()
    assert meter._thread is not None
    meter._thread.join(60)
    assert sys.getswitchinterval() == original  # restored once CodeCarbon runs
    meter.stop()
    # A value the user sets during start-up is theirs to keep.
    meter = EnergyMeter(Settings())
    meter.start()
    try:
        sys.setswitchinterval(0.002)
        meter.stop()
        assert sys.getswitchinterval() == 0.002
    finally:
        sys.setswitchinterval(original)
