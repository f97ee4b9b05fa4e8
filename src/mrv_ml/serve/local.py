"""``mrv serve``: the static verification dashboard, the local store API and a read-only
JSON-RPC bridge to the embedded local chain (stdlib ``ThreadingHTTPServer``, no framework).
The bridge, and the few read methods it lets through, is :mod:`mrv_ml.serve.rpc_proxy`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mrv_ml.chain.localchain import LOCAL_CHAIN_ID, LocalChain
from mrv_ml.config import Settings
from mrv_ml.errors import ConfigError, MRVError, RecordError, RecordNotFoundError
from mrv_ml.record.strictjson import parse_json_strict
from mrv_ml.serve.csp import LOCAL_CONNECT, page_policy
from mrv_ml.serve.rpc_proxy import RpcBridge, rpc_error
from mrv_ml.serve.static import DASHBOARD_DIR, read_page_file
from mrv_ml.storage.store import RecordStore, RecordSummary

log = logging.getLogger("mrv_ml.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750
MAX_RPC_BODY_BYTES = 256 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_ID_CHARS = frozenset("MRV-0123456789abcdef")
_PREFIX_RE = re.compile(r"MRV-[0-9a-f-]{1,36}")


def content_security_policy() -> str:
    """Only our own files. The page reaches chains through this server's bridge, and may
    also reach a node on this machine (anvil, a dev chain) in its manual RPC mode."""
    return page_policy(LOCAL_CONNECT)


class DashboardServer(RpcBridge, ThreadingHTTPServer):
    """Holds the settings, the store and (for the local network) the chain."""

    daemon_threads = True

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings = settings
        self.store = RecordStore(settings.data_dir)
        self.chain: LocalChain | None = None
        self.upstream: str | None = None  # an RPC network's endpoint: never sent to the page
        self._listing: tuple[tuple[int, int], float, list[RecordSummary]] | None = None
        self._listing_lock = threading.Lock()
        self.config = self._build_config()
        # Bound to loopback, only loopback names may be asked for (no DNS rebinding).
        self.allowed_hosts = LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else None
        super().__init__((host, port), _Handler)

    def listing(self) -> list[RecordSummary]:
        """The store's summaries for the explorer, listed again when the data directory
        changed (a record or sidecar written or removed) or LISTING_TTL_S passed (a file
        edited in place): a page flip through 10,000 runs must not re-list them all."""
        try:
            st = self.store.root.stat()
            key: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except OSError:
            key = None
        now = time.monotonic()
        with self._listing_lock:
            cached = self._listing
            if key is not None and cached is not None and cached[0] == key \
                    and now - cached[1] < LISTING_TTL_S:
                return cached[2]
            summaries = self.store.list()
            try:  # list() may have rewritten the index: key on the directory after it
                st = self.store.root.stat()
                self._listing = ((st.st_mtime_ns, st.st_ino), now, summaries)
            except OSError:
                self._listing = None
            return summaries

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/"

    def _build_config(self) -> dict[str, Any]:
        s = self.settings
        if s.network == "local":
            self.chain = LocalChain.for_data_dir(Path(s.data_dir))
            with self.chain.session() as w3:
                address = self.chain.registry_address(w3)
            return {"network": "local", "chain_id": LOCAL_CHAIN_ID, "registry_address": address,
                    "rpc_path": "/rpc", "rpc_url": None, "explorer_url": None, "bridge": True}
        from mrv_ml.chain.deployments import read_deployments
        from mrv_ml.networks import resolve_network

        network, rpc_url = resolve_network(s)
        registry: str | None = s.contract_address
        if registry is None and network.chain_id is not None:
            entry = read_deployments(Path(s.data_dir)).get(str(network.chain_id))
            registry = entry.get("address") if isinstance(entry, dict) else None
        # The page asks the node through this server's read-only bridge: the endpoint (and
        # any key in it) never reaches the page, its headers or its links.
        self.upstream = rpc_url
        return {"network": network.name, "chain_id": network.chain_id,
                "registry_address": registry, "rpc_path": "/rpc", "rpc_url": None,
                "explorer_url": _explorer_base(network.explorer_tx_url), "bridge": True}


def _explorer_base(template: str | None) -> str | None:
    """``https://x/tx/{tx}`` -> ``https://x`` (the page appends ``/tx/<hash>``)."""
    if not template or not template.endswith("/tx/{tx}"):
        return None
    return template[: -len("/tx/{tx}")]


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if hasattr(value, "hex"):
        return value.hex()
    return str(value)


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "mrv-serve"
    sys_version = ""
    timeout = 30  # seconds a connection may sit idle: idle sockets must not pin threads

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints the URL
        return

    def _headers(self, status: int, ctype: str, length: int) -> None:
        self._answered = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", content_security_policy())
        self.end_headers()

    def _send_json(self, status: int, data: Any) -> None:
        body = json.dumps(data, default=_json_default).encode("utf-8")
        self._headers(status, "application/json", len(body))
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _host_allowed(self) -> bool:
        allowed = self.server.allowed_hosts
        if allowed is None:
            return True
        host = urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        return host in allowed

    def do_GET(self) -> None:
        self._contained(self._get)

    def do_POST(self) -> None:
        self._contained(self._post)

    def _contained(self, answer: Callable[[], None]) -> None:
        """``answer`` the request; anything it did not expect is one 500 naming a request
        id, logged once with the traceback (never sent), or a closed connection when the
        answer had already begun."""
        self._answered = False
        try:
            answer()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left: nobody to answer
        except Exception as e:
            request_id = uuid.uuid4().hex
            log.error("mrv serve: unexpected failure answering %s %s (request %s)",
                      self.command, self.path[:200], request_id, exc_info=e)
            self.close_connection = True
            if not self._answered:
                self._error(500, f"an unexpected failure; this server's log names request "
                                 f"{request_id}")

    def _get(self) -> None:
        if not self._host_allowed():
            return self._error(421, "this server answers only to its loopback names")
        path = unquote(urlsplit(self.path).path)
        if "\x00" in path:  # would otherwise reach the file system and raise
            return self._error(400, "bad path")
        if path == "/api/config":
            return self._send_json(200, self.server.config)
        if path == "/api/explore":
            return self._explore(urlsplit(self.path).query)
        if path.startswith("/api/resolve/"):
            return self._resolve(path[len("/api/resolve/"):])
        if path == "/api/records":
            return self._send_json(200, [s.to_dict() | {"path": None}
                                         for s in self.server.store.list()])
        if path.startswith("/api/records/"):
            return self._record(path[len("/api/records/"):])
        return self._static(path)

    def _record(self, rest: str) -> None:
        mrv_id, _, tail = rest.partition("/")
        if not mrv_id or not set(mrv_id) <= _ID_CHARS or tail not in ("", "proof"):
            return self._error(404, "not found")
        try:
            if tail == "proof":
                proof = self.server.store.load_proof(mrv_id)
                if proof is None:
                    return self._error(404, f"no proof sidecar for {mrv_id}")
                return self._send_json(200, proof.to_dict())
            return self._send_json(200, self.server.store.load(mrv_id))
        except RecordNotFoundError:
            return self._error(404, f"no record {mrv_id} in this store")  # never the path
        except MRVError as e:
            return self._error(422, str(e))

    def _explore(self, query: str) -> None:
        try:
            asked = parse_explore_query(parse_qs(query, keep_blank_values=False))
            return self._send_json(200, explore_store(self.server.store, asked,
                                                      self.server.listing()))
        except RecordError as e:
            return self._error(400, str(e))
        except MRVError as e:
            return self._error(422, str(e))

    def _resolve(self, ref: str) -> None:
        """A unique ID prefix to the full ID (hex and dashes only: never a path)."""
        if not _PREFIX_RE.fullmatch(ref):
            return self._error(404, "not found")
        store = self.server.store
        try:
            path = store.resolve(ref)
        except RecordNotFoundError:
            return self._error(404, f"no record matching {ref} in this store")
        except MRVError as e:
            return self._error(409, str(e))  # ambiguous: the message names a few
        if path.parent.resolve() != store.root.resolve():  # a file of that name elsewhere
            return self._error(404, f"no record matching {ref} in this store")
        return self._send_json(200, {"mrv_id": path.name[:-len(".json")]})

    def _static(self, path: str) -> None:
        page = read_page_file(path)
        if page is None:
            return self._error(404, "not found")
        self._headers(200, page.content_type, len(page.body))
        self.wfile.write(page.body)

    def _post(self) -> None:
        if not self._host_allowed():
            return self._error(421, "this server answers only to its loopback names")
        if urlsplit(self.path).path != "/rpc":
            return self._error(404, "not found")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(411, "Content-Length required")
        if length < 0:
            self.close_connection = True
            return self._send_json(400, rpc_error(None, -32600, "negative Content-Length"))
        if length > MAX_RPC_BODY_BYTES:
            self.close_connection = True
            return self._send_json(413, rpc_error(None, -32600,
                                                  f"request larger than {MAX_RPC_BODY_BYTES} bytes"))
        raw = self.rfile.read(length)
        try:
            # The strict reader bounds nesting before parsing (256 levels): the C decoder
            # must never recurse on a hostile body.
            payload = parse_json_strict(raw, "request", check_duplicates=False)
        except RecordError as e:
            return self._send_json(200, rpc_error(None, -32700, f"parse error: {e.key}"))
        return self._send_json(200, self.server.rpc(payload))


# --- the explorer over the local store (GET /api/explore) ---------------------------------

EXPLORE_SORTS = ("date", "energy", "co2", "duration", "experiment")  # as the registry's
EXPLORE_FILTERS = ("experiment", "tag", "since", "until", "status", "anchor_state", "trust")
DEFAULT_EXPLORE_LIMIT = 100
MAX_EXPLORE_LIMIT = 500
LISTING_TTL_S = 10.0  # at most this stale, for a record file edited in place


@dataclass(frozen=True)
class ExploreRequest:
    """What the page asks of ``/api/explore``: the filters (selection.RecordFilter's
    fields), the order (a key of EXPLORE_SORTS, ``-`` first for descending) and a page."""

    filters: dict[str, str]
    sort: str = "-date"
    limit: int = DEFAULT_EXPLORE_LIMIT
    offset: int = 0


def parse_explore_query(params: Mapping[str, list[str]]) -> ExploreRequest:
    """The query string of ``/api/explore``; RecordError (400) names what is wrong."""
    unknown = set(params) - {*EXPLORE_FILTERS, "sort", "limit", "offset"}
    if unknown:
        raise RecordError(f"unknown parameter(s): {', '.join(sorted(unknown))[:200]}")
    one = {k: v[-1] for k, v in params.items() if v and v[-1] != ""}
    sort = one.pop("sort", "-date")
    if sort.startswith("--") or sort.lstrip("-") not in EXPLORE_SORTS:
        raise RecordError(f"sort is one of {', '.join(EXPLORE_SORTS)} (with - first for "
                          f"descending), not {sort[:40]!r}")

    def number(name: str, default: int, low: int, high: int) -> int:
        text = one.pop(name, None)
        if text is None:
            return default
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise RecordError(f"{name} must be a whole number from {low} to {high}")
        return int(text)

    limit = number("limit", DEFAULT_EXPLORE_LIMIT, 1, MAX_EXPLORE_LIMIT)
    offset = number("offset", 0, 0, 10**9)
    return ExploreRequest(filters=one, sort=sort, limit=limit, offset=offset)


def _trust_of(s: RecordSummary) -> str | None:
    """What the record's anchored proof is worth before any verification (the summary's,
    from verdict.proof_trust), or None."""
    trust = getattr(s, "trust", None)
    return None if trust is None else str(trust)


def _sort_key(name: str) -> Any:
    def key(s: Any) -> tuple[bool, Any]:
        if name == "experiment":
            value: Any = s.experiment
        elif name == "date":
            value = _start_ts(s.start_time)
        else:
            value = {"energy": s.energy_kwh, "co2": s.co2_kg, "duration": s.duration_s}[name]
            value = value if isinstance(value, int | float) and math.isfinite(value) else None
        return value is None, value
    return key


def _start_ts(text: str | None) -> float | None:
    from datetime import datetime

    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def explore_store(store: RecordStore, asked: ExploreRequest,
                  listing: list[RecordSummary] | None = None) -> dict[str, Any]:
    """``{"rows", "totals", "count"}`` over the store: the filter and the totals are
    selection's (RecordFilter.matches, totals), the order and the page are asked."""
    from mrv_ml.storage.selection import RecordFilter, totals

    record_filter = RecordFilter.from_query(asked.filters)
    chosen = [s for s in (listing if listing is not None else store.list())
              if record_filter.matches(s)]
    name, descending = asked.sort.lstrip("-"), asked.sort.startswith("-")
    chosen.sort(key=lambda s: s.mrv_id)  # ties in a stable order
    key = _sort_key(name)
    present = [s for s in chosen if not key(s)[0]]
    missing = [s for s in chosen if key(s)[0]]  # no figure: last, whichever the order
    present.sort(key=lambda s: key(s)[1], reverse=descending)
    ordered = present + missing
    page = ordered[asked.offset:asked.offset + asked.limit]
    # selection.totals over the summaries' figures as plain mappings (its summary form):
    # the same rules, without copying every dataclass
    summed = totals({"status": s.status, "energy_kwh": s.energy_kwh, "co2_kg": s.co2_kg,
                     "duration_s": s.duration_s} for s in chosen).to_dict()
    summed.pop("component_energy_kwh", None)  # summaries never carry it
    return {"rows": [_explore_row(s) for s in page], "totals": summed,
            "count": len(chosen), "source": "store"}


def _explore_row(s: RecordSummary) -> dict[str, Any]:
    row = {k: v for k, v in s.to_dict().items() if k != "path"}
    row["trust"] = _trust_of(s)
    return row


def make_server(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
                ) -> DashboardServer:
    """A bound server (port 0 picks a free one); call ``serve_forever()`` on it."""
    try:
        return DashboardServer(settings, host, port)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e


def export_static(directory: Path) -> Path:
    """Copy the static dashboard into ``directory`` (for any static host); returns it."""
    directory = Path(directory)
    try:
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(f"{directory} is not empty; export into a new or empty folder")
        shutil.copytree(DASHBOARD_DIR, directory, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    except OSError as e:
        raise ConfigError(f"cannot export the dashboard to {directory}: {e}") from e
    return directory


__all__ = ["DASHBOARD_DIR", "DashboardServer", "export_static", "make_server"]
