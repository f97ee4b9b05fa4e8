"""MLflow: the record's facts and files in the active run of a real MLflow store (SQLite), read
back with MlflowClient; no run, no logging; a failing server costs a warning, never the
record or its anchoring; Lightning's MLFlowLogger run."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.mlflow]
require_optional(pytestmark)

import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from mrv_ml.record.hashing import compute_hash  # noqa: E402
from mrv_ml.record.proof import find_proof_file  # noqa: E402
from mrv_ml.record.schema import load_record_file  # noqa: E402
from mrv_ml.run.log_to import dispatch as trackers  # noqa: E402
from mrv_ml.run.tracker import MRVTracker  # noqa: E402


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """MLflow's default store since 3.x (its file store refuses to open without an opt-in);
    one per module: creating its tables takes seconds. Each test gets its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracking_uri(database: str, request: pytest.FixtureRequest,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = database  # artifacts go to ./mlruns, in the test's own working directory
    monkeypatch.setattr(trackers, "_said_no_run", set())
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(request.node.name)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _artifact_bytes(client: Any, run_id: str, name: str, into: Path) -> bytes:
    return Path(client.download_artifacts(run_id, f"mrv/{name}", str(into))).read_bytes()


def test_facts_and_files_land_in_the_active_run(tracking_uri: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with mlflow.start_run() as run, MRVTracker("mlflow_run", log_to="mlflow") as tracker:
        sum(range(10_000))
    client = MlflowClient(tracking_uri)
    logged = client.get_run(run.info.run_id).data
    record_file = Path(str(tracker.record_path))
    proof_file = find_proof_file(record_file)
    assert proof_file is not None
    record = load_record_file(record_file)
    proof = json.loads(proof_file.read_text())
    assert proof["status"] == "anchored"  # the sidecar as anchoring left it

    tags = logged.tags
    assert tags["mrv.id"] == tracker.mrv_id
    assert tags["mrv.fingerprint"] == compute_hash(record) == proof["record_hash"]["digest"]
    assert tags["mrv.hash_algorithm"] == "sha256-jcs"
    assert tags["mrv.anchor_state"] == "anchored"
    assert tags["mrv.trust"] == "local only"  # the embedded chain: what it proves, no more
    assert tags["mrv.tx_hash"] == tracker.tx_hash
    assert tags["mrv.chain_id"] == str(proof["anchor"]["chain_id"])
    assert tags["mrv.outcome"] == "completed" and tags["mrv.measurement_status"] == "measured"
    assert not any(k.startswith("mrv.") for k in logged.params)  # facts are no inputs
    energy = record["energy_emissions"]
    assert logged.metrics["mrv.energy_kwh"] == pytest.approx(energy["energy_kwh"])
    assert logged.metrics["mrv.co2_kg"] == pytest.approx(energy["co2_kg"])
    assert logged.metrics["mrv.duration_s"] == pytest.approx(energy["duration_seconds"])

    names = sorted(a.path for a in client.list_artifacts(run.info.run_id, "mrv"))
    assert names == [f"mrv/{record_file.name}", f"mrv/{proof_file.name}"]
    assert _artifact_bytes(client, run.info.run_id, record_file.name,
                           tmp_path / "a") == record_file.read_bytes()
    assert _artifact_bytes(client, run.info.run_id, proof_file.name,
                           tmp_path / "b") == proof_file.read_bytes()
    err = capsys.readouterr().err
    assert "⚠️" not in err and "no active" not in err


def test_no_active_run_starts_none_logs_nothing_and_says_so_once(
        tracking_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("first", "second"):
        with MRVTracker(name, log_to=["mlflow"], blockchain_enabled=False):
            pass
    assert mlflow.active_run() is None
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("test_no_active_run_starts_none_logs_nothing_"
                                               "and_says_so_once")
    assert experiment is not None and client.search_runs([experiment.experiment_id]) == []
    err = capsys.readouterr().err
    assert err.count("no active MLflow run") == 1, err


class _FailingServer(http.server.BaseHTTPRequestHandler):
    """A tracking server that has fallen over: 503 to everything."""

    def _fail(self) -> None:
        body = b"<html><body>\n<h1>503 Service Unavailable</h1>\n</body></html>"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _fail

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def failing_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail now, not in minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_failing_server_is_a_warning_the_record_and_its_anchor_stand(
        failing_server: str, monkeypatch: pytest.MonkeyPatch, data_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(trackers, "_said_no_run", set())
    mlflow.set_tracking_uri(failing_server)
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123456789abcdef0123456789abcdef")  # handed to us
    try:
        with MRVTracker("server_down", log_to="mlflow") as tracker:
            pass
    finally:
        mlflow.set_tracking_uri(None)
    err = capsys.readouterr().err
    [warning] = [line for line in err.splitlines() if line.startswith("⚠️  MLflow")]
    assert "0123456789abcdef0123456789abcdef" in warning and "unaffected" in warning
    assert "Traceback" not in err
    record_file = Path(str(tracker.record_path))
    assert compute_hash(load_record_file(record_file)) == tracker.mrv_hash
    assert tracker.tx_hash is not None and tracker.anchor_error is None
    assert tracker.verify_on_blockchain()


@pytest.mark.torch
@pytest.mark.lightning
def test_lightning_mlflow_logger_run_gets_the_record(tracking_uri: str, tmp_path: Path) -> None:
    import lightning.pytorch as L
    from lightning.pytorch.loggers import MLFlowLogger

    from mrv_ml.integrations.lightning import MRVCallback
    from tests.unit.integrations.test_integrations_lightning import TinyClassifier, _loader

    logger = MLFlowLogger(experiment_name="lit", tracking_uri=tracking_uri)
    callback = MRVCallback(experiment_name="lightning_mlflow", log_to="mlflow",
                           blockchain_enabled=False, quiet=True)
    L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=logger, log_every_n_steps=1,
              enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[callback]).fit(TinyClassifier(), _loader())
    tracker = callback.tracker
    assert tracker is not None
    client = MlflowClient(tracking_uri)
    logged = client.get_run(logger.run_id).data
    assert logged.tags["mrv.id"] == tracker.mrv_id
    assert logged.tags["mrv.anchor_state"] == "off" and logged.tags["mrv.trust"] == "not anchored"
    assert "train_loss" in logged.metrics  # the logger's own metrics: the same run
    record_file = Path(str(tracker.record_path))
    assert _artifact_bytes(client, logger.run_id, record_file.name,
                           tmp_path / "a") == record_file.read_bytes()


def test_mrv_run_logs_into_the_run_mlflow_run_id_names(tracking_uri: str, mrv: Any) -> None:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("test_mrv_run_logs_into_the_run_mlflow_run_id_names")
    assert experiment is not None
    run = client.create_run(experiment.experiment_id)  # opened elsewhere, handed over by id
    code, _, err = mrv("run", "--log-to", "mlflow", "--no-anchor", "-e", "cli_job", "--",
                       "true", env={"MLFLOW_RUN_ID": run.info.run_id})
    assert code == 0, err
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["mrv.id"].startswith("MRV-") and tags["mrv.anchor_state"] == "off"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "mrv")] == [
        f"mrv/{tags['mrv.id']}.json"]  # no anchoring, so no sidecar
