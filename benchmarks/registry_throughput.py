"""The registry service (``mrv registry serve``): throughput, latency, gas per record, and
how long a researcher waits for a complete proof.

    .venv/bin/python benchmarks/registry_throughput.py [--quick] [--records N]
        [--connections C] [--processes P] [--no-postgres]

Starts its own anvil (tests/support/anvil.py) and its own PostgreSQL (tests/support/
postgres.py, with production durability: fsync and synchronous commit on), and runs the
real command, ``mrv registry serve``, as a process (``--rate-limit 0``; with
``--processes P``, P of them over the one database, the connections spread over them as a
load balancer would). Prints, for PostgreSQL and for SQLite:

- sustained submissions per second: ``--records`` distinct fingerprints POSTed over C
  keep-alive connections at once (a small asyncio HTTP/1.1 client, so that the load
  generator takes as little of the machine's CPU as possible), beside two baselines
  measured in the same run: one connection sending one request after the other, and
  ``GET /healthz`` (an endpoint that does nothing: the floor of the HTTP stack) over the
  same C connections; and the goal of 1,000/s with PostgreSQL;
- p50/p99 latency of a submission and of a complete-proof fetch;
- gas per record when all of them are anchored in one interval (one ``anchorBatch`` of
  ``--records`` leaves, sent by the service's own BatchAnchorer) beside one
  ``registerMRV`` (the single-anchoring baseline) mined in the same run;
- where the time of one submission goes: its latency on one connection beside the
  endpoint's work in-process (no HTTP) and the database call alone (``RegistryDB.submit``).

Then, with PostgreSQL (else SQLite), a service with a 10-second interval: the time from a
submission to its complete proof, for submissions spread over two intervals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support: the anvil node, PostgreSQL, the operator key
os.environ.setdefault("MRV_NO_DOTENV", "1")

from mrv_ml.chain.localchain import anvil_dev_accounts  # noqa: E402
from mrv_ml.config import Secret, Settings  # noqa: E402

GOAL_PER_S = 1_000  # sustained submissions per second with PostgreSQL (the goal)
OPERATOR = anvil_dev_accounts()[5]  # the key tests/support/registry.py anchors with


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def fingerprints(n: int) -> list[tuple[str, str]]:
    """``n`` distinct (fingerprint, MRV ID) pairs (the service never sees the records)."""
    return [(os.urandom(32).hex(), f"MRV-{uuid.uuid4()}") for _ in range(n)]


# --- a small HTTP/1.1 load generator ------------------------------------------------------


def _request(method: str, path: str, port: int, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def _connection(port: int, requests: list[bytes], next_index: list[int],
                      results: list[tuple[int, float]]) -> None:
    # (requests name the first service's port in Host; every service answers any Host)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while next_index[0] < len(requests):
            request = requests[next_index[0]]
            next_index[0] += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            results.append((status, time.perf_counter() - started))
    finally:
        writer.close()


def load(port: int | list[int], requests: list[bytes], connections: int
         ) -> tuple[float, list[float]]:
    """Send ``requests`` over ``connections`` keep-alive connections (spread over the
    ports): (seconds, latencies). Every answer must be 2xx."""
    ports = port if isinstance(port, list) else [port]
    results: list[tuple[int, float]] = []
    next_index = [0]

    async def run() -> None:
        await asyncio.gather(*(_connection(ports[n % len(ports)], requests, next_index,
                                           results) for n in range(connections)))

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    bad = [s for s, _ in results if not 200 <= s < 300]
    if bad or len(results) != len(requests):
        raise RuntimeError(f"{len(bad)} answers were not 2xx (e.g. {bad[:5]}), "
                           f"{len(results)} of {len(requests)} answered")
    return elapsed, [latency for _, latency in results]


def submissions(port: int, pairs: list[tuple[str, str]]) -> list[bytes]:
    return [_request("POST", "/v1/submissions", port,
                     json.dumps({"fingerprint": f, "mrv_id": i}).encode()) for f, i in pairs]


# --- the pieces: anvil, PostgreSQL, the service -------------------------------------------


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """A database URL on a PostgreSQL server of our own (durable settings), or ``None``."""
    try:
        from tests.support.postgres import PostgresServer, postgres_bin_dir
    except ImportError as e:
        print(f"note: PostgreSQL skipped (tests.support.postgres: {e})")
        yield None
        return
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        print("note: PostgreSQL skipped: not installed (apt-get install postgresql)")
        yield None
        return
    server = PostgresServer(bin_dir)
    try:
        server.start()
        # the tests' server trades durability for speed; a registry would not
        server.configure("fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n")
        yield server.create_database()
    finally:
        server.stop()


class Service:
    """``mrv registry serve`` as a process."""

    def __init__(self, database: str, rpc_url: str, registry: str, workdir: Path,
                 interval_s: float) -> None:
        from tests.support.anvil import free_port
        from tests.support.cli import mrv_command

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"service-{self.port}.log"
        args = ["registry", "serve", "--database", database, "--network", "anvil",
                "--rpc-url", rpc_url, "--contract", registry, "--interval", f"{interval_s:g}",
                "--port", str(self.port), "--rate-limit", "0"]
        env = {**os.environ, "PRIVATE_KEY": OPERATOR.key.hex(),
               "MRV_DATA_DIR": str(workdir / f"operator-{self.port}")}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([*mrv_command(), *args], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def operator_settings(rpc_url: str, registry: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, network="anvil", network_chosen=True, rpc_url=rpc_url,
                    contract_address=registry, private_key=Secret(OPERATOR.key.hex()),
                    confirmations=0)


# --- measurements -------------------------------------------------------------------------


def single_registration_gas(settings: Settings) -> int:
    from mrv_ml.chain.connection import connect

    with connect(settings, need_signer=True) as conn:
        return int(conn.send(conn.registry.functions.registerMRV(
            f"MRV-{uuid.uuid4()}", os.urandom(32))).gas_used)


def in_process_costs(database: str, settings: Settings, n: int) -> dict[str, float]:
    """Per-submission milliseconds, one after the other in this process: the database call
    alone (``RegistryDB.submit``), and the endpoint's whole work without HTTP (reading and
    checking the body, the database, the answer's proof document: ``app._submit``)."""
    from mrv_ml.registry_service.app import _submit
    from mrv_ml.registry_service.db import open_database
    from mrv_ml.registry_service.service import build

    with open_database(database) as db:
        pairs = fingerprints(n)
        started = time.perf_counter()
        for f, i in pairs:
            db.submit(f, i, client="bench")
        db_ms = (time.perf_counter() - started) / n * 1000
    service = build(settings, database=database, base_url="http://bench", interval_s=3600,
                    anchoring=False)
    try:
        bodies = [json.dumps({"fingerprint": f, "mrv_id": i}).encode()
                  for f, i in fingerprints(n)]
        started = time.perf_counter()
        for body in bodies:
            assert _submit(service.state, body, "bench").status_code == 202
        endpoint_ms = (time.perf_counter() - started) / n * 1000
    finally:
        service.close()
    return {"db_ms": db_ms, "endpoint_ms": endpoint_ms}


def anchor_now(database: str, settings: Settings) -> list[Any]:
    """What is pending, anchored now by the service's own BatchAnchorer (the service's loop
    waits for its hour meanwhile): the batches."""
    from mrv_ml.chain.connection import connect
    from mrv_ml.registry_service.anchoring import BatchAnchorer
    from mrv_ml.registry_service.db import open_database

    with open_database(database) as db, connect(settings, need_signer=True) as conn:
        return BatchAnchorer(db, conn).run_once()


def bench_database(name: str, database: str, rpc_url: str, registry: str, workdir: Path,
                   records: int, connections: int, processes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    services = []
    try:
        for _ in range(processes):
            services.append(Service(database, rpc_url, registry, workdir, interval_s=3600))
        service = services[0]
        ports = [s.port for s in services]
        # warm-up (connections, caches), not counted
        load(ports, submissions(service.port, fingerprints(200)), connections)
        # The floor of the HTTP stack (uvicorn, FastAPI, the thread hop): an endpoint that
        # does nothing, over the same connections.
        floor_n = max(1_000, records // 5)
        seconds, _ = load(ports, [_request("GET", "/healthz", service.port)] * floor_n,
                          connections)
        out["healthz_per_s"] = floor_n / seconds
        baseline_n = max(200, records // 20)
        seconds, latencies = load(service.port,
                                  submissions(service.port, fingerprints(baseline_n)), 1)
        out["one_connection_per_s"] = baseline_n / seconds
        out["one_connection_p50_ms"] = percentile(latencies, 50) * 1000
        settings = operator_settings(rpc_url, registry, workdir / f"anchorer-{name}")
        anchor_now(database, settings)  # so that the measured interval's batch is its own
        pairs = fingerprints(records)
        seconds, latencies = load(ports, submissions(service.port, pairs), connections)
        out["per_s"] = records / seconds
        out["submit_p50_ms"] = percentile(latencies, 50) * 1000
        out["submit_p99_ms"] = percentile(latencies, 99) * 1000

        # One interval's worth: everything pending goes out as one anchorBatch, sent by the
        # service's own anchorer (the service's loop waits for its hour meanwhile).
        started = time.perf_counter()
        [batch] = anchor_now(database, settings)
        out["anchor_s"] = time.perf_counter() - started
        assert batch.leaf_count == records and batch.gas_used
        out["leaves"] = batch.leaf_count
        out["batch_gas"] = batch.gas_used
        out["gas_per_record"] = batch.gas_used / batch.leaf_count

        sample = pairs[: min(len(pairs), 2_000)]
        proof_requests = [_request("GET", f"/v1/proofs/{f}?mrv_id={i}", service.port)
                          for f, i in sample]
        load(service.port, proof_requests[:1], 1)  # the batch's tree is built (and cached)
        seconds, latencies = load(ports, proof_requests, connections)
        out["proofs_per_s"] = len(sample) / seconds
        out["proof_p50_ms"] = percentile(latencies, 50) * 1000
        out["proof_p99_ms"] = percentile(latencies, 99) * 1000
    finally:
        for s in services:
            s.stop()
    return out


def time_to_proof(database: str, rpc_url: str, registry: str, workdir: Path,
                  samples: int, interval_s: float = 10.0) -> list[float]:
    """Seconds from a submission's 202 to its complete proof, with an interval of 10 s,
    for ``samples`` submissions spread evenly over two intervals."""
    import requests

    service = Service(database, rpc_url, registry, workdir, interval_s=interval_s)
    try:
        pairs = fingerprints(samples)
        spacing = 2 * interval_s / samples
        submitted: dict[str, float] = {}
        done: dict[str, float] = {}
        started = time.monotonic()
        with requests.Session() as session:
            while len(done) < samples:
                now = time.monotonic()
                k = len(submitted)
                if k < samples and now - started >= k * spacing:
                    f, i = pairs[k]
                    r = session.post(f"{service.url}/v1/submissions",
                                     json={"fingerprint": f, "mrv_id": i}, timeout=10)
                    assert r.status_code == 202, r.text
                    submitted[f] = time.monotonic()
                for f, i in pairs[:len(submitted)]:
                    if f in done:
                        continue
                    r = session.get(f"{service.url}/v1/proofs/{f}?mrv_id={i}", timeout=10)
                    if r.json()["status"] == "anchored":
                        done[f] = time.monotonic() - submitted[f]
                if now - started > 4 * interval_s + 30:
                    raise RuntimeError("proofs did not complete")
                time.sleep(0.05)
        return [done[f] for f, _ in pairs]
    finally:
        service.stop()


# --- report -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2,000 records, 4 time-to-proof samples")
    parser.add_argument("--records", type=int, default=None,
                        help="submissions per database (default 10,000; 2,000 with --quick)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1,
                        help="mrv registry serve processes over the one database")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    records = args.records or (2_000 if args.quick else 10_000)
    samples = 4 if args.quick else 8

    from tests.support.anvil import AnvilNode, anvil_executable

    executable = anvil_executable()
    if executable is None:
        print("anvil is not installed (npm ci): nothing to measure")
        return 1
    print(f"registry throughput: {records:,} submissions per database, {args.connections} "
          f"connections, {args.processes} service process(es), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} before")
    results = []
    with AnvilNode(executable) as node, tempfile.TemporaryDirectory(prefix="mrv-bench-") as d, \
            (contextlib.nullcontext(None) if args.no_postgres else postgres()) as pg_url:
        workdir = Path(d)
        registry = node.deploy_registry()
        single_gas = single_registration_gas(operator_settings(node.url, registry,
                                                               workdir / "single"))
        databases = [("PostgreSQL", pg_url)] if pg_url else []
        databases.append(("SQLite", str(workdir / "registry.sqlite")))
        for name, url in databases:
            result = bench_database(name, url, node.url, registry, workdir, records,
                                    args.connections, args.processes)
            result.update(in_process_costs(url, operator_settings(
                node.url, registry, workdir / f"inproc-{name}"), 500))
            results.append(result)
        ttp_db = databases[0]
        ttp = time_to_proof(ttp_db[1] if ttp_db[0] != "SQLite" else
                            str(workdir / "ttp.sqlite"), node.url, registry, workdir, samples)

    print(f"load average {os.getloadavg()[0]:.1f} after (another process busy on the "
          "machine's CPUs lowers every rate below)")
    print(f"\n{'':34}" + "".join(f"{r['name']:>14}" for r in results))

    def row(label: str, key: str, fmt: str) -> None:
        print(f"{label:34}" + "".join(f"{format(r[key], fmt):>14}" for r in results))

    row(f"GET /healthz/s (does nothing), {args.connections} c.", "healthz_per_s", ",.0f")
    row("submissions/s, 1 connection", "one_connection_per_s", ",.0f")
    row(f"submissions/s, {args.connections} connections", "per_s", ",.0f")
    row("submit p50 (ms)", "submit_p50_ms", ".1f")
    row("submit p99 (ms)", "submit_p99_ms", ".1f")
    row("proof fetches/s", "proofs_per_s", ",.0f")
    row("proof fetch p50 (ms)", "proof_p50_ms", ".1f")
    row("proof fetch p99 (ms)", "proof_p99_ms", ".1f")
    row("leaves in the one batch", "leaves", ",")
    row("anchorBatch gas", "batch_gas", ",")
    row("gas per record", "gas_per_record", ",.2f")
    row("anchoring the batch (s)", "anchor_s", ".2f")
    row("submit p50, 1 connection (ms)", "one_connection_p50_ms", ".2f")
    row("  of which the endpoint's work", "endpoint_ms", ".2f")
    row("    of which RegistryDB.submit", "db_ms", ".2f")

    print(f"\nregisterMRV, one record alone (baseline): {single_gas:,} gas")
    for r in results:
        print(f"{r['name']}: {r['gas_per_record']:.2f} gas/record in a batch of "
              f"{r['leaves']:,} = {single_gas / r['gas_per_record']:,.0f}x less than single; "
              f"{r['per_s'] / r['one_connection_per_s']:.1f}x the one-connection rate; "
              f"{r['per_s'] / GOAL_PER_S:.2f}x the goal of {GOAL_PER_S:,}/s; "
              f"{r['per_s'] / r['healthz_per_s']:.2f}x an endpoint that does nothing; "
              f"one request alone: {r['one_connection_p50_ms']:.2f} ms = database "
              f"{r['db_ms']:.2f} + checks and proof document "
              f"{max(0.0, r['endpoint_ms'] - r['db_ms']):.2f} + HTTP (uvicorn, FastAPI, "
              f"thread hop) {max(0.0, r['one_connection_p50_ms'] - r['endpoint_ms']):.2f}")
    print(f"\ntime from submission to complete proof, interval 10 s ({ttp_db[0]}, "
          f"{len(ttp)} submissions over two intervals): mean {statistics.mean(ttp):.1f} s, "
          f"min {min(ttp):.1f} s, max {max(ttp):.1f} s "
          f"(mean/interval {statistics.mean(ttp) / 10:.2f}; expected about 0.5)")
    pg = next((r for r in results if r["name"] == "PostgreSQL"), None)
    if pg is not None:
        verdict = "yes" if pg["per_s"] >= GOAL_PER_S else "NO"
        print(f"PostgreSQL >= {GOAL_PER_S:,} submissions/s on this machine: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
