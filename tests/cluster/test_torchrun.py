"""``MRVTracker`` under ``torchrun --nproc-per-node 2`` (gloo): the launcher's
ranks elect one measurer per node and the job writes one record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mrv_ml.record.schema import load_record_file

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

TRAIN = '''
import os
import sys
import torch
import torch.distributed as dist
from mrv_ml.run.tracker import MRVTracker

dist.init_process_group("gloo")
with MRVTracker("ddp_toy", model_name="Toy", blockchain_enabled=False, quiet=True,
                storage_dir=sys.argv[1]) as tracker:
    total = torch.ones(1) * (dist.get_rank() + 1)
    dist.all_reduce(total)          # a real collective over gloo
    assert total.item() == 3.0
dist.barrier()
# one write per rank: two ranks' print() pieces would interleave on the shared pipe
os.write(1, f"rank {dist.get_rank()} record {tracker.mrv_id}\\n".encode())
dist.destroy_process_group()
'''


def _torchrun(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("torchrun")), "--standalone",
            "--nproc-per-node", "2", *args]


def test_a_torchrun_job_with_a_tracker_on_every_rank_writes_one_record(
        tmp_path: Path) -> None:
    script, store = tmp_path / "train.py", tmp_path / "store"
    script.write_text(TRAIN)
    done = subprocess.run(_torchrun(str(script), str(store)), capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1 record None" in done.stdout, (done.stdout, done.stderr[-3000:])
    [path] = store.glob("MRV-*.json")
    record = load_record_file(path)
    assert f"rank 0 record {record['mrv_id']}" in done.stdout
    distributed = record["distributed"]
    assert distributed["launcher"] == "torchrun"
    assert [(r["rank"], r["local_rank"], r["role"]) for r in distributed["ranks"]] == [
        (0, 0, "writer"), (1, 1, "reporter")]
    assert record["outcome"]["status"] == "completed"
