"""The heartbeat of long runs: lines on stderr, a live line on a terminal, quiet, clean stop."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest

from mrv_ml.config import Settings
from mrv_ml.record.schema import load_record_file
from mrv_ml.run.forecast import Forecast
from mrv_ml.run.heartbeat import Heartbeat, Pulse, pulse_line
from mrv_ml.run.tracker import MRVTracker
from mrv_ml.units import format_co2_kg, format_duration_s, format_energy_kwh


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mrv-heartbeat"]


def _wait_for(condition: object, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.01)


def test_the_line_says_time_energy_co2_and_power() -> None:
    assert pulse_line(Pulse(8.2, 60.3e-6, 28.6e-6, 41.2)) == (
        "⏱ MRV: 8.2 s, 60.3 mWh, 28.6 mg CO2e so far (41.2 W)")
    assert pulse_line(Pulse(3.0)) == "⏱ MRV: 3 s, CodeCarbon still detecting hardware"


def _forecast(done: float, total: float, energy_kwh: float, co2_kg: float,
              duration_s: float) -> Forecast:
    return Forecast(method="linear extrapolation", done=done, total=total, unit="epochs",
                    made_at_s=60.0, energy_kwh=energy_kwh, co2_kg=co2_kg, duration_s=duration_s)


def test_the_line_adds_the_forecast_of_the_whole_run_once_there_is_one() -> None:
    planned = _forecast(12, 100, 1.2, 0.48, 7560.0)
    assert pulse_line(Pulse(90.0, 60.3e-6, 28.6e-6, 41.2, forecast=planned)) == (
        "⏱ MRV: 1.5 min, 60.3 mWh, 28.6 mg CO2e so far (41.2 W)"
        " · forecast 1.2 kWh, 480 g CO2e, 2.1 h in all (at 12 % done)")
    # through units: three significant digits, SI prefixes, the share of the work done
    assert pulse_line(Pulse(8.2, 60.3e-6, 28.6e-6, forecast=_forecast(1, 8, 2.3456e-3,
                                                                       1.0e-3, 45.678))) == (
        "⏱ MRV: 8.2 s, 60.3 mWh, 28.6 mg CO2e so far"
        " · forecast 2.35 Wh, 1 g CO2e, 45.7 s in all (at 12.5 % done)")
    # no forecast: no forecast part
    assert "forecast" not in pulse_line(Pulse(90.0, 60.3e-6, 28.6e-6, 41.2))
    assert "forecast" not in pulse_line(Pulse(3.0))


def test_plain_lines_when_not_a_terminal_and_a_clean_stop() -> None:
    stream = io.StringIO()
    beat = Heartbeat(lambda: Pulse(1.0, 1e-6, 5e-7, 3.0), interval_s=0.05, first_after_s=0.01,
                     stream=stream).start()
    _wait_for(lambda: beat.beats >= 3)
    beat.stop()
    assert not beat.running
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3
    assert all(line == "⏱ MRV: 1 s, 1 mWh, 500 µg CO2e so far (3 W)" for line in lines)
    assert "\x1b" not in stream.getvalue()
    count = len(lines)
    time.sleep(0.15)
    assert len(stream.getvalue().splitlines()) == count  # nothing after stop()


def test_a_live_line_on_a_terminal_is_cleared_at_stop() -> None:
    stream = _Terminal()
    beat = Heartbeat(lambda: Pulse(2.0), interval_s=0.05, first_after_s=0.01,
                     stream=stream).start()
    _wait_for(lambda: beat.beats >= 2)
    beat.stop()
    out = stream.getvalue()
    assert "CodeCarbon still detecting hardware" in out
    assert "\n⏱" not in out  # redrawn in place, not one line per beat
    assert "\x1b[?25h" in out  # the cursor is shown again
    assert out.endswith("\x1b[1A\x1b[2K")  # and the line erased, the cursor back on it


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_a_live_line_wider_than_the_terminal_wraps_and_keeps_its_forecast(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    pulse = Pulse(90.0, 60.3e-6, 28.6e-6, 41.2, forecast=_forecast(12, 100, 1.2, 0.48, 7560.0))
    stream = _Terminal()
    beat = Heartbeat(lambda: pulse, interval_s=0.05, first_after_s=0.01, stream=stream).start()
    _wait_for(lambda: beat.beats >= 2)
    beat.stop()
    out = stream.getvalue()
    shown = _ANSI.sub("", out).replace("\r", "").replace("\n", "")
    assert pulse_line(pulse) in shown  # not cut at the terminal's width
    assert "…" not in out
    assert out.endswith("\x1b[1A\x1b[2K\x1b[1A\x1b[2K")  # both rows erased at stop()


def test_a_failing_reading_ends_the_heartbeat_without_raising() -> None:
    def broken() -> Pulse:
        raise RuntimeError("no figures")

    beat = Heartbeat(broken, interval_s=0.01, first_after_s=0.0, stream=io.StringIO()).start()
    _wait_for(lambda: not beat.running)
    assert not beat.running
    beat.stop()


def test_the_tracker_shows_heartbeats_on_stderr_and_stops_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tracker = MRVTracker("beat", blockchain_enabled=False, storage_dir=tmp_path,
                         settings=Settings(), quiet=False, heartbeat_s=0.2)
    with tracker:
        assert tracker._heartbeat is not None
        beat = tracker._heartbeat
        _wait_for(lambda: beat.beats >= 2)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    beats = [line for line in lines if line.startswith("⏱ MRV: ")]
    assert len(beats) >= 2
    assert lines[-1].startswith("✅ run completed")
    assert not beat.running and not _heartbeat_threads()


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def _forecast_part(planned: Forecast, share: str) -> str:
    return (f" · forecast {format_energy_kwh(planned.energy_kwh)}, "
            f"{format_co2_kg(planned.co2_kg)}, {format_duration_s(planned.duration_s)} "
            f"in all (at {share} done)")


def test_the_tracker_heartbeat_shows_the_latest_forecast(
        data_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    tracker = MRVTracker("beat-forecast", blockchain_enabled=False, quiet=False,
                         heartbeat_s=0.1)
    with tracker:
        assert tracker._heartbeat is not None
        beat = tracker._heartbeat
        deadline = time.monotonic() + 20
        while tracker._meter.running_totals() is None and time.monotonic() < deadline:  # type: ignore[union-attr]
            _busy(0.1)
        _wait_for(lambda: beat.beats >= 1)
        _busy(0.5)
        first = tracker.update_progress(1, 4, unit="epochs")
        seen = beat.beats
        _wait_for(lambda: beat.beats >= seen + 2)  # a line begun after the forecast
        _busy(0.5)
        refresh = tracker.update_progress(2, 4, unit="epochs")
        seen = beat.beats
        _wait_for(lambda: beat.beats >= seen + 2)
    assert first is not None and refresh is not None and refresh is not first
    assert tracker.forecast is refresh
    beats = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("⏱ MRV: ")]
    first_part, refresh_part = _forecast_part(first, "25 %"), _forecast_part(refresh, "50 %")
    with_first = [i for i, line in enumerate(beats) if line.endswith(first_part)]
    with_refresh = [i for i, line in enumerate(beats) if line.endswith(refresh_part)]
    without = [i for i, line in enumerate(beats) if " · forecast " not in line]
    assert with_first and with_refresh and without
    assert len(with_first) + len(with_refresh) + len(without) == len(beats)  # nothing else
    assert max(without) < min(with_first) <= max(with_first) < min(with_refresh)
    assert beats[-1].endswith(refresh_part)  # the latest forecast, as the record keeps it
    planned = load_record_file(Path(str(tracker.record_path)))["energy_emissions"]["forecast"]
    assert (planned["energy_kwh"], planned["co2_kg"]) == (first.energy_kwh, first.co2_kg)
    latest = planned["refreshed"]
    assert (latest["energy_kwh"], latest["co2_kg"]) == (refresh.energy_kwh, refresh.co2_kg)
    assert latest["made_at_progress"] == 0.5
    assert f"forecast {format_energy_kwh(latest['energy_kwh'])}, " in beats[-1]


@pytest.mark.parametrize("options", [{"quiet": True, "heartbeat_s": 0.05},
                                     {"quiet": False, "heartbeat_s": 0}])
def test_quiet_or_zero_means_no_heartbeat(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          options: dict[str, object]) -> None:
    with MRVTracker("quiet", blockchain_enabled=False, storage_dir=tmp_path,
                    settings=Settings(), **options) as tracker:  # type: ignore[arg-type]
        time.sleep(0.2)
        assert tracker._heartbeat is None
    assert "⏱" not in capsys.readouterr().err


def test_a_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="heartbeat_s"):
        MRVTracker("bad", blockchain_enabled=False, heartbeat_s=-1)
