"""A JSON-RPC proxy that behaves like a public provider, in front of a real node (anvil).

``ProviderProxy(upstream_url, max_log_range=10_000)`` listens on loopback and forwards every
request, but, as hosted providers do:

- refuses ``eth_getLogs`` over more than ``max_log_range`` blocks (JSON-RPC error -32005);
- answers HTTP 429 to the first ``rate_limited`` requests, and HTTP 503 to every
  ``unavailable_every``-th request after that (0: never), and to all when ``down``;
- lets a test rewrite answers (``rewrite(method, params, result) -> result``): a lying node.

It records what it saw (``methods``, ``log_ranges``) so tests can check how a client asked.
Only loopback, bounded by the test that starts it.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ProviderProxy:
    def __init__(self, upstream_url: str, *, max_log_range: int = 10_000, rate_limited: int = 0,
                 unavailable_every: int = 0,
                 rewrite: Callable[[str, list[Any], Any], Any] | None = None) -> None:
        self.upstream_url = upstream_url
        self.max_log_range = max_log_range
        self.rate_limited = rate_limited
        self.unavailable_every = unavailable_every
        self.rewrite = rewrite
        self.down = False
        self.requests = 0
        self.methods: list[str] = []
        self.log_ranges: list[tuple[int, int]] = []
        self.refused_ranges = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = proxy.handle(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ProviderProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _upstream(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.upstream_url, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def _block(self, tag: Any) -> int:
        if isinstance(tag, str) and tag.startswith("0x"):
            return int(tag, 16)
        latest = self._upstream({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber",
                                 "params": []})
        return int(latest["result"], 16) if tag in (None, "latest") else 0

    def handle(self, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.requests += 1
            n = self.requests
        if self.down or n <= self.rate_limited:
            return (503 if self.down else 429), b'{"error": "slow down"}'
        if self.unavailable_every and n % self.unavailable_every == 0:
            return 503, b'{"error": "upstream unavailable"}'
        payload = json.loads(body)
        method, params = payload.get("method", ""), payload.get("params") or []
        with self._lock:
            self.methods.append(method)
        if method == "eth_getLogs" and params:
            low, high = self._block(params[0].get("fromBlock")), self._block(
                params[0].get("toBlock"))
            with self._lock:
                self.log_ranges.append((low, high))
            if high - low + 1 > self.max_log_range:
                with self._lock:
                    self.refused_ranges += 1
                error = {"code": -32005, "message": f"query exceeds max block range "
                                                    f"{self.max_log_range}"}
                return 200, json.dumps({"jsonrpc": "2.0", "id": payload.get("id"),
                                        "error": error}).encode()
        answer = self._upstream(payload)
        if self.rewrite is not None and "result" in answer:
            answer["result"] = self.rewrite(method, params, answer["result"])
        return 200, json.dumps(answer).encode()
