"""mrv_ml.run.command.run_tracked, the library side of `mrv run` (the CLI is in test_cli_run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mrv_ml.errors import CommandNotFoundError
from mrv_ml.record.schema import load_record_file
from mrv_ml.run.command import CommandResult, run_tracked


def test_statuses_map_to_outcomes_and_records(data_dir: Path) -> None:
    ok = run_tracked([sys.executable, "-c", "pass"], experiment_name="lib-ok",
                     blockchain_enabled=False, quiet=True)
    assert isinstance(ok, CommandResult) and ok.exit_code == 0
    assert ok.record_path is not None and ok.record_path.parent == data_dir
    assert load_record_file(ok.record_path) == ok.record and ok.mrv_id == ok.record["mrv_id"]
    assert ok.record["outcome"]["status"] == "completed"
    assert ok.record["experiment"]["name"] == "lib-ok"

    failed = run_tracked(["sh", "-c", "exit 3"], settings={"data_dir": data_dir / "other"},
                         blockchain_enabled=False, quiet=True)
    assert failed.exit_code == 3 and failed.record_path is not None
    assert failed.record_path.parent == data_dir / "other"  # overrides for load_settings
    assert failed.record["experiment"]["name"] == "sh"  # the program's name by default
    assert failed.record["training"]["command"] == ["sh", "-c", "exit 3"]
    assert failed.record["outcome"] == {"status": "failed", "error_type": "NonZeroExit",
                                        "error_message": "exited with status 3", "exit_code": 3}


def test_missing_program_raises_before_any_record(data_dir: Path) -> None:
    with pytest.raises(CommandNotFoundError, match="command not found: no-such-program-xyz"):
        run_tracked(["no-such-program-xyz"], blockchain_enabled=False, quiet=True)
    with pytest.raises(ValueError):
        run_tracked([])
    assert not data_dir.exists() or not list(data_dir.glob("MRV-*.json"))


def test_a_signal_taken_by_another_thread_is_still_forwarded_at_once(data_dir: Path) -> None:
    """The kernel may hand SIGTERM to any thread that does not block it (CodeCarbon's);
    Python runs the handler only when the main thread runs Python code. A main thread
    blocked in one wait system call held the forwarding back until the child ended on its
    own (60 s; seen once on a loaded CI machine). Here the main thread blocks SIGTERM, so
    the kernel must give it to the other thread."""
    import os
    import signal
    import subprocess
    import time

    script = (
        "import signal, sys, threading, time\n"
        "threading.Thread(target=time.sleep, args=(300,), daemon=True).start()\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
        "from mrv_ml.run.command import run_tracked\n"
        # the child inherits the blocked mask: it unblocks, to die of the forwarded signal
        "child = (\"import signal, time; signal.pthread_sigmask(signal.SIG_UNBLOCK, \"\n"
        "         \"{signal.SIGTERM}); print('ready', flush=True); time.sleep(60)\")\n"
        "result = run_tracked([sys.executable, '-c', child], blockchain_enabled=False,\n"
        "                     quiet=True)\n"
        "print('exit', result.exit_code, flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, MRV_DATA_DIR=str(data_dir)))
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=50)
        waited = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "exit 143"
    assert waited < 40  # forwarded, not the child's own 60 s
