"""The registry service's storage: the fingerprints researchers submit, the Merkle batches
that anchor them, and the records they chose to publish.

One database, a SQLite file or PostgreSQL, shared by every thread and process of the
service. Every write is one transaction whose outcome does not depend on who else writes at
the same instant: rows that may already exist go in with ``INSERT ... ON CONFLICT DO
NOTHING``, and a batch takes only leaves that no batch holds yet, so a fingerprint is one
leaf for ever and in at most one batch at a time. The schema belongs to the Alembic
migrations under ``migrations/`` (applied by :func:`open_database`); the tables below
mirror it for the queries, and a test checks that the two agree.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import os
import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

import filelock

from mrv_ml.config import redact_text, redact_url
from mrv_ml.errors import (
    ConfigError,
    MissingExtraError,
    MRVError,
    MRVValueError,
    RecordError,
    RegistryConflictError,
    RegistryDatabaseError,
)
from mrv_ml.record.schema import MRV_ID_PATTERN

try:
    import sqlalchemy as sa
    from alembic import command as alembic_command
    from alembic.config import Config as AlembicConfig
    from alembic.util import CommandError as AlembicCommandError
    from sqlalchemy.dialects import postgresql as pg_dialect
    from sqlalchemy.dialects import sqlite as sqlite_dialect
except ImportError as e:  # pragma: no cover - the registry extra is not installed
    raise MissingExtraError(
        "the registry needs SQLAlchemy, Alembic and psycopg: "
        f"pip install 'mrv-ml[registry]' (import failed: {e})") from e

UTC = timezone.utc
BatchStatus = Literal["built", "sent", "anchored"]
UNFINISHED: tuple[BatchStatus, ...] = ("built", "sent")

MAX_MRV_ID_CHARS = 40
MAX_CLIENT_CHARS = 200
MAX_LEAVES = 2**32 - 1  # leafCount is a uint32 on chain
MAX_PAGE = 500
BUSY_TIMEOUT_S = 30.0  # SQLite: how long a writer waits for another one
LOCK_TIMEOUT_S = 60.0  # how long opening waits for another process's migration
CONNECT_TIMEOUT_S = 10  # PostgreSQL: an unreachable server is an error after this
# Tags longer than this stay in the record's ``tags`` but are not searchable: a B-tree
# entry has a size limit in PostgreSQL, and nobody searches for a 10 kB value.
MAX_TAG_KEY_CHARS = 200
MAX_TAG_VALUE_CHARS = 500
_CHUNK = 500  # values per IN (...) list: well under every driver's parameter limit

VERSION_TABLE = "mrv_registry_version"  # not "alembic_version": the database may be shared
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_HASH32 = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")
_WRITE = "mrv_registry_write"  # execution option: this transaction will write (SQLite)


# --- schema (mirrors migrations/versions; the migrations are the authority) --------------

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: a rowid alias


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both databases (SQLite keeps no
    zone: it stores UTC wall time, which also sorts and compares correctly as text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise MRVValueError("naive datetime given to the registry database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None,
                             dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

batches = sa.Table(
    "batches", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("root", sa.String(66), nullable=False),
    sa.Column("leaf_count", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("registry_address", sa.String(42), nullable=False),
    sa.Column("submitter", sa.String(42), nullable=False),
    sa.Column("tx_hash", sa.String(66)),
    sa.Column("block_number", sa.BigInteger),
    sa.Column("block_hash", sa.String(66)),
    sa.Column("block_timestamp", sa.BigInteger),
    sa.Column("gas_used", sa.BigInteger),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("sent_at", _UTCDateTime),
    sa.Column("anchored_at", _UTCDateTime),
    sa.UniqueConstraint("root", name="uq_batches_root"),
    sa.CheckConstraint("status IN ('built', 'sent', 'anchored')", name="ck_batches_status"),
    sa.Index("ix_batches_status", "status"),
)

leaves = sa.Table(
    "leaves", metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("first_seen", _UTCDateTime, nullable=False),
    sa.Column("batch_id", _ID, sa.ForeignKey("batches.id", name="fk_leaves_batch_id")),
    sa.CheckConstraint("length(fingerprint) = 64", name="ck_leaves_fingerprint"),
    sa.Index("ix_leaves_batch_id", "batch_id"),
    sa.Index("ix_leaves_pending", "first_seen", "fingerprint",
             sqlite_where=sa.text("batch_id IS NULL"),
             postgresql_where=sa.text("batch_id IS NULL")),
)

submissions = sa.Table(
    "submissions", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64),
              sa.ForeignKey("leaves.fingerprint", name="fk_submissions_fingerprint"),
              nullable=False),
    sa.Column("mrv_id", sa.String(MAX_MRV_ID_CHARS), nullable=False),
    sa.Column("signer", sa.String(42)),
    sa.Column("signature", sa.String(132)),
    sa.Column("client", sa.String(MAX_CLIENT_CHARS)),
    sa.Column("received_at", _UTCDateTime, nullable=False),
    sa.Index("ix_submissions_mrv_id", "mrv_id"),
)
# One submission per (fingerprint, mrv_id, signer), unsigned ones included: a plain UNIQUE
# constraint would let NULL signers repeat (NULLs are distinct in SQL).
sa.Index("uq_submissions_identity", submissions.c.fingerprint, submissions.c.mrv_id,
         sa.func.coalesce(submissions.c.signer, sa.literal_column("''")), unique=True)

records = sa.Table(
    "records", metadata,
    sa.Column("mrv_id", sa.String(MAX_MRV_ID_CHARS), primary_key=True),
    sa.Column("fingerprint", sa.String(64),
              sa.ForeignKey("leaves.fingerprint", name="fk_records_fingerprint"),
              nullable=False),
    sa.Column("record_json", sa.Text, nullable=False),
    sa.Column("experiment", sa.Text, nullable=False),
    sa.Column("model_name", sa.Text),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("signer", sa.String(42)),
    sa.Column("started_at", _UTCDateTime),
    sa.Column("energy_kwh", sa.Float),
    sa.Column("co2_kg", sa.Float),
    sa.Column("published_at", _UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16)),  # the run's outcome (migration 0002)
    sa.Column("dataset_name", sa.Text),
    sa.Column("duration_s", sa.Float),
    sa.Index("ix_records_fingerprint", "fingerprint"),
    sa.Index("ix_records_experiment", "experiment"),
    sa.Index("ix_records_signer", "signer"),
    sa.Index("ix_records_started_at", "started_at"),
    sa.Index("ix_records_published", "published_at", "mrv_id"),
    sa.Index("ix_records_status", "status"),
    sa.Index("ix_records_energy_kwh", "energy_kwh"),
    sa.Index("ix_records_co2_kg", "co2_kg"),
    sa.Index("ix_records_duration_s", "duration_s"),
)

# The tag filter reads this table, not ``records.tags``: a plain indexed (key, value)
# lookup is the same SQL on SQLite and PostgreSQL, where JSON functions differ (json_each
# and jsonb operators) and cannot use an ordinary index on both.
record_tags = sa.Table(
    "record_tags", metadata,
    sa.Column("mrv_id", sa.String(MAX_MRV_ID_CHARS),
              sa.ForeignKey("records.mrv_id", name="fk_record_tags_mrv_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(MAX_TAG_KEY_CHARS), primary_key=True),
    sa.Column("value", sa.String(MAX_TAG_VALUE_CHARS), nullable=False),
    sa.Index("ix_record_tags_key_value", "key", "value"),
)


# --- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One researcher's submission of a fingerprint (under a record ID, maybe signed)."""

    id: int
    fingerprint: str
    mrv_id: str
    signer: str | None
    signature: str | None
    client: str | None
    received_at: datetime


@dataclass(frozen=True)
class Batch:
    """A Merkle tree of leaves and the life of its ``anchorBatch`` transaction."""

    id: int
    root: str
    leaf_count: int
    status: BatchStatus
    chain_id: int
    registry_address: str
    submitter: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    block_timestamp: int | None  # the block's own timestamp, unix seconds
    gas_used: int | None
    created_at: datetime
    sent_at: datetime | None
    anchored_at: datetime | None


@dataclass(frozen=True)
class PublishedRecord:
    """A record its author chose to publish: ``record_json`` is the text received, so
    anyone can recompute the fingerprint; the other fields are copies for searching."""

    mrv_id: str
    fingerprint: str
    record_json: str
    experiment: str
    model_name: str | None
    tags: dict[str, Any]
    signer: str | None
    started_at: datetime | None
    energy_kwh: float | None
    co2_kg: float | None
    published_at: datetime
    status: str | None = None  # the run's outcome: completed / failed / interrupted
    dataset_name: str | None = None
    duration_s: float | None = None


EXPLORE_SORTS = ("date", "energy", "co2", "duration", "experiment")
_EXPLORE_SORT = {"date": records.c.started_at, "energy": records.c.energy_kwh,
                 "co2": records.c.co2_kg, "duration": records.c.duration_s,
                 "experiment": records.c.experiment}


@dataclass(frozen=True)
class ExploreQuery:
    """The explorer's filters over published records (``since <= started_at < until``),
    its order (a key of :data:`EXPLORE_SORTS`, ``-`` first for descending) and page."""

    experiment: str | None = None
    tag: str | None = None  # "key" or "key=value"
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    anchor_state: str | None = None  # "pending" or "anchored"
    sort: str = "-date"
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if self.sort.lstrip("-") not in EXPLORE_SORTS or self.sort.startswith("--"):
            raise RecordError(f"sort is one of {', '.join(EXPLORE_SORTS)} (with - first for "
                              f"descending), not {self.sort[:40]!r}")
        if not 1 <= self.limit <= MAX_PAGE:
            raise RecordError(f"limit must be between 1 and {MAX_PAGE}, not {self.limit}")
        if self.offset < 0:
            raise RecordError(f"offset must not be negative, not {self.offset}")


@dataclass(frozen=True)
class ExploreResult:
    """One page of rows (dicts of the listed columns and ``anchor_state``) and the totals
    of every row that matched, as :func:`mrv_ml.storage.selection.totals` defines them (``count``,
    ``measured``, ``not_measured``, ``energy_kwh``, ``co2_kg``, ``duration_s``)."""

    rows: list[dict[str, Any]]
    totals: dict[str, Any]


@dataclass(frozen=True)
class SubmitResult:
    """What :meth:`RegistryDB.submit` found or made.

    ``new`` is false when this very submission (fingerprint, ID, signer) was already there.
    ``batch`` is the leaf's batch, ``None`` while it waits for one. ``record_published``
    is ``None`` when no record was given, true when the record is published under its ID,
    false when another fingerprint was published under that ID first (the first stays).
    """

    submission: Submission
    new: bool
    batch: Batch | None
    record_published: bool | None


@dataclass(frozen=True)
class RegistryStats:
    """Totals for the service's metrics."""

    submissions_total: int
    leaves_pending: int
    batches_anchored: int
    gas_used_total: int
    last_anchored_at: datetime | None


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


def open_database(url: str) -> RegistryDB:
    """Open the registry database at ``url`` (a SQLite file path or ``sqlite:///`` URL, or
    ``postgresql://``), bringing its schema up to date. Several processes may open the same
    database at once; RegistryDatabaseError when it cannot be reached or opened."""
    target = _target(url)
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
    db = RegistryDB(engine, target)
    try:
        db._migrate()
    except BaseException:
        db.close()
        raise
    return db


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

_open: weakref.WeakSet[RegistryDB] = weakref.WeakSet()
_ALEMBIC_IN_USE = threading.Lock()  # Alembic's ``context`` is one global per process


def _forget_connections_after_fork() -> None:
    # A forked child must not use (or close: PostgreSQL would end the session) the
    # connections its parent's pool holds; it opens its own.
    for db in list(_open):
        db._engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


# --- the database ------------------------------------------------------------------------



def _has_tag(tag: str) -> Any:
    """The condition "the record has tag ``key``" or "``key=value``" (one filter word)."""
    key, has_value, value = tag.partition("=")
    if not key:
        raise RecordError(f"a tag filter is 'key' or 'key=value', not {tag!r}")
    match = sa.select(record_tags.c.mrv_id).where(
        record_tags.c.mrv_id == records.c.mrv_id, record_tags.c.key == key)
    if has_value:
        match = match.where(record_tags.c.value == value)
    return match.exists()

class RegistryDB:
    """The registry database; safe to share between threads (each call takes a pooled
    connection). Make one per process with :func:`open_database`."""

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

    def __enter__(self) -> RegistryDB:
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

    @functools.cached_property
    def _submit_statements(self) -> tuple[Any, Any]:
        """The two statements of a new submission, built once with bind parameters: building
        and keying a statement per call cost as much CPU as the database work itself."""
        new_leaf = (self._insert(leaves)
                    .values(fingerprint=sa.bindparam("fingerprint"),
                            first_seen=sa.bindparam("now"))
                    .on_conflict_do_nothing().returning(leaves.c.fingerprint))
        new_submission = (self._insert(submissions)
                          .values(fingerprint=sa.bindparam("fingerprint"),
                                  mrv_id=sa.bindparam("mrv_id"),
                                  signer=sa.bindparam("signer"),
                                  signature=sa.bindparam("signature"),
                                  client=sa.bindparam("client"),
                                  received_at=sa.bindparam("now"))
                          .on_conflict_do_nothing().returning(*submissions.c))
        return new_leaf, new_submission

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

    # --- submissions ---------------------------------------------------------------------

    def submit(self, fingerprint: str, mrv_id: str, *, signer: str | None = None,
               signature: str | None = None, client: str | None = None,
               record_json: str | bytes | None = None,
               record_fields: Mapping[str, Any] | None = None) -> SubmitResult:
        """Record a submission, in one transaction: the leaf if new, the submission if new
        (the same fingerprint, ID and signer again is the same submission), and the
        published record if given. Idempotent and safe when others submit the same at once.

        ``record_fields`` (with ``record_json``) are the searchable copies the caller took
        from the record: ``experiment`` (required), ``model_name``, ``tags``,
        ``started_at``, ``energy_kwh``, ``co2_kg``, ``signer`` (default: ``signer``). The
        caller has checked that ``record_json`` is the record of ``fingerprint``.
        """
        prepared = self._prepare(fingerprint, mrv_id, signer=signer, signature=signature,
                                 client=client, record_json=record_json,
                                 record_fields=record_fields)
        with self._transaction(write=True) as conn:
            return self._write_submission(conn, prepared)

    def submit_many(self, submissions_: Sequence[Mapping[str, Any]]
                    ) -> list[SubmitResult | Exception]:
        """Several submissions (each the keyword arguments of :meth:`submit`) in ONE
        transaction, so one commit (and one fsync) serves them all: the service groups the
        submissions that arrive together. Each gets its result or its own error, in order;
        should the shared transaction fail, each is tried alone, so one never fails the
        others (a database that is down fails them all alike)."""
        results: list[SubmitResult | Exception | None] = [None] * len(submissions_)
        prepared: list[tuple[int, dict[str, Any]]] = []
        for n, kwargs in enumerate(submissions_):
            try:
                prepared.append((n, self._prepare(**kwargs)))
            except MRVError as e:
                results[n] = e
        try:
            with self._transaction(write=True) as conn:
                written = [(n, self._write_submission(conn, p)) for n, p in prepared]
            for n, result in written:
                results[n] = result
        except RegistryDatabaseError as e:
            for n, _ in prepared:
                results[n] = e
        except (MRVError, sa.exc.SQLAlchemyError):
            for n, p in prepared:
                try:
                    with self._transaction(write=True) as conn:
                        results[n] = self._write_submission(conn, p)
                except Exception as e:  # noqa: BLE001 - handed to its own submitter
                    results[n] = e
        return [r for r in results if r is not None]

    def _prepare(self, fingerprint: str, mrv_id: str, *, signer: str | None = None,
                 signature: str | None = None, client: str | None = None,
                 record_json: str | bytes | None = None,
                 record_fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A submission's checked values and rows, before any database work."""
        fingerprint = _fingerprint(fingerprint)
        mrv_id = _mrv_id(mrv_id)
        signer = _address(signer, "signer")
        if signature is not None:
            if signer is None:
                raise RecordError("a signature needs its signer's address")
            signature = _hex_value(signature, _SIGNATURE, "signature", "65-byte")
        if client is not None:
            client = client[:MAX_CLIENT_CHARS]
        if (record_json is None) != (record_fields is None):
            raise RecordError("record_json and record_fields come together")
        now = _now()
        record = tags = None
        if record_json is not None and record_fields is not None:
            record, tags = _record_row(mrv_id, fingerprint, record_json, record_fields,
                                       signer, now)
        return {"params": {"fingerprint": fingerprint, "mrv_id": mrv_id, "signer": signer,
                           "signature": signature, "client": client, "now": now},
                "record": record, "tags": tags}

    def _write_submission(self, conn: sa.Connection, prepared: Mapping[str, Any]
                          ) -> SubmitResult:
        insert_leaf, insert_submission = self._submit_statements
        params, record, tags = prepared["params"], prepared["record"], prepared["tags"]
        fingerprint, mrv_id, signer = params["fingerprint"], params["mrv_id"], params["signer"]
        new_leaf = conn.execute(insert_leaf, params).first() is not None
        # A new submission comes back whole from RETURNING; only one seen before is read
        # (the common case costs two statements, not four).
        row = conn.execute(insert_submission, params).first()
        inserted = row is not None
        if row is None:
            same_signer = (submissions.c.signer.is_(None) if signer is None
                           else submissions.c.signer == signer)
            row = conn.execute(sa.select(submissions).where(
                submissions.c.fingerprint == fingerprint, submissions.c.mrv_id == mrv_id,
                same_signer)).one()
        published: bool | None = None
        if record is not None:
            stored = conn.execute(self._insert(records).values(**record)
                                  .on_conflict_do_nothing()
                                  .returning(records.c.mrv_id)).first()
            if stored is not None and tags:
                conn.execute(sa.insert(record_tags), tags)
            published = conn.execute(sa.select(records.c.fingerprint).where(
                records.c.mrv_id == mrv_id)).scalar_one() == fingerprint
        batch = None if new_leaf else self._batch_of(conn, fingerprint)  # new: in none
        return SubmitResult(_submission(row), inserted, batch, published)

    def submissions_for(self, fingerprint: str | None = None,
                        mrv_id: str | None = None) -> list[Submission]:
        """Submissions of a fingerprint, of an ID, or of both together; oldest first."""
        if fingerprint is None and mrv_id is None:
            raise RecordError("name a fingerprint or a record ID")
        query = sa.select(submissions).order_by(submissions.c.id)
        if fingerprint is not None:
            query = query.where(submissions.c.fingerprint == _fingerprint(fingerprint))
        if mrv_id is not None:
            query = query.where(submissions.c.mrv_id == _mrv_id(mrv_id))
        with self._transaction(write=False) as conn:
            return [_submission(r) for r in conn.execute(query)]

    # --- leaves waiting for a batch ------------------------------------------------------

    def pending_count(self) -> int:
        with self._transaction(write=False) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(leaves)
                                    .where(leaves.c.batch_id.is_(None))).scalar_one())

    def pending_fingerprints(self, limit: int) -> list[str]:
        """Up to ``limit`` leaves in no batch, the longest waiting first."""
        if limit < 1:
            raise RecordError(f"limit must be at least 1, not {limit}")
        with self._transaction(write=False) as conn:
            return list(conn.execute(
                sa.select(leaves.c.fingerprint).where(leaves.c.batch_id.is_(None))
                .order_by(leaves.c.first_seen, leaves.c.fingerprint).limit(limit)).scalars())

    # --- batches -------------------------------------------------------------------------

    def create_batch(self, root: str, fingerprints: Sequence[str], *, chain_id: int,
                     registry_address: str, submitter: str) -> Batch:
        """Record a built tree (status ``built``) and give it its leaves, in one
        transaction. RegistryConflictError if a leaf is in another batch or was never
        submitted, or the root exists already; nothing is changed then."""
        root = _hex_value(root, _HASH32, "Merkle root", "32-byte")
        leaf_list = [_fingerprint(f) for f in fingerprints]
        if not leaf_list:
            raise RecordError("a batch needs at least one leaf")
        if len(set(leaf_list)) != len(leaf_list):
            raise RecordError("a batch names a fingerprint twice")
        if len(leaf_list) > MAX_LEAVES:
            raise RecordError(f"a batch holds at most {MAX_LEAVES} leaves")
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 1:
            raise RecordError(f"chain id must be a positive integer, not {chain_id!r}")
        registry = _address(registry_address, "registry address")
        operator = _address(submitter, "submitter")
        with self._transaction(write=True) as conn:
            existing = conn.execute(sa.select(batches.c.id).where(batches.c.root == root)
                                    ).scalar()
            if existing is not None:
                raise RegistryConflictError(f"batch {existing} already has root {root}")
            try:
                batch_id = conn.execute(sa.insert(batches).values(
                    root=root, leaf_count=len(leaf_list), status="built", chain_id=chain_id,
                    registry_address=registry, submitter=operator, created_at=_now(),
                ).returning(batches.c.id)).scalar_one()
            except sa.exc.IntegrityError as e:  # the same root created at this instant
                raise RegistryConflictError(f"a batch with root {root} already exists") from e
            assigned = 0
            for chunk in _chunks(sorted(leaf_list)):
                assigned += conn.execute(
                    sa.update(leaves)
                    .where(leaves.c.fingerprint.in_(chunk), leaves.c.batch_id.is_(None))
                    .values(batch_id=batch_id)).rowcount
            if assigned != len(leaf_list):
                raise self._not_pending(conn, leaf_list, batch_id)  # rolls back
            return self._batch(conn, batch_id)

    def _not_pending(self, conn: sa.Connection, leaf_list: list[str],
                     batch_id: int) -> RegistryConflictError:
        found: dict[str, int | None] = {}
        for chunk in _chunks(leaf_list):
            rows = conn.execute(sa.select(leaves.c.fingerprint, leaves.c.batch_id)
                                .where(leaves.c.fingerprint.in_(chunk)))
            found.update((f, b) for f, b in rows)
        taken = [(f, found[f]) for f in leaf_list if f in found and found[f] != batch_id]
        unknown = [f for f in leaf_list if f not in found]
        problems = [f"{f} is in batch {b}" for f, b in taken] + [
            f"{f} was never submitted" for f in unknown]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return RegistryConflictError(f"cannot batch: fingerprint {problems[0]}{more}")

    def mark_sent(self, batch_id: int, tx_hash: str) -> Batch:
        """The batch's transaction was sent (again, for a replacement transaction)."""
        tx_hash = _hex_value(tx_hash, _HASH32, "transaction hash", "32-byte")
        with self._transaction(write=True) as conn:
            current = self._locked_batch(conn, batch_id)
            if current.status == "anchored":
                raise RegistryConflictError(f"batch {batch_id} is anchored already")
            conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(
                status="sent", tx_hash=tx_hash, sent_at=current.sent_at or _now()))
            return self._batch(conn, batch_id)

    def mark_anchored(self, batch_id: int, *, block_number: int, block_hash: str,
                      block_timestamp: int, gas_used: int | None,
                      tx_hash: str | None = None) -> Batch:
        """The batch's root is on chain. Allowed from any state: a batch found on chain
        after a crash before :meth:`mark_sent`, or mined again after a reorganisation."""
        block_hash = _hex_value(block_hash, _HASH32, "block hash", "32-byte")
        for name, value in (("block number", block_number),
                            ("block timestamp", block_timestamp), ("gas used", gas_used)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise RecordError(f"{name} must be a non-negative integer, not {value!r}")
        changes: dict[str, Any] = {"status": "anchored", "block_number": block_number,
                                   "block_hash": block_hash, "block_timestamp": block_timestamp,
                                   "gas_used": gas_used}
        if tx_hash is not None:
            changes["tx_hash"] = _hex_value(tx_hash, _HASH32, "transaction hash", "32-byte")
        with self._transaction(write=True) as conn:
            current = self._locked_batch(conn, batch_id)
            changes["anchored_at"] = current.anchored_at or _now()
            conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(**changes))
            return self._batch(conn, batch_id)

    def discard_batch(self, batch_id: int) -> None:
        """Forget a ``built`` batch whose transaction was never sent; its leaves wait for
        the next batch again."""
        with self._transaction(write=True) as conn:
            current = self._locked_batch(conn, batch_id)
            if current.status != "built":
                raise RegistryConflictError(
                    f"batch {batch_id} is {current.status}: only a batch never sent can be "
                    "discarded")
            conn.execute(sa.update(leaves).where(leaves.c.batch_id == batch_id)
                         .values(batch_id=None))
            conn.execute(sa.delete(batches).where(batches.c.id == batch_id))

    def unfinished_batches(self) -> list[Batch]:
        """Batches built or sent but not known anchored, oldest first."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(sa.select(batches).where(batches.c.status.in_(UNFINISHED))
                                .order_by(batches.c.created_at, batches.c.id))
            return [_batch(r) for r in rows]

    def batch(self, batch_id: int) -> Batch | None:
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).first()
            return None if row is None else _batch(row)

    def batch_leaves(self, batch_id: int) -> list[str]:
        """The batch's fingerprints in ascending order (build its tree from them in this
        order and the leaf indexes come out the same every time)."""
        with self._transaction(write=False) as conn:
            return list(conn.execute(sa.select(leaves.c.fingerprint)
                                     .where(leaves.c.batch_id == batch_id)
                                     .order_by(leaves.c.fingerprint)).scalars())

    def batch_of(self, fingerprint: str) -> Batch | None:
        """The batch holding this fingerprint's leaf; ``None`` if pending or unknown."""
        fingerprint = _fingerprint(fingerprint)
        with self._transaction(write=False) as conn:
            return self._batch_of(conn, fingerprint)

    def _batch(self, conn: sa.Connection, batch_id: int) -> Batch:
        return _batch(conn.execute(sa.select(batches).where(batches.c.id == batch_id)).one())

    def _locked_batch(self, conn: sa.Connection, batch_id: int) -> Batch:
        # FOR UPDATE (PostgreSQL; SQLite's writer already excludes every other writer): two
        # callers changing one batch's state take turns.
        row = conn.execute(sa.select(batches).where(batches.c.id == batch_id)
                           .with_for_update()).first()
        if row is None:
            raise RegistryConflictError(f"no batch {batch_id}")
        return _batch(row)

    def _batch_of(self, conn: sa.Connection, fingerprint: str) -> Batch | None:
        row = conn.execute(sa.select(batches).join(leaves, leaves.c.batch_id == batches.c.id)
                           .where(leaves.c.fingerprint == fingerprint)).first()
        return None if row is None else _batch(row)

    # --- published records ---------------------------------------------------------------

    def published(self, mrv_id: str) -> PublishedRecord | None:
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(records).where(records.c.mrv_id == _mrv_id(mrv_id))
                               ).first()
            return None if row is None else _published(row)

    def search_published(self, *, experiment: str | None = None, signer: str | None = None,
                         tag: str | None = None, since: datetime | None = None,
                         until: datetime | None = None, after: str | None = None,
                         limit: int = 50) -> tuple[list[PublishedRecord], str | None]:
        """Published records, newest first, and the cursor of the next page (``None`` on
        the last). ``tag`` is ``"key"`` or ``"key=value"``; ``since``/``until`` bound the
        training's start (``since <= started_at < until``); ``after`` is a cursor
        returned before. Pages neither repeat nor skip a record, whatever is published
        meanwhile (new records come before the first page)."""
        if not 1 <= limit <= MAX_PAGE:
            raise RecordError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        query = sa.select(records)
        if experiment is not None:
            query = query.where(records.c.experiment == experiment)
        if signer is not None:
            query = query.where(records.c.signer == _address(signer, "signer"))
        if tag is not None:
            query = query.where(_has_tag(tag))
        if since is not None:
            query = query.where(records.c.started_at >= _aware(since, "since"))
        if until is not None:
            query = query.where(records.c.started_at < _aware(until, "until"))
        if after is not None:
            at, last_id = _read_cursor(after)
            query = query.where(sa.or_(
                records.c.published_at < at,
                sa.and_(records.c.published_at == at, records.c.mrv_id < last_id)))
        query = query.order_by(records.c.published_at.desc(), records.c.mrv_id.desc())
        with self._transaction(write=False) as conn:
            rows = [_published(r) for r in conn.execute(query.limit(limit + 1))]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, _cursor(page[-1].published_at, page[-1].mrv_id)

    def explore(self, query: ExploreQuery) -> ExploreResult:
        """The explorer over published records: one page of rows in the order asked, and
        the totals and count of the whole filtered set, both computed in SQL."""
        anchor_state = sa.case((batches.c.status == "anchored", "anchored"),
                               else_="pending").label("anchor_state")
        source = records.outerjoin(leaves, leaves.c.fingerprint == records.c.fingerprint
                                   ).outerjoin(batches, batches.c.id == leaves.c.batch_id)
        where: list[Any] = []
        if query.experiment is not None:
            where.append(records.c.experiment == query.experiment)
        if query.tag is not None:
            where.append(_has_tag(query.tag))
        if query.since is not None:
            where.append(records.c.started_at >= _aware(query.since, "since"))
        if query.until is not None:
            where.append(records.c.started_at < _aware(query.until, "until"))
        if query.status is not None:
            where.append(records.c.status == query.status)
        if query.anchor_state == "anchored":
            where.append(batches.c.status == "anchored")
        elif query.anchor_state == "pending":
            where.append(sa.or_(batches.c.status.is_(None), batches.c.status != "anchored"))
        elif query.anchor_state is not None:
            where.append(sa.false())  # "none" or "unreadable": never so in a registry
        column, descending = _EXPLORE_SORT[query.sort.lstrip("-")], query.sort.startswith("-")
        # NULLs (a failed measurement's energy) last, whichever way: portable as a flag
        order: list[Any] = [sa.case((column.is_(None), 1), else_=0),
                            column.desc() if descending else column.asc(),
                            records.c.mrv_id.asc()]
        page = (sa.select(records.c.mrv_id, records.c.fingerprint, records.c.experiment,
                          records.c.model_name, records.c.dataset_name, records.c.status,
                          records.c.started_at, records.c.duration_s, records.c.energy_kwh,
                          records.c.co2_kg, records.c.tags, records.c.signer, anchor_state)
                .select_from(source).where(*where).order_by(*order)
                .limit(query.limit).offset(query.offset))
        # The rules of selection.totals: sums over the measured runs only (a failed
        # measurement's energy is unknown, not zero), an empty sum is 0.
        measured = records.c.energy_kwh.is_not(None)

        def total(column: Any) -> Any:
            return sa.func.coalesce(sa.func.sum(sa.case((measured, column))), sa.literal(0.0))

        totals = (sa.select(sa.func.count(), sa.func.count(records.c.energy_kwh),
                            total(records.c.energy_kwh), total(records.c.co2_kg),
                            total(records.c.duration_s))
                  .select_from(source).where(*where))
        with self._transaction(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(page)]
            count, n_measured, energy, co2, duration = conn.execute(totals).one()
        return ExploreResult(rows, {"count": int(count), "measured": int(n_measured),
                                    "not_measured": int(count) - int(n_measured),
                                    "energy_kwh": float(energy), "co2_kg": float(co2),
                                    "duration_s": float(duration)})

    # --- metrics -------------------------------------------------------------------------

    def stats(self) -> RegistryStats:
        anchored = batches.c.status == "anchored"
        with self._transaction(write=False) as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(submissions)
                                 ).scalar_one()
            pending = conn.execute(sa.select(sa.func.count()).select_from(leaves)
                                   .where(leaves.c.batch_id.is_(None))).scalar_one()
            count, gas, last = conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(batches.c.gas_used), 0),
                sa.func.max(batches.c.anchored_at)).where(anchored)).one()
        return RegistryStats(int(total), int(pending), int(count), int(gas), last)

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


# --- rows and values ---------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _fingerprint(value: str) -> str:
    if not isinstance(value, str) or not _FINGERPRINT.fullmatch(value):
        raise RecordError(f"a fingerprint is 64 lowercase hex digits, not {str(value)[:80]!r}")
    return value


def _mrv_id(value: str) -> str:
    if not isinstance(value, str) or not MRV_ID_PATTERN.fullmatch(value):
        raise RecordError(f"not an MRV record ID: {str(value)[:80]!r}")
    return value


def _address(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise RecordError(f"{what} is not an address: {str(value)[:80]!r}")
    from eth_utils import to_checksum_address

    return str(to_checksum_address(value))


def _hex_value(value: str, pattern: re.Pattern[str], what: str, size: str) -> str:
    lowered = value.lower() if isinstance(value, str) else ""
    if not pattern.fullmatch(lowered):
        raise RecordError(f"{what} must be {size} hex with 0x, not {str(value)[:80]!r}")
    return lowered


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise RecordError(f"{what} must be a datetime with a time zone")
    return value.astimezone(UTC)


def _timestamp(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(f"{what} is not an ISO 8601 time: {value[:80]!r}") from None
    return _aware(value, what)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"{what} must be a finite number or null, not {value!r}")
    return float(value)


_RECORD_FIELDS = {"experiment", "model_name", "tags", "started_at", "energy_kwh", "co2_kg",
                  "signer", "status", "dataset_name", "duration_s"}


def _record_row(mrv_id: str, fingerprint: str, record_json: str | bytes,
                fields: Mapping[str, Any], signer: str | None,
                now: datetime) -> tuple[dict[str, Any], list[dict[str, str]]]:
    unknown = set(fields) - _RECORD_FIELDS
    if unknown:
        raise RecordError(f"unknown record fields: {', '.join(sorted(unknown))}")
    if isinstance(record_json, bytes):
        try:
            record_json = record_json.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("the record is not UTF-8") from None
    experiment = fields.get("experiment")
    if not isinstance(experiment, str) or not experiment:
        raise RecordError("a published record needs its experiment's name")
    model_name = fields.get("model_name")
    if model_name is not None and not isinstance(model_name, str):
        raise RecordError("model_name must be text")
    tags = fields.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise RecordError("tags must be an object")
    row = {
        "mrv_id": mrv_id, "fingerprint": fingerprint, "record_json": record_json,
        "experiment": experiment, "model_name": model_name, "tags": dict(tags),
        "signer": _address(fields["signer"], "signer") if "signer" in fields else signer,
        "started_at": _timestamp(fields.get("started_at"), "started_at"),
        "energy_kwh": _number(fields.get("energy_kwh"), "energy_kwh"),
        "co2_kg": _number(fields.get("co2_kg"), "co2_kg"),
        "published_at": now,
        "status": _short_text(fields.get("status"), "status", 16),
        "dataset_name": _short_text(fields.get("dataset_name"), "dataset_name", None),
        "duration_s": _number(fields.get("duration_s"), "duration_s"),
    }
    tag_rows = []
    for key, value in tags.items():
        text = value if isinstance(value, str) else json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(key) <= MAX_TAG_KEY_CHARS and len(text) <= MAX_TAG_VALUE_CHARS:
            tag_rows.append({"mrv_id": mrv_id, "key": key, "value": text})
    return row, tag_rows


def _short_text(value: Any, what: str, limit: int | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        raise RecordError(f"{what} must be text" + (f" of at most {limit} characters"
                                                     if limit else ""))
    return value


def _cursor(published_at: datetime, mrv_id: str) -> str:
    raw = json.dumps([published_at.isoformat(), mrv_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, mrv_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(mrv_id, str):
            raise MRVValueError(cursor)
    except (ValueError, TypeError, binascii.Error):
        raise RecordError("not a cursor from this registry's search") from None
    return when.astimezone(UTC), mrv_id


def _submission(row: sa.Row[Any]) -> Submission:
    m = row._mapping
    return Submission(id=int(m["id"]), fingerprint=m["fingerprint"], mrv_id=m["mrv_id"],
                      signer=m["signer"], signature=m["signature"], client=m["client"],
                      received_at=m["received_at"])


def _batch(row: sa.Row[Any]) -> Batch:
    m = row._mapping
    return Batch(id=int(m["id"]), root=m["root"], leaf_count=int(m["leaf_count"]),
                 status=cast(BatchStatus, m["status"]), chain_id=int(m["chain_id"]),
                 registry_address=m["registry_address"], submitter=m["submitter"],
                 tx_hash=m["tx_hash"], block_number=m["block_number"],
                 block_hash=m["block_hash"], block_timestamp=m["block_timestamp"],
                 gas_used=m["gas_used"], created_at=m["created_at"], sent_at=m["sent_at"],
                 anchored_at=m["anchored_at"])


def _published(row: sa.Row[Any]) -> PublishedRecord:
    m = row._mapping
    return PublishedRecord(
        mrv_id=m["mrv_id"], fingerprint=m["fingerprint"], record_json=m["record_json"],
        experiment=m["experiment"], model_name=m["model_name"], tags=dict(m["tags"]),
        signer=m["signer"], started_at=m["started_at"], energy_kwh=m["energy_kwh"],
        co2_kg=m["co2_kg"], published_at=m["published_at"], status=m["status"],
        dataset_name=m["dataset_name"], duration_s=m["duration_s"])
