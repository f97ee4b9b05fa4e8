"""Hugging Face ``transformers``: ``MRVCallback`` writes one MRV record per ``trainer.train()``.

    from mrv_ml.integrations.huggingface import MRVCallback
    mrv = MRVCallback(experiment_name="bert_sst2", dataset_name="SST-2")
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[mrv])
    with mrv.guard():      # optional: a crash is recorded as a failed run
        trainer.train()

``TrainerCallback`` has no exception hook, so a crash inside ``trainer.train()`` is recorded
by :meth:`MRVCallback.guard` or, failing that, when the interpreter exits. The record gets the
epochs run (``state.epoch``), global steps, the effective train batch size, the model class,
its parameter count and the final training loss. Only the main process tracks.
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

_transformers = require("transformers", "huggingface")

__all__ = ["MRVCallback"]


def _final_loss(log_history: list[dict[str, Any]]) -> tuple[float | None, dict[str, float | int]]:
    """The last training loss and the last evaluation metrics in ``state.log_history``."""
    loss: float | None = None
    evaluation: dict[str, float | int] = {}
    for entry in log_history:
        for key in ("train_loss", "loss"):
            number = plain_number(entry.get(key))
            if number is not None:
                loss = float(number)
                break
        evaluation.update({k: v for k, v in plain_metrics(entry).items() if k.startswith("eval_")})
    return loss, evaluation


class MRVCallback(FitRunAccessors, _transformers.TrainerCallback):  # type: ignore[misc,name-defined]
    """One MRV record per training run; ``tracker_kwargs`` go to
    :class:`~mrv_ml.run.tracker.MRVTracker`. ``model_name`` defaults to the model's class name.
    ``log_to=("mlflow", "wandb")`` puts the record into the run ``report_to`` opened.
    After each epoch the run is forecast and its budget checked; with ``on_budget="stop"``
    a crossed budget ends training there (``control.should_training_stop``)."""

    def __init__(self, experiment_name: str, **tracker_kwargs: Any) -> None:
        self._run = FitRun(experiment_name, "Hugging Face Transformers", tracker_kwargs,
                           facts_so_far=self._facts_so_far)
        # the trainer mutates args/state in place: holding them gives live values
        self._seen: tuple[Any, Any, Any] | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        model = kwargs.get("model")
        self._seen = (args, state, model)
        epochs = args.num_train_epochs if args.max_steps is None or args.max_steps <= 0 else None
        self._run.begin(
            model_name=type(model).__name__ if model is not None else None,
            epochs=int(epochs) if epochs is not None and float(epochs).is_integer() else None,
            batch_size=_effective_batch_size(args))

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._run.active:
            return
        # the work is counted in optimizer steps (max_steps is known, epochs may be partial);
        # a stop takes effect at this epoch's end
        total = state.max_steps if state.max_steps and state.max_steps > 0 else None
        epoch = plain_number(state.epoch)
        if self._run.epoch_done(state.global_step, total, unit="steps",
                                epoch=round(epoch) if epoch is not None else None):
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._run.active:
            return
        self._run.finish(_facts(args, state, kwargs.get("model")))

    def _facts_so_far(self) -> dict[str, Any]:
        return _facts(*self._seen) if self._seen is not None else {}


def _facts(args: Any, state: Any, model: Any) -> dict[str, Any]:
    """What the trainer knows now: steps, epochs run, batch size, model, last loss."""
    loss, evaluation = _final_loss(list(state.log_history or []))
    epoch = plain_number(state.epoch)
    return {
        # whole epochs run; state.epoch is fractional when max_steps stops mid-epoch
        "epochs": int(epoch) if epoch is not None else None,
        "epochs_run": epoch,
        "batch_size": _effective_batch_size(args),
        "global_step": plain_number(state.global_step),
        "max_steps": plain_number(state.max_steps),
        "per_device_train_batch_size": plain_number(args.per_device_train_batch_size),
        "gradient_accumulation_steps": plain_number(args.gradient_accumulation_steps),
        "world_size": plain_number(args.world_size),
        "model_class": (f"{type(model).__module__}.{type(model).__qualname__}"
                        if model is not None else None),
        "num_parameters": count_parameters(model),
        "final_loss": loss,
        "final_metrics": evaluation or None,
    }


def _effective_batch_size(args: Any) -> int | None:
    """Samples per optimizer step: per-device size x devices x gradient accumulation."""
    try:
        return int(args.train_batch_size * args.gradient_accumulation_steps * args.world_size)
    except (AttributeError, TypeError, ValueError):
        return None
