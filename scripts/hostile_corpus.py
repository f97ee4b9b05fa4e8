"""Run the hostile-input corpus (tests/support/hostile.py) through the command line and
count what falls short: the figures of the hardening work, before and after a fix.

    python scripts/hostile_corpus.py                 # this checkout
    python scripts/hostile_corpus.py --src OLD/src   # another checkout's mrv_ml, same corpus

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO / "src",
                        help="the src/ directory whose mrv_ml runs (default: this checkout)")
    args = parser.parse_args()
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
