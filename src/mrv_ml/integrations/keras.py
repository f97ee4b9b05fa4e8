"""Keras 3: ``MRVCallback`` writes one MRV record per ``model.fit``.

    from mrv_ml.integrations.keras import MRVCallback
    mrv = MRVCallback(experiment_name="mnist_mlp", batch_size=64)
    with mrv.guard():      # optional: a crash is recorded as a failed run
        model.fit(x, y, epochs=5, batch_size=64, callbacks=[mrv])

Any Keras 3 backend works (``KERAS_BACKEND=torch``, ``jax`` or ``tensorflow``). Keras
callbacks have no exception hook, so a crash inside ``fit`` is recorded by :meth:`guard` or,
failing that, when the interpreter exits. The record gets the epochs actually run, the model
class, its parameter count and the last epoch's logs (loss and metrics). Keras does not tell
callbacks the batch size: pass ``batch_size=`` to the callback to record it.
"""

from __future__ import annotations

import contextlib
import importlib.util
from typing import Any

from mrv_ml.errors import MissingExtraError
from mrv_ml.extras import require
from mrv_ml.integrations import FitRun, FitRunAccessors, plain_metrics, plain_number

if importlib.util.find_spec("keras") is not None:
    try:
        import keras as _keras
    except ImportError as e:  # installed, but its backend (TensorFlow by default) is not
        raise MissingExtraError(
            f"keras is installed but its backend failed to import ({e}); set KERAS_BACKEND="
            "torch or jax (installed), or install tensorflow") from e
else:
    _keras = require("keras", "keras")

__all__ = ["MRVCallback"]


class MRVCallback(FitRunAccessors, _keras.callbacks.Callback):  # type: ignore[misc]
    """One MRV record per fit; ``tracker_kwargs`` go to :class:`~mrv_ml.run.tracker.MRVTracker`.
    ``model_name`` defaults to the model's class name (or its ``name`` for functional models).
    ``log_to=("mlflow", "wandb")`` puts the record into that tool's active run.
    After each epoch the run is forecast and its budget checked; with ``on_budget="stop"``
    a crossed budget ends ``fit`` there (``model.stop_training``)."""

    def __init__(self, experiment_name: str, **tracker_kwargs: Any) -> None:
        super().__init__()
        self._run = FitRun(experiment_name, f"Keras ({_keras.backend.backend()})",
                           tracker_kwargs, facts_so_far=self._facts)
        self._epochs_run = 0
        self._last_logs: dict[str, Any] = {}

    def _model_name(self) -> str | None:
        model = getattr(self, "model", None)
        if model is None:
            return None
        cls = type(model).__name__
        # Sequential/Functional say little; the user-given name says more
        return str(model.name) if cls in ("Sequential", "Functional") and model.name else cls

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._epochs_run = 0
        self._last_logs = {}
        params = self.params or {}
        epochs = params.get("epochs")
        self._run.begin(model_name=self._model_name(),
                        epochs=epochs if isinstance(epochs, int) else None)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epochs_run = epoch + 1
        self._last_logs = dict(logs or {})
        epochs = (self.params or {}).get("epochs")
        if self._run.epoch_done(epoch + 1, epochs if isinstance(epochs, int) else None):
            self.model.stop_training = True  # Keras ends fit() after this epoch

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if logs and not self._last_logs:
            self._last_logs = dict(logs)
        self._run.finish(self._facts())

    def _facts(self) -> dict[str, Any]:
        model = getattr(self, "model", None)
        params = self.params or {}
        num_params = None
        if model is not None:
            with contextlib.suppress(Exception):  # an unbuilt model has no count
                num_params = int(model.count_params())
        metrics = plain_metrics(self._last_logs)
        return {
            "epochs": self._epochs_run,
            "planned_epochs": plain_number(params.get("epochs")),
            "steps_per_epoch": plain_number(params.get("steps")),
            "model_class": (f"{type(model).__module__}.{type(model).__qualname__}"
                            if model is not None else None),
            "num_parameters": num_params,
            "final_loss": metrics.get("loss"),
            "final_metrics": metrics or None,
            "keras_backend": _keras.backend.backend(),
        }
