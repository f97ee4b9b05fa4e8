"""``mrv run -- COMMAND ...``: track any program, in any language.

The child inherits stdin/stdout/stderr, so stdout stays the child's; our own lines go to
stderr. SIGINT and SIGTERM are forwarded to the child. Its exit status is passed through
(128 + N for a child killed by signal N), and a record is written whatever it does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from mrv_ml.cli._app import app, console_err
from mrv_ml.config import load_settings
from mrv_ml.errors import CommandNotExecutableError, CommandNotFoundError


def _resolve_program(program: str) -> str:
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


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    help="Track any command: mrv run [OPTIONS] -- COMMAND [ARGS]...  "
         "A record is written whatever the command does; its exit status is passed through.",
)
def run_command(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).",
                                                 show_default=False)],
    experiment: Annotated[str | None, typer.Option("--experiment", "-e",
                                                   help="Experiment name (default: the program name).")] = None,
    model: Annotated[str, typer.Option(help="Model name.")] = "Unknown",
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "Unknown",
    epochs: Annotated[int | None, typer.Option(min=0, help="Training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size.")] = None,
    framework: Annotated[str | None, typer.Option(help="ML framework, e.g. PyTorch.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Record store (default: MRV_DATA_DIR or mrv_data).")] = None,
    no_anchor: Annotated[bool, typer.Option("--no-anchor", help="Write the record but do not anchor it.")] = False,
    batch: Annotated[bool, typer.Option("--batch", help="Leave the record pending for the next `mrv anchor --batch`.")] = False,
    country: Annotated[str | None, typer.Option(help="ISO 3166 alpha-3 country for the carbon intensity.")] = None,
    network: Annotated[str | None, typer.Option(help="Network to anchor on (default: local).")] = None,
) -> None:
    from mrv_ml.tracker import MRVTracker

    program = _resolve_program(command[0])
    settings = load_settings({"data_dir": data_dir, "country_iso_code": country,
                              "network": network})
    tracker = MRVTracker(
        experiment or Path(command[0]).name, model, dataset, epochs, batch_size, framework,
        blockchain_enabled=not no_anchor, anchor_mode="batch" if batch else "single",
        settings=settings, command=list(command))
    tracker.start()
    children: list[subprocess.Popen[bytes]] = []
    early: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if not children:
            early.append(signum)  # arrived before the child existed: deliver it on start
        elif children[0].poll() is None:
            children[0].send_signal(signum)

    # Handlers go in before the child starts, so no signal slips through the gap.
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            child = subprocess.Popen([program, *command[1:]])
        except OSError as e:  # raced away, or a bad interpreter line
            tracker.set_outcome("failed", error_type=type(e).__name__, error_message=str(e),
                                exit_code=126)
            tracker.stop()
            raise CommandNotExecutableError(
                f"cannot run {command[0]}: {e.strerror or e}") from None
        children.append(child)
        for signum in early:
            child.send_signal(signum)
        returncode = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    if returncode < 0:  # killed by a signal: shells report 128 + N
        signum = -returncode
        status = "interrupted" if signum in (signal.SIGINT, signal.SIGTERM) else "failed"
        tracker.set_outcome(status, error_type=signal.Signals(signum).name,
                            error_message=f"terminated by {signal.Signals(signum).name}",
                            exit_code=128 + signum)
        exit_code = 128 + signum
    elif returncode != 0:
        tracker.set_outcome("failed", error_type="NonZeroExit",
                            error_message=f"exited with status {returncode}", exit_code=returncode)
        exit_code = returncode
    else:
        tracker.set_outcome("completed", exit_code=0)
        exit_code = 0
    tracker.stop()
    console_err.print(f"mrv: record {tracker.mrv_id} → {tracker.record_path}", highlight=False)
    sys.stdout.flush()
    raise typer.Exit(exit_code)
