"""Registry services as separate processes, for tests that kill them, run several of them,
or cut them off from the chain.

:class:`RegistryProcess` runs ``mrv registry serve`` (the installed command, or, with
``crash_at``, this file as a script that patches one function of the service to SIGKILL
its own process right after that function ran, then runs the same command in-process: no
test hook lives in the product). Stages (``crash_at="STAGE"`` or ``"STAGE:N"``, the N-th
time; default the first):

- ``submitted``: ``RegistryDB.submit_many`` committed a group of submissions (their
  answers never leave);
- ``built``: ``RegistryDB.create_batch`` wrote a batch and gave it its leaves;
- ``sent``: ``RegistryDB.mark_sent``: the node accepted the batch's transaction;
- ``mined``: ``ChainConnection._wait`` got the receipt, which is not recorded yet;
- ``serving``: ``ProofBuilder.document`` built a complete (anchored) proof.

The child writes ``crash-at STAGE`` on stderr before it dies, so a test can tell the stage
was reached. :class:`TcpProxy` stands between a service and its node and can stop
forwarding (the node is down for the service) and start again on the same port.

The helpers below the classes are what the failure tests share: submitting over HTTP,
collecting proofs, reading ``BatchAnchored`` events, and ``mrv verify`` in an empty
directory with nothing but ``--rpc-url``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

STAGES = ("submitted", "built", "sent", "mined", "serving")
START_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 30.0


# --- the child: patch one function, then run the command ---------------------------------


def install_crash(stage: str, nth: int = 1) -> None:
    """Make the service SIGKILL itself right after the ``nth`` run of ``stage``'s function."""
    from mrv_ml.chain.connection import ChainConnection
    from mrv_ml.registry_service.db import RegistryDB
    from mrv_ml.registry_service.proofs import ProofBuilder

    targets: dict[str, tuple[Any, str, Any]] = {
        "submitted": (RegistryDB, "submit_many", None),
        "built": (RegistryDB, "create_batch", None),
        "sent": (RegistryDB, "mark_sent", None),
        "mined": (ChainConnection, "_wait", None),
        "serving": (ProofBuilder, "document", lambda doc: doc.get("status") == "anchored"),
    }
    owner, name, counts = targets[stage]
    original = getattr(owner, name)
    lock = threading.Lock()
    seen = [0]

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if counts is None or counts(result):
            with lock:
                seen[0] += 1
                now = seen[0] == nth
            if now:
                os.write(2, f"crash-at {stage}\n".encode())
                os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def _child_main(argv: list[str]) -> None:
    """``registry_procs.py crash STAGE[:N] -- MRV ARGS...``"""
    if len(argv) < 3 or argv[0] != "crash" or argv[2] != "--":
        raise SystemExit("usage: registry_procs.py crash STAGE[:N] -- MRV ARGS...")
    stage, _, nth = argv[1].partition(":")
    if stage not in STAGES:
        raise SystemExit(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    install_crash(stage, int(nth or 1))
    from mrv_ml.cli import main

    main(argv[3:])


# --- the service as a process -------------------------------------------------------------


def operator_key() -> str:
    from mrv_ml.chain.localchain import anvil_dev_accounts
    from tests.support.registry import OPERATOR_INDEX

    return str(anvil_dev_accounts()[OPERATOR_INDEX].key.hex())


def operator_address() -> str:
    from mrv_ml.chain.localchain import anvil_dev_accounts
    from tests.support.registry import OPERATOR_INDEX

    return str(anvil_dev_accounts()[OPERATOR_INDEX].address)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegistryProcess:
    """``mrv registry serve`` in a child process (its own process group) on 127.0.0.1."""

    def __init__(self, database: str, rpc_url: str, contract: str, workdir: Path, *,
                 name: str = "registry", port: int | None = None, interval_s: float = 1.0,
                 crash_at: str | None = None, extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.database, self.rpc_url, self.contract = database, rpc_url, contract
        self.port = port or free_port()
        self.interval_s = interval_s
        self.crash_at = crash_at
        self.extra_args = list(extra_args)
        self.data_dir = workdir / f"{name}-data"
        self.log_path = workdir / f"{name}.log"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        from tests.support.cli import mrv_command

        args = ["registry", "serve", "--database", self.database, "--network", "anvil",
                "--rpc-url", self.rpc_url, "--contract", self.contract,
                "--interval", f"{self.interval_s:g}", "--port", str(self.port),
                *self.extra_args]
        if self.crash_at is None:
            return [*mrv_command(), *args]
        return [sys.executable, str(Path(__file__).resolve()), "crash", self.crash_at, "--",
                *args]

    def start(self, *, wait: bool = True) -> RegistryProcess:
        env = {k: v for k, v in os.environ.items()
               if k not in ("MRV_REGISTRY_URL", "MRV_REGISTRY_TOKEN", "BLOCKCHAIN_RPC_URL",
                            "CONTRACT_ADDRESS", "NETWORK", "MRV_NETWORK")}
        env.update(PRIVATE_KEY=operator_key(), MRV_DATA_DIR=str(self.data_dir),
                   MRV_NO_DOTENV="1", PYTHONUNBUFFERED="1", **self.extra_env)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        import requests

        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the registry exited with {self.proc.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the registry did not answer within {timeout_s:g} s:\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.1)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout_s: float = 60.0) -> int:
        """The exit status (negative: killed by that signal) once it exits by itself."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the registry still runs after {timeout_s:g} s:\n"
                                 f"{self.log()[-3000:]}") from None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (graceful), SIGKILL after ``timeout_s``; the exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        else:  # its own children, if any were left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def __enter__(self) -> RegistryProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def registry_processes(*procs: RegistryProcess) -> Iterator[tuple[RegistryProcess, ...]]:
    """Start them all (in parallel: each takes seconds to import), stop them all at exit."""
    try:
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.stop()


# --- a TCP proxy that can stop forwarding -------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream`` (host, port). :meth:`down` closes the
    listening socket and every connection (clients get "connection refused", as from a
    node that is gone); :meth:`up` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            live, self._live = self._live, set()
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                self._live.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._live.discard(src)
                self._live.discard(dst)

    def __enter__(self) -> TcpProxy:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


# --- what the failure tests share ---------------------------------------------------------


def new_records(count: int, experiment: str = "registry-failures") -> dict[str, dict[str, Any]]:
    """``count`` fresh valid records by ID."""
    from tests.support.records import make_sample_record

    out = {}
    for n in range(count):
        record = make_sample_record(experiment__name=experiment,
                                    experiment__tags={"n": str(n)})
        out[record["mrv_id"]] = record
    return out


def submission_body(record: dict[str, Any]) -> dict[str, Any]:
    from mrv_ml.record.hashing import compute_hash

    return {"fingerprint": compute_hash(record), "mrv_id": record["mrv_id"]}


def http(method: str, url: str, body: Any = None, session: Any = None,
         timeout_s: float = HTTP_TIMEOUT_S) -> tuple[int | None, Any]:
    """(status, JSON body) of one request; ``(None, reason)`` when no answer came."""
    import requests

    try:
        response = (session or requests).request(method, url, json=body, timeout=timeout_s)
    except requests.RequestException as e:
        return None, type(e).__name__
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def submit_all(url: str, records: dict[str, dict[str, Any]]) -> tuple[set[str], set[str]]:
    """POST every record's fingerprint: (IDs accepted with 200/202, IDs that got no
    answer). Any other answer fails the test."""
    import requests

    accepted, unanswered = set(), set()
    with requests.Session() as session:
        for mrv_id, record in records.items():
            status, answer = http("POST", f"{url}/v1/submissions", submission_body(record),
                                  session)
            if status in (200, 202):
                accepted.add(mrv_id)
            elif status is None:
                unanswered.add(mrv_id)
            else:
                raise AssertionError(f"submission of {mrv_id}: {status} {answer}")
    return accepted, unanswered


def proof_documents(url: str, records: dict[str, dict[str, Any]]
                    ) -> dict[str, dict[str, Any] | None]:
    """Each record's proof document from the registry (``None``: no answer)."""
    import requests

    out: dict[str, dict[str, Any] | None] = {}
    with requests.Session() as session:
        for mrv_id, record in records.items():
            fingerprint = submission_body(record)["fingerprint"]
            status, answer = http("GET", f"{url}/v1/proofs/{fingerprint}?mrv_id={mrv_id}",
                                  session=session)
            if status is None:
                out[mrv_id] = None
                continue
            assert status == 200, (mrv_id, status, answer)
            out[mrv_id] = answer
    return out


def wait_all_anchored(url: str, records: dict[str, dict[str, Any]], timeout_s: float = 60.0,
                      service: RegistryProcess | None = None) -> dict[str, dict[str, Any]]:
    """Poll until every record's proof is complete; the proofs (sidecar dicts) by ID."""
    deadline = time.monotonic() + timeout_s
    waiting = dict(records)
    done: dict[str, dict[str, Any]] = {}
    while True:
        for mrv_id, doc in proof_documents(url, waiting).items():
            if doc is not None and doc["status"] == "anchored":
                done[mrv_id] = doc["proof"]
                del waiting[mrv_id]
        if not waiting:
            return done
        if time.monotonic() > deadline:
            log = service.log()[-3000:] if service is not None else ""
            raise AssertionError(f"{len(waiting)} of {len(records)} proofs still pending "
                                 f"after {timeout_s:g} s\n{log}")
        time.sleep(0.3)


def chain_batches(rpc_url: str, registry: str, operator: str, workdir: Path
                  ) -> list[Any]:
    """Every ``BatchAnchored`` event of ``operator`` on ``registry`` (BatchAnchoring)."""
    from mrv_ml.chain.connection import connect
    from mrv_ml.chain.events import batch_events
    from mrv_ml.config import Settings

    settings = Settings(data_dir=workdir / "chain-reader", network="anvil",
                        network_chosen=True, rpc_url=rpc_url, contract_address=registry)
    with connect(settings) as conn:
        return list(batch_events(conn, None, submitter=operator))


def assert_each_root_once(rpc_url: str, registry: str, database: str, workdir: Path
                          ) -> list[Any]:
    """On chain and in the database: every batch anchored, each root once on chain by the
    operator, each leaf in exactly one batch whose root the chain holds. The batches."""
    from mrv_ml.chain.connection import connect
    from mrv_ml.chain.events import batch_events
    from mrv_ml.config import Settings
    from mrv_ml.record.merkle import StandardMerkleTree
    from mrv_ml.registry_service.db import open_database

    operator = operator_address()
    events = chain_batches(rpc_url, registry, operator, workdir)
    roots = [e.root for e in events]
    assert len(roots) == len(set(roots)), f"a root anchored twice: {roots}"
    with open_database(database) as db:
        stats = db.stats()
        assert stats.leaves_pending == 0
        batches = all_batches(db)
        assert all(b.status == "anchored" for b in batches), batches
        assert sorted(b.root for b in batches) == sorted(roots), (batches, roots)
        seen: set[str] = set()
        for b in batches:
            leaves = db.batch_leaves(b.id)
            assert len(leaves) == b.leaf_count
            assert StandardMerkleTree.of(["0x" + f for f in leaves]).root == b.root
            assert not seen & set(leaves), "a leaf in two batches"
            seen |= set(leaves)
    settings = Settings(data_dir=workdir / "chain-reader", network="anvil",
                        network_chosen=True, rpc_url=rpc_url, contract_address=registry)
    with connect(settings) as conn:
        for root in roots:
            assert len(batch_events(conn, root, submitter=operator)) == 1, root
    return batches


def all_batches(db: Any) -> list[Any]:
    import sqlalchemy as sa

    from mrv_ml.registry_service.db.rows import _batch
    from mrv_ml.registry_service.db.schema import batches

    with db._transaction(write=False) as conn:
        return [_batch(r) for r in conn.execute(sa.select(batches).order_by(batches.c.id))]


def verify_in_empty_directory(mrv: Any, rpc_url: str, records: dict[str, dict[str, Any]],
                              proofs: dict[str, dict[str, Any]], workdir: Path
                              ) -> list[dict[str, Any]]:
    """Write each record and its proof into a new directory and run ``mrv verify DIR
    --json --rpc-url URL`` with an empty data directory and no registry, key or pin: a
    reviewer's verdicts."""
    reviewer = workdir / f"reviewer-{time.monotonic_ns()}"
    reviewer.mkdir()
    for mrv_id, record in records.items():
        (reviewer / f"{mrv_id}.json").write_text(json.dumps(record), encoding="utf-8")
        (reviewer / f"{mrv_id}.proof.json").write_text(json.dumps(proofs[mrv_id]),
                                                       encoding="utf-8")
    empty = workdir / f"empty-{time.monotonic_ns()}"
    empty.mkdir()
    code, out, err = mrv("verify", str(reviewer), "--json", "--rpc-url", rpc_url,
                         env={"MRV_DATA_DIR": str(empty), "MRV_REGISTRY_URL": None,
                              "PRIVATE_KEY": None, "CONTRACT_ADDRESS": None,
                              "NETWORK": None})
    try:
        verdicts: list[dict[str, Any]] = json.loads(out)
    except ValueError:
        raise AssertionError(f"mrv verify: {code}\n{out[-2000:]}\n{err[-2000:]}") from None
    assert code == 0, (code, out[-2000:], err[-2000:])
    assert len(verdicts) == len(records)
    assert {v["status"] for v in verdicts} == {"VALID"}, verdicts
    assert list(os.scandir(empty)) == [], "verifying wrote into the data directory"
    return verdicts


if __name__ == "__main__":
    _child_main(sys.argv[1:])
