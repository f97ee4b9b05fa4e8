"""MRVTracker under a launcher, in one process: each rank's tracker plays its part (the
ranks' environments are set here; tests/cluster runs the real launchers)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from mrv_ml.record.schema import load_record_file
from mrv_ml.run import job_place
from mrv_ml.run.tracker import MRVTracker


def _srun(monkeypatch: pytest.MonkeyPatch, rank: int, local: int) -> None:
    for name, value in {"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_PROCID": str(rank),
                        "SLURM_LOCALID": str(local), "SLURM_STEP_NUM_TASKS": "3",
                        "SLURMD_NODENAME": "n1"}.items():
        monkeypatch.setenv(name, value)


def _tracker(store: Path, **kwargs: object) -> MRVTracker:
    return MRVTracker("job", blockchain_enabled=False, quiet=True, storage_dir=store,
                      **kwargs)  # type: ignore[arg-type]


def test_the_ranks_hand_their_parts_to_rank_0_which_writes_one_record(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _srun(monkeypatch, 2, 1)
    reporter = _tracker(store).start()
    assert reporter._meter is None  # its node is measured by its first process
    part = reporter.stop()
    assert reporter.mrv_id is None and reporter.record_path is None
    assert (part["rank"], part["role"], part["energy_emissions"]) == (2, "reporter", None)
    assert not list(store.glob("MRV-*.json"))

    _srun(monkeypatch, 1, 0)
    with _tracker(store) as measurer:
        pass
    assert measurer.part is not None and measurer.part["role"] == "measurer"
    assert measurer.part["energy_emissions"]["measurement_status"] == "measured"

    _srun(monkeypatch, 0, 0)
    with _tracker(store, gather_timeout_s=5) as writer:
        pass
    record = load_record_file(writer.record_path)  # type: ignore[arg-type]
    assert [r["role"] for r in record["distributed"]["ranks"]] == [
        "writer", "measurer", "reporter"]
    assert record["distributed"]["missing_ranks"] == []
    assert record["outcome"]["status"] == "completed"
    assert not (store / ".jobs").exists()


def test_a_failed_rank_fails_the_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _srun(monkeypatch, 2, 1)
    with pytest.raises(ValueError), _tracker(store):
        raise ValueError("loss is nan")
    _srun(monkeypatch, 0, 0)
    with _tracker(store, gather_timeout_s=0.5) as writer:
        pass
    record = writer.record
    assert record is not None
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_message"].startswith("rank 2: loss is nan")
    assert record["distributed"]["missing_ranks"] == [1]


def test_rank_0_alone_writes_its_own_record_and_says_what_it_measured(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(job_place, "JOIN_GRACE_S", 0.3)
    _srun(monkeypatch, 0, 0)
    with _tracker(tmp_path / "store") as writer:  # `if rank == 0: MRVTracker(...)`
        pass
    record = writer.record
    assert record is not None and record["distributed"] is None
    assert record["outcome"]["status"] == "completed"
    assert any("no other rank tracked, so this record measures node n1 only" in note
               for note in record["energy_emissions"]["notes"])


def test_job_false_makes_every_process_its_own_run(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _srun(monkeypatch, 2, 1)
    with _tracker(tmp_path / "store", job=False) as alone:
        pass
    assert alone.mrv_id is not None and alone.job_place is None


def test_processes_of_a_batch_script_elect_the_first_on_the_node(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # `mrv run a & mrv run b & wait` in a batch script: a job, no launcher's ranks
    monkeypatch.setenv("SLURM_JOB_ID", "9")
    monkeypatch.setenv("SLURMD_NODENAME", "n1")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "node-tmp"))
    (tmp_path / "node-tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    store = tmp_path / "store"
    first = _tracker(store).start()
    second = _tracker(store).start()  # joins while the first runs
    assert second._meter is None
    part = second.stop()
    assert (part["rank"], part["role"]) == (1, "reporter")
    record = first.stop()
    assert record["distributed"]["launcher"] == "node-lock"
    assert record["distributed"]["job"] == "slurm-9"
    assert [(r["rank"], r["role"], r["node"]) for r in record["distributed"]["ranks"]] == [
        (0, "writer", "n1"), (1, "reporter", "n1")]
    third = _tracker(store).start()  # after the round closed: measures anew, alone
    assert third.stop()["distributed"] is None
    assert len(list(store.glob("MRV-*.json"))) == 2
