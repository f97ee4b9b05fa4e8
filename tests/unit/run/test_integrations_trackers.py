"""``log_to`` without the trackers' packages: the setting's parsing and its errors, the facts
that would be logged, a missing package named with its extra (the real MLflow and W&B runs:
tests/unit/run/test_integrations_mlflow.py, tests/unit/run/test_integrations_wandb.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mrv_ml.config import load_settings
from mrv_ml.errors import EXIT_CONFIG, ConfigError, MissingExtraError
from mrv_ml.record.proof import Proof
from mrv_ml.run.log_to.dispatch import run_facts
from mrv_ml.run.tracker import MRVTracker
from tests.support.cli import MRV
from tests.support.records import make_sample_record


def test_mrv_log_to_is_read_lowercased_once_each_in_order() -> None:
    settings = load_settings(environ={"MRV_LOG_TO": " WandB, mlflow,wandb,"})
    assert settings.log_to == ("wandb", "mlflow")
    assert load_settings(environ={}).log_to == ()
    assert load_settings({"log_to": ["mlflow"]}, environ={}).log_to == ("mlflow",)


def test_an_unknown_tracker_is_a_config_error_before_any_run(mrv: MRV, data_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"'tensorboard' is not one of mlflow, wandb"):
        load_settings(environ={"MRV_LOG_TO": "mlflow,tensorboard"})
    with pytest.raises(ConfigError, match="not one of"):
        MRVTracker("typo", log_to=("mlfow",), blockchain_enabled=False, quiet=True)
    code, out, err = mrv("run", "--log-to", "neptune", "--no-anchor", "--", "true")
    assert code == EXIT_CONFIG and "Traceback" not in err
    assert "'neptune' is not one of mlflow, wandb" in err and len(err.strip().splitlines()) == 1
    code, _, err = mrv("run", "--no-anchor", "--", "true", env={"MRV_LOG_TO": "comet"})
    assert code == EXIT_CONFIG and "'comet' is not one of" in err
    assert not list(data_dir.glob("MRV-*.json"))  # refused before the run, not after it


@pytest.mark.parametrize("tool", ["mlflow", "wandb"])
def test_a_missing_package_names_its_extra_before_training(
        tool: str, mrv: MRV, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setitem(sys.modules, tool, None)  # as if not installed
    with pytest.raises(MissingExtraError, match=rf"pip install 'mrv-ml\[{tool}\]'") as err:
        MRVTracker("no_package", log_to=tool, blockchain_enabled=False, quiet=True)
    assert err.value.exit_code == EXIT_CONFIG
    code, _, stderr = mrv("run", "--log-to", tool, "--no-anchor", "--", "true")
    assert code == EXIT_CONFIG and "Traceback" not in stderr
    assert f"mrv-ml[{tool}]" in stderr and len(stderr.strip().splitlines()) == 1
    assert not list(data_dir.glob("MRV-*.json"))


def test_facts_claim_no_more_than_the_proof_says() -> None:
    record = make_sample_record()
    pending = Proof.from_dict({
        "proof_version": "1.0", "mrv_id": record["mrv_id"],
        "record_hash": {"algorithm": "sha256-jcs", "digest": "ab" * 32},
        "status": "pending",
        "pending_reason": "chain unreachable: http://user:pw@node.example/v3/abcdefghijklmnopqrstu"})
    facts = run_facts(record, "ab" * 32, pending, blockchain_enabled=True, anchor_error=None)
    tags = facts.tags()
    assert tags["mrv.anchor_state"] == "pending" and tags["mrv.trust"] == "not anchored"
    assert "pw" not in tags["mrv.pending_reason"] and "abcdefghijklmnopqrstu" not in str(tags)
    assert "mrv.tx_hash" not in tags and "mrv.chain_id" not in tags
    assert facts.metrics()["mrv.energy_kwh"] == record["energy_emissions"]["energy_kwh"]

    failed = make_sample_record(energy_emissions__measurement_status="failed",
                                energy_emissions__energy_kwh=None, energy_emissions__co2_kg=None)
    off = run_facts(failed, "cd" * 32, None, blockchain_enabled=False, anchor_error=None)
    assert off.tags()["mrv.anchor_state"] == "off"
    assert off.tags()["mrv.measurement_status"] == "failed"
    assert "mrv.energy_kwh" not in off.metrics() and "mrv.co2_kg" not in off.metrics()
