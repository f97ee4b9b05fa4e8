"""Keras 3 callback, on the torch backend (TensorFlow is not installed here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.torch, pytest.mark.keras]
require_optional(pytestmark)

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
import keras  # noqa: E402
import numpy as np  # noqa: E402

from mrv_ml.integrations.keras import MRVCallback  # noqa: E402


def _model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="tiny_mlp")
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    return rng.random((16, 4), dtype=np.float32), rng.integers(0, 2, 16)


class _CrashAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch + 1 >= self.epoch:
            raise ArithmeticError(f"stopped after epoch {epoch + 1}")


def test_fit_writes_anchored_record_with_keras_facts(data_dir: Path) -> None:
    callback = MRVCallback(experiment_name="keras_tiny", batch_size=4)
    x, y = _data()
    _model().fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[callback])
    tracker = callback.tracker
    assert tracker is not None
    record = json.loads(Path(tracker.record_path).read_text())
    assert record["experiment"]["model_name"] == "tiny_mlp"
    assert record["experiment"]["framework"] == "Keras (torch)"
    assert record["training"]["epochs"] == 2 and record["training"]["batch_size"] == 4
    details = record["training"]["details"]
    assert details["num_parameters"] == 10 and details["steps_per_epoch"] == 4
    assert 0 < details["final_loss"] < 10 and "accuracy" in details["final_metrics"]
    assert record["outcome"]["status"] == "completed"
    assert tracker.tx_hash is not None and tracker.verify_on_blockchain()


def test_crash_inside_fit_is_recorded_by_guard(data_dir: Path) -> None:
    callback = MRVCallback(experiment_name="keras_crash", blockchain_enabled=False)
    x, y = _data()
    with pytest.raises(ArithmeticError), callback.guard():
        _model().fit(x, y, epochs=5, batch_size=4, verbose=0,
                     callbacks=[callback, _CrashAfter(2)])
    record = callback.tracker.record
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_type"] == "ArithmeticError"
    assert record["training"]["epochs"] == 2  # epochs actually run, not the 5 planned
    assert record["training"]["details"]["planned_epochs"] == 5


class _Slow(keras.callbacks.Callback):
    """Keeps a CPU busy after each batch, so that CodeCarbon measures mid-fit."""

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        import time

        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            pass


def test_budget_stop_ends_fit_at_an_epoch_boundary(data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    callback = MRVCallback(experiment_name="keras_budget", blockchain_enabled=False,
                           heartbeat_s=0, budget_kwh=1e-9, on_budget="stop")
    x, y = _data()
    history = _model().fit(x, y, epochs=200, batch_size=4, verbose=0,
                           callbacks=[_Slow(), callback])
    ran = len(history.history["loss"])
    assert 1 <= ran < 200
    record = callback.tracker.record  # type: ignore[union-attr]
    assert record["training"]["epochs"] == ran
    assert record["outcome"]["status"] == "interrupted"
    assert record["outcome"]["stopped_by"] == "budget"
    assert record["budget"]["action_taken"] == f"stopped at the end of epoch {ran}"
    assert record["energy_emissions"]["forecast"]["total"] == 200
