"""The embedded local chain: py-evm (through eth-tester) persisted on disk.

With no configuration at all, records are anchored here: no server, no Node.js. The
chain lives in ``<data_dir>/chain/``:

- ``chain.sqlite``: py-evm's key-value store in SQLite (WAL, ``synchronous=FULL``;
  :mod:`mrv_ml.chain.kvstore`). Every mined block's writes go into ONE SQLite transaction,
  so a process killed mid-write (even ``kill -9``) reopens at the last committed block,
  consistent.
- ``chain.lock``: a file lock held for a whole session, so several processes take turns
  instead of corrupting each other (a waiting process gives up after ``lock_timeout_s``
  with :class:`~mrv_ml.errors.LocalChainError`). Where the directory cannot be written (a
  read-only mount, another user's store) a session reads one snapshot without the lock,
  and any write in it fails with a clear error; a full disk is a StoreError (exit 6).
- ``deployment.json``: the registry's address and the artifact's ``sourceSha256``; when
  the artifact changes the new registry is deployed and the old one kept in ``previous``.

Each transaction is mined into its own block whose timestamp is the real wall-clock
time when the transaction arrives (not the time the previous block was mined), so a
registration made today reads as today tomorrow. Ethereum's rule that a block is at
least one second after its parent still holds, so a burst of N anchors within one
second runs up to N seconds ahead until the chain is idle again.

The accounts are eth-tester's well-known development keys (private keys 1..10, funded
at genesis). They are public: :func:`is_dev_key` lets the CLI refuse them, and anvil's
and Hardhat's default keys, on any other network.

API::

    LOCAL_CHAIN_ID: int                      # 1337, also what eth_chainId answers
    chain = LocalChain(data_dir / "chain")   # or LocalChain.for_data_dir(data_dir); lock_timeout_s=60.0
    with chain.session() as w3:              # lock, open at the persisted head, yield Web3
        address = chain.registry_address(w3) # checksummed; deploys on first use
        ...                                  # transactions are mined and committed one by one
    dev_accounts() -> list[LocalAccount]     # the funded accounts; [0] deploys
    is_dev_key(private_key_hex) -> bool
"""

# ruff: noqa: E402  (the recursion limit is saved before py-evm's imports, restored after)
from __future__ import annotations

import contextlib
import errno
import functools
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

# py-evm raises the interpreter's recursion limit to 12,288 when imported (for deep EVM call
# stacks; the registry never nests calls). So high a limit lets the C JSON decoder recurse
# past the C stack of a server thread on hostile input and crash the process: put it back.
_RECURSION_LIMIT = sys.getrecursionlimit()
from eth.abc import AtomicDatabaseAPI
from eth.chains.base import MiningChain
from eth.consensus import ConsensusApplier, NoProofConsensus
from eth.db.atomic import AtomicDB
from eth.exceptions import CanonicalHeadNotFound
from eth.vm.forks import PragueVM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester
from eth_tester.backends.pyevm.main import (
    PyEVMBackend,
    generate_genesis_state_for_keys,
    get_account_keys_from_mnemonic,
    get_default_account_keys,
    get_default_genesis_params,
)
from eth_utils import to_checksum_address
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return

sys.setrecursionlimit(_RECURSION_LIMIT)

from mrv_ml.chain.contract import decode_registry_error, load_artifact
from mrv_ml.chain.kvstore import SQLiteKV
from mrv_ml.errors import LocalChainError, MRVError, StoreError
from mrv_ml.storage import atomicfile

LOCAL_CHAIN_ID = 1337
CHAIN_DIR = "chain"
DB_FILE = "chain.sqlite"
LOCK_FILE = "chain.lock"
DEPLOYMENT_FILE = "deployment.json"
DEFAULT_LOCK_TIMEOUT_S = 60.0

# errno values saying "this user cannot write here" (EPERM, EACCES, EROFS)
_NOT_WRITABLE = (errno.EPERM, errno.EACCES, errno.EROFS)

# Sessions open in this thread, by chain directory (nested sessions share the outer one).
_ACTIVE = threading.local()

# anvil's and Hardhat's default accounts come from this public mnemonic.
_ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
_DEV_ACCOUNT_COUNT = 10


# --- well-known development keys -----------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _eth_tester_keys() -> tuple[bytes, ...]:
    return tuple(k.to_bytes() for k in get_default_account_keys(quantity=_DEV_ACCOUNT_COUNT))


@functools.lru_cache(maxsize=1)
def _anvil_keys() -> tuple[bytes, ...]:
    keys = get_account_keys_from_mnemonic(
        _ANVIL_MNEMONIC, quantity=_DEV_ACCOUNT_COUNT, hd_path="m/44'/60'/0'/0"
    )
    return tuple(k.to_bytes() for k in keys)


def dev_accounts() -> list[LocalAccount]:
    """The local chain's funded accounts (eth-tester's keys 1..10; public, never for real use)."""
    return [Account.from_key(k) for k in _eth_tester_keys()]


def anvil_dev_accounts() -> list[LocalAccount]:
    """anvil's and Hardhat's default accounts 0-9 (from the public ``test ... junk`` mnemonic)."""
    return [Account.from_key(k) for k in _anvil_keys()]


def is_dev_key(private_key_hex: str) -> bool:
    """True when the key is one of the publicly known development keys."""
    text = private_key_hex.strip().lower().removeprefix("0x")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return False
    if len(key) != 32:
        return False
    return key in _eth_tester_keys() or key in _anvil_keys()


# --- the chain -----------------------------------------------------------------------------


class _LocalMiningChain(MiningChain):
    """eth-tester's proof-of-stake tester chain, committing each mined block durably."""

    chain_id = LOCAL_CHAIN_ID
    vm_configuration = ConsensusApplier(NoProofConsensus).amend_vm_configuration(((0, PragueVM),))
    kv: SQLiteKV | None = None

    def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
        # Keep the gas limit constant, as eth-tester does.
        header_params["gas_limit"] = parent_header.gas_limit
        return super().create_header_from_parent(parent_header, **header_params)

    def get_transaction_builder(self) -> Any:
        return super().get_vm().get_transaction_builder()

    def apply_transaction(self, transaction: Any) -> Any:
        # The pending header was made when the previous block was mined, maybe hours
        # ago; stamp the block with the time its first transaction really arrives.
        if self.header.gas_used == 0:
            parent = self.get_canonical_head()
            self.header = self.header.copy(timestamp=max(int(time.time()), parent.timestamp + 1))
        return super().apply_transaction(transaction)

    def mine_block(self, *args: Any, **kwargs: Any) -> Any:
        block = super().mine_block(*args, **kwargs)
        if self.kv is not None:
            self.kv.commit()  # one SQLite transaction per block
        return block


class _PersistentBackend(PyEVMBackend):  # type: ignore[misc]  # eth-tester is untyped
    """eth-tester's py-evm backend over an already-built chain (no reset to genesis)."""

    def __init__(self, chain: _LocalMiningChain) -> None:  # deliberately no super().__init__
        self.account_keys = get_default_account_keys(quantity=_DEV_ACCOUNT_COUNT)
        self.chain = chain
        # eth-tester derives every public key again on each eth_accounts, which web3
        # asks for on every call; derive them once.
        self._accounts = tuple(k.public_key.to_canonical_address() for k in self.account_keys)
        self._keys_by_address = dict(zip(self._accounts, self.account_keys, strict=True))

    def get_accounts(self) -> tuple[bytes, ...]:
        return self._accounts

    @property
    def _key_lookup(self) -> dict[bytes, Any]:
        return self._keys_by_address


def _open_chain(kv: SQLiteKV) -> _LocalMiningChain:
    db: AtomicDatabaseAPI = AtomicDB(kv)
    # A class per session binds the chain to this session's store (py-evm builds chains
    # through class methods, so the store cannot simply be passed to the constructor).
    chain_class: type[_LocalMiningChain] = type(
        "LocalMiningChain", (_LocalMiningChain,), {"kv": kv}
    )
    try:
        chain_class.get_chaindb_class()(db).get_canonical_head()
    except CanonicalHeadNotFound:
        keys = get_default_account_keys(quantity=_DEV_ACCOUNT_COUNT)
        genesis = chain_class.from_genesis(
            db, get_default_genesis_params(), generate_genesis_state_for_keys(keys)
        )
        kv.commit()
        return genesis  # type: ignore[return-value]
    # Rebuild from the persisted canonical head (not from genesis); py-evm then reads
    # state lazily, so opening costs the same after ten blocks or ten thousand.
    return chain_class(db)


def _endpoints() -> dict[str, Any]:
    # web3's eth-tester endpoints answer a fixed chain id; answer ours instead.
    eth = dict(API_ENDPOINTS["eth"])
    eth["chainId"] = static_return(LOCAL_CHAIN_ID)
    endpoints: dict[str, Any] = dict(API_ENDPOINTS)
    endpoints["eth"] = eth
    return endpoints


class LocalChain:
    """The persisted local chain in ``directory`` (normally ``<data_dir>/chain``)."""

    def __init__(self, directory: Path, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.directory = Path(directory)
        self.lock_timeout_s = lock_timeout_s

    @classmethod
    def for_data_dir(
        cls, data_dir: Path, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    ) -> LocalChain:
        """The local chain of a data directory: ``<data_dir>/chain``."""
        return cls(Path(data_dir) / CHAIN_DIR, lock_timeout_s=lock_timeout_s)

    @property
    def db_path(self) -> Path:
        return self.directory / DB_FILE

    @property
    def deployment_path(self) -> Path:
        return self.directory / DEPLOYMENT_FILE

    def exists(self) -> bool:
        """Whether this chain was ever created (verifying must never create one)."""
        return self.db_path.is_file()

    def deployment_block(self, address: str) -> int | None:
        """The block where the registry at ``address`` was deployed, if this chain knows."""
        info = self._read_deployment()
        block = info.get("block_number")
        if str(info.get("address", "")).lower() == address.lower() and isinstance(block, int):
            return block
        return None

    @contextlib.contextmanager
    def session(self) -> Iterator[Web3]:
        """Lock the chain, open it at its persisted head and yield a ``Web3`` on it.

        Every transaction sent through the ``Web3`` is mined into its own block and
        committed durably before the call returns. A nested session on the same
        directory in the same thread (any ``LocalChain`` object) shares the outer one.
        Sessions hold an exclusive lock: keep them short. Raises LocalChainError when the
        lock is not free within ``lock_timeout_s`` or the database is unusable.
        """
        key = str(self.directory.resolve())
        active: dict[str, Web3] = _ACTIVE.__dict__.setdefault("sessions", {})
        if key in active:
            # Our own lock is already held by this thread: waiting for it would deadlock.
            yield active[key]
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LocalChainError(
                f"cannot create local chain directory {self.directory}: {e}"
            ) from e
        file_lock = filelock.FileLock(str(self.directory / LOCK_FILE), timeout=self.lock_timeout_s)
        lock: filelock.BaseFileLock | None = file_lock
        try:
            file_lock.acquire()
        except filelock.Timeout as e:
            raise LocalChainError(
                f"local chain {self.directory} is busy: another process held its lock "
                f"for more than {self.lock_timeout_s:g} s"
            ) from e
        except OSError as e:
            if e.errno not in _NOT_WRITABLE or not self.exists():
                raise LocalChainError(f"cannot lock local chain {self.directory}: {e}") from e
            # A store this user may read but not write (a read-only mount, a colleague's
            # directory): reading needs no lock, and any write fails with a clear error.
            lock = None
        kv: SQLiteKV | None = None
        try:
            kv = SQLiteKV(self.db_path, read_only=lock is None)
            try:
                chain = _open_chain(kv)
            except MRVError:
                raise
            except Exception as e:  # sqlite3 / rlp / py-evm errors on a damaged database
                raise LocalChainError(
                    f"local chain database {self.db_path} is unusable: {e}"
                ) from e
            tester = EthereumTester(backend=_PersistentBackend(chain), auto_mine_transactions=True)
            w3 = Web3(EthereumTesterProvider(tester, api_endpoints=_endpoints()))
            active[key] = w3
            try:
                yield w3
            except Exception as e:
                if kv.write_failure is not None and e is not kv.write_failure:
                    raise kv.write_failure from e  # the cause, not what web3 made of it
                raise
            finally:
                del active[key]
            kv.commit()
        finally:
            if kv is not None:
                kv.close()  # rolls back anything not committed (an exception mid-block)
            if lock is not None:
                lock.release()

    def registry_address(self, w3: Web3) -> str:
        """The registry's checksummed address on this chain, deploying it on first use
        (and again when the committed artifact has changed)."""
        artifact = load_artifact()
        info = self._read_deployment()
        current = info.get("address")
        if (
            isinstance(current, str)
            and info.get("source_sha256") == artifact.source_sha256
            and len(w3.eth.get_code(to_checksum_address(current))) > 0
        ):
            return to_checksum_address(current)
        deployer = w3.eth.accounts[0]
        factory = w3.eth.contract(abi=artifact.abi_list, bytecode=artifact.bytecode)
        try:
            tx_hash = factory.constructor().transact({"from": deployer})
            receipt = w3.eth.get_transaction_receipt(tx_hash)
        except Exception as e:
            raise LocalChainError(
                f"cannot deploy the registry on the local chain: {decode_registry_error(e)}"
            ) from e
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise LocalChainError("deploying the registry on the local chain reverted")
        address = to_checksum_address(receipt["contractAddress"])
        previous = list(info.get("previous", []))
        # Keep the old registry when the artifact changed (records anchored there name it);
        # an address with no code (the database was removed) is not worth remembering.
        if (
            isinstance(current, str)
            and current != address
            and info.get("source_sha256") != artifact.source_sha256
        ):
            previous.append({"address": current, "source_sha256": info.get("source_sha256")})
        self._write_deployment(
            {
                "chain_id": LOCAL_CHAIN_ID,
                "address": address,
                "source_sha256": artifact.source_sha256,
                "compiler_version": artifact.compiler_version,
                "block_number": receipt["blockNumber"],
                "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
                "previous": previous,
            }
        )
        return address

    def _read_deployment(self) -> dict[str, Any]:
        try:
            data = json.loads(self.deployment_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable: deploy afresh rather than fail (old records name their address)
        return data if isinstance(data, dict) else {}

    def _write_deployment(self, data: dict[str, Any]) -> None:
        try:
            atomicfile.write_json(self.deployment_path, data, what="the local deployment")
        except StoreError as e:
            raise LocalChainError(str(e)) from e
