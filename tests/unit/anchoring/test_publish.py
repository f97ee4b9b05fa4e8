"""The one choice of an anchoring route (``anchoring.publish``), as the CLI, the importer
and the tracker all make it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrv_ml.anchoring.publish import Route, choose_route, publish, publish_run
from mrv_ml.config import Settings, load_settings
from mrv_ml.errors import ConfigError
from mrv_ml.storage.store import RecordStore
from tests.support.records import make_sample_record


def _settings(tmp_path: Path, **overrides: str) -> Settings:
    return load_settings({"data_dir": str(tmp_path), **overrides}, cwd=tmp_path, environ={},
                         use_dotenv=False)


@pytest.mark.parametrize(("registry", "batch", "upgrade", "named", "route"), [
    (None, False, False, None, Route.SINGLE),
    (None, True, False, None, Route.BATCH),
    ("http://127.0.0.1:9/", False, False, None, Route.REGISTRY),
    ("http://127.0.0.1:9/", True, False, None, Route.BATCH),  # a batch asked for wins
    (None, False, True, None, Route.REGISTRY),  # upgrading fetches from a registry
    (None, False, False, "http://127.0.0.1:9/", Route.REGISTRY),  # one named here
])
def test_the_route_follows_the_settings(tmp_path: Path, registry: str | None, batch: bool,
                                        upgrade: bool, named: str | None, route: Route) -> None:
    settings = _settings(tmp_path, **({"registry_url": registry} if registry else {}))
    assert choose_route(settings, batch=batch, upgrade=upgrade,
                        registry_url=named) is route


def test_a_forced_registry_route_without_a_registry_is_one_config_error(tmp_path: Path
                                                                       ) -> None:
    store = RecordStore(tmp_path)
    record = make_sample_record()
    store.save(record)
    with pytest.raises(ConfigError, match="no registry URL"):
        publish(store, _settings(tmp_path), [record["mrv_id"]],
                route=Route.REGISTRY)
    assert store.load_proof(record["mrv_id"]) is None  # nothing written for the record


@pytest.mark.parametrize(("auto", "mode", "reason"), [
    (False, "single", "auto_anchor is off (run mrv anchor)"),
    (True, "batch", "awaiting the next batch (mrv anchor --batch)"),
])
def test_a_run_not_anchored_now_is_left_pending_with_the_reason(
        tmp_path: Path, auto: bool, mode: str, reason: str) -> None:
    store = RecordStore(tmp_path)
    record = make_sample_record()
    store.save(record)
    outcome = publish_run(store, _settings(tmp_path), record["mrv_id"],
                          auto_anchor=auto, anchor_mode=mode)
    assert (outcome.status, outcome.tx_hash, outcome.error_exit_code) == ("pending", None, None)
    proof = store.load_proof(record["mrv_id"])
    assert proof is not None and proof.anchor is None
    assert outcome.proof == proof
    assert proof.pending_reason == reason
