"""The heartbeat of long runs: lines on stderr, a live line on a terminal, quiet, clean stop."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from mrv_ml.config import Settings
from mrv_ml.heartbeat import Heartbeat, Pulse, pulse_line
from mrv_ml.tracker import MRVTracker


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
