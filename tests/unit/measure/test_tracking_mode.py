"""tracking_mode: CodeCarbon's machine or process mode, from a setting, the tracker and
`mrv run --tracking-mode`; stated in the record with what it covers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mrv_ml.config import load_settings
from mrv_ml.errors import EXIT_CONFIG, ConfigError
from mrv_ml.record.schema import load_record_file
from mrv_ml.run.tracker import MRVTracker
from tests.support.cli import run_mrv_subprocess


def _records(data_dir: Path) -> list[dict]:
    return [load_record_file(p) for p in sorted(data_dir.glob("MRV-*.json"))
            if not p.name.endswith(".proof.json")]


def test_setting_from_the_environment_and_bad_values(tmp_path: Path) -> None:
    assert load_settings(cwd=tmp_path, environ={}).tracking_mode is None  # not chosen
    settings = load_settings(cwd=tmp_path, environ={"MRV_TRACKING_MODE": "Process"})
    assert settings.tracking_mode == "process"
    with pytest.raises(ConfigError, match="tracking_mode: must be one of machine, process"):
        load_settings(cwd=tmp_path, environ={"MRV_TRACKING_MODE": "gpu"})


def test_the_tracker_passes_it_to_codecarbon_and_the_record_says_so(data_dir: Path) -> None:
    tracker = MRVTracker("attribution", tracking_mode="process", blockchain_enabled=False,
                         quiet=True)
    with tracker:
        assert tracker._meter is not None and tracker._meter._thread is not None
        tracker._meter._thread.join(60)
        assert tracker._meter._tracker._tracking_mode == "process"  # CodeCarbon's own
    ee = tracker.record["energy_emissions"]  # type: ignore[index]
    assert ee["tracking_mode"] == "process"
    assert "descendants" in ee["tracking_scope"]["ram"]
    assert "each measured GPU whole" in ee["tracking_scope"]["gpu"]
    with pytest.raises(ConfigError):
        MRVTracker("attribution", tracking_mode="cluster", blockchain_enabled=False)


def test_machine_mode_is_the_default_and_said(data_dir: Path) -> None:
    with MRVTracker("machine", blockchain_enabled=False, quiet=True) as tracker:
        pass
    ee = tracker.record["energy_emissions"]  # type: ignore[index]
    assert ee["tracking_mode"] == "machine"
    assert ee["tracking_scope"]["cpu"] == "the whole machine's CPU(s)"


BUSY = "import time\nend = time.time() + 4\nwhile time.time() < end: sum(range(1000))"
IDLE = "import time; time.sleep(4)"


def test_mrv_run_process_mode_follows_the_child(data_dir: Path) -> None:
    """CodeCarbon measures its own process and all its descendants (psutil children,
    recursive): `mrv run`'s child is one, so its CPU time is what process mode counts."""
    env = {"MRV_QUIET": "1", "MRV_MEASURE_POWER_SECS": "0.5"}
    for code in (BUSY, IDLE):
        done = run_mrv_subprocess("run", "--no-anchor", "--tracking-mode", "process", "--",
                                  sys.executable, "-c", code, env=env)
        assert done.exit_code == 0, done.stderr
    busy, idle = (r["energy_emissions"] for r in
                  sorted(_records(data_dir), key=lambda r: r["timestamps"]["start_time"]))
    assert busy["tracking_mode"] == idle["tracking_mode"] == "process"
    if busy["methods"]["cpu"]["method"] == "estimated from CPU load and TDP":
        # the busy child's CPU time is counted, the sleeping one's is not (12.8x on an idle
        # machine; a loaded one gives the busy child less CPU: uncounted, it would be ~1x)
        assert busy["cpu_energy_kwh"] > 1.5 * idle["cpu_energy_kwh"]


def test_mrv_run_refuses_an_unknown_mode_in_one_line(data_dir: Path) -> None:
    done = run_mrv_subprocess("run", "--no-anchor", "--tracking-mode", "gpu", "--", "true",
                              env={"MRV_QUIET": "1"})
    assert done.exit_code != 0 and "Traceback" not in done.stderr
    assert "'gpu' is not one of" in done.stderr
    done = run_mrv_subprocess("run", "--no-anchor", "--", "true",
                              env={"MRV_QUIET": "1", "MRV_TRACKING_MODE": "gpu"})
    assert done.exit_code == EXIT_CONFIG and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
