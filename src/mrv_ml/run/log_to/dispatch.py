"""The record's facts and files into the experiment tracker's run the user already has open.

``MRVTracker(..., log_to=("mlflow", "wandb"))`` (``MRV_LOG_TO=mlflow,wandb``, ``mrv run
--log-to mlflow``) hands each named tool's module (:mod:`mrv_ml.run.log_to.mlflow`,
:mod:`mrv_ml.run.log_to.wandb`) the facts of :class:`RunFacts` and the record and proof
files once the record is stored and anchoring has run.

Only a run that is active is logged into: the one active when tracking started (a
framework's logger may end it before the record exists: it is still the run that was
measured), else one active when tracking stops. None: nothing is created, one line on stderr
says so. A failing tool (a tracking server down, a finished run) is one warning line: the
record, its anchoring and the training are never affected.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mrv_ml.config import LOG_TO_CHOICES, redact_text
from mrv_ml.errors import MissingExtraError

if TYPE_CHECKING:
    from mrv_ml.record.proof import Proof

log = logging.getLogger(__name__)

# tool -> (the module it needs, the extra that installs it, its name for people)
_TOOLS = {"mlflow": ("mlflow", "mlflow", "MLflow"),
          "wandb": ("wandb", "wandb", "W&B")}
_HOW_TO_OPEN = {"mlflow": "mlflow.start_run() before training, or MLFLOW_RUN_ID",
                "wandb": "wandb.init() before training, in the same process"}
assert set(_TOOLS) == set(LOG_TO_CHOICES)

_said_no_run: set[str] = set()  # "no active run" is said once per process and tool


@dataclass(frozen=True)
class RunFacts:
    """What goes into the tracker's run. Raw numbers in the units their names say (the
    tools plot them); ``trust`` is what the anchor is worth before any verification
    (:func:`mrv_ml.record.trust.proof_trust`), never a claim that the record was verified."""

    mrv_id: str
    fingerprint: str  # hex SHA-256 of the record's RFC 8785 bytes
    hash_algorithm: str
    measurement_status: str
    outcome: str
    energy_kwh: float | None
    co2_kg: float | None
    duration_s: float | None
    anchor_state: str  # "anchored", "pending" or "off" (blockchain_enabled=False)
    pending_reason: str | None
    trust: str | None  # None: not anchored
    chain_id: int | None
    network: str | None
    tx_hash: str | None
    explorer_url: str | None

    def tags(self) -> dict[str, str]:
        """The string facts, under ``mrv.<name>``; absent ones left out."""
        values = {"id": self.mrv_id, "fingerprint": self.fingerprint,
                  "hash_algorithm": self.hash_algorithm,
                  "measurement_status": self.measurement_status, "outcome": self.outcome,
                  "anchor_state": self.anchor_state, "pending_reason": self.pending_reason,
                  "trust": self.trust if self.trust is not None else "not anchored",
                  "chain_id": None if self.chain_id is None else str(self.chain_id),
                  "network": self.network, "tx_hash": self.tx_hash,
                  "explorer_url": self.explorer_url}
        return {f"mrv.{k}": v for k, v in values.items() if v is not None}

    def metrics(self) -> dict[str, float]:
        """The figures, under ``mrv.<name>_<unit>``; a failed measurement has none."""
        values = {"energy_kwh": self.energy_kwh, "co2_kg": self.co2_kg,
                  "duration_s": self.duration_s}
        return {f"mrv.{k}": float(v) for k, v in values.items() if v is not None}


def run_facts(record: dict[str, Any], fingerprint: str, proof: Proof | None, *,
              blockchain_enabled: bool, anchor_error: str | None) -> RunFacts:
    from mrv_ml.record.hashing import HASH_ALGORITHM
    from mrv_ml.record.trust import proof_trust

    energy = record.get("energy_emissions") or {}
    anchor = proof.anchor if proof is not None else None
    if not blockchain_enabled:
        state, reason = "off", None
    elif anchor is not None:
        state, reason = "anchored", None
    else:  # a pending sidecar, or none when anchoring failed before writing one
        state = "pending"
        reason = (proof.pending_reason if proof is not None else None) or anchor_error
    trust = proof_trust(proof)
    return RunFacts(
        mrv_id=record["mrv_id"], fingerprint=fingerprint, hash_algorithm=HASH_ALGORITHM,
        measurement_status=str(energy.get("measurement_status")),
        outcome=str((record.get("outcome") or {}).get("status")),
        energy_kwh=energy.get("energy_kwh"), co2_kg=energy.get("co2_kg"),
        duration_s=energy.get("duration_seconds"), anchor_state=state,
        pending_reason=None if reason is None else redact_text(reason)[:500],
        trust=None if trust is None else trust.value,
        chain_id=anchor.chain_id if anchor is not None else None,
        network=anchor.network if anchor is not None else None,
        tx_hash=anchor.tx_hash if anchor is not None else None,
        explorer_url=anchor.explorer_url if anchor is not None else None)


class RunTarget(Protocol):
    """One tool's open run (each tool module's ``active_run()`` returns one)."""

    def describe(self) -> str: ...

    def log(self, facts: RunFacts, files: list[Path]) -> None: ...


def check_installed(names: Iterable[str]) -> None:
    """A :class:`MissingExtraError` naming the extra now, not after the training."""
    for name in names:
        module, extra, label = _TOOLS[name]
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(
                f"log_to {name!r} needs {label}: install mrv-ml[{extra}] "
                f"(pip install 'mrv-ml[{extra}]')")


def _tool(name: str) -> Any:
    return importlib.import_module(f"mrv_ml.run.log_to.{name}")


class RunLog:
    """The runs of the tools in ``names`` that one tracked run logs into."""

    def __init__(self, names: Iterable[str], say: Callable[[str], None]) -> None:
        self.names = tuple(names)
        self.targets: dict[str, RunTarget] = {}
        self._say = say
        check_installed(self.names)

    def use(self, name: str, target: RunTarget) -> None:
        """Log into ``target`` (a framework logger's run, which is not the tool's global
        active one: Lightning's ``MLFlowLogger``)."""
        self.targets[name] = target

    def capture(self) -> None:
        """Remember the runs active now (tracking starts)."""
        for name in self.names:
            if name not in self.targets:
                self._capture(name)

    def _capture(self, name: str) -> None:
        try:
            target = _tool(name).active_run()
        except Exception as e:  # noqa: BLE001 - a tracker must not stop the training
            self.warn(name, f"cannot ask for its active run: {type(e).__name__}: {e}")
            return
        if target is not None:
            self.targets[name] = target

    def publish(self, facts: RunFacts, files: list[Path]) -> None:
        """Log into each run; never raises (the record is stored, training is over)."""
        for name in self.names:
            if name not in self.targets:
                self._capture(name)  # a run opened after tracking started
            target = self.targets.get(name)
            label = _TOOLS[name][2]
            if target is None:
                if name not in _said_no_run:
                    _said_no_run.add(name)
                    self._say(f"ℹ️  no active {label} run: the MRV record was not logged "
                              f"to {label} (open one: {_HOW_TO_OPEN[name]})")
                continue
            try:
                target.log(facts, files)
            except Exception as e:  # noqa: BLE001 - the record and its anchoring stand
                self.warn(name, f"logging to {target.describe()} failed: "
                                 f"{type(e).__name__}: {e}")

    def warn(self, name: str, message: str) -> None:
        # one line, whatever the tool's message holds (a server's HTML page, a traceback)
        line = " ".join(f"{_TOOLS[name][2]}: {redact_text(message)}".split())[:1000]
        log.warning("%s", line)
        self._say(f"⚠️  {line}; the MRV record is unaffected")
