"""`mrv run -- COMMAND`: any program, exit status passed through, a record every time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mrv_ml.record.schema import load_record_file
from tests.support.cli import MRV, Result, mrv_command, run_mrv_subprocess


def _mrv(*args: str) -> Result:
    """In a child process: `mrv run`'s own child writes to the inherited descriptors."""
    return run_mrv_subprocess(*args, env={"MRV_QUIET": "1"})


def _records(data_dir: Path) -> list[dict]:
    return [load_record_file(p) for p in sorted(data_dir.glob("MRV-*.json"))
            if not p.name.endswith(".proof.json")]


def test_exit_status_passes_through_and_a_failed_record_is_written(data_dir: Path) -> None:
    done = _mrv("run", "--no-anchor", "--experiment", "shell-job", "--epochs", "2", "--",
                "sh", "-c", "echo training; exit 3")
    assert done.exit_code == 3
    assert done.stdout == "training\n"  # stdout stays the child's
    assert "Traceback" not in done.stderr
    (record,) = _records(data_dir)
    assert record["experiment"]["name"] == "shell-job"
    assert record["training"]["command"] == ["sh", "-c", "echo training; exit 3"]
    assert record["training"]["epochs"] == 2
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["exit_code"] == 3


def test_success_and_signal_death(data_dir: Path) -> None:
    ok = _mrv("run", "--no-anchor", "--", sys.executable, "-c", "print(sum(range(10)))")
    assert ok.exit_code == 0 and ok.stdout == "45\n"
    killed = _mrv("run", "--no-anchor", "--", "sh", "-c", "kill -KILL $$")
    assert killed.exit_code == 128 + 9
    outcomes = sorted((r["outcome"]["status"], r["outcome"]["exit_code"])
                      for r in _records(data_dir))
    assert outcomes == [("completed", 0), ("failed", 137)]


def test_missing_and_non_executable_commands_get_one_line_errors(data_dir: Path,
                                                                 tmp_path: Path) -> None:
    missing = _mrv("run", "--no-anchor", "--", "no-such-program-xyz")
    assert missing.exit_code == 127
    assert missing.stderr.strip() == "error: command not found: no-such-program-xyz"
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/sh\necho hi\n", encoding="utf-8")
    script.chmod(0o644)
    not_exec = _mrv("run", "--no-anchor", "--", str(script))
    assert not_exec.exit_code == 126
    assert "not executable" in not_exec.stderr and "Traceback" not in not_exec.stderr
    assert _records(data_dir) == []


def test_run_needs_a_command(data_dir: Path) -> None:
    done = _mrv("run")
    assert done.exit_code == 64
    assert "Traceback" not in done.stderr


def test_sigterm_is_forwarded_and_the_run_recorded_as_interrupted(data_dir: Path) -> None:
    env = dict(os.environ, MRV_QUIET="1")
    child_code = "import time; print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([*mrv_command(), "run", "--no-anchor", "--", sys.executable, "-c", child_code],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"  # the child runs: mrv's handler is set
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err
    (record,) = _records(data_dir)
    assert record["outcome"]["status"] == "interrupted"
    assert record["outcome"]["exit_code"] == 128 + signal.SIGTERM


def test_the_closing_line_says_how_the_run_ended_and_what_it_cost(mrv: MRV) -> None:
    code, _, err = mrv("run", "--", "false")
    assert code == 1
    [line] = [text for text in err.splitlines() if " run " in text and "CO2e" in text]
    assert line.startswith("❌ run failed: ") and "Wh, " in line and " in " in line, line
    assert "anchored in tx" in line and "(local only" in line
    assert "✅" not in err and err.count("MRV-") == 2  # one line names the record, once


def _command_tree() -> list[tuple[list[str], Any]]:
    """Every command and group of ``mrv`` with its path (typer vendors click, so its
    groups are no ``click.Group``: they are told apart by their ``commands``)."""
    import typer

    from mrv_ml.cli._app import app

    def walk(command: Any, prefix: list[str]) -> list[tuple[list[str], Any]]:
        found = [(prefix, command)]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*prefix, name])
        return found

    return walk(typer.main.get_command(app), [])


def test_dash_h_is_help_on_every_command(mrv: MRV) -> None:
    tree = _command_tree()
    assert len(tree) > 15 and ["registry", "serve"] in [path for path, _ in tree]
    for path, _ in tree:
        code, out, err = mrv(*path, "-h")
        assert code == 0 and out.startswith(f"Usage: mrv {' '.join(path)}".rstrip()), \
            (path, out[:200], err)


# One style of help placeholder: upper-case words for what is expected (NAME, N, DIR, URL,
# KEY=VALUE, RECORD...), or the literal choices in lower case (text|csv|json).
_PLACEHOLDER = re.compile(r"^\[?[A-Z][A-Z0-9_]*(\[?=[A-Z_]+\]?)?(\|[A-Z][A-Z0-9_]*)*(\.\.\.)?\]?"
                          r"(\.\.\.)?$|^[a-z0-9-]+(\|[a-z0-9-]+)+$")


def test_every_value_has_a_placeholder_in_one_style() -> None:
    wrong = []
    for path, command in _command_tree():
        for param in getattr(command, "params", []):
            if getattr(param, "is_flag", False) or param.name == "help":
                continue
            metavar = param.metavar
            if metavar is None or not _PLACEHOLDER.match(metavar):
                wrong.append(f"mrv {' '.join(path)} {'/'.join(param.opts)}: {metavar!r}")
    assert wrong == []


def test_the_tracker_options_reach_the_record(mrv: MRV, data_dir: Path) -> None:
    code, out, err = mrv("run", "--no-anchor", "--quiet", "--tag", "team=nlp", "--tags",
                         "seed=3=x", "--tag", "empty=", "--description", "a sweep",
                         "--country", "fra", "--region", "idf", "--pue", "1.25", "--",
                         "true")
    assert (code, out, err) == (0, "", "")  # --quiet: not a line of our own
    (record,) = _records(data_dir)
    assert record["experiment"]["tags"] == {"team": "nlp", "seed": "3=x", "empty": ""}
    assert record["experiment"]["description"] == "a sweep"
    energy = record["energy_emissions"]
    assert energy["country_iso_code"] == "FRA" and energy["location_source"] == "configured"
    assert energy["region"] == "idf"
    assert energy["pue"] == 1.25


def test_bad_tracker_options_are_one_line_errors_before_anything_runs(
        mrv: MRV, data_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    child = ["--", "sh", "-c", f"touch {marker}"]
    for args, exit_code, words in [
        (["--tag", "team"], 64, "'team' is not KEY=VALUE"),
        (["--tag", "=nlp"], 64, "is not KEY=VALUE"),
        (["--tag", "a=1", "--tag", "a=2"], 64, "tag 'a' given twice"),
        (["--pue", "high"], 64, "Invalid value for '--pue'"),
        (["--pue", "0.5"], 7, "invalid value 0.5 for pue: must be a number from 1 to 3"),
        (["--country", "FR"], 7, "must be an ISO 3166 alpha-3 code"),
        (["--country", "XYZ"], 7, "unknown country 'XYZ'"),
    ]:
        code, out, err = mrv("run", "--no-anchor", *args, *child)
        assert code == exit_code, (args, err)
        assert words in err and len(err.strip().splitlines()) == 1, (args, err)
        assert "Traceback" not in err and out == ""
    assert not marker.exists()
    assert _records(data_dir) == []


def test_run_help_shows_the_placeholders(mrv: MRV) -> None:
    code, out, _ = mrv("run", "-h")
    assert code == 0
    for text in ("--tag", "KEY=VALUE", "--description", "--country", "ISO3", "--region",
                 "--pue", "FLOAT", "--quiet"):
        assert text in out, text
