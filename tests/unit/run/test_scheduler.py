"""The record's ``scheduler`` section (schema 1.2): SLURM's and a Kubernetes pod's identity
of the job from what the job itself sees (its environment, its own cgroup), each fact with
its source; a run no scheduler placed has none; the tracker writes it into a valid record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import codecarbon.core.util  # noqa: F401 - see the tracker test
import pytest

from mrv_ml.errors import SchemaValidationError
from mrv_ml.record.schema import validate_record
from mrv_ml.run.scheduler import node_share, scheduler_section
from tests.support.records import make_sample_record

SRUN = {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_JOB_PARTITION": "gpu",
        "SLURM_JOB_NODELIST": "node[01-04]", "SLURMD_NODENAME": "node01",
        "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NTASKS": "2",
        "SLURM_CPUS_ON_NODE": "8", "SLURM_JOB_GPUS": "0,1",
        "SLURM_ARRAY_JOB_ID": "4240", "SLURM_ARRAY_TASK_ID": "2",
        "SLURM_JOB_NAME": "train\x1b[2J"}


def _cgroup(tmp_path: Path, line: str, files: dict[str, str]) -> dict[str, Path]:
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"12:cpu:/legacy\n{line}\n")
    root = tmp_path / "cgroup"
    folder = root / "system.slice" / "slurmstepd.scope" / "job_4242" / "step_0"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text + "\n")
    return {"proc_self_cgroup": proc, "cgroup_root": root}


def test_a_slurm_step_names_its_job_each_fact_with_its_source(tmp_path: Path) -> None:
    paths = _cgroup(tmp_path, "0::/system.slice/slurmstepd.scope/job_4242/step_0",
                    {"cpu.max": "200000 100000", "cpuset.cpus.effective": "0-3,8",
                     "memory.max": "max"})
    section = scheduler_section(SRUN, **paths)
    assert section is not None and section["kind"] == "slurm"
    facts = section["facts"]
    assert facts["job_id"] == {"value": "4242", "source": "env SLURM_JOB_ID"}
    assert facts["step_id"]["value"] == "0" and facts["array_task_id"]["value"] == "2"
    assert facts["procid"]["value"] == 1 and facts["cpus_on_node"]["value"] == 8  # integers
    assert facts["job_name"]["value"] == "train?[2J"  # no control characters
    assert "gpus_on_node" not in facts  # not set: not said
    cg = section["cgroup"]
    assert cg["path"]["value"] == "/system.slice/slurmstepd.scope/job_4242/step_0"
    assert cg["cpu_quota_cores"] == {"value": 2.0, "source": str(
        paths["cgroup_root"] / "system.slice/slurmstepd.scope/job_4242/step_0/cpu.max")}
    assert cg["cpuset"]["value"] == "0-3,8"
    assert cg["memory_max_bytes"]["value"] is None and "no limit" in \
        cg["memory_max_bytes"]["source"]
    validate_record(make_sample_record(schema_version="1.2", scheduler=section))


def test_a_kubernetes_pod_from_the_downward_api_or_its_hostname(tmp_path: Path) -> None:
    namespace = tmp_path / "namespace"
    namespace.write_text("ml-team\n")
    pod = scheduler_section({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "MY_POD_NAME": "train-0",
                             "NODE_NAME": "gpu-node-7"},
                            proc_self_cgroup=tmp_path / "none",
                            service_account_namespace=namespace)
    assert pod is not None and pod["kind"] == "kubernetes"
    assert pod["facts"] == {
        "pod": {"value": "train-0", "source": "env MY_POD_NAME (downward API)"},
        "namespace": {"value": "ml-team", "source": str(namespace)},
        "node": {"value": "gpu-node-7", "source": "env NODE_NAME (downward API)"}}
    assert pod["cgroup"] == {}  # no cgroup file: nothing said of it
    bare = scheduler_section({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOSTNAME": "train-1"},
                             proc_self_cgroup=tmp_path / "none",
                             service_account_namespace=tmp_path / "absent")
    assert bare is not None and bare["facts"]["pod"]["value"] == "train-1"
    assert "hostname is its name" in bare["facts"]["pod"]["source"]
    assert "namespace" not in bare["facts"]


def test_no_scheduler_no_section_and_nothing_outside_the_job(tmp_path: Path) -> None:
    assert scheduler_section({"HOSTNAME": "laptop", "SLURM_JOB_ID": " "}) is None
    escaping = _cgroup(tmp_path, "0::/../../etc", {})
    section = scheduler_section({"SLURM_JOB_ID": "1"}, **escaping)
    assert section is not None and section["cgroup"] == {}  # a path out of the mount: unread
    (tmp_path / "odd").mkdir()
    odd = _cgroup(tmp_path / "odd", "0::/system.slice/slurmstepd.scope/job_4242/step_0",
                  {"cpu.max": "lots 100000", "memory.max": "-1", "cpuset.cpus.effective": "all"})
    cg = scheduler_section({"SLURM_JOB_ID": "1"}, **odd)["cgroup"]  # type: ignore[index]
    assert set(cg) == {"path"}  # what cannot be read as the kernel writes it is not said


def test_this_machines_own_cgroup_is_read(tmp_path: Path) -> None:
    proc = Path("/proc/self/cgroup")
    if not proc.is_file() or "0::" not in proc.read_text():
        pytest.skip("no cgroup v2 here")
    section = scheduler_section({"SLURM_JOB_ID": "7"})
    assert section is not None and section["cgroup"]["path"]["source"] == str(proc)


def test_the_tracker_writes_the_section_into_a_valid_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mrv_ml.run.tracker import MRVTracker

    # CodeCarbon reads SLURM_JOB_ID once, when codecarbon.core.util is first imported (done
    # at the top of this module, in this machine's environment), and then runs `scontrol`:
    # without SLURM here that would fail every later CodeCarbon start in this process.
    for name, value in SRUN.items():
        monkeypatch.setenv(name, value)
    # job=False: this process alone, not rank 1 of the step (tests/unit/run/test_tracker_job.py)
    with monkeypatch.context() as machine:  # a 16-CPU node, of which the job was given 8
        machine.setattr(os, "cpu_count", lambda: 16)
        tracker = MRVTracker("under-srun", blockchain_enabled=False, quiet=True, job=False)
    with tracker:
        pass
    record = tracker.record
    assert record is not None and record["schema_version"] == "1.2"
    assert record["scheduler"]["facts"]["job_id"]["value"] == "4242"
    share = record["scheduler"]["node_share"]
    assert share["cpus_given"] == 8 and share["source"] == "env SLURM_CPUS_ON_NODE"
    attribution = record["energy_emissions"]["methods"]["attribution"]
    assert share == {"shared": True, "cpus_given": 8, "machine_cpus": 16,
                     "source": "env SLURM_CPUS_ON_NODE"}
    # not chosen: process mode, because the job shares its node, and the record says so
    assert record["energy_emissions"]["tracking_mode"] == "process"
    assert attribution["method"].startswith("the job's own processes (because the job "
                                            "shares its node): it was given 8 of the "
                                            "machine's 16 CPUs")
    assert "8/16, not applied" in attribution["assumption"]
    validate_record(record)
    bad = dict(record, scheduler=dict(record["scheduler"], kind="pbs"))
    with pytest.raises(SchemaValidationError):
        validate_record(bad)


def _section(cpus_on_node: int | None = None, quota: float | None = None,
             cpuset: str | None = None) -> dict[str, Any]:
    facts = {} if cpus_on_node is None else {
        "cpus_on_node": {"value": cpus_on_node, "source": "env SLURM_CPUS_ON_NODE"}}
    cgroup: dict[str, Any] = {}
    if quota is not None:
        cgroup["cpu_quota_cores"] = {"value": quota, "source": "/sys/fs/cgroup/job/cpu.max"}
    if cpuset is not None:
        cgroup["cpuset"] = {"value": cpuset, "source": "/sys/fs/cgroup/job/cpuset.cpus.effective"}
    return {"kind": "slurm", "facts": facts, "cgroup": cgroup}


def test_a_job_given_fewer_cpus_than_the_machine_shares_its_node() -> None:
    share = node_share(_section(cpus_on_node=8, quota=2.5, cpuset="0-3,8"), 64)
    assert share == {"shared": True, "cpus_given": 2.5, "machine_cpus": 64,
                     "source": "/sys/fs/cgroup/job/cpu.max"}  # the fewest CPUs given wins
    assert node_share(_section(cpus_on_node=64), 64)["shared"] is False  # type: ignore[index]
    assert node_share(_section(cpuset="0-1,4"), 8)["cpus_given"] == 3  # type: ignore[index]


def test_nothing_said_about_cpus_says_nothing_about_sharing() -> None:
    assert node_share(None, 8) is None
    assert node_share(_section(), 8) is None
    assert node_share(_section(cpuset="0-x"), 8) is None
    assert node_share(_section(cpus_on_node=4), None) is None
