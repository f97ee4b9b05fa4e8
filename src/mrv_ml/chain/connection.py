"""Connection to the chain holding the registry: checks at connect (the node, its chain id,
the registry it names), transactions that many processes can send with one key, receipts
with confirmations. What the node raises is translated in one place,
:meth:`ChainConnection.node_errors`. Deploying is :mod:`mrv_ml.chain.deploy`, event scans
:mod:`mrv_ml.chain.events`.

For the embedded ``local`` chain the connection opens :meth:`LocalChain.session` only for
each operation (``with conn.session():``), so a CLI command that waits never holds the
local chain's lock for long. ``conn.w3``/``conn.registry`` outside such a block open a
session that is held until :meth:`ChainConnection.close`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import filelock

from mrv_ml.chain.deployments import read_deployments
from mrv_ml.chain.keys import Signer, load_signer, refuse_dev_key_on_public
from mrv_ml.config import Settings, redact_url
from mrv_ml.errors import (
    ChainIdMismatchError,
    ChainReadError,
    ChainUnavailableError,
    ConfigError,
    KeyConfigError,
    LocalOnlyError,
    MRVError,
    NoContractError,
    TransactionFailedError,
)
from mrv_ml.networks import Network, resolve_for_proof, resolve_network

DEV_CHAIN_IDS = (31337, 1337)
NONCE_LOCK_DIR = "nonces"
CONNECT_TIMEOUT_S = 5.0
HTTP_RETRIES = 5  # attempts per request on 429, 5xx, timeouts and refused connections
HTTP_BACKOFF_S = 0.25  # first pause; doubles each time
GAS_MARGIN = 1.2  # estimates are exact for this contract; the margin covers state changes
_NONCE_RETRIES = 6
_NONCE_ERRORS = ("nonce too low", "already known", "replacement transaction underpriced",
                 "replacement underpriced", "nonce too high")


@dataclass(frozen=True)
class TxReceiptSummary:
    tx_hash: str
    block_number: int
    block_timestamp: int
    gas_used: int
    status: int
    contract_address: str | None = None
    block_hash: str | None = None


def _short(e: BaseException) -> str:
    """The root cause of a transport error, in one line, with nothing key-like in it (a
    provider's URL path, echoed by requests, may hold an API key)."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    text = re.sub(r"(?<![0-9a-fA-Fx])[A-Za-z0-9_\-]{16,}", "***", text)
    # requests' messages nest the whole pool state; keep the root cause
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    if "Read timed out" in text or "timed out" in text.lower():
        return "timed out"
    return text[:200]


def as_hex(value: Any) -> str:
    """``0x``-prefixed hex text of a hash (bytes, or hex text with or without ``0x``)."""
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


class ChainConnection:
    """A checked connection to one network's registry. Use as a context manager."""

    def __init__(self, settings: Settings, network: Network, rpc_url: str | None) -> None:
        self.settings = settings
        self.network = network
        self.rpc_url = rpc_url
        self.chain_id: int = network.chain_id or 0
        self.registry_address: str = ""
        self.registry_block: int | None = None  # where the registry was deployed, if known
        self.signer: Signer | None = None
        self._w3: Any = None
        self._local: Any = None
        self._held = contextlib.ExitStack()
        self._session_w3: Any = None

    # --- plumbing ------------------------------------------------------------------------

    @property
    def signer_address(self) -> str | None:
        return self.signer.address if self.signer else None

    @property
    def where(self) -> str:
        if self.rpc_url is None:
            return self.network.name
        return f"{self.network.name} ({redact_url(self.rpc_url)})"

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """Yield a Web3 for one operation (for ``local``: hold the chain lock meanwhile)."""
        if self._local is None:
            yield self._w3
            return
        if self._session_w3 is not None:
            yield self._session_w3
            return
        with self._local.session() as w3:
            self._session_w3 = w3
            try:
                yield w3
            finally:
                self._session_w3 = None

    @property
    def w3(self) -> Any:
        if self._local is None:
            return self._w3
        if self._session_w3 is None:
            self._held.enter_context(self.session())
        return self._session_w3

    @property
    def registry(self) -> Any:
        from mrv_ml.chain.contract import registry_contract

        return registry_contract(self.w3, self.registry_address)

    def explorer_tx_url(self, tx_hash: str) -> str | None:
        return self.network.explorer_url(tx_hash)

    def close(self) -> None:
        self._held.close()

    def __enter__(self) -> ChainConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, fn: Callable[[Any], Any], *, address: str | None = None) -> Any:
        """Run ``fn(registry)`` (a read) on the registry (or the one at ``address``).
        A node that cannot be reached gives ChainUnavailableError, a read it refuses or
        cannot answer ChainReadError."""
        from mrv_ml.chain.contract import registry_contract

        with self.session() as w3, self.node_errors():
            return fn(registry_contract(w3, address) if address else self.registry)

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on this chain (``None`` if it has no such block)."""
        from web3.exceptions import BlockNotFound

        with self.session() as w3, self.node_errors():
            try:
                block = w3.eth.get_block(number)
            except BlockNotFound:
                return None
        return as_hex(block["hash"])

    def transaction_block(self, tx_hash: str) -> int | None:
        """The block holding transaction ``tx_hash`` on this chain (``None``: not mined here)."""
        from web3.exceptions import TransactionNotFound

        with self.session() as w3, self.node_errors():
            try:
                return int(w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])
            except TransactionNotFound:
                return None

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block ``number`` (a header: any full node has it)."""
        with self.session() as w3, self.node_errors():
            return int(w3.eth.get_block(number)["timestamp"])

    def code(self, address: str) -> bytes:
        """The runtime code at ``address`` on this chain (empty: no contract)."""
        with self.session() as w3, self.node_errors():
            return bytes(w3.eth.get_code(address))

    def head(self) -> tuple[int, int | None]:
        """(latest block number, latest finalized block number, if the node knows one)."""
        with self.session() as w3:
            with self.node_errors():
                latest = int(w3.eth.block_number)
            try:
                finalized: int | None = int(w3.eth.get_block("finalized")["number"])
            except Exception:  # nodes and chains without a finality gadget
                finalized = None
        return latest, finalized

    @contextlib.contextmanager
    def node_errors(self) -> Iterator[None]:
        """The one guard around what talks to the node: an exception of web3/requests (or of
        the embedded chain's Web3) becomes mrv-ml's own, by class (:meth:`_translate`):
        ChainUnavailableError for a node that cannot be reached, ChainReadError for a read it
        refuses or cannot answer. mrv-ml's own errors pass unchanged."""
        try:
            yield
        except MRVError:
            raise
        except Exception as e:
            raise self._translate(e) from e

    def _translate(self, e: BaseException) -> MRVError:
        """A web3/requests exception, by class: unreachable node, or a refused read."""
        from mrv_ml.chain.contract import decode_registry_error

        if _is_unreachable(e):
            where = redact_url(self.rpc_url) if self.rpc_url else "the local chain"
            return ChainUnavailableError(f"cannot reach {where}: "
                                         f"{_short(e)}")
        return ChainReadError(f"reading the registry on {self.network.name} failed: "
                              f"{decode_registry_error(e)}")

    # --- transactions -------------------------------------------------------------------

    def send(self, fn_call: Any, *, on_sent: Callable[[str], None] | None = None
             ) -> TxReceiptSummary:
        """Sign and send a contract call (or constructor) and wait for its receipt.

        Gas is estimated (+20 %); EIP-1559 fees where the chain has a base fee. A file lock
        per (chain id, address) around nonce + send lets processes share one key; nonce
        races with other users of the key are retried. ``on_sent(tx_hash)`` runs once the
        node accepted the transaction (to remember it before waiting).
        """
        if self.signer is None:
            raise KeyConfigError(f"sending to {self.network.name} needs a key: set PRIVATE_KEY "
                                 "or create a keystore (mrv account new)")
        with self.session() as w3:
            bound = self._rebind(fn_call)
            tx_hash = self._sign_and_send(w3, bound)
            if on_sent is not None:
                on_sent(tx_hash)
            return self._wait(w3, tx_hash)

    def _rebind(self, fn_call: Any) -> Any:
        # A call built on an earlier local session's Web3 must run on the current one.
        name = getattr(fn_call, "fn_name", None)
        if self._local is not None and name and self.registry_address:
            return self.registry.get_function_by_name(name)(*fn_call.args, **fn_call.kwargs)
        return fn_call

    def _fees(self, w3: Any) -> dict[str, int]:
        block = w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if self.network.eip1559 and base is not None:
            try:
                tip = int(w3.eth.max_priority_fee)
            except Exception:  # nodes without eth_maxPriorityFeePerGas
                tip = 10**9
            return {"maxFeePerGas": int(base) * 2 + tip, "maxPriorityFeePerGas": tip}
        return {"gasPrice": int(w3.eth.gas_price)}

    def _sign_and_send(self, w3: Any, fn_call: Any) -> str:
        from mrv_ml.chain.contract import decode_registry_error

        assert self.signer is not None
        sender = self.signer.address
        lock_dir = Path(self.settings.data_dir) / NONCE_LOCK_DIR
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create {lock_dir}: {e.strerror}") from None
        lock = filelock.FileLock(str(lock_dir / f"{self.chain_id}-{sender}.lock"),
                                 timeout=max(self.settings.tx_timeout_s, 30.0))
        last: BaseException | None = None
        for attempt in range(_NONCE_RETRIES):
            try:
                with lock:
                    base_tx: dict[str, Any] = {"from": sender, "chainId": self.chain_id}
                    try:
                        gas = int(fn_call.estimate_gas({"from": sender}))
                    except Exception as e:
                        if isinstance(self._translate(e), ChainUnavailableError):
                            raise
                        raise TransactionFailedError(
                            f"the registry refused the transaction: {decode_registry_error(e)}"
                        ) from e
                    base_tx.update(self._fees(w3))
                    base_tx["gas"] = int(gas * GAS_MARGIN)
                    base_tx["nonce"] = w3.eth.get_transaction_count(sender, "pending")
                    tx = fn_call.build_transaction(base_tx)
                    signed = self.signer.sign_transaction(tx)
                    return as_hex(w3.eth.send_raw_transaction(signed.raw_transaction))
            except filelock.Timeout:
                raise TransactionFailedError(
                    f"another process held the nonce lock of {sender} too long") from None
            except MRVError:
                raise
            except Exception as e:
                text = str(e).lower()
                if any(s in text for s in _NONCE_ERRORS) and attempt + 1 < _NONCE_RETRIES:
                    last = e
                    time.sleep(0.05 * (attempt + 1))
                    continue
                translated = self._translate(e)
                if isinstance(translated, ChainUnavailableError):
                    raise translated from e
                if "insufficient funds" in text:
                    raise TransactionFailedError(
                        f"{sender} has not enough funds for gas on {self.network.name}") from e
                raise TransactionFailedError(
                    f"sending failed: {decode_registry_error(e)}") from e
        raise TransactionFailedError(f"nonce conflicts persisted: {_short(last or Exception())}")

    def _wait(self, w3: Any, tx_hash: str) -> TxReceiptSummary:
        timeout_s = self.settings.tx_timeout_s
        deadline = time.monotonic() + timeout_s
        with self.node_errors():
            try:
                receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s,
                                                              poll_latency=0.1)
                need = self.network.confirmations
                while need > 1 and w3.eth.block_number - receipt["blockNumber"] + 1 < need:
                    if time.monotonic() > deadline:
                        raise TransactionFailedError(f"{tx_hash} has not reached {need} "
                                                     f"confirmations within {timeout_s:g} s")
                    time.sleep(1.0)
                block = w3.eth.get_block(receipt["blockNumber"])
            except Exception as e:
                # not mined in time: a failed transaction, not an unreachable node
                if type(e).__name__ == "TimeExhausted":
                    raise TransactionFailedError(
                        f"{tx_hash} was not mined within {timeout_s:g} s") from e
                raise
        if receipt["status"] != 1:
            raise TransactionFailedError(f"transaction {tx_hash} reverted "
                                         f"(gas used {receipt['gasUsed']})")
        created = receipt.get("contractAddress")
        return TxReceiptSummary(tx_hash=tx_hash, block_number=int(receipt["blockNumber"]),
                                block_timestamp=int(block["timestamp"]),
                                gas_used=int(receipt["gasUsed"]), status=int(receipt["status"]),
                                contract_address=str(created) if created else None,
                                block_hash=as_hex(block["hash"]))


def _is_unreachable(e: BaseException) -> bool:
    """Transport failures (refused, reset, DNS, timeouts), by exception class."""
    import requests
    from web3.exceptions import TimeExhausted

    return isinstance(e, (OSError, ConnectionError, requests.exceptions.ConnectionError,
                          requests.exceptions.Timeout, TimeExhausted))


def _http_web3(url: str) -> Any:
    import requests
    from web3 import Web3
    from web3.providers.rpc.utils import ExceptionRetryConfiguration

    # Providers answer 429 (rate limit) and transient 5xx: retry with exponential backoff
    # (0.25 + 0.5 + 1 + 2 s at most between attempts), then the error stands.
    retry = ExceptionRetryConfiguration(
        errors=(ConnectionError, requests.HTTPError, requests.Timeout),
        retries=HTTP_RETRIES, backoff_factor=HTTP_BACKOFF_S)
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": CONNECT_TIMEOUT_S},
                                  exception_retry_configuration=retry))


def _default_dev_signer(network: Network) -> Signer | None:
    from mrv_ml.chain.localchain import anvil_dev_accounts, dev_accounts

    if network.embedded:
        return Signer(dev_accounts()[0], dev_key=True)
    if network.is_dev:
        return Signer(anvil_dev_accounts()[0], dev_key=True)
    return None


def connect(settings: Settings, *, need_signer: bool = False,
            deploying: bool = False) -> ChainConnection:
    """A checked connection: node reachable, chain id as the preset says, code at the
    registry address. ``need_signer`` loads (and checks) the key; reads never need one.
    ``deploying`` skips finding the registry (see :func:`find_registry`)."""
    network, url = resolve_network(settings)
    conn = ChainConnection(settings, network, url)
    if need_signer:
        signer = load_signer(settings) or _default_dev_signer(network)
        if signer is None:
            raise KeyConfigError(f"no key for {network.name}: set PRIVATE_KEY or create a "
                                 "keystore (mrv account new / import)")
        if network.chain_id is not None:  # custom: checked once the node tells its chain id
            refuse_dev_key_on_public(network, signer)
        conn.signer = signer
    _reach(conn)
    if conn.signer is not None and network.chain_id is None:
        refuse_dev_key_on_public(conn.network, conn.signer)
    if not deploying:
        conn.registry_address = find_registry(conn)
    return conn


def connect_for_proof(settings: Settings, chain_id: int) -> ChainConnection:
    """A read-only connection to the chain a proof names (see
    :func:`mrv_ml.networks.resolve_for_proof`). The embedded chain is used only if this
    data directory already has one: verifying never creates a chain, a store or a file."""
    network, url = resolve_for_proof(settings, chain_id)
    if url is None and not local_chain_exists(settings):
        raise LocalOnlyError(
            "anchored on its author's private local chain (chain 1337, embedded in their "
            "mrv_data/), which is not on this machine: it cannot be checked here, and it is "
            "evidence for nobody but its author; ask for a publicly anchored proof")
    conn = ChainConnection(settings, network, url)
    _reach(conn)
    if conn.chain_id != chain_id:
        raise ChainIdMismatchError(
            f"the proof says chain {chain_id}, but the endpoint given is chain "
            f"{conn.chain_id}: give an endpoint of chain {chain_id}", key="proof_chain_mismatch")
    return conn


def local_chain_exists(settings: Settings) -> bool:
    from mrv_ml.chain.localchain import LocalChain  # py-evm: imported only when it is used

    return LocalChain.for_data_dir(Path(settings.data_dir)).exists()


def _reach(conn: ChainConnection) -> None:
    """Open the embedded chain, or reach the node and check its chain id."""
    network, url = conn.network, conn.rpc_url
    if url is None:
        from mrv_ml.chain.localchain import LOCAL_CHAIN_ID, LocalChain

        conn._local = LocalChain.for_data_dir(Path(conn.settings.data_dir))
        conn.chain_id = LOCAL_CHAIN_ID
        return
    w3 = _http_web3(url)
    conn._w3 = w3
    try:
        node_chain_id = int(w3.eth.chain_id)
    except Exception as e:
        raise ChainUnavailableError(f"cannot reach {redact_url(url)}: {_short(e)}") from None
    if network.chain_id is not None and node_chain_id != network.chain_id:
        raise ChainIdMismatchError(
            f"the node at {redact_url(url)} is chain {node_chain_id}, but network {network.name} "
            f"is chain {network.chain_id}")
    conn.chain_id = node_chain_id
    if network.chain_id is None:
        # a custom URL to a development node (anvil/Hardhat 31337, eth-tester 1337) is dev
        conn.network = replace(network, chain_id=node_chain_id,
                               is_dev=node_chain_id in DEV_CHAIN_IDS)


def find_registry(conn: ChainConnection) -> str:
    """The registry the settings name for this chain: ``CONTRACT_ADDRESS``, else the
    recorded deployment, else (embedded chain only) the one deployed on first use.
    Checked to hold code."""
    settings = conn.settings
    with conn.session() as w3:
        local = None
        if conn._local is not None:
            from mrv_ml.chain.localchain import LocalChain

            local = LocalChain.for_data_dir(Path(settings.data_dir))
        address = _registry_address(conn, w3, settings,
                                    (lambda: local.registry_address(w3)) if local else None)
        if local is not None and conn.registry_block is None:
            conn.registry_block = local.deployment_block(address)
        return address


def _registry_address(conn: ChainConnection, w3: Any, settings: Settings,
                      deploy_local: Callable[[], str] | None) -> str:
    from eth_utils import is_address, to_checksum_address

    address = settings.contract_address
    if not address:
        entry = read_deployments(Path(settings.data_dir)).get(str(conn.chain_id))
        if isinstance(entry, dict) and isinstance(entry.get("address"), str):
            address = entry["address"]
            block = entry.get("block_number")
            conn.registry_block = block if isinstance(block, int) else None
    if not address:
        if deploy_local is not None:
            return deploy_local()
        raise ConfigError(f"no registry address for {conn.network.name}; run `mrv deploy` "
                          "or set CONTRACT_ADDRESS")
    if not is_address(address):
        raise ConfigError(f"invalid contract address {address[:60]!r}")
    checksummed = str(to_checksum_address(address))
    with conn.node_errors():
        code = w3.eth.get_code(checksummed)
    if len(code) == 0:
        raise NoContractError(f"no contract at {checksummed} on {conn.network.name}")
    return checksummed
