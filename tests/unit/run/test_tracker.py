"""MRVTracker end to end with the real CodeCarbon (chain anchoring is tested in test_anchor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import StoreError
from mrv_ml.measure import meter as measurement
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.schema import load_record_file
from mrv_ml.storage.store import RecordStore
from mrv_wrapper import MRVTracker


def test_context_manager_writes_a_valid_record_with_the_seed_arguments(data_dir: Path) -> None:
    with MRVTracker("resnet18_cifar10_baseline", "ResNet18", "CIFAR-10", 90, 128, "PyTorch",
                    blockchain_enabled=False, quiet=True) as tracker:
        sum(range(100_000))
    assert tracker.record_path is not None and tracker.record_path.parent == data_dir
    on_disk = load_record_file(tracker.record_path)
    assert on_disk == tracker.record
    assert tracker.mrv_id == on_disk["mrv_id"]
    assert tracker.mrv_hash == compute_hash(on_disk)
    assert on_disk["experiment"] == {
        "name": "resnet18_cifar10_baseline", "model_name": "ResNet18",
        "dataset_name": "CIFAR-10", "framework": "PyTorch", "description": None, "tags": {}}
    assert on_disk["training"]["epochs"] == 90 and on_disk["training"]["batch_size"] == 128
    assert on_disk["outcome"]["status"] == "completed"
    assert on_disk["energy_emissions"]["measurement_status"] == "measured"
    assert on_disk["software"]["codecarbon"]
    # The record never holds its own hash or anything about anchoring.
    text = tracker.record_path.read_text(encoding="utf-8")
    assert tracker.mrv_hash not in text and "tx_hash" not in text
    assert tracker.tx_hash is None and tracker.proof is None


def test_start_stop_and_storage_dir_argument(tmp_path: Path) -> None:
    store_dir = tmp_path / "elsewhere"
    tracker = MRVTracker("manual", storage_dir=store_dir, blockchain_enabled=False, quiet=True)
    tracker.start()
    record = tracker.stop()
    assert tracker.record_path == store_dir / f"{record['mrv_id']}.json"
    assert RecordStore(store_dir).load(record["mrv_id"]) == record
    assert tracker.stop() is record  # idempotent
    with pytest.raises(RuntimeError):
        tracker.start()


def test_exception_in_block_gives_failed_record_and_propagates_unchanged(data_dir: Path) -> None:
    error = ValueError("loss is nan at epoch 3")
    with pytest.raises(ValueError) as info, \
            MRVTracker("crashy", blockchain_enabled=False, quiet=True) as tracker:
        raise error
    assert info.value is error
    record = load_record_file(tracker.record_path)  # type: ignore[arg-type]
    assert record["outcome"] == {"status": "failed", "error_type": "ValueError",
                                 "error_message": "loss is nan at epoch 3", "exit_code": None}


def test_ctrl_c_gives_interrupted_record_and_propagates() -> None:
    with pytest.raises(KeyboardInterrupt), \
            MRVTracker("interrupted", blockchain_enabled=False, quiet=True) as tracker:
        raise KeyboardInterrupt
    assert tracker.record is not None
    assert tracker.record["outcome"]["status"] == "interrupted"
    assert tracker.record["outcome"]["error_type"] == "KeyboardInterrupt"


def test_decorator_tracks_each_call_and_returns_the_result() -> None:
    tracker = MRVTracker("decorated", blockchain_enabled=False, quiet=True)

    @tracker
    def train(steps: int) -> int:
        return sum(range(steps))

    assert train(10) == 45
    first = tracker.mrv_id
    assert train(5) == 10
    assert tracker.mrv_id != first and tracker.record_path is not None

    @MRVTracker("decorated-fail", blockchain_enabled=False, quiet=True)
    def broken() -> None:
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        broken()


def test_update_training_and_hooks_reach_the_record() -> None:
    with MRVTracker("facts", blockchain_enabled=False, quiet=True) as tracker:
        tracker.update_training(epochs=3, final_loss=0.25, steps=120)
        tracker.add_record_hook(lambda r: r["experiment"]["tags"].update(hooked=True))
    record = tracker.record
    assert record is not None
    assert record["training"]["epochs"] == 3
    assert record["training"]["details"] == {"final_loss": 0.25, "steps": 120}
    assert record["experiment"]["tags"] == {"hooked": True}


def test_measurement_failure_still_completes_the_run_without_inventing_numbers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: measurement.EnergyMeter) -> None:
        raise RuntimeError("RAPL exploded")

    monkeypatch.setattr(measurement.EnergyMeter, "_make_tracker", broken)
    with MRVTracker("no-measurement", blockchain_enabled=False, quiet=True) as tracker:
        pass
    energy = tracker.record["energy_emissions"]  # type: ignore[index]
    assert tracker.record["outcome"]["status"] == "completed"  # type: ignore[index]
    assert energy["measurement_status"] == "failed"
    assert "RAPL exploded" in energy["measurement_error"]
    assert energy["energy_kwh"] is None and energy["co2_kg"] is None


def test_unwritable_store_raises_store_error_and_keeps_existing_records(tmp_path: Path) -> None:
    good = tmp_path / "good"
    with MRVTracker("kept", storage_dir=good, blockchain_enabled=False, quiet=True) as first:
        pass
    before = first.record_path.read_bytes()  # type: ignore[union-attr]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store should be", encoding="utf-8")
    with pytest.raises(StoreError), \
            MRVTracker("lost", storage_dir=blocker / "sub", blockchain_enabled=False, quiet=True):
        pass
    assert first.record_path.read_bytes() == before  # type: ignore[union-attr]


def test_user_exception_wins_over_a_store_failure(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ZeroDivisionError), \
            MRVTracker("double-fault", storage_dir=blocker / "sub", blockchain_enabled=False):
        1 / 0  # noqa: B018
    assert "could not be written" in capsys.readouterr().err


def test_console_lines_go_to_stderr_and_can_be_silenced(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with MRVTracker("chatty", blockchain_enabled=False) as tracker:
        pass
    out, err = capsys.readouterr()
    assert out == ""
    assert "MRV tracking started" in err and str(tracker.mrv_id) in err
    monkeypatch.setenv("MRV_QUIET", "1")
    with MRVTracker("silent", blockchain_enabled=False):
        pass
    assert capsys.readouterr() == ("", "")


def test_records_are_sorted_indented_utf8(data_dir: Path) -> None:
    with MRVTracker("Überprüfung 日本", blockchain_enabled=False, quiet=True) as tracker:
        pass
    text = tracker.record_path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "Überprüfung 日本" in text
    assert json.loads(text) == tracker.record
    assert text.startswith('{\n  "distributed"')  # sorted keys, 2-space indent


def test_auto_anchor_on_the_embedded_local_chain_after_the_record_is_stored() -> None:
    with MRVTracker("anchored", quiet=True) as tracker:
        pass
    assert tracker.anchor_error is None
    assert tracker.tx_hash is not None and tracker.tx_hash.startswith("0x")
    assert tracker.proof is not None and tracker.proof.status == "anchored"
    assert tracker.proof.record_digest == tracker.mrv_hash
    assert tracker.record_path is not None
    assert compute_hash(load_record_file(tracker.record_path)) == tracker.mrv_hash


def test_batch_mode_leaves_the_record_pending_with_a_reason() -> None:
    with MRVTracker("batched", anchor_mode="batch", quiet=True) as tracker:
        pass
    assert tracker.tx_hash is None
    assert tracker.proof is not None and tracker.proof.status == "pending"
    assert "batch" in (tracker.proof.pending_reason or "")


def test_timestamps_agree_with_the_measured_duration_even_for_a_very_short_run() -> None:
    from datetime import datetime

    with MRVTracker("blink", blockchain_enabled=False, quiet=True) as tracker:
        pass  # far shorter than CodeCarbon's start-up, which stop() then waits for
    record = tracker.record
    assert record is not None
    stamps = record["timestamps"]
    elapsed = (datetime.fromisoformat(stamps["end_time"].replace("Z", "+00:00"))
               - datetime.fromisoformat(stamps["start_time"].replace("Z", "+00:00")))
    assert abs(elapsed.total_seconds() - record["energy_emissions"]["duration_seconds"]) < 0.1


@pytest.mark.parametrize(("facts", "field"), [
    ({"final_loss": float("nan")}, "training.details.final_loss"),
    ({"best_epoch_losses": [0.5, float("inf")]}, "training.details.best_epoch_losses[1]"),
    ({"labels": {"a", "b"}}, "training.details.labels"),
    ({"seed": 2**60}, "training.details.seed"),
    ({"batch_size": 0}, "training.batch_size"),
    ({"note": "diverged \ud800"}, "training.details.note"),
])
def test_a_bad_value_never_loses_the_run(facts: dict[str, Any], field: str) -> None:
    # A diverged loss is common: the run happened and its measurement must be kept.
    with MRVTracker("bad-value", blockchain_enabled=False, quiet=True) as tracker:
        tracker.update_training(**facts)
    assert tracker.record_path is not None and tracker.record_path.exists()
    stored = load_record_file(tracker.record_path)
    notes = stored["training"]["details"]["mrv_dropped_values"]
    assert any(n.startswith(field + ":") for n in notes), notes
    assert stored["energy_emissions"]["measurement_status"] in ("measured", "failed")
    assert compute_hash(stored) == tracker.mrv_hash
