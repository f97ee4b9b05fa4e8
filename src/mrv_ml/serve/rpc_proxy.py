"""The read-only JSON-RPC bridge of ``mrv serve``: the page's chain requests answered by the
embedded local chain, or forwarded to an RPC network's node whose endpoint the page never
sees.

The bridge forwards only an allowlist of read methods: nothing that signs or sends a
transaction can pass through it, so exposing the page cannot spend the dev accounts' funds.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

from eth_utils import to_checksum_address

from mrv_ml.chain.localchain import LocalChain
from mrv_ml.errors import MRVError, RecordError
from mrv_ml.record.strictjson import parse_json_strict

__all__ = ["MAX_RPC_BATCH", "RPC_ALLOWLIST", "RpcBridge", "rpc_error"]

MAX_RPC_BATCH = 100

RPC_ALLOWLIST = frozenset({
    "eth_chainId", "net_version", "eth_blockNumber", "eth_call", "eth_getLogs", "eth_getCode",
    "eth_getBlockByNumber", "eth_getBlockByHash", "eth_getTransactionByHash",
    "eth_getTransactionReceipt", "web3_clientVersion",
})

UPSTREAM_TIMEOUT_S = 10.0
MAX_UPSTREAM_ANSWER_BYTES = 8 * 1024 * 1024


def rpc_error(req_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}


class RpcBridge:
    """The bridge's answers, for a server that sets ``chain`` (the local network) or
    ``upstream`` (an RPC network's endpoint)."""

    chain: LocalChain | None
    upstream: str | None

    def rpc(self, payload: Any) -> Any:
        """Answer one JSON-RPC request or a batch, refusing anything not allowlisted."""
        if isinstance(payload, list):
            if not payload:
                return rpc_error(None, -32600, "empty batch")
            if len(payload) > MAX_RPC_BATCH:
                return rpc_error(None, -32600, f"batch larger than {MAX_RPC_BATCH}")
            return [self._rpc_one(item) for item in payload]
        return self._rpc_one(payload)

    def _rpc_one(self, req: Any) -> dict[str, Any]:
        if not isinstance(req, dict) or not isinstance(req.get("method"), str):
            return rpc_error(None, -32600, "invalid request")
        req_id = req.get("id")
        method = req["method"]
        if method not in RPC_ALLOWLIST:
            return rpc_error(req_id, -32601, f"method {method} is not allowed by this read-only "
                                             "bridge")
        params = req.get("params", [])
        if not isinstance(params, list):
            return rpc_error(req_id, -32602, "params must be a list")
        if self.chain is None:
            return self._forward(req_id, method, params)
        try:
            params = _checksum_addresses(method, params)
            with self.chain.session() as w3:
                # The eth-tester provider speaks Python values, not the wire format: go
                # through web3's formatters, then turn the answer back into wire JSON.
                if method == "eth_getLogs":
                    answer: Any = w3.eth.get_logs(params[0] if params else {})
                elif method == "eth_call":
                    answer = w3.eth.call(params[0], *params[1:2])
                else:
                    answer = w3.manager.request_blocking(method, params)
        except MRVError as e:
            return rpc_error(req_id, -32000, str(e))
        except Exception as e:  # a node-side failure is an RPC error, never a crash
            return rpc_error(req_id, -32000, f"{type(e).__name__}: {e}")
        if method in ("net_version", "web3_clientVersion"):
            return {"jsonrpc": "2.0", "id": req_id, "result": str(answer)}
        return {"jsonrpc": "2.0", "id": req_id, "result": _to_wire(answer)}


    def _forward(self, req_id: Any, method: str, params: list[Any]) -> dict[str, Any]:
        """An allowlisted read, asked of the RPC network's node; errors never name it."""
        if self.upstream is None:
            return rpc_error(req_id, -32000, "no chain behind this server")
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": params}).encode()
        request = urllib.request.Request(self.upstream, data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT_S) as answer:  # noqa: S310
                raw = answer.read(MAX_UPSTREAM_ANSWER_BYTES + 1)
            if len(raw) > MAX_UPSTREAM_ANSWER_BYTES:
                return rpc_error(req_id, -32000, "the node's answer is too large")
            data = parse_json_strict(raw, "the node's answer", check_duplicates=False)
        except (OSError, RecordError):
            return rpc_error(req_id, -32000, "the node cannot be reached or answered badly")
        if not isinstance(data, dict) or not ("result" in data or "error" in data):
            return rpc_error(req_id, -32000, "the node answered badly")
        return {"jsonrpc": "2.0", "id": req_id, **{k: data[k] for k in ("result", "error")
                                                    if k in data}}


def _checksum(value: Any) -> Any:
    if isinstance(value, str):
        return to_checksum_address(value)
    if isinstance(value, list):
        return [to_checksum_address(v) for v in value]
    return value


def _checksum_addresses(method: str, params: list[Any]) -> list[Any]:
    """web3.py insists on checksummed addresses; browsers send lowercase ones."""
    params = list(params)
    if method in ("eth_call", "eth_getLogs") and params and isinstance(params[0], dict):
        params[0] = {k: (_checksum(v) if k in ("to", "from", "address") else v)
                     for k, v in params[0].items()}
    elif method == "eth_getCode" and params:
        params[0] = _checksum(params[0])
    return params


def _to_wire(value: Any) -> Any:
    """Python values from web3 to JSON-RPC wire form (hex quantities and byte strings)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return str(value)
