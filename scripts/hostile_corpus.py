"""Run the hostile-input corpus (tests/support/hostile.py) through the command line, and
the hostile HTTP corpus (tests/support/hostile_http.py) against the registry service (on
SQLite) and ``mrv serve``, and count what falls short: the figures of the hardening work,
before and after a fix.

    python scripts/hostile_corpus.py                 # this checkout
    python scripts/hostile_corpus.py --src OLD/src   # another checkout's mrv_ml, same corpus
    python scripts/hostile_corpus.py --http-only     # only the HTTP corpus

Each kind runs in its own child process, with a memory cap (4 GiB) and a time limit (60 s),
since an older version may read /dev/zero until memory runs out or wait on a FIFO forever:
such a kind counts all its invocations as failed. The tests run the same corpus in-process
(tests/adversarial/test_hostile_corpus.py); this script is for the figures, not for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
sys.path[:0] = [os.environ["MRV_SRC"], os.environ["MRV_REPO"]]
from tests.support.hostile import ALL_KINDS, run_file_kind
from mrv_ml.cli import main
kind = ALL_KINDS[int(sys.argv[1])]
work = Path(sys.argv[2])
os.chdir(work)
print(json.dumps([[list(o.argv), o.exit_code, list(o.problems)]
                  for o in run_file_kind(main, kind, work / "input")]))
"""


_HTTP_CHILD = r"""
import json, os, sys, threading
from pathlib import Path
sys.path[:0] = [os.environ["MRV_SRC"], os.environ["MRV_REPO"]]
from tests.support.hostile_http import REGISTRY_REQUESTS, SERVE_REQUESTS, judge, send
from tests.support.records import make_sample_record
from tests.support.registry import serving
from mrv_ml.config import load_settings
from mrv_ml.registry_service.app import ServiceConfig, ServiceState, create_app
from mrv_ml.registry_service.db import open_database
from mrv_ml.registry_service.proofs import ChainFacts
from mrv_ml.serve.local import make_server
from mrv_ml.storage.store import RecordStore
work = Path(sys.argv[1])
facts = ChainFacts(network="anvil", chain_id=31337, contract_address="0x" + "11" * 20,
                   operator="0x" + "22" * 20, registry_block=1, confirmations=0)
db = open_database(str(work / "registry.sqlite"))
state = ServiceState(db, facts, ServiceConfig(base_url="http://127.0.0.1:1", interval_s=60))
results = []
with serving(create_app(state)) as url:
    for r in REGISTRY_REQUESTS:
        status, _, body = send(url, r)
        results.append(["registry", r.name, status, judge(r, status, body, "registry")])
RecordStore(os.environ["MRV_DATA_DIR"]).save(make_sample_record())
server = make_server(load_settings(), "127.0.0.1", 0)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}"
for r in SERVE_REQUESTS:
    status, _, body = send(url, r)
    results.append(["mrv serve", r.name, status, judge(r, status, body, "serve")])
print(json.dumps(results))
"""


def http_corpus(src: Path) -> int:
    """The HTTP corpus against ``src``'s registry and ``mrv serve``; how many fell short."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MRV_SRC=str(src.resolve()), MRV_REPO=str(REPO),
                   MRV_NO_DOTENV="1", MRV_DATA_DIR=str(Path(tmp) / "mrv_data"), HOME=tmp)
        done = subprocess.run([sys.executable, "-c", _HTTP_CHILD, tmp], env=env,
                              capture_output=True, text=True, timeout=300)
        try:
            results = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(f"  the HTTP corpus could not run: {done.stderr.strip()[-300:]}")
            return 1
    bad = [r for r in results if r[3]]
    for server, name, status, problems in bad:
        print(f"  {server:9} {name[:52]:52} {status}: {'; '.join(problems)[:60]}")
    fives = sum(1 for r in results if r[2] >= 500 or r[2] == 0)
    print(f"{len(results)} HTTP requests: {len(bad)} fell short, {fives} answered 5xx or "
          f"not at all")
    return len(bad)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO / "src",
                        help="the src/ directory whose mrv_ml runs (default: this checkout)")
    parser.add_argument("--http-only", action="store_true", help="only the HTTP corpus")
    args = parser.parse_args()
    http_failed = http_corpus(args.src)
    if args.http_only:
        return 1 if http_failed else 0
    sys.path.insert(0, str(REPO))
    from tests.support.hostile import ALL_KINDS, FILE_COMMANDS

    started = time.perf_counter()
    failed_kinds, failed, total = 0, 0, 0
    for index, kind in enumerate(ALL_KINDS):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, MRV_SRC=str(args.src.resolve()), MRV_REPO=str(REPO),
                       MRV_NO_DOTENV="1", MRV_DATA_DIR=str(Path(tmp) / "mrv_data"), HOME=tmp)
            try:
                done = subprocess.run([sys.executable, "-c", _CHILD, str(index), tmp], env=env,
                                      capture_output=True, text=True, timeout=60)
                results = json.loads(done.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                results = [[[c], None, ["hung (60 s)"]] for c in FILE_COMMANDS]
            except (ValueError, IndexError):
                why = f"the process died ({done.returncode})"
                results = [[[c], None, [why]] for c in FILE_COMMANDS]
        bad = [r for r in results if r[2]]
        total += len(results)
        failed += len(bad)
        failed_kinds += bool(bad)
        for argv, code, problems in bad:
            print(f"  {kind.name:38} {argv[0]:9} exit {code}: {'; '.join(problems)}")
    print(f"{len(ALL_KINDS)} kinds, {total} invocations: {failed} fell short "
          f"({failed_kinds} kinds), in {time.perf_counter() - started:.0f} s")
    return 1 if failed or http_failed else 0


if __name__ == "__main__":
    sys.exit(main())
