"""The registry service end to end: a real uvicorn server over SQLite and PostgreSQL,
anchoring on anvil with the operator's key; researchers submit with `mrv publish` and the
tracker, fetch complete proofs with `mrv anchor --upgrade`, and a reviewer verifies them in
an empty directory with nothing but the record, the proof and the node."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.chain.localchain import anvil_dev_accounts
from mrv_ml.errors import EvidenceConflictError
from mrv_ml.record.hashing import compute_hash
from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV
from tests.support.records import make_sample_record
from tests.support.registry import operator_settings, running_registry

pytestmark = pytest.mark.anvil

RESEARCHER_KEY = anvil_dev_accounts()[6].key.hex()


@pytest.fixture
def registry(anvil: Any, anvil_registry: str, registry_db_url: str, tmp_path: Path
             ) -> Iterator[tuple[Any, str]]:
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    with running_registry(settings, registry_db_url) as running:
        yield running


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
          raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        text, status = e.read(), e.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode()


def _store_records(count: int) -> tuple[RecordStore, list[str]]:
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    ids = []
    for n in range(count):
        record = make_sample_record(experiment__name=f"sweep-{n % 2}",
                                    experiment__tags={"lr": str(n), "team": "green"})
        store.save(record)
        ids.append(record["mrv_id"])
    return store, ids


def test_publish_anchor_upgrade_and_verify_anywhere(registry: tuple[Any, str], mrv: MRV,
                                                   anvil: Any, tmp_path: Path) -> None:
    service, url = registry
    store, ids = _store_records(3)
    env = {"MRV_REGISTRY_URL": url, "PRIVATE_KEY": RESEARCHER_KEY}
    code, out, err = mrv("publish", ids[0], env=env)
    assert code == 0 and f"📨 {ids[0]} pending at {url}" in out, out + err
    code, out, err = mrv("publish", ids[1], "--record", "--sign", env=env)
    assert code == 0, out + err
    code, out, err = mrv("anchor", env=env)  # with a registry configured: the third goes there
    assert code == 0 and f"📨 {ids[2]}" in out, out + err
    proof = store.load_proof(ids[1])
    assert proof is not None and proof.status == "pending" and proof.registries[0].url == url
    assert proof.signature is not None
    assert proof.signature.signer == anvil_dev_accounts()[6].address

    [batch] = service.loop.anchorer.run_once()  # the interval ends: one root for all three
    assert batch.leaf_count == 3 and batch.status == "anchored"
    code, out, err = mrv("anchor", "--upgrade", env=env)
    assert code == 0 and out.count("✅") == 3 and batch.tx_hash in out, out + err
    code, out, _ = mrv("anchor", "--upgrade", env=env)
    assert code == 0 and "Nothing to anchor" in out

    # A reviewer: an empty directory, the record, its proof, a node of the chain. No registry.
    reviewer = tmp_path / "reviewer"
    reviewer.mkdir()
    for mrv_id in ids:
        shutil.copy(store.path_for(mrv_id), reviewer)
        shutil.copy(store.proof_path_for(mrv_id), reviewer)
    operator = service.state.facts.operator
    code, out, err = mrv("verify", str(reviewer), "--json", "--rpc-url", anvil.url,
                         "--submitter", operator,
                         env={"MRV_DATA_DIR": str(tmp_path / "empty"), "MRV_REGISTRY_URL": None,
                              "PRIVATE_KEY": None})
    verdicts = json.loads(out)
    assert code == 0, out + err
    assert [v["status"] for v in verdicts] == ["VALID"] * 3
    assert {v["submitter"] for v in verdicts} == {operator}


def test_published_records_are_searchable_and_served_as_hashed(registry: tuple[Any, str],
                                                               mrv: MRV) -> None:
    _, url = registry
    store, ids = _store_records(4)
    code, out, err = mrv("publish", *ids, "--record", env={"MRV_REGISTRY_URL": url})
    assert code == 0, out + err
    status, page = _http("GET", f"{url}/v1/records?experiment=sweep-0&limit=1")
    assert status == 200 and len(page["records"]) == 1 and page["next"]
    status, rest = _http("GET", f"{url}/v1/records?experiment=sweep-0&after={page['next']}")
    found = {r["mrv_id"] for r in page["records"] + rest["records"]}
    assert found == {ids[0], ids[2]}
    status, tagged = _http("GET", f"{url}/v1/records?tag=lr=3")
    assert [r["mrv_id"] for r in tagged["records"]] == [ids[3]]
    with urllib.request.urlopen(f"{url}/v1/records/{ids[1]}", timeout=10) as r:
        body = r.read()
    assert compute_hash(json.loads(body)) == compute_hash(store.load(ids[1]))


def test_operators_endpoints(registry: tuple[Any, str], mrv: MRV) -> None:
    service, url = registry
    _, ids = _store_records(2)
    mrv("publish", *ids, env={"MRV_REGISTRY_URL": url})
    assert _http("GET", f"{url}/healthz") == (200, {"status": "ok"})
    assert _http("GET", f"{url}/readyz")[0] == 200
    status, info = _http("GET", f"{url}/v1/info")
    assert info["chain_id"] == 31337 and info["operator"] == service.state.facts.operator
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert "mrv_registry_pending_leaves 2.0" in metrics
    assert "mrv_registry_last_anchor_age_seconds -1.0" in metrics
    service.loop.anchorer.run_once()
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert "mrv_registry_pending_leaves 0.0" in metrics
    assert "mrv_registry_batches_anchored 1.0" in metrics
    status, spec = _http("GET", f"{url}/openapi.json")
    assert status == 200 and "/v1/submissions" in spec["paths"]


@pytest.mark.parametrize(("body", "key"), [
    ({"fingerprint": "AB" * 32, "mrv_id": "MRV-00000000-0000-4000-8000-000000000000"},
     "bad_fingerprint"),
    ({"fingerprint": "ab" * 32, "mrv_id": "MRV-1"}, "bad_mrv_id"),
    ({"fingerprint": "ab" * 32, "mrv_id": "MRV-00000000-0000-4000-8000-000000000000",
      "signer": "0x" + "11" * 20, "signature": "0x" + "22" * 65}, "bad_signature"),
    ({"fingerprint": "ab" * 32, "mrv_id": "MRV-00000000-0000-4000-8000-000000000000",
      "injected": True}, "bad_input"),
])
def test_bad_submissions_are_4xx_with_a_key(registry: tuple[Any, str], body: dict[str, Any],
                                            key: str) -> None:
    _, url = registry
    status, answer = _http("POST", f"{url}/v1/submissions", body)
    assert status == 400 and answer["error"]["key"] == key, answer


def test_a_record_that_is_not_the_fingerprint_is_refused(registry: tuple[Any, str]) -> None:
    _, url = registry
    record = make_sample_record()
    body = {"fingerprint": "ab" * 32, "mrv_id": record["mrv_id"], "record": record}
    status, answer = _http("POST", f"{url}/v1/submissions", body)
    assert status == 400 and answer["error"]["key"] == "fingerprint_mismatch"
    for raw in (b'{"fingerprint": "a", "fingerprint": "b"}', b"[" * 10_000, b"NaN", b"\xff"):
        status, answer = _http("POST", f"{url}/v1/submissions", raw=raw)
        assert status == 400 and "error" in answer, (raw[:20], answer)


def test_a_wrong_proof_from_a_registry_is_refused(registry: tuple[Any, str], mrv: MRV) -> None:
    from mrv_ml.anchoring.registry_client import _checked_document

    service, url = registry
    store, ids = _store_records(2)
    mrv("publish", *ids, env={"MRV_REGISTRY_URL": url})
    service.loop.anchorer.run_once()
    fingerprint = compute_hash(store.load(ids[0]))
    status, document = _http("GET", f"{url}/v1/proofs/{fingerprint}?mrv_id={ids[0]}")
    assert status == 200 and document["status"] == "anchored"
    _checked_document(document, ids[0], fingerprint, url)  # the true one passes
    forged = json.loads(json.dumps(document))
    forged["proof"]["anchor"]["merkle"]["proof"] = ["0x" + "00" * 32]
    with pytest.raises(EvidenceConflictError, match="does not lead from this record"):
        _checked_document(forged, ids[0], fingerprint, url)
    other = compute_hash(store.load(ids[1]))
    with pytest.raises(EvidenceConflictError, match="another record"):
        _checked_document(document, ids[0], other, url)


def test_tokens_and_sizes(anvil: Any, anvil_registry: str, tmp_path: Path, mrv: MRV) -> None:
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    tokens = {"s3cr3t-token-for-lab-a": "lab-a"}
    with running_registry(settings, str(tmp_path / "r.sqlite"), tokens=tokens,
                          require_token=True, max_record_bytes=1024) as (service, url):
        store, ids = _store_records(2)
        code, out, err = mrv("publish", ids[0], env={"MRV_REGISTRY_URL": url})
        assert code == 7 and "MRV_REGISTRY_TOKEN" in err and "s3cr3t" not in out + err
        assert store.load_proof(ids[0]) is None  # a refused token touches no sidecar
        env = {"MRV_REGISTRY_URL": url, "MRV_REGISTRY_TOKEN": "s3cr3t-token-for-lab-a"}
        code, out, err = mrv("publish", ids[0], env=env)
        assert code == 0, out + err
        assert [s.client for s in service.db.submissions_for(mrv_id=ids[0])] == ["lab-a"]
        code, out, err = mrv("publish", ids[1], "--record", env=env)  # > 1 KiB: too large
        assert code == 3 and "larger than 1,024 bytes" in out, out + err


def test_a_client_over_its_rate_is_told_to_wait(anvil: Any, anvil_registry: str,
                                                tmp_path: Path) -> None:
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    with running_registry(settings, str(tmp_path / "r.sqlite"),
                          rate_per_second=0.01) as (_, url):
        body = {"fingerprint": "ab" * 32, "mrv_id": "MRV-00000000-0000-4000-8000-000000000000"}
        assert _http("POST", f"{url}/v1/submissions", body)[0] == 202
        status, answer = _http("POST", f"{url}/v1/submissions", body)
        assert status == 429 and answer["error"]["key"] == "rate_limited"


def test_the_tracker_submits_on_stop_and_a_registry_down_leaves_it_pending(
        registry: tuple[Any, str], mrv: MRV, tmp_path: Path) -> None:
    from mrv_ml.run.tracker import MRVTracker
    from tests.support.anvil import free_port

    service, url = registry
    with MRVTracker("via-registry", registry_url=url, publish=True, quiet=True) as tracker:
        pass
    proof = tracker.proof
    assert proof is not None and proof.status == "pending" and proof.registries[0].url == url
    assert tracker.anchor_error is None and tracker.tx_hash is None
    assert service.db.published(str(tracker.mrv_id)) is not None

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with MRVTracker("registry-down", registry_url=down, quiet=True) as later:
        pass
    assert later.record_path is not None and later.record_path.exists()  # the run is kept
    assert later.anchor_error is not None and "cannot reach the registry" in later.anchor_error
    pending = RecordStore(os.environ["MRV_DATA_DIR"]).load_proof(str(later.mrv_id))
    assert pending is not None and not pending.registries
    # later, with the registry up: `mrv anchor` submits it, then fetches both proofs
    code, out, err = mrv("anchor", env={"MRV_REGISTRY_URL": url})
    assert code == 0 and f"📨 {later.mrv_id}" in out, out + err
    service.loop.anchorer.run_once()
    code, out, err = mrv("anchor", env={"MRV_REGISTRY_URL": url})
    assert code == 0 and out.count("✅") == 2, out + err


def test_a_json_rpc_node_given_as_registry_is_named_as_such(anvil: Any, mrv: MRV) -> None:
    _, ids = _store_records(1)
    code, out, err = mrv("publish", ids[0], "--registry", anvil.url)
    assert code == 7 and "is not an mrv-ml registry" in err and "rpc_url" in err, (code, err)


def test_who_signed_is_reported_and_can_be_pinned(registry: tuple[Any, str], mrv: MRV,
                                                  anvil: Any, tmp_path: Path) -> None:
    from mrv_ml.chain.keys import _from_key
    from mrv_ml.chain.signing import sign
    from mrv_ml.config import Secret

    service, url = registry
    store, ids = _store_records(2)
    researcher = anvil_dev_accounts()[6].address
    code, out, err = mrv("publish", ids[0], "--sign",
                         env={"MRV_REGISTRY_URL": url, "PRIVATE_KEY": RESEARCHER_KEY})
    assert code == 0, out + err
    mrv("publish", ids[1], env={"MRV_REGISTRY_URL": url})  # unsigned
    service.loop.anchorer.run_once()
    mrv("anchor", "--upgrade", env={"MRV_REGISTRY_URL": url})
    reviewer_env = {"MRV_DATA_DIR": str(tmp_path / "empty"), "MRV_REGISTRY_URL": None}
    signed, unsigned = store.path_for(ids[0]), store.path_for(ids[1])

    def verdict(path: Path, *pins: str) -> tuple[int, dict[str, Any]]:
        code, out, err = mrv("verify", str(path), "--json", "--rpc-url", anvil.url, *pins,
                             env=reviewer_env)
        return code, json.loads(out)

    code, v = verdict(signed, "--signer", researcher)
    assert code == 0 and v["signer"] == researcher and v["submitter"] == \
        service.state.facts.operator, v
    code, v = verdict(signed, "--signer", anvil_dev_accounts()[7].address)
    assert code == 5 and v["reason"] == "signed_by_other", v
    code, v = verdict(unsigned, "--signer", researcher)
    assert code == 5 and v["reason"] == "unsigned", v
    code, v = verdict(unsigned)
    assert code == 0 and v["signer"] is None

    # a signature moved from another record, or made by someone else, is refused
    sidecar = store.proof_path_for(ids[0])
    proof = json.loads(sidecar.read_text())
    other_key = _from_key(Secret(anvil_dev_accounts()[7].key.hex()))
    proof["signature"]["signature"] = sign(other_key, ids[0], compute_hash(store.load(ids[0])))
    sidecar.write_text(json.dumps(proof))
    code, v = verdict(signed)
    assert code == 12 and v["error_key"] == "bad_signature", v


def test_verify_fetches_a_complete_proof_on_its_own_and_writes_nothing(
        registry: tuple[Any, str], mrv: MRV, anvil: Any) -> None:
    service, url = registry
    store, ids = _store_records(1)
    mrv("publish", ids[0], env={"MRV_REGISTRY_URL": url})
    sidecar = store.proof_path_for(ids[0])
    code, out, _ = mrv("verify", str(store.path_for(ids[0])), "--json", "--rpc-url", anvil.url)
    assert code == 9 and json.loads(out)["error_key"] == "pending_at_registry", out
    service.loop.anchorer.run_once()
    before = sidecar.read_bytes()
    code, out, err = mrv("verify", str(store.path_for(ids[0])), "--json", "--rpc-url", anvil.url)
    v = json.loads(out)
    assert code == 0 and v["status"] == "VALID" and v["mode"] == "batch", out + err
    assert v["submitter"] == service.state.facts.operator
    assert sidecar.read_bytes() == before  # verifying wrote nothing


def test_two_registries_are_witnesses_each_verified(anvil: Any, anvil_registry: str,
                                                    tmp_path: Path, mrv: MRV) -> None:
    from tests.support.registry import WITNESS_OPERATOR_INDEX

    first = operator_settings(anvil, anvil_registry, tmp_path / "op-a")
    second = operator_settings(anvil, anvil_registry, tmp_path / "op-b", WITNESS_OPERATOR_INDEX)
    with running_registry(first, str(tmp_path / "a.sqlite")) as (reg_a, url_a), \
            running_registry(second, str(tmp_path / "b.sqlite")) as (reg_b, url_b):
        store, ids = _store_records(1)
        code, out, err = mrv("publish", ids[0], "--registry", f"{url_a},{url_b}")
        assert code == 0, out + err
        assert [r.url for r in store.load_proof(ids[0]).registries] == [url_a, url_b]
        reg_a.loop.anchorer.run_once()
        code, out, err = mrv("anchor", "--upgrade")
        assert code == 0 and "✅" in out, out + err

        def verdict() -> dict[str, Any]:
            code, out, err = mrv("verify", str(store.path_for(ids[0])), "--json",
                                 "--rpc-url", anvil.url, env={"MRV_REGISTRY_URL": None})
            assert code == 0, out + err
            return dict(json.loads(out))

        v = verdict()
        assert [r["status"] for r in v["registries"]] == ["VALID", "PENDING"]
        reg_b.loop.anchorer.run_once()
        v = verdict()  # verify asks the witness on its own
        assert [r["status"] for r in v["registries"]] == ["VALID", "VALID"]
        assert [r["submitter"] for r in v["registries"]] == [reg_a.state.facts.operator,
                                                             reg_b.state.facts.operator]
        code, out, err = mrv("anchor", "--upgrade")
        assert code == 0, out + err
        saved = store.load_proof(ids[0])
        assert all(r.anchor is not None for r in saved.registries)

        # a witness whose proof is a lie is reported as such; the verdict stands on the first
        sidecar = store.proof_path_for(ids[0])
        data = json.loads(sidecar.read_text())
        data["registries"][1]["anchor"]["merkle"]["root"] = "0x" + "77" * 32
        data["registries"][1]["anchor"]["merkle"]["proof"] = []
        sidecar.write_text(json.dumps(data))
        v = verdict()
        assert v["status"] == "VALID"
        assert [r["status"] for r in v["registries"]] == ["VALID", "NOT_FOUND"]
