"""Weights & Biases in offline mode (no network): the record's facts in the run's summary and
the record and proof as one artifact, read back from the run's own transaction log; no run,
no logging; a run finished before the record exists costs a warning, never the record."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.wandb]
require_optional(pytestmark)

import wandb  # noqa: E402

from mrv_ml.record.hashing import compute_hash  # noqa: E402
from mrv_ml.record.proof import find_proof_file  # noqa: E402
from mrv_ml.record.schema import load_record_file  # noqa: E402
from mrv_ml.run.log_to import dispatch as trackers  # noqa: E402
from mrv_ml.run.tracker import MRVTracker  # noqa: E402
from tests.support.wandb_log import records  # noqa: E402


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "wandb"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    # nothing leaves the machine: no error reports to W&B's Sentry either
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    for var, sub in (("WANDB_DIR", "runs"), ("WANDB_DATA_DIR", "data"),
                     ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")):
        (root / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.setattr(trackers, "_said_no_run", set())
    return root / "runs"


def _summary(logged: list[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for record in logged:
        if record.WhichOneof("record_type") == "summary":
            values.update({u.key: json.loads(u.value_json) for u in record.summary.update
                           if u.key})
    return values


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_summary_and_artifact_in_the_offline_run(offline: Path) -> None:
    run = wandb.init(project="mrv-tests")
    with MRVTracker("wandb_run", log_to="wandb", quiet=True) as tracker:
        sum(range(10_000))
    run.finish()
    logged = records(Path(run.dir).parent)

    record_file = Path(str(tracker.record_path))
    proof_file = find_proof_file(record_file)
    assert proof_file is not None
    record = load_record_file(record_file)
    summary = _summary(logged)
    assert summary["mrv/id"] == tracker.mrv_id
    assert summary["mrv/fingerprint"] == compute_hash(record)
    assert summary["mrv/anchor_state"] == "anchored" and summary["mrv/trust"] == "local only"
    assert summary["mrv/tx_hash"] == tracker.tx_hash
    assert summary["mrv/energy_kwh"] == pytest.approx(record["energy_emissions"]["energy_kwh"])
    assert summary["mrv/co2_kg"] == pytest.approx(record["energy_emissions"]["co2_kg"])
    assert summary["mrv/duration_s"] == pytest.approx(
        record["energy_emissions"]["duration_seconds"])

    [artifact] = [r.artifact for r in logged if r.WhichOneof("record_type") == "artifact"]
    assert artifact.name == tracker.mrv_id and artifact.type == "mrv-record"
    contents = {c.path: c for c in artifact.manifest.contents}
    assert sorted(contents) == sorted([record_file.name, proof_file.name])
    for path in (record_file, proof_file):  # the bytes W&B staged for upload are the files'
        entry = contents[path.name]
        assert entry.digest == _md5_b64(path.read_bytes())
        assert Path(entry.local_path).read_bytes() == path.read_bytes()
    assert json.loads(artifact.metadata)["mrv/id"] == tracker.mrv_id


def test_no_run_or_a_finished_one_logs_nothing_and_the_record_stands(
        offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("first", "second"):
        with MRVTracker(name, log_to="wandb", blockchain_enabled=False):
            pass
    assert wandb.run is None and not list(offline.rglob("*.wandb"))  # none was started
    assert capsys.readouterr().err.count("no active W&B run") == 1

    run = wandb.init(project="mrv-tests")
    tracker = MRVTracker("finished_early", log_to="wandb", blockchain_enabled=False).start()
    run.finish()  # the user's script closed the run before the tracker stopped
    tracker.stop()
    err = capsys.readouterr().err
    [warning] = [line for line in err.splitlines() if line.startswith("⚠️  W&B")]
    assert "finished before the MRV record was written" in warning
    assert compute_hash(load_record_file(Path(str(tracker.record_path)))) == tracker.mrv_hash
    assert not [r for r in records(Path(run.dir).parent)
                if r.WhichOneof("record_type") == "artifact"]
