"""Budgets: bad values refused before the run; crossings warned about or stopped, with real
CodeCarbon over busy loops, in the tracker and through `mrv run`; the record says what
happened."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.config import load_settings
from mrv_ml.errors import EXIT_CONFIG, EXIT_USAGE, ConfigError
from mrv_ml.record.schema import load_record_file, validate_record
from mrv_ml.run.budget import FLAGGED, Budget, BudgetMonitor, Reading
from mrv_ml.run.tracker import MRVTracker
from tests.support.cli import run_mrv_subprocess
from tests.support.records import make_sample_record


def _records(data_dir: Path) -> list[dict[str, Any]]:
    return [load_record_file(p) for p in sorted(data_dir.glob("MRV-*.json"))
            if not p.name.endswith(".proof.json")]


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"budget_kwh": 0}, "budget_kwh must be a positive number"),
    ({"budget_kwh": -1.5}, "budget_kwh must be a positive number"),
    ({"budget_co2_kg": float("nan")}, "budget_co2_kg must be a positive number"),
    ({"budget_co2_kg": "lots"}, "budget_co2_kg must be a positive number"),
    ({"budget_kwh": 1.0, "on_budget": "panic"}, "on_budget must be one of warn, stop"),
    ({"on_budget": "panic"}, "on_budget must be one of warn, stop"),
])
def test_a_bad_budget_is_a_config_error_before_anything_runs(
        data_dir: Path, kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        MRVTracker("bad-budget", blockchain_enabled=False, **kwargs)
    assert caught.value.exit_code == EXIT_CONFIG
    assert not data_dir.exists() or not _records(data_dir)


@pytest.mark.parametrize(("env", "words"), [
    ({"MRV_BUDGET_KWH": "0"}, "budget_kwh: must be a positive number"),
    ({"MRV_BUDGET_CO2_KG": "-2"}, "budget_co2_kg: must be a positive number"),
    ({"MRV_BUDGET_KWH": "inf"}, "budget_kwh: must be a positive number"),
    ({"MRV_ON_BUDGET": "sometimes"}, "on_budget: must be warn or stop"),
])
def test_bad_budget_settings_are_refused(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(environ=env, use_dotenv=False)


def test_budget_settings_from_the_environment_reach_the_tracker(data_dir: Path) -> None:
    settings = load_settings(environ={"MRV_BUDGET_KWH": "2.5", "MRV_BUDGET_CO2_KG": "1",
                                      "MRV_ON_BUDGET": "STOP"}, use_dotenv=False)
    tracker = MRVTracker("env-budget", blockchain_enabled=False, settings=settings)
    assert tracker.budget == Budget(2.5, 1.0, "stop")
    # an argument wins over the environment
    tracker = MRVTracker("arg-budget", blockchain_enabled=False, settings=settings,
                         budget_kwh=0.5, on_budget="warn")
    assert tracker.budget == Budget(0.5, 1.0, "warn")
    assert MRVTracker("no-budget", blockchain_enabled=False).budget is None


def test_cli_refuses_bad_budgets_with_one_line(data_dir: Path) -> None:
    for args, code in ((["--budget-kwh", "0"], EXIT_USAGE),
                       (["--budget-co2-kg", "-1"], EXIT_USAGE),
                       (["--on-budget", "maybe", "--budget-kwh", "1"], EXIT_USAGE),
                       (["--budget-grace-s", "-1", "--budget-kwh", "1"], EXIT_USAGE)):
        done = run_mrv_subprocess("run", "--no-anchor", *args, "--", sys.executable, "-c",
                                  "pass")
        assert done.exit_code == code, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = run_mrv_subprocess("run", "--no-anchor", "--", sys.executable, "-c", "pass",
                              env={"MRV_BUDGET_KWH": "0"})
    assert done.exit_code == EXIT_CONFIG
    assert "budget_kwh" in done.stderr and "Traceback" not in done.stderr
    assert not data_dir.exists() or not _records(data_dir)  # nothing ran


# -- the monitor, with readings handed in ----------------------------------------------------


def test_monitor_warns_once_and_records_the_crossing() -> None:
    lines: list[str] = []
    monitor = BudgetMonitor(Budget(energy_kwh=1e-3), lambda: None, lines.append)
    assert not monitor.check(Reading(5.0, 5e-4, 1e-4))
    assert monitor.check(Reading(9.0, 2e-3, 4e-4))
    assert monitor.check(Reading(10.0, 3e-3, 5e-4))  # still exceeded, said once
    assert len(lines) == 1
    assert lines[0] == ("⚠️  MRV budget crossed: 2 Wh of a 1 Wh energy budget used after "
                        "9 s; on_budget=warn, training goes on")
    section = monitor.to_record(3e-3, 5e-4, 12.0)
    assert section == {"energy_kwh": 1e-3, "co2_kg": None, "on_budget": "warn",
                       "exceeded": True, "exceeded_at_s": 9.0, "exceeded_limit": "energy_kwh",
                       "action_taken": "warned", "stopped": False, "forecast_exceeded": False,
                       "forecast_exceeded_at_s": None}


def test_monitor_runs_stop_actions_once_and_checks_forecasts() -> None:
    lines: list[str] = []
    calls: list[int] = []
    monitor = BudgetMonitor(Budget(co2_kg=0.5, on_budget="stop"), lambda: None, lines.append)
    monitor.add_stop_action(lambda: calls.append(1) or "sent SIGINT to the command")
    assert monitor.check_forecast(30.0, 2.0, 0.9)  # forecast over: warned early
    assert monitor.check_forecast(40.0, 2.0, 0.9)
    assert not monitor.exceeded
    assert monitor.check(Reading(60.0, 1.0, 0.6)) and monitor.check(Reading(61.0, 1.0, 0.7))
    assert calls == [1]
    assert lines[0].startswith("⚠️  MRV forecast over budget: 900 g CO2e of a 500 g CO2e "
                               "budget forecast")
    assert lines[1].startswith("⏹ MRV budget crossed: 600 g CO2e of a 500 g CO2e budget")
    assert len(lines) == 2
    section = monitor.to_record(1.0, 0.7, 70.0)
    assert section["action_taken"] == "sent SIGINT to the command" and section["stopped"]
    assert section["forecast_exceeded"] and section["forecast_exceeded_at_s"] == 30.0
    assert section["exceeded_limit"] == "co2_kg"


def test_a_crossing_seen_only_in_the_final_figures_is_still_recorded() -> None:
    monitor = BudgetMonitor(Budget(energy_kwh=1.0, on_budget="stop"), lambda: None,
                            lambda line: None)
    section = monitor.to_record(1.5, 0.1, 8.0)
    assert section["exceeded"] and section["exceeded_at_s"] == 8.0
    assert section["action_taken"].startswith("none: crossed only by the final figures")
    assert not section["stopped"]
    assert not monitor.to_record(None, None, 8.0)["exceeded"]  # a failed measurement


def test_budget_section_is_valid_in_schema_1_1() -> None:
    record = make_sample_record()
    monitor = BudgetMonitor(Budget(energy_kwh=1.0), lambda: None, lambda line: None)
    record["budget"] = monitor.to_record(0.5, 0.1, 10.0)
    record["outcome"]["stopped_by"] = "budget"
    validate_record(record)
    record["budget"]["on_budget"] = "panic"
    with pytest.raises(Exception, match="panic"):
        validate_record(record)


# -- the tracker, with real CodeCarbon -------------------------------------------------------


def _until_exceeded(tracker: MRVTracker, limit_s: float = 30.0) -> float:
    started = time.monotonic()
    while not tracker.budget_exceeded and time.monotonic() - started < limit_s:
        _busy(0.1)
    return time.monotonic() - started


def test_tracker_warns_when_a_tiny_budget_is_crossed(
        data_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    with MRVTracker("tiny-budget", blockchain_enabled=False, heartbeat_s=0,
                    budget_kwh=1e-9) as tracker:
        _until_exceeded(tracker)
        assert tracker.budget_exceeded
        _busy(0.3)  # training goes on
    err = capsys.readouterr().err
    assert err.count("MRV budget crossed") == 1 and "on_budget=warn" in err
    (record,) = _records(data_dir)
    assert record["outcome"]["status"] == "completed" and "stopped_by" not in record["outcome"]
    budget = record["budget"]
    assert budget["exceeded"] and budget["action_taken"] == "warned"
    assert budget["energy_kwh"] == 1e-9 and budget["exceeded_limit"] == "energy_kwh"
    assert 0 < budget["exceeded_at_s"] <= record["energy_emissions"]["duration_seconds"]


def test_plain_tracker_with_stop_flags_and_never_raises_into_the_loop(
        data_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    epochs_run = 0
    with MRVTracker("stop-flag", blockchain_enabled=False, heartbeat_s=0,
                    budget_co2_kg=1e-12, on_budget="stop") as tracker:
        for epoch in range(1, 1000):
            _busy(0.2)
            tracker.update_progress(epoch, 999, unit="epochs")
            epochs_run = epoch
            if tracker.budget_exceeded:
                break
    assert epochs_run < 999
    assert "stopping the run" in capsys.readouterr().err
    (record,) = _records(data_dir)
    assert record["budget"]["action_taken"] == FLAGGED
    # the tracker cannot know the loop obeyed: it does not claim the run was stopped
    assert record["outcome"]["status"] == "completed" and "stopped_by" not in record["outcome"]
    assert record["budget"]["stopped"] is False


def test_a_forecast_over_the_budget_is_warned_about_early(
        data_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    with MRVTracker("forecast-over", blockchain_enabled=False, heartbeat_s=0,
                    budget_kwh=1.0, forecast_after=1) as tracker:
        deadline = time.monotonic() + 30
        made = None
        step = 0
        while made is None and time.monotonic() < deadline:
            _busy(0.2)
            step += 1
            made = tracker.update_progress(step, 100_000_000)
    err = capsys.readouterr().err
    assert made is not None and made.energy_kwh > 1.0
    assert err.count("MRV forecast over budget") == 1
    (record,) = _records(data_dir)
    assert record["budget"]["forecast_exceeded"] and not record["budget"]["exceeded"]
    assert record["energy_emissions"]["forecast"]["energy_kwh"] > 1.0


# -- mrv run -----------------------------------------------------------------------------------

_LOOP_UNTIL_SIGINT = (
    "import sys, time\n"
    "try:\n"
    "    end = time.time() + 60\n"
    "    while time.time() < end:\n"
    "        sum(range(10000))\n"
    "except KeyboardInterrupt:\n"
    "    print('stopping cleanly', flush=True)\n"
    "    sys.exit(42)\n"
    "sys.exit(0)\n")

_IGNORE_SIGINT = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "end = time.time() + 60\n"
    "while time.time() < end:\n"
    "    sum(range(10000))\n")


def test_mrv_run_stops_the_command_at_its_budget(data_dir: Path) -> None:
    started = time.monotonic()
    done = run_mrv_subprocess("run", "--no-anchor", "--budget-kwh", "1e-9", "--",
                              sys.executable, "-c", _LOOP_UNTIL_SIGINT,
                              env={"MRV_MEASURE_POWER_SECS": "0.5", "MRV_HEARTBEAT_S": "0"},
                              timeout=90)
    elapsed = time.monotonic() - started
    assert elapsed < 30, elapsed  # not the child's 60 s
    assert done.exit_code == 42  # the child's own status, passed through
    assert "stopping cleanly" in done.stdout
    assert "MRV budget crossed" in done.stderr and "Traceback" not in done.stderr
    (record,) = _records(data_dir)
    assert record["outcome"]["status"] == "interrupted"
    assert record["outcome"]["stopped_by"] == "budget"
    assert record["outcome"]["exit_code"] == 42
    assert record["budget"]["action_taken"] == "sent SIGINT to the command"
    assert record["budget"]["on_budget"] == "stop" and record["budget"]["stopped"]


def test_a_command_ignoring_sigint_gets_sigterm_after_the_grace_period(data_dir: Path) -> None:
    started = time.monotonic()
    done = run_mrv_subprocess("run", "--no-anchor", "--budget-kwh", "1e-9",
                              "--budget-grace-s", "1", "--", sys.executable, "-c",
                              _IGNORE_SIGINT,
                              env={"MRV_MEASURE_POWER_SECS": "0.5", "MRV_HEARTBEAT_S": "0"},
                              timeout=90)
    assert time.monotonic() - started < 30
    assert done.exit_code == 128 + 15  # SIGTERM, as a shell reports it
    (record,) = _records(data_dir)
    assert record["outcome"]["status"] == "interrupted"
    assert record["outcome"]["stopped_by"] == "budget"
    assert record["budget"]["action_taken"] == ("sent SIGINT to the command, then SIGTERM 1 s "
                                                "later")


@pytest.mark.slow
def test_mrv_run_with_warn_lets_the_command_finish(data_dir: Path) -> None:
    done = run_mrv_subprocess("run", "--no-anchor", "--budget-kwh", "1e-9", "--on-budget",
                              "warn", "--", sys.executable, "-c",
                              "import time\nend = time.time() + 10\n"
                              "while time.time() < end: sum(range(10000))\n",
                              env={"MRV_MEASURE_POWER_SECS": "0.5", "MRV_HEARTBEAT_S": "0"},
                              timeout=90)
    assert done.exit_code == 0
    assert done.stderr.count("MRV budget crossed") == 1
    (record,) = _records(data_dir)
    assert record["outcome"]["status"] == "completed" and "stopped_by" not in record["outcome"]
    assert record["budget"]["exceeded"] and record["budget"]["action_taken"] == "warned"
