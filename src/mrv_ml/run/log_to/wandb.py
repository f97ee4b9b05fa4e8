"""Weights & Biases: the MRV record's facts and files in the active W&B run.

    import wandb
    with wandb.init(project="cifar"):
        with MRVTracker("resnet18_cifar10", log_to=("wandb",)):
            train()

The facts go into the run's summary under ``mrv/`` (W&B groups keys by their prefix):
``mrv/id``, ``mrv/fingerprint``, ``mrv/trust``, ``mrv/anchor_state``, ``mrv/energy_kwh``,
``mrv/co2_kg``, ``mrv/duration_s``...; the record and its proof sidecar as one artifact of
type ``mrv-record`` named after the MRV ID. Offline mode (``WANDB_MODE=offline``) works the
same; ``wandb sync`` uploads it later. Needs ``pip install 'mrv-ml[wandb]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrv_ml.errors import MRVStateError
from mrv_ml.extras import require
from mrv_ml.run.log_to.dispatch import RunFacts

_wandb = require("wandb", "wandb")

__all__ = ["ARTIFACT_TYPE", "RunTarget", "active_run"]

ARTIFACT_TYPE = "mrv-record"


def summary_keys(facts: RunFacts) -> dict[str, Any]:
    """``mrv.energy_kwh`` -> ``mrv/energy_kwh``: the facts as W&B names them."""
    values: dict[str, Any] = {**facts.tags(), **facts.metrics()}
    return {"mrv/" + key.removeprefix("mrv."): value for key, value in values.items()}


class RunTarget:
    def __init__(self, run: Any) -> None:
        self.run = run

    def describe(self) -> str:
        return f"W&B run {self.run.id}"

    def log(self, facts: RunFacts, files: list[Path]) -> None:
        if _wandb.run is not self.run:  # finished (or replaced) since tracking started
            raise MRVStateError("the run was finished before the MRV record was written")
        values = summary_keys(facts)
        self.run.summary.update(values)
        artifact = _wandb.Artifact(facts.mrv_id, type=ARTIFACT_TYPE, metadata=values)
        for path in files:
            artifact.add_file(str(path), name=path.name)
        self.run.log_artifact(artifact)


def active_run() -> RunTarget | None:
    """``wandb.run``, the run ``wandb.init`` opened in this process; ``None`` when none is."""
    return RunTarget(_wandb.run) if _wandb.run is not None else None
