"""MLflow: the MRV record's facts and files in the active MLflow run.

    import mlflow
    with mlflow.start_run():
        with MRVTracker("resnet18_cifar10", log_to=("mlflow",)):
            train()

Tags ``mrv.id``, ``mrv.fingerprint``, ``mrv.trust``, ``mrv.anchor_state`` (and
``mrv.tx_hash``, ``mrv.chain_id`` once anchored, ``mrv.pending_reason`` while pending);
metrics ``mrv.energy_kwh``, ``mrv.co2_kg``, ``mrv.duration_s``; the record and its proof
sidecar as artifacts under ``mrv/``. Tags rather than params: params are the run's inputs
and cannot change, and a run may hold several fits. Needs ``pip install 'mrv-ml[mlflow]'``
(``mlflow-skinny`` is enough: the tracking client and its stores).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mrv_ml.extras import require
from mrv_ml.run.log_to.dispatch import RunFacts

_mlflow = require("mlflow", "mlflow")

__all__ = ["RunTarget", "active_run"]

ARTIFACT_DIR = "mrv"


class RunTarget:
    """One MLflow run, by id, through a client of its tracking server: logging still works
    once a framework's callback has ended the run (transformers ends it before ours runs)."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def describe(self) -> str:
        return f"MLflow run {self.run_id}"

    def log(self, facts: RunFacts, files: list[Path]) -> None:
        from mlflow.entities import Metric, RunTag

        now_ms = int(time.time() * 1000)
        # one request for the facts: a server that is down costs one round of retries
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, now_ms, 0) for k, v in facts.metrics().items()],
            tags=[RunTag(k, v) for k, v in facts.tags().items()])
        for path in files:
            self.client.log_artifact(self.run_id, str(path), artifact_path=ARTIFACT_DIR)


def active_run() -> RunTarget | None:
    """The run ``mlflow.active_run()`` names in this thread, else the one ``MLFLOW_RUN_ID``
    names (MLflow's own way to hand a run to a process: ``mlflow run``, ``mrv run``'s
    child); ``None`` when there is neither."""
    run = _mlflow.active_run()
    run_id = run.info.run_id if run is not None else os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return None
    from mlflow.tracking import MlflowClient

    return RunTarget(MlflowClient(_mlflow.get_tracking_uri()), run_id)
