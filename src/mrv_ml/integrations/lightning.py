"""PyTorch Lightning: ``MRVCallback`` writes one MRV record per ``trainer.fit``.

    from mrv_ml.integrations.lightning import MRVCallback
    trainer = L.Trainer(max_epochs=10, callbacks=[MRVCallback(experiment_name="mnist_cnn")])
    trainer.fit(model, datamodule=dm)

Tracking starts when the fit starts and stops when it ends or raises (the record is then
marked failed, or interrupted for Ctrl-C). The record gets the epochs actually run, the batch
size when the dataloader exposes it, the model class, its parameter count and the last logged
metrics (``trainer.callback_metrics``). Only global rank 0 tracks under multi-process
strategies; for a per-rank breakdown use :mod:`mrv_ml.integrations.distributed`.
"""

from __future__ import annotations

from typing import Any

from mrv_ml.extras import require
from mrv_ml.integrations import (
    FitRun,
    FitRunAccessors,
    count_parameters,
    plain_metrics,
    plain_number,
)

_L = require("lightning.pytorch", "lightning")

__all__ = ["MRVCallback"]


def _batch_size(trainer: Any, pl_module: Any) -> int | None:
    """The training batch size if the dataloader or hyper-parameters say it; else ``None``."""
    loaders = getattr(getattr(trainer, "fit_loop", None), "_combined_loader", None)
    candidates: list[Any] = []
    if loaders is not None:
        candidates.extend(getattr(loaders, "flattened", []) or [])
    with_loader = getattr(trainer, "train_dataloader", None)
    if with_loader is not None and not callable(with_loader):
        candidates.append(with_loader)
    for loader in candidates:
        size = getattr(loader, "batch_size", None)
        if isinstance(size, int) and size > 0:
            return size
    for source in (getattr(pl_module, "hparams", {}),
                   getattr(getattr(trainer, "datamodule", None), "hparams", {})):
        size = source.get("batch_size") if hasattr(source, "get") else None
        if isinstance(size, int) and size > 0:
            return size
    size = getattr(getattr(trainer, "datamodule", None), "batch_size", None)
    return size if isinstance(size, int) and size > 0 else None


def _use_mlflow_logger(tracker: Any, trainer: Any) -> None:
    """Lightning's ``MLFlowLogger`` logs through its own client, not into MLflow's active run:
    its run is the one this fit's record belongs in."""
    if tracker.run_log is None or "mlflow" not in tracker.run_log.names:
        return
    for logger in trainer.loggers:
        if isinstance(logger, _L.loggers.MLFlowLogger):
            from mrv_ml.run.log_to.mlflow import RunTarget

            try:
                target = RunTarget(logger.experiment, logger.run_id)
            except Exception as e:  # noqa: BLE001 - the logger's own failure: not ours
                tracker.run_log.warn("mlflow", f"cannot reach MLFlowLogger's run: {e}")
                return
            tracker.run_log.use("mlflow", target)
            return


class MRVCallback(FitRunAccessors, _L.Callback):  # type: ignore[misc,name-defined]
    """One MRV record per fit; ``tracker_kwargs`` go to :class:`~mrv_ml.run.tracker.MRVTracker`
    (``model_name``, ``dataset_name``, ``storage_dir``, ``blockchain_enabled``, ``settings``,
    ``tags``, ``log_to=("mlflow", "wandb")``...). ``model_name`` defaults to the
    LightningModule's class name. With ``log_to`` the record goes into the run of the
    trainer's ``MLFlowLogger`` (or ``WandbLogger``: that is ``wandb.run``) if it has one, else
    into MLflow's active run. After each epoch the run is forecast and its budget checked
    (``budget_kwh``, ``budget_co2_kg``, ``on_budget``); with ``on_budget="stop"`` a crossed
    budget ends the fit at that epoch's end (``trainer.should_stop``)."""

    def __init__(self, experiment_name: str, **tracker_kwargs: Any) -> None:
        super().__init__()
        self._run = FitRun(experiment_name, "PyTorch Lightning", tracker_kwargs)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        tracker = self._run.begin(model_name=type(pl_module).__name__, epochs=max_epochs)
        _use_mlflow_logger(tracker, trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or not self._run.active:
            return
        epoch = int(trainer.current_epoch) + 1  # current_epoch is 0-based until the epoch ends
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            done, total, unit = epoch, trainer.max_epochs, "epochs"
        else:  # max_epochs=-1 with max_steps: steps are the work
            done, total, unit = int(trainer.global_step), (trainer.max_steps
                                                           if trainer.max_steps > 0 else None), "steps"
        if self._run.epoch_done(done, total, unit=unit, epoch=epoch):
            trainer.should_stop = True  # Lightning ends the fit after this epoch (min_epochs
            # permitting), on every rank

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._run.finish(self._facts(trainer, pl_module))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._run.finish(self._facts(trainer, pl_module), exc=exception)

    def _facts(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        # current_epoch counts completed epochs (it is max_epochs after a full fit)
        return {
            "epochs": int(trainer.current_epoch),
            "batch_size": _batch_size(trainer, pl_module),
            "model_class": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}",
            "num_parameters": count_parameters(pl_module),
            "max_epochs": trainer.max_epochs,
            "global_step": plain_number(trainer.global_step),
            "final_metrics": plain_metrics(trainer.callback_metrics) or None,
            "world_size": plain_number(trainer.world_size),
        }
