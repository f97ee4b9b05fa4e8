"""Killing mrv-ml's real processes at chosen and at random points (tests/adversarial/test_faults.py).

Two ways to kill, both with SIGKILL (no handler, no ``finally``, no atexit runs):

- **by name** (:func:`start_named`): the operation runs in a Python child whose bootstrap
  (:data:`_BOOTSTRAP`, test code only) wraps a few functions of ``mrv_ml`` (:data:`TARGETS`)
  and kills its own process just before, or just after, the Nth call of one of them. The
  operation itself is the real code path: ``mrv_ml.cli.main([...])`` for ``mrv run`` /
  ``mrv anchor`` / ``mrv anchor --batch`` (what the ``mrv`` script calls), the tracker
  script (:data:`TRACKER_SCRIPT`) for the tracker.
- **by time** (:func:`start_timed`): the real ``mrv`` script (or the tracker script) in its
  own process group, killed whole (the program ``mrv run`` runs too) after a delay.

:func:`calibrate` runs an operation once unharmed with every target counted, and returns how
many times each target was called and the window in which the process works (from the first
call of its :data:`WORK_STARTS` function to its exit, in seconds after the spawn): named
kills draw N within the counts, timed kills draw their delay within the window. Hooks go
in as their modules are imported, so the bootstrap's timeline is the real command's.

:func:`chain_anchors` reads, from the chain itself, every ``MRVRegistered`` and
``BatchAnchored`` event of the configured registry and the leaves of each anchored root
(from its batch journal); :func:`anchorings` says, per record, every anchoring the chain
holds for it: exactly one is the goal.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.cli import mrv_command

OPERATIONS = ("run", "tracker", "anchor", "batch")

#: What a trained program does under ``mrv run`` (and the tracker's loop): short, real work.
TRAIN_CODE = "s = 0\nfor i in range(300_000):\n    s += i * i\n"

TRACKER_SCRIPT = f"""
from mrv_ml.run.tracker import MRVTracker
with MRVTracker("fault-tracker", model_name="loop", epochs=1, quiet=True) as tracker:
{''.join('    ' + line + chr(10) for line in TRAIN_CODE.splitlines())}
print(tracker.mrv_id, tracker.tx_hash)
"""

#: Kill points, by operation: ``module:Qualified.name`` of a function looked up at call
#: time (a module attribute, or a method on its class).
_STORE = ["mrv_ml.storage.atomicfile:write_bytes", "mrv_ml.storage.store:RecordStore.save_proof"]
_CHAIN = ["mrv_ml.chain.connection:ChainConnection._sign_and_send", "mrv_ml.chain.connection:ChainConnection._wait"]
_EMBEDDED = ["mrv_ml.chain.kvstore:SQLiteKV.commit"]
_RUN = ["mrv_ml.measure.meter:EnergyMeter.stop", "mrv_ml.storage.store:RecordStore.save",
        "mrv_ml.run.tracker:MRVTracker._finish", "mrv_ml.anchoring.single:_register"]
TARGETS: dict[str, list[str]] = {
    "run": [*_RUN, *_STORE, *_CHAIN],
    "tracker": [*_RUN, *_STORE, *_CHAIN],
    "anchor": ["mrv_ml.anchoring.single:_register", *_STORE, *_CHAIN],
    "batch": ["mrv_ml.anchoring.batch:write_journal", *_STORE, *_CHAIN],
}
#: Where the operation's own work begins: the timed window opens at its first call. For a
#: run, when its record is stored (then anchored); before that a killed run leaves nothing,
#: which named kills before ``EnergyMeter.stop`` and ``RecordStore.save`` show, and the
#: timing noise of CodeCarbon's start (joined when the run stops) spreads kills there too.
WORK_STARTS = {"run": "mrv_ml.storage.store:RecordStore.save",
               "tracker": "mrv_ml.storage.store:RecordStore.save",
               "anchor": "mrv_ml.storage.store:RecordStore.pending_ids",
               "batch": "mrv_ml.storage.store:RecordStore.pending_ids"}


def targets(operation: str, embedded: bool) -> list[str]:
    return TARGETS[operation] + (_EMBEDDED if embedded else [])


# The child's bootstrap: argv[1] is the spec (JSON). Test code only: nothing in mrv_ml reads
# it, and nothing is patched but in this child.
_BOOTSTRAP = r"""
import atexit, importlib.abc, importlib.machinery, json, os, signal, sys, time
spec = json.loads(sys.argv[1])
calls, first, waiting = {}, {}, {}
kill = spec.get("kill") or {}

def report(**extra):
    with open(spec["report"], "w") as f:
        json.dump({"calls": calls, "first": first, "end": time.time(),
                   "never_imported": sorted(waiting), **extra}, f)

def die(target, n, when):
    report(killed={"target": target, "n": n, "when": when})
    os.kill(os.getpid(), signal.SIGKILL)

def hook(target, module):
    owner = module
    *path, name = target.partition(":")[2].split(".")
    for part in path:
        owner = getattr(owner, part)
    real = getattr(owner, name)
    def wrapper(*args, **kwargs):
        n = calls[target] = calls.get(target, 0) + 1
        first.setdefault(target, time.time())
        if kill.get("target") == target and kill["n"] == n and kill["when"] == "before":
            die(target, n, "before")
        result = real(*args, **kwargs)
        if kill.get("target") == target and kill["n"] == n and kill["when"] == "after":
            die(target, n, "after")
        return result
    setattr(owner, name, wrapper)

class HookOnImport(importlib.abc.MetaPathFinder):
    # Hooks go in when their module is first imported, as the real command imports it:
    # the child's timeline stays the real command's.
    def find_spec(self, name, path, target=None):
        if name not in waiting:
            return None
        found = importlib.machinery.PathFinder.find_spec(name, path)
        if found is None or found.loader is None:
            return found
        run = found.loader.exec_module
        def exec_module(module):
            run(module)
            for t in waiting.pop(name, []):
                hook(t, module)
        found.loader.exec_module = exec_module
        return found

for target in spec["targets"]:
    waiting.setdefault(target.partition(":")[0], []).append(target)
sys.meta_path.insert(0, HookOnImport())
atexit.register(report)
if spec["operation"] == "tracker":
    exec(compile(spec["tracker_script"], "<tracker>", "exec"), {"__name__": "__main__"})
else:
    from mrv_ml.cli import main
    main(spec["argv"])
"""


def _cli_argv(operation: str) -> list[str]:
    return {"run": ["run", "--", sys.executable, "-c", TRAIN_CODE],
            "anchor": ["anchor"], "batch": ["anchor", "--batch"]}[operation]


def _real_argv(operation: str) -> list[str]:
    if operation == "tracker":
        return [sys.executable, "-c", TRACKER_SCRIPT]
    return [*mrv_command(), *_cli_argv(operation)]


@dataclass(frozen=True)
class Kill:
    """A named kill point: just ``when`` ("before"/"after") the ``n``-th call of ``target``."""

    target: str
    n: int
    when: str

    def __str__(self) -> str:
        return f"{self.when} call {self.n} of {self.target.partition(':')[2]}"


@dataclass
class Child:
    """One finished child: how it ended and what it printed."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    what: str  # the kill point, "at 1.23 s", or "unharmed"
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def tail(self) -> str:
        return (self.stdout + self.stderr)[-600:]


def _run(argv: Sequence[str], env: Mapping[str, str], *, kill_after: float | None,
         timeout: float, what: str, report: Path | None = None) -> Child:
    started = time.monotonic()
    proc = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own group: killed whole
    try:
        try:
            out, err = proc.communicate(timeout=kill_after if kill_after is not None
                                        else timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
    finally:
        # whatever the group still holds (the program `mrv run` started, if its parent
        # killed itself), and never a process left behind by a failed test
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    data: dict[str, Any] = {}
    if report is not None and report.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(report.read_text())
    return Child(list(argv), proc.returncode, out.decode("utf-8", "replace"),
                 err.decode("utf-8", "replace"), time.monotonic() - started, what, data)


def _bootstrap_argv(operation: str, embedded: bool, report: Path, kill: Kill | None
                    ) -> list[str]:
    spec = {"operation": operation, "argv": _cli_argv(operation) if operation != "tracker"
            else None, "tracker_script": TRACKER_SCRIPT, "report": str(report),
            "targets": list(dict.fromkeys([*targets(operation, embedded),
                                           WORK_STARTS[operation]])),
            "kill": None if kill is None else {"target": kill.target, "n": kill.n,
                                               "when": kill.when}}
    return [sys.executable, "-c", _BOOTSTRAP, json.dumps(spec)]


@dataclass(frozen=True)
class Calibration:
    """An unharmed run: calls per target, and the working window (s after the spawn)."""

    calls: dict[str, int]
    window: tuple[float, float]
    child: Child


def calibrate(operation: str, *, embedded: bool, env: Mapping[str, str], scratch: Path,
              timeout: float = 120) -> Calibration:
    report = scratch / f"calibrate-{operation}.json"
    spawned = time.time()
    child = _run(_bootstrap_argv(operation, embedded, report, None), env, kill_after=None,
                 timeout=timeout, what="unharmed", report=report)
    data = child.report
    first = data.get("first", {})
    opened = first.get(WORK_STARTS[operation])
    if child.returncode != 0 or opened is None:
        raise AssertionError(f"the unharmed {operation} run failed ({child.returncode}): "
                             f"{child.tail()}")
    unhooked = set(data.get("never_imported", [])) & \
        {t.partition(":")[0] for t in targets(operation, embedded)}
    assert not unhooked, f"{operation} never imported {sorted(unhooked)}: stale kill points?"
    calls = {t: int(n) for t, n in data.get("calls", {}).items()
             if t in targets(operation, embedded)}
    return Calibration(calls, (opened - spawned, float(data["end"]) - spawned), child)


def start_named(operation: str, kill: Kill, *, embedded: bool, env: Mapping[str, str],
                scratch: Path, timeout: float = 120) -> Child:
    """Run ``operation`` in a child that kills itself at ``kill``."""
    report = scratch / f"named-{time.monotonic_ns()}.json"
    return _run(_bootstrap_argv(operation, embedded, report, kill), env, kill_after=None,
                timeout=timeout, what=str(kill), report=report)


class Killed(BaseException):
    """Raised by :func:`kill_in_process` where a child would die; a ``BaseException``, so
    no ``except Exception`` on the way out turns it into an outcome."""


def kill_in_process(monkeypatch: Any, kill: Kill) -> None:
    """In this process: raise :class:`Killed` at ``kill`` (a fast stand-in for SIGKILL in
    focused tests; the ``finally`` blocks on the way out still run)."""
    module, _, qualname = kill.target.partition(":")
    owner: Any = importlib.import_module(module)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    real = getattr(owner, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == kill.n and kill.when == "before":
            raise Killed(str(kill))
        result = real(*args, **kwargs)
        if calls == kill.n and kill.when == "after":
            raise Killed(str(kill))
        return result

    monkeypatch.setattr(owner, name, wrapper)


def start_timed(operation: str, delay_s: float, *, env: Mapping[str, str]) -> Child:
    """Run the real command of ``operation`` and kill its process group after ``delay_s``."""
    return _run(_real_argv(operation), env, kill_after=delay_s, timeout=delay_s,
                what=f"at {delay_s:.2f} s")


# --- what the chain holds -------------------------------------------------------------


@dataclass
class ChainAnchors:
    """Every registration and batch on the configured registry, read from the chain."""

    registrations: dict[str, list[tuple[str, str]]]  # mrv_id -> [(hash hex, tx hash)]
    roots: dict[str, str]  # root -> tx hash
    leaves: dict[str, set[str]]  # root -> its leaves ("0x" + hex), from its journal
    roots_without_journal: list[str]


def chain_anchors(settings: Any, data_dir: Path) -> ChainAnchors:
    from mrv_ml.chain.connection import connect
    from mrv_ml.chain.events import event_logs
    from mrv_ml.storage.journal import JOURNAL_DIR

    registrations: dict[str, list[tuple[str, str]]] = {}
    roots: dict[str, str] = {}
    with connect(settings) as conn:
        for log in event_logs(conn, "MRVRegistered", {}):
            registrations.setdefault(str(log["args"]["mrvId"]), []).append(
                (bytes(log["args"]["hash"]).hex(), "0x" + bytes(log["transactionHash"]).hex()))
        for log in event_logs(conn, "BatchAnchored", {}):
            root = "0x" + bytes(log["args"]["root"]).hex()
            if root in roots:
                raise AssertionError(f"root {root} anchored twice")
            roots[root] = "0x" + bytes(log["transactionHash"]).hex()
    leaves: dict[str, set[str]] = {}
    missing = []
    for root in roots:
        path = data_dir / JOURNAL_DIR / f"{root}.json"
        try:
            leaves[root] = set(json.loads(path.read_text())["leaves"])
        except (OSError, ValueError, KeyError):
            missing.append(root)
    return ChainAnchors(registrations, roots, leaves, missing)


def anchorings(anchors: ChainAnchors, mrv_id: str, digest: str) -> list[str]:
    """Every anchoring of this record the chain holds: ``single <tx>`` per registration of
    its ID (whatever the hash), ``batch <root>`` per anchored root holding its leaf."""
    found = [f"single {tx}" + ("" if h == digest else f" (another hash {h[:12]}...)")
             for h, tx in anchors.registrations.get(mrv_id, [])]
    found += [f"batch {root}" for root, leaves in anchors.leaves.items()
              if "0x" + digest in leaves]
    return found
