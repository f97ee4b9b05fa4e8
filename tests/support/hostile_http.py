"""The hostile HTTP corpus: requests an attacker sends the registry service
(``mrv registry serve``) and ``mrv serve``, each sent as raw bytes on a socket (no client
library tidies the path), and the rules every answer must keep.

Plain data and a sender (mrv-ml only hashes the sample records), so
``scripts/hostile_corpus.py`` can run it against another checkout for the before/after
figures.

The rules (:func:`judge`): never a 5xx; a refusal is a 4xx whose body is the server's own
error shape (the registry's ``{"error": {"key", "message"}}``, ``mrv serve``'s
``{"error": message}``); no traceback or file path in any body.
"""

from __future__ import annotations

import base64
import http.client
import json
from dataclasses import dataclass, field

from tests.support.records import make_sample_record


@dataclass(frozen=True)
class HostileRequest:
    name: str
    method: str
    target: str  # the raw request target: path and query, sent as is
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Not valid HTTP (a Content-Length that is no number, a request line of 100 kB): the
    #: HTTP server refuses it before the application sees it, in its own words (a 4xx).
    malformed_http: bool = False


def _get(name: str, target: str, malformed_http: bool = False) -> HostileRequest:
    return HostileRequest(name, "GET", target, malformed_http=malformed_http)


def _post(name: str, body: bytes | str, malformed_http: bool = False, **headers: str
          ) -> HostileRequest:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return HostileRequest(name, "POST", "/v1/submissions", data,
                          {"Content-Type": "application/json", **headers},
                          malformed_http=malformed_http)


def _cursor(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _record_with(path: str, value: object) -> bytes:
    """A valid submission publishing a sample record with ``path`` set to ``value``."""
    from mrv_ml.record.hashing import compute_hash

    record = make_sample_record()
    node = record
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return json.dumps({"fingerprint": compute_hash(record), "mrv_id": record["mrv_id"],
                       "record": record}).encode()


_ID = "MRV-0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
_DATES = ("99999-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-10:00",
          "0001-01-01T00:00:00%2B14:00", "1e300", "-1", "99999999999999999",
          "2026-13-01T00:00:00Z", "2026-01-01T00:00:00%2B99:00", "%00", "%ff")
_OFFSETS = (str(2**63), str(2**64), "9" * 30, "-1", "%C2%B2", "1e3", "%D9%A3")
_CURSORS = (_cursor(["9999-12-31T23:59:59-10:00", _ID]), _cursor(["0001-01-01T00:00:00+14:00",
            _ID]), _cursor([1e300, 1]), _cursor(["2026-01-01T00:00:00+00:00", "a\x00b"]),
            _cursor({"a": 1}), _cursor(b"\xff\xfe"), _cursor("1" * 5000), "A" * 5000, "%00",
            "!!!!")
_TEXT_PARAMETERS = ("experiment", "tag", "signer", "status", "anchor_state", "trust", "sort")

REGISTRY_REQUESTS: tuple[HostileRequest, ...] = (
    # bodies
    _post("an integer of 5,000 digits", '{"fingerprint": ' + "1" * 5000 + ', "mrv_id": "x"}'),
    _post("an integer of 5,000 digits in the record",
          _record_with("training.epochs", 0).replace(b'"epochs": 0', b'"epochs": ' + b"9" * 5000)),
    _post("a float beyond double", '{"fingerprint": 1e999, "mrv_id": "x"}'),
    _post("nested 100,000 deep", "[" * 100_000 + "]" * 100_000),
    _post("invalid UTF-8", b'{"fingerprint": "\xff\xfe"}'),
    _post("a lone surrogate", '{"fingerprint": "\\ud800", "mrv_id": "x"}'),
    _post("a byte-order mark", b'\xef\xbb\xbf{"fingerprint": "a"}'),
    _post("duplicate keys", '{"fingerprint": "a", "fingerprint": "b"}'),
    _post("NaN", '{"fingerprint": NaN}'),
    _post("an array", "[1, 2]"),
    _post("a string", '"a"'),
    _post("empty", b""),
    _post("not JSON", b"\x00\x01\x02"),
    _post("content-length not a number", b"{}", True, **{"Content-Length": "abc"}),
    _post("content-length huge", b"{}", True, **{"Content-Length": str(2**70)}),
    _post("a NUL in the experiment's name (PostgreSQL's text)", _record_with("experiment.name",
                                                                             "a\x00b")),
    _post("a NUL in a tag's key", _record_with("experiment.tags", {"k\x00": "v"})),
    _post("a NUL in a tag's value", _record_with("experiment.tags", {"k": "v\x00"})),
    _post("a NUL in the model's name", _record_with("experiment.model_name", "m\x00")),
    _post("a NUL in the mrv_id", '{"fingerprint": "' + "a" * 64 + '", "mrv_id": "MRV-\\u0000"}'),
    _post("a signature of 5,000 hex digits", '{"fingerprint": "' + "a" * 64 + '", "mrv_id": "'
          + _ID + '", "signer": "0x' + "1" * 40 + '", "signature": "0x' + "f" * 5000 + '"}'),
    # dates, offsets, limits, cursors
    *(_get(f"records {p}={d}", f"/v1/records?{p}={d}") for p in ("since", "until")
      for d in _DATES),
    *(_get(f"explore {p}={d}", f"/v1/explore?{p}={d}") for p in ("since", "until")
      for d in _DATES),
    *(_get(f"explore offset={o[:12]}", f"/v1/explore?offset={o}") for o in _OFFSETS),
    *(_get(f"{path} limit={n}", f"{path}?limit={n}") for path in ("/v1/records", "/v1/explore")
      for n in ("0", "501", str(2**64), "%C2%B2")),
    *(_get(f"cursor {c[:16]}", f"/v1/records?after={c}") for c in _CURSORS),
    # control characters in text
    *(_get(f"records {p} with a NUL", f"/v1/records?{p}=a%00b") for p in ("experiment", "tag",
                                                                         "signer")),
    *(_get(f"explore {p} with a NUL", f"/v1/explore?{p}=a%00b") for p in _TEXT_PARAMETERS),
    *(_get(f"explore {p} of 100,000 chars", f"/v1/explore?{p}={'a' * 100_000}", True)
      for p in ("experiment", "tag")),
    *(_get(f"explore {p} of 5,000 chars", f"/v1/explore?{p}={'a' * 5_000}")
      for p in ("experiment", "tag")),
    _get("explore tag with DEL", "/v1/explore?tag=%7F"),
    _get("explore with a bare date", "/v1/explore?since=2026-01-01"),
    # references
    _get("proof ref with a NUL", "/v1/proofs/" + "a" * 63 + "%00"),
    _get("proof ref of 5,000 chars", "/v1/proofs/" + "a" * 5000),
    _get("proof mrv_id with a NUL", "/v1/proofs/" + "a" * 64 + "?mrv_id=MRV-%00"),
    _get("record id with a NUL", "/v1/records/MRV-%00"),
    _get("record id of 5,000 chars", "/v1/records/" + "a" * 5000),
    # the page's files
    _get("explorer index.html%00.js", "/explorer/index.html%00.js"),
    _get("explorer 40 nested segments", "/explorer/" + "a/" * 40),
    _get("explorer a 300-char name", "/explorer/" + "a" * 300),
    _get("explorer 30 segments of 200 chars", "/explorer/" + ("a" * 200 + "/") * 30),
    _get("explorer ../", "/explorer/../../../../etc/passwd"),
    _get("explorer %2e%2e", "/explorer/%2e%2e/%2e%2e/registry_service/app.py"),
    _get("explorer %ff", "/explorer/%ff%fe"),
    # methods and paths
    HostileRequest("DELETE a record", "DELETE", "/v1/records/" + _ID),
    HostileRequest("PUT a submission", "PUT", "/v1/submissions", b"{}"),
    _get("an unknown path", "/v1/nope"),
    _get("a query of 2,000 parameters", "/v1/records?" + "a=1&" * 2000),
)

SERVE_REQUESTS: tuple[HostileRequest, ...] = (
    *(_get(f"explore {p}={d}", f"/api/explore?{p}={d}") for p in ("since", "until")
      for d in _DATES),
    *(_get(f"explore offset={o[:12]}", f"/api/explore?offset={o}") for o in _OFFSETS),
    *(_get(f"explore limit={n}", f"/api/explore?limit={n}") for n in ("0", "501", "%C2%B2",
                                                                       "%D9%A3")),
    *(_get(f"explore {p} with a NUL", f"/api/explore?{p}=a%00b") for p in _TEXT_PARAMETERS),
    _get("explore tag of 100,000 chars", "/api/explore?tag=" + "a" * 100_000, True),
    _get("explore tag of 5,000 chars", "/api/explore?tag=" + "a" * 5_000),
    _get("a query of 2,000 parameters", "/api/explore?" + "a=1&" * 2000),
    _get("record id with a NUL", "/api/records/MRV-%00"),
    _get("record id of 300 chars", "/api/records/" + "a" * 300),
    _get("record proof of an unknown id", f"/api/records/{_ID}/proof"),
    _get("resolve 300 chars", "/api/resolve/" + "a" * 300),
    _get("resolve %ff", "/api/resolve/%ff"),
    _get("a 300-char file name", "/" + "a" * 300),
    _get("30 segments of 200 chars", "/" + ("a" * 200 + "/") * 30),
    _get("index.html%00.js", "/index.html%00.js"),
    _get("../", "/../../../../etc/passwd"),
    _get("%2e%2e", "/%2e%2e/%2e%2e/serve/local.py"),
    HostileRequest("rpc body not JSON", "POST", "/rpc", b"\xff\x00",
                   {"Content-Type": "application/json"}),
    HostileRequest("rpc nested 100,000 deep", "POST", "/rpc", b"[" * 100_000 + b"]" * 100_000,
                   {"Content-Type": "application/json"}),
    HostileRequest("rpc content-length negative", "POST", "/rpc", b"{}",
                   {"Content-Length": "-5"}),
)


def send(base_url: str, request: HostileRequest, timeout: float = 30
         ) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; (status, headers, body). Status 0: the connection closed
    without an answer."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest(request.method, request.target, skip_accept_encoding=True)
        headers = dict(request.headers)
        if request.body is not None:
            headers.setdefault("Content-Length", str(len(request.body)))
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(request.body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return 0, {}, b""
    finally:
        conn.close()


def judge(request: HostileRequest, status: int, body: bytes, shape: str) -> list[str]:
    """How the answer to ``request`` falls short (``shape``: ``"registry"`` or
    ``"serve"``)."""
    problems = []
    if status == 0:
        problems.append("no answer (connection closed)")
    elif status >= 500:
        problems.append(f"status {status}")
    text = body.decode("utf-8", "replace")
    if "Traceback" in text or 'File "/' in text:
        problems.append("a traceback in the body")
    if request.malformed_http:
        if not 400 <= status < 500:
            problems.append(f"status {status} for a request that is not HTTP")
    elif 400 <= status < 600:
        try:
            error = json.loads(body)["error"]
            if shape == "registry" and not (isinstance(error, dict) and {"key", "message"}
                                            <= set(error)):
                problems.append(f"not the error shape: {text[:80]}")
            if shape == "serve" and request.target == "/rpc":  # JSON-RPC's own error
                if not isinstance(error, dict) or "code" not in error:
                    problems.append(f"not a JSON-RPC error: {text[:80]}")
            elif shape == "serve" and not isinstance(error, str):
                problems.append(f"not the error shape: {text[:80]}")
        except (ValueError, KeyError, TypeError):
            problems.append(f"not a JSON error body: {text[:80]}")
    return problems
