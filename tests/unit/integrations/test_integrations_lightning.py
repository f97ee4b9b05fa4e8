"""PyTorch Lightning callback: one record per fit, with the trainer's own facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.torch, pytest.mark.lightning]
require_optional(pytestmark)

import lightning.pytorch as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from mrv_ml.integrations.lightning import MRVCallback  # noqa: E402


class TinyClassifier(L.LightningModule):
    def __init__(self, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.fail_at_epoch = fail_at_epoch

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.current_epoch == self.fail_at_epoch:
            raise RuntimeError(f"diverged in epoch {self.current_epoch}")
        x, y = batch
        loss = F.cross_entropy(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader[Any]:
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(16, 4, generator=gen), torch.randint(0, 2, (16,), generator=gen))
    return DataLoader(data, batch_size=4)


def _trainer(callback: MRVCallback, max_epochs: int = 2) -> Any:
    return L.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, callbacks=[callback])


def test_fit_writes_one_anchored_record_with_trainer_facts(data_dir: Path) -> None:
    callback = MRVCallback(experiment_name="lightning_tiny", dataset_name="random")
    _trainer(callback).fit(TinyClassifier(), _loader())
    tracker = callback.tracker
    assert tracker is not None and len(callback.trackers) == 1
    record = json.loads(Path(tracker.record_path).read_text())
    assert record == tracker.record
    assert record["experiment"]["name"] == "lightning_tiny"
    assert record["experiment"]["model_name"] == "TinyClassifier"
    assert record["experiment"]["dataset_name"] == "random"
    assert record["experiment"]["framework"] == "PyTorch Lightning"
    assert record["training"]["epochs"] == 2 and record["training"]["batch_size"] == 4
    details = record["training"]["details"]
    assert details["num_parameters"] == 10 and details["global_step"] == 8
    assert details["model_class"].endswith("TinyClassifier")
    assert 0 < details["final_metrics"]["train_loss"] < 10
    assert record["outcome"]["status"] == "completed"
    assert tracker.tx_hash is not None
    assert tracker.verify_on_blockchain()
    assert len(list(data_dir.glob("MRV-*.proof.json"))) == 1


def test_crash_mid_fit_records_failed_run_and_propagates(data_dir: Path) -> None:
    callback = MRVCallback(experiment_name="lightning_crash", blockchain_enabled=False)
    with pytest.raises(RuntimeError, match="diverged in epoch 1"):
        _trainer(callback, max_epochs=3).fit(TinyClassifier(fail_at_epoch=1), _loader())
    tracker = callback.tracker
    assert tracker is not None
    record = tracker.record
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_type"] == "RuntimeError"
    assert record["training"]["epochs"] == 1  # one whole epoch ran before the crash
    assert Path(tracker.record_path).is_file()


def test_two_fits_two_records(data_dir: Path) -> None:
    callback = MRVCallback(experiment_name="lightning_twice", blockchain_enabled=False)
    model = TinyClassifier()
    _trainer(callback, max_epochs=1).fit(model, _loader())
    _trainer(callback, max_epochs=1).fit(model, _loader())
    ids = {t.mrv_id for t in callback.trackers}
    assert len(ids) == 2
    assert len([p for p in data_dir.glob("MRV-*.json") if ".proof" not in p.name]) == 2


class SlowClassifier(TinyClassifier):
    """Each step keeps a CPU busy for a while, so that CodeCarbon measures mid-fit."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        import time

        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            pass
        return super().training_step(batch, batch_idx)


def test_budget_stop_ends_the_fit_at_an_epoch_boundary(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    callback = MRVCallback(experiment_name="lightning_budget", blockchain_enabled=False,
                           heartbeat_s=0, budget_kwh=1e-9, on_budget="stop")
    trainer = _trainer(callback, max_epochs=200)
    trainer.fit(SlowClassifier(), _loader())
    tracker = callback.tracker
    assert tracker is not None and tracker.record is not None
    record = tracker.record
    ran = int(trainer.current_epoch)
    assert 1 <= ran < 200  # stopped well before max_epochs
    assert trainer.global_step == ran * 4  # whole epochs only: 4 batches each
    assert record["training"]["epochs"] == ran
    assert record["outcome"]["status"] == "interrupted"
    assert record["outcome"]["stopped_by"] == "budget"
    assert record["budget"]["action_taken"] == f"stopped at the end of epoch {ran}"
    assert record["budget"]["stopped"] and record["budget"]["exceeded"]
    # the forecast, made after the epochs already run, is kept beside the actual figures
    assert record["energy_emissions"]["forecast"]["unit"] == "epochs"
    assert record["energy_emissions"]["forecast"]["total"] == 200
    assert "MRV budget crossed" in capsys.readouterr().err


def test_bad_budget_fails_when_the_callback_is_made(data_dir: Path) -> None:
    from mrv_ml.errors import ConfigError

    with pytest.raises(ConfigError, match="budget_kwh must be a positive number"):
        MRVCallback(experiment_name="bad", budget_kwh=-1)
    with pytest.raises(ConfigError, match="on_budget must be one of warn, stop"):
        MRVCallback(experiment_name="bad", budget_kwh=1, on_budget="halt")
