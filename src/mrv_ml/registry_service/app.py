"""The registry's HTTP API (FastAPI under uvicorn; OpenAPI at ``/docs`` and ``/openapi.json``).

Writes: ``POST /v1/submissions`` (a fingerprint, optionally signed, optionally with the
record to publish). Reads: ``GET /v1/proofs/{fingerprint or MRV ID}``, ``GET /v1/records``
(search, keyset pages), ``GET /v1/records/{id}`` (the exact canonical bytes),
``GET /v1/info``. Operators: ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus).

Bodies are read with a size cap before parsing and parsed strictly (duplicate keys, NaN,
deep nesting refused, as the CLI reads files); a record sent for publishing must be valid
and hash to the fingerprint given, a signature must recover its signer. Query parameters
are bounded types (:mod:`.inputs`), checked before any database call. Errors are JSON
``{"error": {"key", "message"}}`` with a 4xx status (503 while the database is down; 500,
with a request id and one log line, for anything unexpected: :mod:`.http_errors`).
Endpoints are plain functions: FastAPI runs them in its thread pool, and the database
layer is thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response

from mrv_ml._version import __version__
from mrv_ml.anchoring.wire import PROOF_PATH, SUBMISSIONS_PATH, proof_path
from mrv_ml.errors import RecordError, RegistryDatabaseError
from mrv_ml.record.trust import Trust
from mrv_ml.registry_service import http_errors
from mrv_ml.registry_service.api_models import (
    ExplorePage,
    Health,
    ProofDocument,
    RecordsPage,
    ServiceInfo,
    SubmissionRequest,
)
from mrv_ml.registry_service.db import PublishedRecord, RegistryDB, Submission
from mrv_ml.registry_service.db.rows import EXPLORE_SORTS
from mrv_ml.registry_service.http_errors import ContainFailures
from mrv_ml.registry_service.http_errors import error_response as _error
from mrv_ml.registry_service.inputs import (
    FINGERPRINT,
    MRV_ID,
    Address,
    Cursor,
    Instant,
    Offset,
    Tag,
    Text,
    one_of,
)
from mrv_ml.registry_service.proofs import ChainFacts, ProofBuilder
from mrv_ml.registry_service.submission import _FINGERPRINT, _checked
from mrv_ml.registry_service.writer import SubmissionWriter
from mrv_ml.serve.csp import REGISTRY_CONNECT, page_policy
from mrv_ml.serve.static import read_page_file
from mrv_ml.storage.selection import ANCHOR_STATES, STATUSES, TRUST_NAMES, parse_trust

DEFAULT_MAX_RECORD_BYTES = 1 << 20  # a record is a few kB; its time series keeps it small

#: The refusals each path may answer (500 is on every path): the OpenAPI document's.
_ERROR_STATUSES: dict[str, tuple[int, ...]] = {
    SUBMISSIONS_PATH: (400, 401, 409, 413, 429, 503),
    PROOF_PATH: (400, 404, 409, 503),
    "/v1/records/{mrv_id}": (404, 503),
    "/v1/records": (400, 503),
    "/v1/explore": (400, 503),
    "/v1/info": (),
    "/healthz": (),
    "/readyz": (503,),
    "/metrics": (503,),
}


@dataclass
class RateLimiter:
    """A token bucket per client: ``per_second`` sustained, bursts up to ``burst``."""

    per_second: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.per_second)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return False
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget idle clients rather than grow forever
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return True


@dataclass
class ServiceConfig:
    """How the service treats requests."""

    base_url: str  # how clients reach this service (written into proofs)
    interval_s: float
    tokens: Mapping[str, str] = field(default_factory=dict)  # secret -> client name
    require_token: bool = False
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    rate_limit: RateLimiter | None = None


class ServiceState:
    """What the endpoints share: the database, the proof builder, the anchoring loop."""

    def __init__(self, db: RegistryDB, facts: ChainFacts, config: ServiceConfig,
                 anchoring: Any = None) -> None:
        self.db, self.facts, self.config = db, facts, config
        self.proofs = ProofBuilder(db, facts, config.base_url)
        self.writer = SubmissionWriter(db)  # group commit of concurrent submissions
        self.anchoring = anchoring  # AnchoringLoop or None (a process that never anchors)
        self.started_at = time.time()


def create_app(state: ServiceState) -> FastAPI:
    """The FastAPI application over ``state``."""
    app = FastAPI(title="mrv-ml registry", version=__version__,
                  description="Submit record fingerprints; fetch complete proofs that "
                              "verify against the chain without this service.")
    app.state.registry = state
    # Reads are public (the explorer and pages verifying in a reader's browser).
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"])
    app.add_middleware(ContainFailures)  # added last: the outermost
    http_errors.install(app)
    http_errors.document(app, _ERROR_STATUSES)

    @app.post(SUBMISSIONS_PATH, status_code=202, tags=["write"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": SubmissionRequest.model_json_schema()}}}},
              responses={200: {"description": "already anchored: the complete proof",
                               "model": ProofDocument},
                         202: {"description": "accepted: a pending receipt",
                               "model": ProofDocument},
                         400: {"description": "malformed body, record or signature"},
                         409: {"description": "this ID or fingerprint was submitted "
                                              "otherwise before"}})
    async def submit(request: Request) -> Response:
        client, denied = _client(request, state.config)
        if denied is not None:
            return denied
        limit = state.config.rate_limit
        if limit is not None and not limit.allow(client):
            return _error(429, "rate_limited", "too many submissions; slow down",
                          {"Retry-After": str(max(1, math.ceil(1 / limit.per_second)))})
        body = await _read_body(request, state.config.max_record_bytes + 16_384)
        if isinstance(body, Response):
            return body
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_submit, state, body, client)

    @app.get(PROOF_PATH, tags=["read"], response_model=None,
             responses={200: {"model": ProofDocument}})
    def proof(ref: Annotated[str, PathParam(pattern=f"{FINGERPRINT}|{MRV_ID}")],
              mrv_id: Annotated[str | None, Query(pattern=MRV_ID)] = None) -> Response:
        """The proof of a fingerprint (64 hex) or of an MRV ID: ``{"status", "proof"}``."""
        submissions = _submissions(state.db, ref, mrv_id)
        if isinstance(submissions, Response):
            return submissions
        return JSONResponse(state.proofs.document(submissions[0]))

    @app.get("/v1/records/{mrv_id}", tags=["read"], response_model=None,
             responses={200: {"description": "the record's RFC 8785 bytes",
                              "content": {"application/json": {"schema": {"type": "object"}}}}})
    def record(mrv_id: Annotated[str, PathParam(pattern=MRV_ID)]) -> Response:
        """A published record, exactly as its fingerprint was computed (RFC 8785 bytes)."""
        found = state.db.published(mrv_id)  # the path's pattern: only an ID gets here
        if found is None:
            return _error(404, "record_not_found", "no published record with that ID")
        return Response(found.record_json, media_type="application/json",
                        headers={"X-MRV-Fingerprint": found.fingerprint})

    @app.get("/v1/records", tags=["read"], response_model=None,
             responses={200: {"model": RecordsPage}})
    def records(experiment: Text | None = None, signer: Address | None = None,
                tag: Tag | None = Query(None, description="key or key=value"),
                since: Instant | None = None, until: Instant | None = None,
                after: Cursor | None = Query(None, description="the `next` of the previous "
                                                               "page"),
                limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        """Published records, newest first, filtered; ``next`` pages on."""
        found, next_cursor = state.db.search_published(
            experiment=experiment or None, signer=signer, tag=tag or None, since=since,
            until=until, after=after, limit=limit)
        return {"records": [_summary(r) for r in found], "next": next_cursor}

    @app.get("/v1/explore", tags=["read"], response_model=None,
             responses={200: {"model": ExplorePage}})
    def explore(experiment: Text | None = None,
                tag: Tag | None = Query(None, description="key or key=value"),
                since: Instant | None = None, until: Instant | None = None,
                status: Text | None = one_of(STATUSES, "the run's outcome"),
                anchor_state: Text | None = one_of(ANCHOR_STATES, "unanchored: pending here"),
                trust: Text | None = one_of((*TRUST_NAMES, *(t.value for t in Trust)),
                                            "the trust level of the chain"),
                sort: Text = one_of((*EXPLORE_SORTS, *(f"-{k}" for k in EXPLORE_SORTS)),
                                    "- first: descending", default="-date"),
                limit: int = Query(100, ge=1, le=500), offset: Offset = 0
                ) -> dict[str, Any]:
        """The explorer: one page of published records in the order asked, with the count
        and totals (energy, CO2e, duration) of every record the filters match."""
        from mrv_ml.registry_service.db import ExploreQuery

        # the same words as mrv serve's /api/explore (selection.RecordFilter.from_query)
        if status and status not in STATUSES:
            raise RecordError(f"status is one of {', '.join(STATUSES)}, not {status[:40]!r}")
        if anchor_state and anchor_state not in ANCHOR_STATES:
            raise RecordError(f"anchor_state is one of {', '.join(ANCHOR_STATES)}, not "
                              f"{anchor_state[:40]!r}")
        if anchor_state == "unanchored":  # none or pending: here, pending
            anchor_state = "pending"
        try:
            wanted_trust = parse_trust(trust).value if trust else None
        except ValueError as e:
            raise RecordError(str(e)) from None
        query = ExploreQuery(experiment=experiment or None, tag=tag or None, since=since,
                             until=until, status=status or None,
                             anchor_state=anchor_state or None, sort=sort, limit=limit,
                             offset=offset)
        chain_trust = _chain_trust(state.facts)
        if wanted_trust is not None and wanted_trust != chain_trust:
            query = replace(query, anchor_state="none")  # every record is on this chain
        found = state.db.explore(query)
        return {"rows": [_explore_row(r, chain_trust) for r in found.rows],
                "totals": found.totals, "count": found.totals["count"],
                "source": "registry", "trust": chain_trust}

    @app.get("/explorer", include_in_schema=False)
    def explorer_root() -> Response:
        return Response(status_code=308, headers={"Location": "/explorer/"})

    @app.get("/explorer/{name:path}", include_in_schema=False)
    def explorer_page(name: str) -> Response:
        """The dashboard's static page: the explorer over published records, and the
        record page that verifies in the reader's browser against a chain they choose."""
        return _static_page(name)

    @app.get("/v1/info", tags=["read"], response_model=None,
             responses={200: {"model": ServiceInfo}})
    def info() -> dict[str, Any]:
        """The chain, registry contract and operator this service anchors with."""
        f = state.facts
        return {"service": "mrv-ml registry", "version": __version__,
                "url": state.config.base_url, "network": f.network, "chain_id": f.chain_id,
                "contract_address": f.contract_address, "operator": f.operator,
                "registry_block": f.registry_block, "interval_s": state.config.interval_s,
                "requires_token": state.config.require_token,
                "max_record_bytes": state.config.max_record_bytes}

    @app.get("/healthz", tags=["operations"], response_model=None,
             responses={200: {"model": Health}})
    def healthz() -> dict[str, Any]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], response_model=None,
             responses={200: {"model": Health}})
    def readyz() -> Response:
        """Ready: the database answers (and the last anchoring run did not fail)."""
        try:
            state.db.ping()
        except RegistryDatabaseError as e:
            return _error(503, e.key, str(e))
        loop = state.anchoring
        if loop is not None and loop.last_error is not None:
            return _error(503, "anchoring_failing", loop.last_error)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], response_model=None,
             responses={200: {"description": "Prometheus text format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics() -> Response:
        """Prometheus metrics (the totals are the database's: every process tells the same)."""
        from mrv_ml.registry_service.metrics import render

        stats = state.db.stats()
        loop = state.anchoring
        body, content_type = render(stats, started_at=state.started_at,
                                    anchoring_failing=bool(loop is not None and loop.last_error))
        return Response(body, media_type=content_type)

    return app


def _client(request: Request, config: ServiceConfig) -> tuple[str, Response | None]:
    """(who submits, a refusal): the token's name when tokens are configured, else the IP."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if token is not None and token in config.tokens:
        return config.tokens[token], None
    if config.require_token:
        return "", _error(401, "token_required", "this registry requires a token: "
                                                 "Authorization: Bearer <token>",
                          {"WWW-Authenticate": "Bearer"})
    return (request.client.host if request.client else "unknown"), None


async def _read_body(request: Request, limit: int) -> bytes | Response:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return _error(413, "too_large", f"the body is larger than {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _error(413, "too_large", f"the body is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _submit(state: ServiceState, body: bytes, client: str) -> Response:
    from mrv_ml.record.strictjson import parse_json_strict

    data = parse_json_strict(body, "the request body")
    request = _checked(data, state.config.max_record_bytes)
    result = state.writer.submit(fingerprint=request["fingerprint"], mrv_id=request["mrv_id"],
                                 signer=request.get("signer"),
                                 signature=request.get("signature"), client=client,
                                 record_json=request.get("record_json"),
                                 record_fields=request.get("record_fields"))
    document = state.proofs.document_for(result.submission, result.batch)
    if result.record_published is False:
        document["record_published"] = False
        document["note"] = ("another record was published under this ID first; this "
                            "fingerprint is anchored but the record is not published")
    return JSONResponse(document, status_code=200 if document["status"] == "anchored" else 202)


def _looks_like_id(ref: str) -> bool:
    from mrv_ml.record.schema import MRV_ID_PATTERN

    return MRV_ID_PATTERN.fullmatch(ref) is not None


def _submissions(db: RegistryDB, ref: str, mrv_id: str | None) -> list[Submission] | Response:
    if _FINGERPRINT.fullmatch(ref):
        found = db.submissions_for(fingerprint=ref)
        if mrv_id is not None:
            found = [s for s in found if s.mrv_id == mrv_id]
        elif len({s.mrv_id for s in found}) > 1:
            return _error(409, "ambiguous", "several records have this fingerprint: add "
                                            "?mrv_id=")
    elif _looks_like_id(ref):
        found = db.submissions_for(mrv_id=ref)
        if len({s.fingerprint for s in found}) > 1:
            return _error(409, "ambiguous", "several fingerprints were submitted under this "
                                            "ID: ask by fingerprint")
    else:
        return _error(400, "bad_reference", "ask by fingerprint (64 hex) or MRV ID")
    if not found:
        return _error(404, "not_found", "nothing was submitted under that reference")
    return found


def _chain_trust(facts: ChainFacts) -> str:
    """The registry chain's trust level: what every record anchored here can be worth."""
    from mrv_ml.networks import PUBLIC_CHAIN_IDS, is_dev_address
    from mrv_ml.record.trust import trust_of

    kind = "public" if facts.chain_id in PUBLIC_CHAIN_IDS else "dev"
    return trust_of(kind, is_dev_address(facts.operator)).value


def _explore_row(row: Mapping[str, Any], trust: str) -> dict[str, Any]:
    started = row["started_at"]
    return {"mrv_id": row["mrv_id"], "fingerprint": row["fingerprint"],
            "experiment": row["experiment"], "model_name": row["model_name"],
            "dataset_name": row["dataset_name"], "status": row["status"],
            "start_time": started.isoformat().replace("+00:00", "Z") if started else None,
            "duration_s": row["duration_s"], "energy_kwh": row["energy_kwh"],
            "co2_kg": row["co2_kg"], "tags": row["tags"], "signer": row["signer"],
            "anchor_state": row["anchor_state"], "trust": trust}


def page_content_security_policy() -> str:
    """The page under ``/explorer/``: only this service's files and API, and whatever chain
    endpoint (http or https) the reader types in to verify against."""
    return page_policy(REGISTRY_CONNECT)


def _static_page(name: str) -> Response:
    page = read_page_file(name)
    if page is None:
        return _error(404, "not_found", "no such file")
    return Response(page.body, media_type=page.content_type, headers={
        "Content-Security-Policy": page_content_security_policy(),
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache"})


def _summary(r: PublishedRecord) -> dict[str, Any]:
    return {"mrv_id": r.mrv_id, "fingerprint": r.fingerprint, "experiment": r.experiment,
            "model_name": r.model_name, "tags": r.tags, "signer": r.signer,
            "started_at": r.started_at.isoformat() if r.started_at else None,
            "energy_kwh": r.energy_kwh, "co2_kg": r.co2_kg,
            "published_at": r.published_at.isoformat(),
            "links": {"record": f"/v1/records/{r.mrv_id}",
                      "proof": proof_path(r.fingerprint, r.mrv_id)}}
