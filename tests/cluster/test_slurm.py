"""``mrv run`` under a real SLURM cluster (tests/support/slurm.py: munged, slurmctld, two
slurmd): one record per job step, measured once per node, with the job's own identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.record.schema import load_record_file
from tests.support.cli import mrv_command
from tests.support.slurm import SlurmCluster

pytestmark = [pytest.mark.slurm]

_CPUS = os.cpu_count() or 1
#: seconds of CPU load, as the issue's check asks
LOAD_S = 10
LOAD = ("import sys, time\n"
        "t = time.monotonic()\n"
        "while time.monotonic() - t < float(sys.argv[1]):\n"
        "    pass\n")


def _records(store: Path) -> list[dict[str, Any]]:
    return [load_record_file(p) for p in sorted(store.glob("MRV-*.json"))
            if not p.name.endswith(".proof.json")]


def _facts(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] for k, v in record["scheduler"]["facts"].items()}


@pytest.fixture
def load_script(tmp_path: Path) -> Path:
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    return script


def _mrv_run(store: Path, *command: str) -> list[str]:
    return [*mrv_command(), "run", "--no-anchor", "-q", "--data-dir", str(store), "--",
            *command]


@pytest.mark.skipif(_CPUS < 2 or _CPUS % 2 == 1,
                    reason="two tasks with the whole node need an even number of CPUs")
def test_two_tasks_on_a_node_write_one_record_that_counts_the_node_once(
        slurm_cluster: SlurmCluster, load_script: Path, tmp_path: Path) -> None:
    alone, job = tmp_path / "alone", tmp_path / "job"
    # the same load, on the same machine, at the same time: once alone, once as two tasks
    single = subprocess.Popen(_mrv_run(alone, sys.executable, str(load_script), str(LOAD_S)),
                              env=slurm_cluster.env, stderr=subprocess.PIPE, text=True)
    # every CPU of the node to the step: not shared, so both runs measure the whole machine
    step = slurm_cluster.run(["srun", "-N", "1", "-n", "2", "-c", str(_CPUS // 2), *_mrv_run(
        job, sys.executable, str(load_script), str(LOAD_S))], timeout=120)
    assert single.wait(timeout=120) == 0, single.stderr.read() if single.stderr else ""
    assert step.returncode == 0, step.stderr

    [one] = _records(alone)
    [record] = _records(job)  # one record for the step, not one per task
    ratio = record["energy_emissions"]["energy_kwh"] / one["energy_emissions"]["energy_kwh"]
    assert 0.9 <= ratio <= 1.1, ratio  # not 2: the node is counted once
    facts = _facts(record)
    assert facts["job_id"].isdigit() and facts["step_id"] == "0"
    assert record["scheduler"]["facts"]["job_id"]["source"] == "env SLURM_JOB_ID"
    distributed = record["distributed"]
    assert distributed["launcher"] == "slurm"
    assert distributed["job"] == f"slurm-{facts['job_id']}.0"
    assert [(r["rank"], r["role"], r["node"]) for r in distributed["ranks"]] == [
        (0, "writer", "n1"), (1, "reporter", "n1")]
    assert distributed["ranks"][1]["energy_emissions"] is None  # measured nothing itself
    assert distributed["missing_ranks"] == []
    assert record["outcome"]["status"] == "completed"
    assert record["energy_emissions"]["measurement_error"] is None
    assert not (job / ".jobs").exists()  # the parts are in the record, not left behind
    assert "scheduler" not in one
    assert record["scheduler"]["node_share"]["shared"] is False
    assert record["energy_emissions"]["tracking_mode"] == "machine"
    assert record["energy_emissions"]["methods"]["attribution"]["method"].startswith(
        "the whole node: the job was given")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a shared node needs two CPUs")
def test_a_job_given_part_of_a_node_is_measured_by_its_own_processes(
        slurm_cluster: SlurmCluster, load_script: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    step = slurm_cluster.run(["srun", "-N", "1", "-n", "1", "-c", "1", *_mrv_run(
        store, sys.executable, str(load_script), "1")])
    assert step.returncode == 0, step.stderr
    [record] = _records(store)
    share = record["scheduler"]["node_share"]
    assert share == {"shared": True, "cpus_given": 1, "machine_cpus": os.cpu_count(),
                     "source": "env SLURM_CPUS_ON_NODE"}
    energy = record["energy_emissions"]
    assert energy["tracking_mode"] == "process"
    assert energy["methods"]["attribution"]["method"].startswith(
        "the job's own processes (because the job shares its node)")
    assert energy["tracking_scope"]["ram"].startswith("this process and its descendants")


def test_a_step_over_two_nodes_is_measured_by_one_process_on_each(
        slurm_cluster: SlurmCluster, load_script: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    step = slurm_cluster.run(["srun", "-N", "2", "-n", "2", "-c", str(_CPUS), *_mrv_run(
        store, sys.executable, str(load_script), "1")])
    assert step.returncode == 0, step.stderr
    [record] = _records(store)
    ranks = record["distributed"]["ranks"]
    assert [(r["rank"], r["local_rank"], r["role"], r["node"]) for r in ranks] == [
        (0, 0, "writer", "n1"), (1, 0, "measurer", "n2")]
    measured = [r for r in ranks if r["energy_emissions"] is not None]
    assert [r["rank"] for r in measured] == [0, 1]
    # both "nodes" are this one machine: its host is counted once, by its larger reading
    assert record["energy_emissions"]["energy_kwh"] == max(
        r["energy_emissions"]["energy_kwh"] for r in measured)


def test_a_rank_that_dies_is_named_missing_and_the_job_failed(
        slurm_cluster: SlurmCluster, load_script: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    # rank 1's command kills its own `mrv run` (SIGKILL): no part can come from it
    die = ('[ "$SLURM_PROCID" = 1 ] && kill -KILL $PPID; '
           f'exec {sys.executable} {load_script} 1')
    step = slurm_cluster.run(["srun", "-N", "1", "-n", "2", *_mrv_run(store, "bash", "-c", die)],
                             extra_env={"MRV_GATHER_TIMEOUT_S": "1.5"})
    assert step.returncode != 0
    [record] = _records(store)
    assert record["distributed"]["missing_ranks"] == [1]
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_type"] == "MissingRanks"
    assert record["energy_emissions"]["measurement_status"] == "measured"  # rank 0's node


def _sbatch_array(cluster: SlurmCluster, script: Path, tmp_path: Path) -> str:
    done = cluster.run(["sbatch", "--parsable", "--array=0-2", "-o",
                        str(tmp_path / "task-%a.out"), str(script)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def test_an_array_job_writes_a_record_per_task_and_a_killed_task_fails_alone(
        slurm_cluster: SlurmCluster, load_script: Path, tmp_path: Path) -> None:
    store, pids = tmp_path / "store", tmp_path / "pids"
    pids.mkdir()
    training = ("import os, sys, time\n"
                f"open(os.path.join({str(pids)!r}, os.environ['SLURM_ARRAY_TASK_ID']), 'w')"
                ".write(str(os.getpid()))\n"
                "t = time.monotonic()\n"
                "while time.monotonic() - t < 2:\n"
                "    pass\n")
    (tmp_path / "train.py").write_text(training)
    script = tmp_path / "array.sh"
    script.write_text("#!/bin/bash\n" + " ".join(
        _mrv_run(store, sys.executable, str(tmp_path / "train.py"))) + "\n")
    array_id = _sbatch_array(slurm_cluster, script, tmp_path)
    # task 1's training is killed mid-run, as the kernel's OOM killer would
    deadline = time.monotonic() + 60
    while not (pids / "1").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(int((pids / "1").read_text()), signal.SIGKILL)
    slurm_cluster.wait_job(array_id)

    records = {_facts(r)["array_task_id"]: r for r in _records(store)}
    assert sorted(records) == ["0", "1", "2"]
    for task, record in records.items():
        facts = _facts(record)
        assert facts["array_job_id"] == array_id
        assert record["distributed"] is None  # a batch script is one process
        if task == "1":
            assert record["outcome"]["status"] == "failed"
            assert record["outcome"]["exit_code"] == 128 + signal.SIGKILL
        else:
            assert record["outcome"]["status"] == "completed"
            assert record["energy_emissions"]["measurement_status"] == "measured"


def test_two_runs_in_one_batch_script_elect_one_measurer_by_the_node_lock(
        slurm_cluster: SlurmCluster, load_script: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run = " ".join(_mrv_run(store, sys.executable, str(load_script), "2"))
    script = tmp_path / "two.sh"
    script.write_text(f"#!/bin/bash\n{run} &\nsleep 0.5\n{run} &\nwait\n")
    done = slurm_cluster.run(["sbatch", "--parsable", "--exclusive", "-o",
                              str(tmp_path / "two.out"), str(script)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    slurm_cluster.wait_job(done.stdout.strip())
    [record] = _records(store)  # one record: the second run joined the first's round
    distributed = record["distributed"]
    assert distributed["launcher"] == "node-lock"
    assert distributed["job"] == f"slurm-{done.stdout.strip()}"
    assert [(r["rank"], r["role"]) for r in distributed["ranks"]] == [
        (0, "writer"), (1, "reporter")]
    assert record["outcome"]["status"] == "completed"
