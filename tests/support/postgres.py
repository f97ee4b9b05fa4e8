"""pytest plugin: a real PostgreSQL server for the tests (Debian's ``postgresql`` package,
installed by ``scripts/bootstrap.sh test``).

- ``postgres_url`` (session): a server started once per session from ``initdb`` into a
  fresh temporary directory, on a free loopback port (and a Unix socket in that
  directory), fsync off; stopped and deleted at the end. Skipped, with the reason, only
  when the binaries are not installed.
- ``postgres_database`` (function): a fresh database of its own on that server; its URL.
  Dropped afterwards.
- ``registry_db_url`` (function, parametrized ``sqlite`` / ``postgresql``): a URL for
  :func:`mrv_ml.registry_service.db.open_database`, so one test runs on both databases. The server
  starts only when a ``postgresql`` case runs.

PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user that
Debian's package creates (``nobody`` if there is none), through ``setpriv``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
SUPERUSER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl``."""
    found = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        bin_dir = initdb.parent
        version = bin_dir.parent.name
        if (bin_dir / "pg_ctl").exists() and version.isdigit():
            found.append((int(version), bin_dir))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A throwaway PostgreSQL cluster in its own directory; ``url`` reaches its
    ``postgres`` database as the superuser (trust authentication, loopback only)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="mrv-postgres-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0
        self._user: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                entry = pwd.getpwnam("nobody")
            self._user = (entry.pw_uid, entry.pw_gid)
            os.chown(self.base, *self._user)

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._user is not None:
            uid, gid = self._user
            command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                       "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.base,
                                timeout=START_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): "
                               f"{(result.stderr or result.stdout).strip()[-800:]}")
        return result

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# mrv-ml tests: speed over durability, loopback only\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\n"
                "max_connections = 100\n")
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = _free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                          "-t", str(START_TIMEOUT_S), "-o", f"-p {self.port}", "start")
                return
            except RuntimeError:
                if attempt == 2:
                    tail = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
                    raise RuntimeError(f"PostgreSQL did not start: {tail.strip()}") from None

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def configure(self, settings: str) -> None:
        """Append ``settings`` (postgresql.conf lines) and reload the running server."""
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        self._run("pg_ctl", "-D", str(self.data), "-w", "reload")

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"mrv_test_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # our own constant text


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                    "run scripts/bootstrap.sh test, or apt-get install postgresql")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's server (its ``postgres`` database, as the superuser)."""
    return postgres_server.url


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database of this test's own; dropped afterwards."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A registry database URL: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "registry.sqlite")
    return str(request.getfixturevalue("postgres_database"))
