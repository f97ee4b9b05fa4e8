"""Which process of a launched job this is (mrv_ml.run.launch): one table per launcher."""

from __future__ import annotations

import socket

import pytest

from mrv_ml.errors import ConfigError
from mrv_ml.run.launch import Role, launch_from

SRUN = {"SLURM_JOB_ID": "41", "SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_LOCALID": "1",
        "SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_NODES": "2",
        "SLURMD_NODENAME": "gpu07"}
TORCHRUN = {"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
            "TORCHELASTIC_RUN_ID": "5f2c", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
MPIRUN = {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
          "OMPI_COMM_WORLD_SIZE": "2", "PMIX_NAMESPACE": "prterun-host-1234@1"}


def test_an_srun_task_reads_its_step_not_the_allocation() -> None:
    launch = launch_from(SRUN)
    assert launch is not None
    assert (launch.launcher, launch.job, launch.rank, launch.local_rank, launch.world_size,
            launch.node, launch.node_count) == ("slurm", "slurm-41.0", 3, 1, 4, "gpu07", 2)
    assert launch.role_in("machine") is Role.REPORTER
    assert launch.role_in("process") is Role.MEASURER  # its own processes, no one else's
    assert launch.sources["world_size"] == "SLURM_STEP_NUM_TASKS"
    assert launch.sources["node"] == "SLURMD_NODENAME"


def test_a_batch_script_is_one_process_whatever_ntasks_says() -> None:
    batch = {k: v for k, v in SRUN.items() if not k.startswith("SLURM_STEP")}
    assert launch_from({**batch, "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}) is None


def test_torchrun_inside_srun_numbers_the_processes() -> None:
    launch = launch_from({**SRUN, **TORCHRUN})
    assert launch is not None
    assert (launch.launcher, launch.rank, launch.world_size) == ("torchrun", 2, 4)
    assert launch.role_in("machine") is Role.MEASURER  # local rank 0 of its node, not rank 0
    assert launch.node == socket.gethostname()
    assert launch.job == "torchrun-5f2c-10.0.0.1-29500"


def test_open_mpi_and_a_job_key_that_is_not_a_plain_name() -> None:
    launch = launch_from(MPIRUN)
    assert launch is not None
    assert (launch.launcher, launch.rank, launch.role_in("machine")) == (
        "mpi", 1, Role.REPORTER)
    assert launch.job.startswith("mpi-") and "/" not in launch.job and "@" not in launch.job
    hostile = launch_from({**TORCHRUN, "TORCHELASTIC_RUN_ID": "../../etc"})
    assert hostile is not None and "/" not in hostile.job and ".." not in hostile.job


@pytest.mark.parametrize("environ", [
    {},
    {"SLURM_JOB_ID": "41"},
    {**SRUN, "SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"},
    {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"},  # no rendezvous: not torchrun's
    {**MPIRUN, "PMIX_NAMESPACE": ""},  # no job to name
    {**SRUN, "SLURM_PROCID": "x"},
])
def test_no_launch(environ: dict[str, str]) -> None:
    assert launch_from(environ) is None


@pytest.mark.parametrize("changes", [
    {"SLURM_PROCID": "4"},                    # rank past the world
    {"SLURM_PROCID": "0", "SLURM_LOCALID": "1"},  # a local rank above the global one
])
def test_impossible_ranks_are_refused(changes: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="cannot be"):
        launch_from({**SRUN, **changes})


def test_the_first_process_of_the_job_writes() -> None:
    launch = launch_from({**SRUN, "SLURM_PROCID": "0", "SLURM_LOCALID": "0"})
    assert launch is not None and launch.role_in("process") is Role.WRITER
