"""The hostile HTTP corpus (tests/support/hostile_http.py) against the registry service, on
SQLite and on PostgreSQL, and against ``mrv serve``: real servers on the loopback, raw
requests. No answer is a 5xx, every refusal is the server's own error body, and nothing is
stored but what was accepted. And when something unexpected does fail, the client gets one
500 naming a request id, and the operator one log line with the traceback.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrv_ml.config import load_settings
from mrv_ml.registry_service.app import ServiceConfig, ServiceState, create_app
from mrv_ml.registry_service.db import RegistryDB, open_database
from mrv_ml.registry_service.proofs import ChainFacts
from mrv_ml.storage.store import RecordStore
from tests.support.hostile_http import (
    REGISTRY_REQUESTS,
    SERVE_REQUESTS,
    HostileRequest,
    judge,
    send,
)
from tests.support.records import make_sample_record, store_bytes
from tests.support.registry import serving

FACTS = ChainFacts(network="anvil", chain_id=31337,
                   contract_address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
                   operator="0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", registry_block=1,
                   confirmations=0)
#: The corpus's submissions that are valid records (odd text, but records): accepted.
ACCEPTED_SUBMISSIONS = 4


@pytest.fixture
def registry(registry_db_url: str) -> Iterator[tuple[str, RegistryDB, ServiceState]]:
    db = open_database(registry_db_url)
    state = ServiceState(db, FACTS, ServiceConfig(base_url="http://127.0.0.1:1",
                                                  interval_s=60.0))
    try:
        with serving(create_app(state)) as url:
            yield url, db, state
    finally:
        db.close()


@pytest.fixture
def dashboard(data_dir: Path) -> Iterator[tuple[str, RecordStore]]:
    from mrv_ml.serve.local import make_server

    store = RecordStore(data_dir)
    store.save(make_sample_record())
    server = make_server(load_settings(), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        server.shutdown()
        server.server_close()


def _run(url: str, requests: tuple[HostileRequest, ...], shape: str
         ) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    failures, answers = [], []
    for request in requests:
        status, headers, body = send(url, request)
        answers.append((status, headers))
        failures += [f"{request.name}: {p}" for p in judge(request, status, body, shape)]
    return failures, answers


def test_the_corpus_is_large_enough() -> None:
    assert len(REGISTRY_REQUESTS) >= 100 and len(SERVE_REQUESTS) >= 40
    assert len({r.name for r in REGISTRY_REQUESTS}) == len(REGISTRY_REQUESTS)


def test_no_hostile_request_gets_a_5xx_from_the_registry(
        registry: tuple[str, RegistryDB, ServiceState]) -> None:
    url, db, _ = registry
    failures, answers = _run(url, REGISTRY_REQUESTS, "registry")
    assert failures == [], "\n".join(failures)
    # every answer names its request, so an operator can find it in the log
    assert all(headers.get("x-request-id") for request, (_, headers)
               in zip(REGISTRY_REQUESTS, answers, strict=True) if not request.malformed_http)
    accepted = sum(1 for request, (status, _) in zip(REGISTRY_REQUESTS, answers, strict=True)
                   if request.method == "POST" and status in (200, 202))
    assert accepted == ACCEPTED_SUBMISSIONS
    assert db.stats().submissions_total == ACCEPTED_SUBMISSIONS
    # the NUL-holding records are searchable (NUL as U+FFFD) and served byte for byte
    status, _, body = send(url, HostileRequest("search", "GET", "/v1/records?limit=10"))
    found = json.loads(body)["records"]
    assert status == 200 and len(found) == ACCEPTED_SUBMISSIONS
    assert "a\ufffdb" in {r["experiment"] for r in found}
    status, _, served = send(url, HostileRequest("one", "GET", found[0]["links"]["record"]))
    from mrv_ml.record.hashing import compute_hash

    assert status == 200 and compute_hash(json.loads(served)) == found[0]["fingerprint"]


def test_no_hostile_request_gets_a_5xx_from_mrv_serve(dashboard: tuple[str, RecordStore]
                                                      ) -> None:
    url, store = dashboard
    before = store_bytes(store.root)
    failures, _ = _run(url, SERVE_REQUESTS, "serve")
    assert failures == [], "\n".join(failures)
    assert store_bytes(store.root) == before


def test_an_unexpected_failure_is_one_500_with_a_request_id_and_one_log_line(
        registry: tuple[str, RegistryDB, ServiceState], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    url, db, _ = registry

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in /home/operator/secret-path")

    monkeypatch.setattr(db, "search_published", broken)
    with caplog.at_level(logging.ERROR, logger="mrv_ml.registry_service"):
        status, headers, body = send(url, HostileRequest("bug", "GET", "/v1/records"))
    error = json.loads(body)["error"]
    assert status == 500 and error["key"] == "internal_error"
    assert error["request_id"] == headers["x-request-id"] and error["request_id"] in error[
        "message"]
    assert b"secret-path" not in body and b"ZeroDivisionError" not in body
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert logged[0].request_id == error["request_id"]  # type: ignore[attr-defined]


def test_mrv_serve_answers_an_unexpected_failure_with_one_500(
        dashboard: tuple[str, RecordStore], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from mrv_ml.serve import local

    url, _ = dashboard

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in /home/researcher/secret-path")

    monkeypatch.setattr(local, "explore_store", broken)
    with caplog.at_level(logging.ERROR, logger="mrv_ml.serve"):
        status, _, body = send(url, HostileRequest("bug", "GET", "/api/explore"))
    assert status == 500 and "request" in json.loads(body)["error"]
    assert b"secret-path" not in body
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info is not None
    # the server goes on answering
    status, _, _ = send(url, HostileRequest("next", "GET", "/api/config"))
    assert status == 200


def test_the_openapi_document_states_every_refusal(
        registry: tuple[str, RegistryDB, ServiceState]) -> None:
    url, _, _ = registry
    status, _, body = send(url, HostileRequest("doc", "GET", "/openapi.json"))
    spec = json.loads(body)
    assert status == 200 and "HTTPValidationError" not in spec["components"]["schemas"]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert responses["500"]["content"]["application/json"]["schema"] == error_ref
            if operation.get("parameters") or operation.get("requestBody"):
                assert "400" in responses, (method, path)


def test_a_validation_error_is_a_400_in_the_service_shape(
        registry: tuple[str, RegistryDB, ServiceState]) -> None:
    url, _, _ = registry
    status, _, body = send(url, HostileRequest("limit", "GET", "/v1/records?limit=abc"))
    assert status == 400 and json.loads(body) == {"error": {
        "key": "bad_request", "message": "limit: Input should be a valid integer, unable to "
                                         "parse string as an integer"}}


_WORDS = ["", "-", "--date", "date", "-energy", "0", "1", "500", "501", "²", "٣", "1e3",
          "2026-01-01", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59-10:00",
          "0001-01-01T00:00:00+14:00", "99999-01-01", "completed", "pending", "public",
          "local only", "k=v", "=v", "a\x00b", "\x7f", "\ud800", "9" * 30]


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(
    st.sampled_from(["experiment", "tag", "since", "until", "status", "anchor_state",
                     "trust", "sort", "limit", "offset", "x"]),
    st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=30)), min_size=1,
             max_size=2), max_size=6))
def test_mrv_serves_explore_query_is_an_answer_or_a_400_for_any_input(
        query: dict[str, list[str]], data_dir: Path) -> None:
    """``/api/explore``'s reading of any query string: a page, or a RecordError that the
    server answers 400; never another exception (the server's 500)."""
    from mrv_ml.errors import RecordError
    from mrv_ml.serve.local import explore_store, parse_explore_query

    store = RecordStore(data_dir)
    if not store.list():
        store.save(make_sample_record())
    try:
        page = explore_store(store, parse_explore_query(query))
    except RecordError:
        return
    assert page["count"] >= len(page["rows"])
