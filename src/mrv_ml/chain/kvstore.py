"""The key-value store behind the embedded chain's py-evm: one SQLite file (WAL,
``synchronous=FULL``) whose writes for one mined block go into ONE transaction, so a process
killed mid-write reopens at the last committed block (see :mod:`mrv_ml.chain.localchain`).
"""

# ruff: noqa: E402  (the recursion limit is saved before py-evm's import, restored after)
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

# py-evm raises the interpreter's recursion limit when first imported: put it back, as
# mrv_ml.chain.localchain does (which says why).
_RECURSION_LIMIT = sys.getrecursionlimit()
from eth.db.backends.base import BaseDB

sys.setrecursionlimit(_RECURSION_LIMIT)

from mrv_ml.errors import LocalChainError, MRVError, StoreError


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection holding one snapshot of the chain for the whole session.

    Used where the data directory cannot be written (a read-only mount, another user's
    store). SQLite reads a WAL database read-only only if its ``-shm`` index exists; with no
    write-ahead log at all (the chain was closed cleanly) the file alone is the whole chain
    and is opened as immutable. A log left by a writer that was killed cannot be read
    without writing the index: that is an error, never a stale reading.
    """
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    shm = path.with_name(path.name + "-shm")
    if shm.exists():
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
    elif wal.exists() and wal.stat().st_size > 0:
        raise LocalChainError(f"the local chain {path.parent} was left mid-write and cannot be "
                              "read read-only: open it once with write access (mrv list)")
    else:
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)
    conn.execute("BEGIN")  # one snapshot for the whole session, whatever a writer does
    conn.execute("SELECT count(*) FROM kv WHERE k = x''").fetchone()
    return conn


def _write_error(path: Path, e: sqlite3.Error) -> MRVError:
    """A failed write to the chain database: a full disk is the store's problem (exit 6)."""
    if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(e):
        return StoreError(f"no space left for the local chain in {path.parent}")
    return LocalChainError(f"the local chain database {path} failed: {e}")


class SQLiteKV(BaseDB):
    """py-evm key-value store over one SQLite connection.

    Writes open a transaction lazily; :meth:`commit` makes them durable at once (the
    chain calls it after every mined block), :meth:`rollback` drops them.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self._path = path
        self._in_tx = False
        self._write_failure: MRVError | None = None  # a failed write, until rolled back
        self.read_only = read_only
        try:
            if read_only:
                self._conn = _connect_read_only(path)
                return
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per block.
            self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
            )
        except sqlite3.Error as e:
            raise LocalChainError(f"local chain database {path} is unusable: {e}") from e

    def _begin(self) -> None:
        if self.read_only:
            raise LocalChainError(f"the local chain {self._path.parent} is read-only here: "
                                  "anchoring needs a data directory this user can write")
        if not self._in_tx:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self._failed(e) from e
            self._in_tx = True

    def __getitem__(self, key: bytes) -> bytes:
        try:  # a read may spill the block's pending writes to disk, and so fail like a write
            row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        except sqlite3.Error as e:
            raise self._failed(e) from e
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._begin()
        try:
            self._conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))
        except sqlite3.Error as e:
            raise self._failed(e) from e

    def _failed(self, e: sqlite3.Error) -> MRVError:
        # Remembered: the layers above (py-evm, eth-tester, web3) may swallow or replace the
        # exception; the session then raises this one, the cause, instead.
        self._write_failure = _write_error(self._path, e)
        return self._write_failure

    @property
    def write_failure(self) -> MRVError | None:
        """The error of a write that failed since the last commit or rollback."""
        return self._write_failure

    def _exists(self, key: bytes) -> bool:
        try:
            row = self._conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone()
        except sqlite3.Error as e:
            raise self._failed(e) from e
        return row is not None

    def __delitem__(self, key: bytes) -> None:
        self._begin()
        if self._conn.execute("DELETE FROM kv WHERE k = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    def commit(self) -> None:
        if self._write_failure is not None:
            raise self._write_failure
        if self._in_tx and not self._conn.in_transaction:
            raise LocalChainError(f"the local chain {self._path} dropped a block's writes")
        if self._in_tx:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as e:
                raise self._failed(e) from e
            self._in_tx = False

    def rollback(self) -> None:
        # SQLite has already rolled back by itself after some errors (a full disk): then
        # there is nothing left to roll back, and ROLLBACK would fail.
        if self._in_tx and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._in_tx = False
        self._write_failure = None

    def close(self) -> None:
        self.rollback()
        self._conn.close()
