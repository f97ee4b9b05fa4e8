"""benchmarks/gpu_accuracy.py is for a GPU machine; here (no GPU) it must say so in one
line and exit 0, measuring nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_gpu_it_says_so_and_measures_nothing(tmp_path: Path) -> None:
    cwd = tmp_path / "run"
    cwd.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_accuracy.py"),
                           "--quick"], capture_output=True, text=True, timeout=120,
                          cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["no GPU here: nothing measured"]
    assert "Traceback" not in done.stderr
    assert not any(cwd.iterdir())  # no store, no record
