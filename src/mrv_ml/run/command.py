"""Track any program, in any language: run it as a child process under an ``MRVTracker``.

    from mrv_ml.run.command import run_tracked

    result = run_tracked(["python", "train.py", "--epochs", "3"], epochs=3)
    result.exit_code, result.mrv_id, result.record_path

The child inherits stdin/stdout/stderr, so its output is its own. SIGINT and SIGTERM are
forwarded to it (when called from the main thread, the only one that can receive signals).
Its exit status is mapped as a shell does (128 + N for a child killed by signal N) and a
record is written whatever it does: ``completed`` for 0, ``failed`` for another status or
a signal, ``interrupted`` for SIGINT/SIGTERM. A program that does not exist or cannot be
executed raises :class:`~mrv_ml.errors.CommandNotFoundError` (127) or
:class:`~mrv_ml.errors.CommandNotExecutableError` (126) before anything is measured, except
when the operating system refuses to start it, which is recorded as a failed run first.
``mrv run`` is this function plus option parsing and one line of output.

With a budget (``budget_kwh``/``budget_co2_kg``, ``on_budget`` ``"stop"`` by default here)
a child whose run crosses it gets SIGINT, then SIGTERM if it is still running
``budget_grace_s`` seconds later (30 s); its exit status is passed through as ever and the
record says it was stopped by its budget (``outcome.stopped_by``, ``budget``).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from mrv_ml.config import Settings, load_settings
from mrv_ml.errors import (
    CommandNotExecutableError,
    CommandNotFoundError,
    ConfigError,
    MRVValueError,
)

if TYPE_CHECKING:
    from mrv_ml.run.tracker import MRVTracker

__all__ = ["CommandResult", "resolve_program", "run_tracked"]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Seconds between the SIGINT and the SIGTERM of a child stopped by its budget.
DEFAULT_BUDGET_GRACE_S = 30.0


@dataclass(frozen=True)
class CommandResult:
    """What :func:`run_tracked` did: the exit status to pass on and the stored record
    (``None`` on a launched job's other ranks, which handed their part to rank 0:
    ``tracker.part``)."""

    exit_code: int
    record: dict[str, Any] | None
    mrv_id: str | None
    record_path: Path | None
    tracker: MRVTracker


def resolve_program(program: str) -> str:
    """The executable to run, or a clear error (127 not found, 126 not executable)."""
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program)
        if not path.exists():
            raise CommandNotFoundError(f"command not found: {program}")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise CommandNotExecutableError(f"command is not executable: {program}")
        return program
    found = shutil.which(program)
    if found is None:
        raise CommandNotFoundError(f"command not found: {program}")
    return found


def run_tracked(
    command: Sequence[str],
    *,
    experiment_name: str | None = None,
    model_name: str = "Unknown",
    dataset_name: str = "Unknown",
    epochs: int | None = None,
    batch_size: int | None = None,
    framework: str | None = None,
    blockchain_enabled: bool = True,
    anchor_mode: str = "single",
    settings: Settings | Mapping[str, Any] | None = None,
    budget_grace_s: float = DEFAULT_BUDGET_GRACE_S,
    **tracker_options: Any,
) -> CommandResult:
    """Run ``command`` (program and arguments) to the end under an ``MRVTracker``.

    ``experiment_name`` defaults to the program's file name. ``settings`` is a ``Settings``,
    or overrides for :func:`~mrv_ml.config.load_settings` (command-line flags), read after
    the program was found. Other keyword arguments go to ``MRVTracker`` (``quiet``,
    ``description``, ``tags``...). Storing the record can raise
    :class:`~mrv_ml.errors.StoreError`, as ``MRVTracker.stop()`` does.
    """
    if not command:
        raise MRVValueError("command must name a program")
    from mrv_ml.run.tracker import MRVTracker  # codecarbon is slow to import: only when running

    command = list(command)
    if not (math.isfinite(budget_grace_s) and 0 <= budget_grace_s <= 86_400):
        raise ConfigError(f"budget_grace_s must be from 0 to 86400 seconds, not {budget_grace_s!r}")
    program = resolve_program(command[0])
    if not isinstance(settings, Settings):
        settings = load_settings(settings)
    if tracker_options.get("on_budget") is None and settings.on_budget is None:
        tracker_options["on_budget"] = "stop"  # a command cannot check a flag: stop it
    tracker = MRVTracker(
        experiment_name or Path(command[0]).name, model_name, dataset_name, epochs, batch_size,
        framework, blockchain_enabled=blockchain_enabled, anchor_mode=anchor_mode,
        settings=settings, command=command, **tracker_options)
    tracker.start()
    returncode = _supervise(tracker, [program, *command[1:]], command[0], budget_grace_s)
    exit_code = _record_exit(tracker, returncode, stopped=tracker.stopped_by_budget)
    tracker.stop()
    return CommandResult(exit_code=exit_code, record=tracker.record, mrv_id=tracker.mrv_id,
                         record_path=tracker.record_path, tracker=tracker)


def _supervise(tracker: MRVTracker, argv: list[str], shown_name: str,
               budget_grace_s: float = DEFAULT_BUDGET_GRACE_S) -> int:
    """Start the child with SIGINT/SIGTERM forwarded to it; wait; its raw return code."""
    children: list[subprocess.Popen[bytes]] = []
    early: list[int] = []
    grace = threading.Event()  # set once the child has ended: no SIGTERM after that

    def stop_for_budget() -> str:
        """The budget is crossed (on the budget's thread): SIGINT now, SIGTERM later."""
        # said before the signal: a child that exits at once is already a budget stop
        tracker.mark_stopped_by_budget("sent SIGINT to the command")
        if not children:
            early.append(signal.SIGINT)
        elif children[0].poll() is None:
            children[0].send_signal(signal.SIGINT)
        threading.Thread(target=terminate_after_grace, name="mrv-budget-grace",
                         daemon=True).start()
        return "sent SIGINT to the command"

    def terminate_after_grace() -> None:
        if grace.wait(budget_grace_s) or not children or children[0].poll() is not None:
            return
        # said before the signal: the record may be written as soon as the child dies
        tracker.mark_stopped_by_budget(
            f"sent SIGINT to the command, then SIGTERM {budget_grace_s:g} s later")
        children[0].send_signal(signal.SIGTERM)

    if tracker.budget is not None and tracker.budget.on_budget == "stop":
        tracker.add_budget_stop_action(stop_for_budget)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if not children:
            early.append(signum)  # arrived before the child existed: deliver it on start
        elif children[0].poll() is None:
            children[0].send_signal(signum)

    # Handlers go in before the child starts, so no signal slips through the gap.
    previous = ({sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
                if threading.current_thread() is threading.main_thread() else {})
    try:
        try:
            child = subprocess.Popen(argv)
        except OSError as e:  # raced away, or a bad interpreter line
            tracker.set_outcome("failed", error_type=type(e).__name__, error_message=str(e),
                                exit_code=126)
            tracker.stop()
            raise CommandNotExecutableError(
                f"cannot run {shown_name}: {e.strerror or e}") from None
        children.append(child)
        for signum in early:
            child.send_signal(signum)
        return _wait_responsive(child)
    finally:
        grace.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_responsive(child: subprocess.Popen[bytes]) -> int:
    """``child.wait()``, but never blocked in one system call: the kernel may hand SIGINT or
    SIGTERM to another thread of ours (CodeCarbon's), and Python runs its handler only when
    the main thread next runs Python code; a blocking wait would hold the forwarding back
    until the child ended on its own."""
    while True:
        try:
            return child.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            continue


def _record_exit(tracker: MRVTracker, returncode: int, *, stopped: bool = False) -> int:
    """Set the run's outcome from the child's return code; the exit status to pass on.
    ``stopped``: we interrupted it (its budget), so whatever status it chose on the way out,
    the run was interrupted."""
    if returncode < 0:  # killed by a signal: shells report 128 + N
        signum = -returncode
        name = signal.Signals(signum).name
        status = "interrupted" if signum in FORWARDED_SIGNALS or stopped else "failed"
        tracker.set_outcome(status, error_type=name, error_message=f"terminated by {name}",
                            exit_code=128 + signum)
        return 128 + signum
    if returncode != 0:
        tracker.set_outcome("interrupted" if stopped else "failed", error_type="NonZeroExit",
                            error_message=f"exited with status {returncode}", exit_code=returncode)
        return returncode
    tracker.set_outcome("interrupted" if stopped else "completed", exit_code=0)
    return 0
