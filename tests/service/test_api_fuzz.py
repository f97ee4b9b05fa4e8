"""Property-based fuzzing of the registry's HTTP API from its own ``/openapi.json``
(schemathesis), on SQLite and on PostgreSQL: every operation, with requests that follow
the schema and requests that break it.

Each answer must be no 5xx, a status the document names, a body that matches the schema
stated for that status (the error body included), and a refusal for schema-breaking input;
afterwards the database holds exactly the submissions that were answered 200/202.

``MRV_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 25: some 250 per
database in the default run, 5 s); ``MRV_FUZZ_EXAMPLES=100`` gives the 1,000-plus run of
the closing note. The default run is derandomized (the same examples each time: no flakes in
CI); set ``MRV_FUZZ_SEED`` to explore others.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from mrv_ml.registry_service.app import ServiceConfig, ServiceState, create_app  # noqa: E402
from mrv_ml.registry_service.db import RegistryDB, open_database  # noqa: E402
from mrv_ml.registry_service.proofs import ChainFacts  # noqa: E402

EXAMPLES = int(os.environ.get("MRV_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("MRV_FUZZ_SEED")

FACTS = ChainFacts(network="anvil", chain_id=31337,
                   contract_address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
                   operator="0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", registry_block=1,
                   confirmations=0)

#: A submission's acceptance rests on facts no JSON Schema can state (a signature that
#: recovers its signer, a record that hashes to its fingerprint), and so does a search
#: cursor's (``after``: opaque, issued by the service): schema-valid input may rightly be
#: refused there. Everywhere else, schema-valid input must be accepted.
NO_ACCEPTANCE_CHECK = {("POST", "/v1/submissions")}
OPAQUE_PARAMETERS = {"after"}


def _acceptance_is_decidable(case: Any) -> bool:
    return ((case.method.upper(), case.operation.path) not in NO_ACCEPTANCE_CHECK
            and not OPAQUE_PARAMETERS & set(case.query or {}))


@pytest.fixture
def service(registry_db_url: str, tmp_path: Path) -> Iterator[tuple[Any, RegistryDB]]:
    db = open_database(registry_db_url)
    state = ServiceState(db, FACTS, ServiceConfig(base_url="http://127.0.0.1:1",
                                                  interval_s=60.0))
    try:
        yield create_app(state), db
    finally:
        db.close()


def _fuzz(operation: Any, mode: Any, ran: dict[str, int],
          accepted: set[tuple[str, str]]) -> None:
    label = f"{operation.method.upper()} {operation.path} {mode.value}"

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=SEED is None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call()
        ran[label] = ran.get(label, 0) + 1
        excluded = [] if _acceptance_is_decidable(case) else [positive_data_acceptance]
        case.validate_response(response, excluded_checks=excluded)
        if case.method == "POST" and response.status_code in (200, 202):
            accepted.add((case.body["fingerprint"], case.body["mrv_id"]))

    (seed(int(SEED))(run) if SEED is not None else run)()


def test_every_operation_survives_schema_driven_fuzzing(service: tuple[Any, RegistryDB]
                                                        ) -> None:
    app, db = service
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    accepted: set[tuple[str, str]] = set()
    ran: dict[str, int] = {}
    expected = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [schemathesis.GenerationMode.POSITIVE]
        if any(True for _ in operation.iter_parameters()) or operation.body:
            modes.append(schemathesis.GenerationMode.NEGATIVE)  # there is input to break
        for mode in modes:
            _fuzz(operation, mode, ran, accepted)
            expected += 1
    print(f"fuzzed {sum(ran.values())} requests ({len(accepted)} submissions accepted): {ran}")
    assert expected >= 12 and len(ran) == expected, ran  # every operation ran, every mode
    # Only what was answered 200/202 is in the database, and all of it.
    stored = {(s.fingerprint, s.mrv_id) for fingerprint, _ in accepted
              for s in db.submissions_for(fingerprint=fingerprint)}
    assert stored == accepted
    assert db.stats().submissions_total == len(accepted)
