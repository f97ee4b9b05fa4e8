"""``mrv report --group-by slurm_job``: one row per job, an array's tasks together, a node
measured twice at the same time counted once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV
from tests.support.records import make_sample_record


def _slurm(job: str, node: str, kwh: float, *, start: str = "22:00:00", end: str = "22:10:00",
           mode: str = "machine", array: str | None = None, task: str | None = None
           ) -> dict[str, Any]:
    facts = {"job_id": {"value": job, "source": "env SLURM_JOB_ID"},
             "node_name": {"value": node, "source": "env SLURMD_NODENAME"}}
    if array is not None:
        facts["array_job_id"] = {"value": array, "source": "env SLURM_ARRAY_JOB_ID"}
        facts["array_task_id"] = {"value": task, "source": "env SLURM_ARRAY_TASK_ID"}
    record = make_sample_record(schema_version="1.2", energy_emissions__energy_kwh=kwh,
                                energy_emissions__co2_kg=kwh * 0.5,
                                energy_emissions__tracking_mode=mode,
                                timestamps__start_time=f"2026-12-01T{start}.000000Z",
                                timestamps__end_time=f"2026-12-01T{end}.000000Z")
    record["scheduler"] = {"kind": "slurm", "facts": facts, "cgroup": {}}
    return record


def test_jobs_are_summed_without_counting_a_node_twice(mrv: MRV, tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "store")
    twice = [_slurm("10", "n1", 2.0), _slurm("10", "n1", 1.5)]      # every task its own record
    later = _slurm("10", "n1", 1.0, start="23:00:00", end="23:05:00")  # the same node, later
    elsewhere = _slurm("10", "n2", 0.5)                                # another node
    shared = [_slurm("11", "n1", 0.25, mode="process"), _slurm("11", "n1", 0.5, mode="process")]
    array = [_slurm(str(30 + t), f"n{3 + t}", 1.0, array="30", task=str(t)) for t in range(3)]
    alone = make_sample_record()
    for record in [*twice, later, elsewhere, *shared, *array, alone]:
        store.save(record)

    code, out, err = mrv("report", "--data-dir", store.root, "--group-by", "slurm_job",
                         "-f", "json")
    assert code == 0, err
    jobs = {j["slurm_job"]: j for j in json.loads(out)["jobs"]}
    assert list(jobs) == ["10", "11", "30", None]
    assert jobs["10"]["records"] == 4
    assert jobs["10"]["energy_kwh"] == 2.0 + 1.0 + 0.5  # the 1.5 overlaps the 2.0 on n1
    assert jobs["10"]["overlapping"] == [twice[1]["mrv_id"]]
    assert jobs["10"]["nodes"] == ["n1", "n2"]
    assert jobs["11"]["energy_kwh"] == 0.75 and jobs["11"]["overlapping"] == []  # own shares
    assert jobs["30"]["records"] == 3 and jobs["30"]["energy_kwh"] == 3.0
    assert jobs[None]["records"] == 1

    code, out, _ = mrv("report", "--data-dir", store.root, "--group-by", "slurm_job")
    assert code == 0 and "1 overlapping (same node, same time)" in out
    assert "(no SLURM job)" in out
    code, out, _ = mrv("report", "--data-dir", store.root, "--group-by", "slurm_job", "-f", "csv")
    assert code == 0 and out.splitlines()[0].startswith("slurm_job,records,nodes")


def test_grouping_refuses_what_it_cannot_do(mrv: MRV, tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "store")
    store.save(_slurm("10", "n1", 1.0))
    code, _, err = mrv("report", "--data-dir", store.root, "--group-by", "slurm_job",
                       "-f", "latex")
    assert code == 64 and "--group-by makes a table" in err
    code, _, err = mrv("report", "--data-dir", store.root, "--group-by", "slurm_job",
                       "--verify")
    assert code == 64 and "--group-by only adds them up" in err
    code, _, err = mrv("report", "--data-dir", store.root, "--group-by", "pbs_job")
    assert code == 64 and "pbs_job" in err
