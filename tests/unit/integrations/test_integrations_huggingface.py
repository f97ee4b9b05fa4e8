"""Hugging Face transformers TrainerCallback on a tiny BERT built from a config (no download)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.torch, pytest.mark.huggingface]
require_optional(pytestmark)

from mrv_ml.integrations.huggingface import MRVCallback  # noqa: E402

# The model and data, also used by the subprocess test below.
SETUP = """
import torch
from transformers import (BertConfig, BertForSequenceClassification, Trainer,
                          TrainerCallback, TrainingArguments)

def tiny_trainer(callbacks, output_dir, epochs=2, fail_at_step=None):
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    gen = torch.Generator().manual_seed(0)
    data = [{"input_ids": torch.randint(0, 50, (8,), generator=gen),
             "attention_mask": torch.ones(8, dtype=torch.long),
             "labels": torch.tensor(i % 2)} for i in range(16)]

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if fail_at_step is not None and state.global_step >= fail_at_step:
                raise FloatingPointError(f"loss exploded at step {state.global_step}")

    args = TrainingArguments(output_dir=str(output_dir), num_train_epochs=epochs,
                             per_device_train_batch_size=4, logging_steps=1, report_to=[],
                             save_strategy="no", use_cpu=True, disable_tqdm=True)
    return Trainer(model=model, args=args, train_dataset=data,
                   callbacks=[*callbacks, Crash()])
"""
_namespace: dict[str, Any] = {}
exec(SETUP, _namespace)  # noqa: S102 - our own constant code
tiny_trainer = _namespace["tiny_trainer"]


def test_train_writes_anchored_record_with_trainer_facts(data_dir: Path, tmp_path: Path) -> None:
    callback = MRVCallback(experiment_name="bert_tiny", dataset_name="random tokens")
    tiny_trainer([callback], tmp_path / "out").train()
    tracker = callback.tracker
    assert tracker is not None
    record = json.loads(Path(tracker.record_path).read_text())
    assert record["experiment"]["model_name"] == "BertForSequenceClassification"
    assert record["experiment"]["framework"] == "Hugging Face Transformers"
    assert record["training"]["epochs"] == 2 and record["training"]["batch_size"] == 4
    details = record["training"]["details"]
    assert details["global_step"] == 8 and details["epochs_run"] == 2
    model = tiny_trainer([], tmp_path / "o2").model
    assert details["num_parameters"] == model.num_parameters()
    assert 0 < details["final_loss"] < 10
    assert record["outcome"]["status"] == "completed"
    assert tracker.tx_hash is not None and tracker.verify_on_blockchain()


def test_guard_records_a_crash_as_failed(data_dir: Path, tmp_path: Path) -> None:
    callback = MRVCallback(experiment_name="bert_crash", blockchain_enabled=False)
    trainer = tiny_trainer([callback], tmp_path / "out", fail_at_step=3)
    with pytest.raises(FloatingPointError), callback.guard():
        trainer.train()
    record = callback.tracker.record
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_type"] == "FloatingPointError"
    assert "loss exploded at step 3" in record["outcome"]["error_message"]


def test_unguarded_crash_is_recorded_when_the_process_exits(data_dir: Path,
                                                            tmp_path: Path) -> None:
    """No guard: the atexit safety net still writes the failed run's record."""
    script = tmp_path / "crash.py"
    script.write_text(SETUP + textwrap.dedent(f"""
        from mrv_ml.integrations.huggingface import MRVCallback
        cb = MRVCallback(experiment_name="bert_unguarded", blockchain_enabled=False)
        tiny_trainer([cb], {str(tmp_path / 'out')!r}, fail_at_step=2).train()
        """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=180, env={**os.environ, "MRV_DATA_DIR": str(data_dir)})
    assert result.returncode == 1 and "FloatingPointError" in result.stderr
    [path] = [p for p in data_dir.glob("MRV-*.json") if ".proof" not in p.name]
    record = json.loads(path.read_text())
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_type"] == "FloatingPointError"


def test_budget_stop_ends_training_at_an_epoch_boundary(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from transformers import TrainerCallback

    class Slow(TrainerCallback):  # a CPU kept busy, so that CodeCarbon measures mid-run
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            end = time.perf_counter() + 0.05
            while time.perf_counter() < end:
                pass

    monkeypatch.setenv("MRV_MEASURE_POWER_SECS", "0.5")
    callback = MRVCallback(experiment_name="hf_budget", blockchain_enabled=False,
                           heartbeat_s=0, budget_kwh=1e-9, on_budget="stop")
    trainer = tiny_trainer([callback, Slow()], tmp_path / "out", epochs=200)
    trainer.train()
    state = trainer.state
    assert state.global_step < 200 * 4 and state.global_step % 4 == 0  # whole epochs
    record = callback.tracker.record  # type: ignore[union-attr]
    assert record["outcome"]["status"] == "interrupted"
    assert record["outcome"]["stopped_by"] == "budget"
    assert record["budget"]["action_taken"] == (
        f"stopped at the end of epoch {state.global_step // 4}")
    # the closing line says how the run ended: not "completed"
    assert "⏹ run interrupted by its budget:" in capsys.readouterr().err
    forecast = record["energy_emissions"].get("forecast")
    # made only once CodeCarbon has its first average: on a loaded machine the budget may
    # stop the fit before (tests/unit/run/test_forecast.py makes one for certain)
    if forecast is not None:
        assert forecast["unit"] == "steps"
        assert forecast["total"] == 800
