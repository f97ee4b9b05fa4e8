"""One measurer per node when no launcher numbered the processes: a file lock in the node's
temporary folder, per job.

A SLURM batch script that starts ``mrv run a & mrv run b & wait``, or any two trackers of one
job on one node without ranks: each would measure the whole machine. The first to join a
job's folder on the node (``$TMPDIR/mrv-ml-<job>``) becomes its **measurer** for as long as
it runs; the others that join while it runs become its **members**, report their part
(outcome and times) into the folder, and measure nothing (in process mode they measure
their own processes). The measurer waits, when it stops, until every member has reported or
is gone, then closes the round and writes the one record; a process that joins after that
starts a new round and measures anew.

One mutex (``flock`` on ``state.lock``, held for a read and a write) orders joining and
closing, so a process either joins an open round before the measurer closes it (and is
waited for) or finds it closed. A member whose process is gone without a part is
``missing``, as a dead rank is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrv_ml.run.job import PartExchange

log = logging.getLogger(__name__)

__all__ = ["Round", "join_node_round", "node_folder"]

_POLL_S = 0.2


def node_folder(job: str, temp_dir: str | os.PathLike[str] | None = None) -> Path:
    """The job's folder on this node: under ``temp_dir``, else the system's temporary folder
    (``$TMPDIR``, which SLURM can point at a job's own)."""
    return Path(temp_dir if temp_dir is not None else tempfile.gettempdir()) / f"mrv-ml-{job}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@contextlib.contextmanager
def _mutex(folder: Path) -> Iterator[None]:
    with (folder / "state.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_state(folder: Path) -> dict[str, Any]:
    """The rounds so far; no state (or an unreadable one): none, so a new round opens."""
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict):
        return {"round": 0, "open": False, "measurer": None, "members": {}}
    return state


def _write_state(folder: Path, state: Mapping[str, Any]) -> None:
    temporary = folder / f".state.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temporary, folder / "state.json")


@dataclass
class Round:
    """This process's place in its job's round on this node: ``rank`` 0 is the measurer,
    the members are numbered from 1 in the order they joined."""

    folder: Path
    number: int
    rank: int

    @property
    def exchange(self) -> PartExchange:
        return PartExchange(self.folder / f"round-{self.number}")

    def close(self, timeout_s: float) -> tuple[list[int], list[int]]:
        """(The measurer.) Wait until every member has reported or is gone, up to
        ``timeout_s``; close the round. Returns (members, members missing)."""
        deadline = time.monotonic() + timeout_s
        exchange = self.exchange
        while True:
            with _mutex(self.folder):
                state = _read_state(self.folder)
                members = {int(r): int(pid) for r, pid in state.get("members", {}).items()}
                waiting = [r for r, pid in members.items()
                           if not (exchange.folder / f"rank-{r}.json").exists() and _alive(pid)]
                if not waiting or time.monotonic() >= deadline:
                    state["open"] = False
                    _write_state(self.folder, state)
                    break
            time.sleep(_POLL_S)
        missing = sorted(r for r in members
                         if not (exchange.folder / f"rank-{r}.json").exists())
        return sorted(members), missing

    def remove(self) -> None:
        self.exchange.remove()


def join_node_round(job: str, temp_dir: str | os.PathLike[str] | None = None) -> Round | None:
    """Join this job's open round on this node, or open one as its measurer. None where the
    folder cannot be used (the process then measures alone, as it would without a job)."""
    folder = node_folder(job, temp_dir)
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        with _mutex(folder):
            state = _read_state(folder)
            measurer = state.get("measurer")
            if state.get("open") and isinstance(measurer, int) and _alive(measurer):
                members = state.setdefault("members", {})
                rank = len(members) + 1
                members[str(rank)] = os.getpid()
                _write_state(folder, state)
                return Round(folder, int(state["round"]), rank)
            number = int(state.get("round", 0)) + 1
            _write_state(folder, {"round": number, "open": True, "measurer": os.getpid(),
                                  "members": {}})
            return Round(folder, number, 0)
    except (OSError, ValueError) as e:
        log.warning("no node-local election for job %s (%s): %s", job, folder, e)
        return None
