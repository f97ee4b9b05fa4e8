"""The registry database's connection side: the URL or file it names, the SQLite and
PostgreSQL engines, transactions and the errors that mean "database unusable", the Alembic
migrations run on opening, and the lock that picks the one process that anchors.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import filelock
import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError as AlembicCommandError
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from mrv_ml.config import redact_text, redact_url
from mrv_ml.errors import ConfigError, RegistryDatabaseError

BUSY_TIMEOUT_S = 30.0  # SQLite: how long a writer waits for another one
LOCK_TIMEOUT_S = 60.0  # how long opening waits for another process's migration
CONNECT_TIMEOUT_S = 10  # PostgreSQL: an unreachable server is an error after this

MIGRATIONS_DIR = Path(__file__).parent.with_name("migrations")
_WRITE = "mrv_registry_write"  # execution option: this transaction will write (SQLite)


# --- opening -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: sa.URL
    shown: str  # for messages: no password, no query
    sqlite_path: Path | None
    password: str | None


def _target(url: str) -> _Target:
    text = url.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        try:
            parsed = sa.make_url(text)
        except sa.exc.ArgumentError:
            raise ConfigError(f"not a database URL: {redact_url(text)}") from None
        return _Target(parsed.set(drivername="postgresql+psycopg"), redact_url(text), None,
                       parsed.password)
    if scheme in ("sqlite", "sqlite+pysqlite"):
        try:
            path = sa.make_url(text).database or ""
        except sa.exc.ArgumentError:
            raise ConfigError(f"not a database URL: {redact_url(text)}") from None
    elif scheme:
        raise ConfigError(f"unsupported registry database {redact_url(text)}: "
                          "give a SQLite file path or a postgresql:// URL")
    else:
        path = text
    if path in ("", ":memory:"):
        raise ConfigError("the registry database must be a file (several processes share it)")
    file = Path(os.path.abspath(os.path.expanduser(path)))
    return _Target(sa.URL.create("sqlite+pysqlite", database=str(file)), str(file), file, None)


def _engine_for(target: _Target) -> sa.Engine:
    """The engine of ``target``: a SQLite file (its directory made if need be) or a
    PostgreSQL server."""
    if target.sqlite_path is not None:
        try:
            target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RegistryDatabaseError(
                f"registry database {target.shown}: cannot create its directory "
                f"({e.strerror or type(e).__name__})") from e
        engine = _sqlite_engine(target.url)
    else:
        connect_args: dict[str, Any] = {"application_name": "mrv-registry"}
        if "connect_timeout" not in target.url.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        engine = sa.create_engine(target.url, pool_pre_ping=True, connect_args=connect_args)
    return engine


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver: pysqlite's own implicit BEGIN would come too late for
        # a writer (see _on_begin), so the transactions are ours alone.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        cursor.execute("PRAGMA synchronous = FULL")  # an acknowledged submission survives
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A writer takes the write lock at BEGIN, waiting up to the busy timeout. A
        # deferred transaction that reads and then writes fails at once with "database is
        # locked" when another process wrote in between, whatever the timeout.
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64 bits) of our own."""
    digest = hashlib.sha256(f"mrv-ml registry: {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_MIGRATION_LOCK = _lock_key("migration")
_LEADER_LOCK = _lock_key("anchoring leader")

# Translated into RegistryDatabaseError: the database is down, unreadable or busy. Not
# integrity or programming errors, which are bugs and keep their own type.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)

_open: weakref.WeakSet[Database] = weakref.WeakSet()
_ALEMBIC_IN_USE = threading.Lock()  # Alembic's ``context`` is one global per process


def _forget_connections_after_fork() -> None:
    # A forked child must not use (or close: PostgreSQL would end the session) the
    # connections its parent's pool holds; it opens its own.
    for db in list(_open):
        db._engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


# --- the database ------------------------------------------------------------------------


_D = TypeVar("_D", bound="Database")


class Database:
    """The connection side of the registry database: transactions, errors, migrations and
    the anchoring leader's lock; :class:`~mrv_ml.registry_service.db.repository.RegistryDB`
    adds the queries."""

    def __init__(self, engine: sa.Engine, target: _Target) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})
        self._target = target
        self._postgres = target.sqlite_path is None
        _open.add(self)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return "postgresql" if self._postgres else "sqlite"

    @property
    def shown_url(self) -> str:
        """The database's URL (or file) as messages show it: no password."""
        return self._target.shown

    def close(self) -> None:
        self._engine.dispose()
        _open.discard(self)

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def _error(self, e: BaseException) -> RegistryDatabaseError:
        orig = getattr(e, "orig", None) or e
        lines = str(orig).strip().splitlines()
        detail = lines[0].strip() if lines else type(orig).__name__
        password = self._target.password
        if password:
            detail = detail.replace(password, "***")
        detail = redact_text(detail)[:300]
        return RegistryDatabaseError(f"registry database {self._target.shown}: {detail}")

    def _raise(self, e: sa.exc.SQLAlchemyError) -> NoReturn:
        """Raise ``e``, as RegistryDatabaseError if it says the database is unusable."""
        if isinstance(e, _UNREACHABLE) or type(e) is sa.exc.DatabaseError:
            # (the bare DatabaseError: SQLite's "file is not a database")
            raise self._error(e) from e
        raise e

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        try:
            with (self._writer if write else self._engine).begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as e:
            self._raise(e)

    def _insert(self, table: sa.Table) -> Any:
        return (pg_dialect.insert if self._postgres else sqlite_dialect.insert)(table)

    def _file_lock(self, name: str, timeout_s: float) -> filelock.FileLock:
        assert self._target.sqlite_path is not None
        path = self._target.sqlite_path
        return filelock.FileLock(str(path.with_name(f"{path.name}.{name}.lock")),
                                 timeout=timeout_s)

    def _migrate(self) -> None:
        """Apply the migrations up to head, one process (and one thread) at a time."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        try:
            with _ALEMBIC_IN_USE:
                self._upgrade(cfg)
        except filelock.Timeout as e:
            raise RegistryDatabaseError(
                f"registry database {self.shown_url}: another process has been migrating "
                f"it for over {LOCK_TIMEOUT_S:g} s") from e
        except OSError as e:  # the lock file beside the database
            raise RegistryDatabaseError(
                f"registry database {self.shown_url}: {e.strerror or type(e).__name__}") from e
        except AlembicCommandError as e:  # a revision we do not know: a newer mrv-ml's
            raise RegistryDatabaseError(
                f"registry database {self.shown_url}: its schema is not one this mrv-ml "
                f"knows ({str(e).splitlines()[0][:200]}); upgrade mrv-ml") from e

    def _upgrade(self, cfg: AlembicConfig) -> None:
        if self._postgres:
            # A transaction-level lock: released by the commit, or by the server when this
            # process dies half-way.
            with self._transaction(write=True) as conn:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S)}s'")
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                cfg.attributes["connection"] = conn
                alembic_command.upgrade(cfg, "head")
        else:
            with self._file_lock("migrate", LOCK_TIMEOUT_S), \
                    self._transaction(write=True) as conn:
                cfg.attributes["connection"] = conn
                alembic_command.upgrade(cfg, "head")

    # --- readiness -----------------------------------------------------------------------

    def ping(self) -> None:
        """Return if the database answers; RegistryDatabaseError otherwise."""
        with self._transaction(write=False) as conn:
            conn.execute(sa.select(sa.literal(1)))

    # --- who anchors ---------------------------------------------------------------------

    @contextmanager
    def anchoring_leader(self) -> Iterator[bool]:
        """Whether this process may anchor now (true for exactly one holder at a time,
        across every process using the database), held until the with-block ends; a
        process that dies loses it. Never waits."""
        if not self._postgres:
            lock = self._file_lock("anchoring", 0)
            try:
                lock.acquire(blocking=False)
                held = True
            except filelock.Timeout:
                held = False
            except OSError as e:
                raise RegistryDatabaseError(
                    f"registry database {self.shown_url}: cannot use its anchoring lock "
                    f"({e.strerror or type(e).__name__})") from e
            try:
                yield held
            finally:
                if held:
                    lock.release()
            return
        # A session-level advisory lock on a connection of its own, outside any
        # transaction: the server frees it when that connection ends, and the process too.
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.SQLAlchemyError as e:
            self._raise(e)
        try:
            try:
                held = bool(conn.execute(
                    sa.select(sa.func.pg_try_advisory_lock(_LEADER_LOCK))).scalar())
            except sa.exc.SQLAlchemyError as e:
                self._raise(e)
            try:
                yield held
            finally:
                if held:
                    try:
                        conn.execute(sa.select(sa.func.pg_advisory_unlock(_LEADER_LOCK)))
                    except sa.exc.SQLAlchemyError:
                        conn.invalidate()  # never back into the pool still holding it
        finally:
            conn.close()
