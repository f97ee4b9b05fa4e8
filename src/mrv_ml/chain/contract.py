"""The committed ``MRVRegistry`` artifact and helpers around it.

The artifact ``src/mrv_ml/contracts/MRVRegistry.json`` is produced by
``node scripts/compile_contract.mjs`` (pinned npm solc, no compiler download) and
committed, so nothing at run time needs Node.js.

Public API::

    load_artifact() -> RegistryArtifact              # cached
    registry_contract(w3, address) -> web3 Contract
    decode_registry_error(exc) -> str                 # "MRVAlreadyRegistered(mrvId='..', submitter=0x..)"
    revert_data(exc) -> bytes | None                  # raw revert data found in an exception
    id_key(mrv_id) -> bytes                           # keccak256(bytes(mrvId)), the events' idKey
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from mrv_ml.errors import ConfigError, LocalChainError

ARTIFACT_PATH = Path(__file__).resolve().parents[1] / "contracts" / "MRVRegistry.json"
CONTRACT_NAME = "MRVRegistry"


@dataclass(frozen=True)
class RegistryArtifact:
    """The compiled registry: what deploying and calling it needs."""

    abi: tuple[Mapping[str, Any], ...]
    bytecode: str  # 0x-prefixed creation code
    deployed_bytecode: str  # 0x-prefixed runtime code
    compiler_version: str
    source_sha256: str
    evm_version: str = ""

    @property
    def abi_list(self) -> list[dict[str, Any]]:
        """The ABI as the plain list web3 expects."""
        return [dict(item) for item in self.abi]


@functools.lru_cache(maxsize=1)
def load_artifact() -> RegistryArtifact:
    """Read the committed artifact once per process."""
    try:
        raw = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))
        return RegistryArtifact(
            abi=tuple(raw["abi"]),
            bytecode=raw["bytecode"],
            deployed_bytecode=raw["deployedBytecode"],
            compiler_version=raw["compiler"]["version"],
            source_sha256=raw["sourceSha256"],
            evm_version=raw["compiler"]["settings"].get("evmVersion", ""),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        # A broken installation, not bad user input.
        raise LocalChainError(f"registry artifact {ARTIFACT_PATH} is unusable: {e}") from e


def registry_contract(w3: Any, address: str) -> Any:
    """A web3 ``Contract`` for the registry at ``address`` (checksummed here)."""
    try:
        checksummed = to_checksum_address(address)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"invalid contract address {address!r}") from e
    return w3.eth.contract(address=checksummed, abi=load_artifact().abi_list)


RELEASES_PATH = Path(__file__).resolve().parents[1] / "data" / "registry_releases.json"


@functools.lru_cache(maxsize=1)
def released_code_hashes() -> frozenset[str]:
    """keccak-256 (0x hex) of every released MRVRegistry's runtime code."""
    try:
        raw = json.loads(RELEASES_PATH.read_text(encoding="utf-8"))
        return frozenset(str(r["runtime_code_keccak256"]).lower() for r in raw["releases"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LocalChainError(f"registry release list {RELEASES_PATH} is unusable: {e}") from e


def code_hash(code: bytes) -> str:
    """The keccak-256 of contract runtime code, as listed in the releases (0x hex)."""
    return "0x" + bytes(keccak(bytes(code))).hex()


def id_key(mrv_id: str) -> bytes:
    """``keccak256(bytes(mrvId))``: the ``idKey`` topic of ``MRVRegistered``."""
    return bytes(keccak(mrv_id.encode("utf-8")))


@functools.lru_cache(maxsize=1)
def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """Selector -> (error name, input types, input names) for the registry's custom errors."""
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for item in load_artifact().abi:
        if item.get("type") != "error":
            continue
        types = [str(i["type"]) for i in item.get("inputs", [])]
        names = [str(i["name"]) for i in item.get("inputs", [])]
        selector = bytes(keccak(f"{item['name']}({','.join(types)})".encode()))[:4]
        table[selector] = (str(item["name"]), types, names)
    return table


_HEX_RE = re.compile(r"0x[0-9a-fA-F]{8,}")
_BYTES_LITERAL_RE = re.compile(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"')
_ERROR_STRING = bytes(keccak(b"Error(string)"))[:4]
_PANIC = bytes(keccak(b"Panic(uint256)"))[:4]


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) if len(value) >= 4 else None
    if isinstance(value, str):
        match = _HEX_RE.search(value)
        if match and len(match.group(0)) % 2 == 0:
            return bytes.fromhex(match.group(0)[2:])
        # eth-tester puts the revert data into its message as a Python bytes literal.
        literal = _BYTES_LITERAL_RE.search(value)
        if literal:
            try:
                parsed = ast.literal_eval(literal.group(0))
            except (ValueError, SyntaxError):
                return None
            if isinstance(parsed, bytes) and len(parsed) >= 4:
                return parsed
    if isinstance(value, Mapping):
        for key in ("data", "result"):
            found = _as_bytes(value.get(key))
            if found is not None:
                return found
    return None


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data carried by ``exc`` (web3, eth-tester or JSON-RPC), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (getattr(current, "data", None), *current.args):
            found = _as_bytes(candidate)
            if found is not None:
                return found
        current = current.__cause__ or current.__context__
    return None


def _format_value(abi_type: str, value: Any) -> str:
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.startswith("bytes") and isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


def decode_revert_data(data: bytes) -> str | None:
    """A one-line description of revert ``data``, or None when it is not recognised."""
    selector, payload = data[:4], data[4:]
    try:
        if selector in _error_table():
            name, types, names = _error_table()[selector]
            values = abi_decode(types, payload) if types else ()
            args = ", ".join(
                f"{n}={_format_value(t, v)}" for n, t, v in zip(names, types, values, strict=True)
            )
            return f"{name}({args})"
        if selector == _ERROR_STRING:
            return f"reverted: {abi_decode(['string'], payload)[0]}"
        if selector == _PANIC:
            return f"panic: 0x{abi_decode(['uint256'], payload)[0]:02x}"
    except Exception:  # malformed payload: fall back to the caller's message
        return None
    return None


def decode_registry_error(exc: BaseException) -> str:
    """Turn a revert of the registry into a readable one-line message.

    Custom errors become e.g. ``MRVAlreadyRegistered(mrvId='MRV-1', submitter=0x..)``;
    anything else gives the exception's first line.
    """
    data = revert_data(exc)
    if data is not None:
        decoded = decode_revert_data(data)
        if decoded is not None:
            return decoded
    first = exc.args[0] if len(exc.args) > 1 and isinstance(exc.args[0], str) else str(exc)
    text = first.strip().splitlines()
    return text[0] if text else type(exc).__name__
