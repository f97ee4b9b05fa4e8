"""How the registry's HTTP API fails: always ``{"error": {"key", "message"}}``, never a
traceback in a body.

- :class:`ContainFailures` (the outermost ASGI middleware) gives every request an id
  (``X-Request-ID``), and turns anything a route did not expect into one 500
  ``internal_error`` naming that id, logged once with the traceback: the operator finds
  the log line, the client sees no internals.
- :func:`install` routes FastAPI's own refusals (query validation, unknown paths, wrong
  methods) through the same body, as 400/404/405.
- :func:`document` rewrites the OpenAPI document so it states what the API really answers:
  the error body for every 4xx/5xx, and 400 (not FastAPI's default 422) for bad input.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mrv_ml.anchoring.wire import error_body
from mrv_ml.errors import MRVError, RecordError, RegistryConflictError, RegistryDatabaseError

log = logging.getLogger("mrv_ml.registry_service")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"


class ErrorDetail(BaseModel):
    key: str = Field(description="A stable word for the kind of refusal, for programs")
    message: str = Field(description="One line for people")
    request_id: str | None = Field(None, description="Only on 500: the id the operator's "
                                                     "log names")


class ErrorBody(BaseModel):
    """Every refusal's body."""

    error: ErrorDetail


#: What each status means on this API, for the OpenAPI document.
STATUS_MEANINGS = {
    400: "bad input: a malformed body, record, signature, query or cursor",
    401: "a token is required",
    404: "not found",
    405: "method not allowed",
    409: "ambiguous or conflicting",
    413: "body too large",
    429: "rate limit",
    500: "an unexpected failure (the body names the request id of the operator's log)",
    503: "the database, or anchoring, is unavailable",
}


def error_response(status: int, key: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(key, message), status_code=status, headers=headers)


def status_of(e: MRVError) -> int:
    """The HTTP status of one of mrv-ml's own errors."""
    if isinstance(e, RegistryDatabaseError):
        return 503
    if isinstance(e, RegistryConflictError):
        return 409
    if isinstance(e, RecordError):
        return 400
    return 500


def _validation_message(e: RequestValidationError) -> str:
    """``since: <pydantic's reason>``, of the first problem: one line, the input not echoed
    (it may be kilobytes, or hold control characters)."""
    errors = e.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "the request"
    if first.get("type") == "string_pattern_mismatch":  # the patterns of .inputs
        reason = ("a character or form this parameter does not take (a control "
                  "character?); its pattern is in /openapi.json")
    else:
        reason = str(first.get("msg", "not valid")).removeprefix("Value error, ")
        reason = reason.replace("\n", " ")[:200]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {reason}{more}"


def install(app: FastAPI) -> None:
    """Every refusal FastAPI or mrv-ml raises answers in the service's error body."""

    @app.exception_handler(MRVError)
    def _mrv_error(request: Request, e: MRVError) -> JSONResponse:
        status = status_of(e)
        if status == 500:  # one of ours, but not one a request should cause
            return _internal(request.scope, e)
        return error_response(status, e.key, str(e))

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return error_response(400, "bad_request", _validation_message(e))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        key = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return error_response(e.status_code, key, str(e.detail)[:200],
                              dict(e.headers) if e.headers else None)


def _request_id(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex
    return str(state["request_id"])


def _internal(scope: Scope, e: BaseException) -> JSONResponse:
    request_id = _request_id(scope)
    log.error("unexpected failure answering %s %s", scope.get("method"),
              str(scope.get("path", ""))[:200], exc_info=e,
              extra={"request_id": request_id})
    body = error_body("internal_error", f"an unexpected failure; the operator's log names "
                                        f"request {request_id}")
    body["error"]["request_id"] = request_id
    return JSONResponse(body, status_code=500)


class ContainFailures:
    """The outermost middleware: a request id on every answer; anything unexpected becomes
    one logged 500 in the error body (or, when the answer had already begun, a closed
    connection: never a second start)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = _request_id(scope)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (REQUEST_ID_HEADER.lower().encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as e:
            if started:
                log.error("failure after the answer began (%s)", request_id, exc_info=e)
                return
            await _internal(scope, e)(scope, receive, send_with_id)


def document(app: FastAPI, statuses: dict[str, tuple[int, ...]]) -> None:
    """The OpenAPI document names, for each path (``statuses``: path -> the statuses its
    operations may answer besides their successes), the error body of each status; FastAPI's
    own 422 goes, and every operation with inputs (those FastAPI gave a 422) answers 400."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version,
                           description=app.description, routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas.update(_schemas_of(ErrorBody))
        ref = {"$ref": "#/components/schemas/ErrorBody"}
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                validated = responses.pop("422", None) is not None  # it has inputs
                for status in (*statuses.get(path, ()), *((400,) if validated else ()), 500):
                    responses[str(status)] = {
                        "description": responses.get(str(status), {}).get(
                            "description", STATUS_MEANINGS[status]),
                        "content": {"application/json": {"schema": ref}}}
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _schemas_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {model.__name__: schema, **definitions}
