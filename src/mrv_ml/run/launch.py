"""Which process of a launched job this is, and so its part in the job's one record.

A launcher that starts many copies of one program (``srun``, ``torchrun``, ``mpirun``) tells
each copy its rank, its rank on its node and how many there are. From that one rule follows
(:meth:`Launch.role_in`): rank 0 **writes** the job's record and measures its node; the first
process on every other node (local rank 0) **measures** that node and hands over its part;
every other process only **reports** its part (its outcome and times). CodeCarbon measures
the whole machine, so one measurer per node is what keeps a node with four tasks from being
counted four times. In CodeCarbon's process mode (a shared node) each process measures its
own processes, which no other process counts, so there every process measures.

The launchers are read innermost first: ``torchrun`` inside an ``srun`` step numbers the
processes that really run, so its ``RANK``/``LOCAL_RANK`` win over ``SLURM_PROCID``. A SLURM
batch script (``SLURM_JOB_ID`` but no ``SLURM_STEP_ID``) is one process, not a launch: its
``SLURM_NTASKS`` is what the job may start, not what runs here.
"""

from __future__ import annotations

import enum
import hashlib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from mrv_ml.errors import ConfigError

__all__ = ["Launch", "Role", "launch_from", "unranked_launch"]

_SAFE_KEY = re.compile(r"[A-Za-z0-9._-]{1,80}")


class Role(str, enum.Enum):
    WRITER = "writer"      # rank 0: measures its node, collects the parts, writes the record
    MEASURER = "measurer"  # local rank 0 elsewhere: measures its node, hands over its part
    REPORTER = "reporter"  # everyone else: hands over its outcome and times, measures nothing


@dataclass(frozen=True)
class Launch:
    """One process of a launched job: ``launcher`` (``slurm``, ``torchrun``, ``mpi``),
    ``job`` (the same in every process of this launch, safe as a file name), its ``rank`` of
    ``world_size``, its ``local_rank`` on ``node`` (the node's name as the launcher knows it;
    else the host's), ``node_count`` where the launcher says it, and ``sources``: the
    variable each fact was read from."""

    launcher: str
    job: str
    rank: int
    local_rank: int
    world_size: int
    node: str
    node_count: int | None
    sources: Mapping[str, str]

    def role_in(self, tracking_mode: str) -> Role:
        """This process's part under CodeCarbon's ``tracking_mode``."""
        if self.rank == 0:
            return Role.WRITER
        if self.local_rank == 0 or tracking_mode == "process":
            return Role.MEASURER
        return Role.REPORTER


def _int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def _job_key(*parts: str) -> str:
    """A directory name from the launcher's identity of the job: as it is when it is short
    and plain, else a digest of it (an environment variable is not a trusted path)."""
    text = "-".join(parts)
    if _SAFE_KEY.fullmatch(text) and text not in (".", ".."):
        return text
    return f"{parts[0]}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _first(environ: Mapping[str, str], *names: str) -> tuple[int | None, str]:
    for name in names:
        value = _int(environ, name)
        if value is not None:
            return value, name
    return None, names[0]


def _launch(launcher: str, job: str, environ: Mapping[str, str],
            rank: tuple[str, ...], local: tuple[str, ...], size: tuple[str, ...],
            nodes: tuple[str, ...], node_name: tuple[str, ...]) -> Launch | None:
    rank_v, rank_src = _first(environ, *rank)
    local_v, local_src = _first(environ, *local)
    size_v, size_src = _first(environ, *size)
    if rank_v is None or local_v is None or size_v is None:
        return None
    if size_v <= 1:
        return None  # a job of one process: nothing to elect
    if not (0 <= rank_v < size_v and local_v <= rank_v):
        raise ConfigError(f"{launcher} says this is rank {rank_v} (local {local_v}) of "
                          f"{size_v} processes ({rank_src}, {local_src}, {size_src}): "
                          "that cannot be")
    count, count_src = _first(environ, *nodes) if nodes else (None, "")
    name_src = next((n for n in node_name if environ.get(n, "").strip()), None)
    node = environ[name_src].strip()[:255] if name_src else socket.gethostname()
    sources = {"rank": rank_src, "local_rank": local_src, "world_size": size_src,
               "node": name_src or "hostname"}
    if count is not None:
        sources["node_count"] = count_src
    return Launch(launcher, job, rank_v, local_v, size_v, node, count, sources)


def launch_from(environ: Mapping[str, str]) -> Launch | None:
    """This process's place in a launched job, or None when it runs alone."""
    run_id = environ.get("TORCHELASTIC_RUN_ID", "").strip()
    if environ.get("RANK", "").strip() and (run_id or environ.get("MASTER_PORT", "").strip()):
        # torchrun, or any launcher of torch's env:// rendezvous
        job = _job_key("torchrun", run_id or "none", environ.get("MASTER_ADDR", "").strip(),
                       environ.get("MASTER_PORT", "").strip())
        found = _launch("torchrun", job, environ, ("RANK",), ("LOCAL_RANK",),
                        ("WORLD_SIZE",), (), ())
        if found is not None:
            return found
    if environ.get("OMPI_COMM_WORLD_RANK", "").strip():
        ident = (environ.get("PMIX_NAMESPACE") or environ.get("OMPI_MCA_ess_base_jobid")
                 or "").strip()
        if ident:
            found = _launch("mpi", _job_key("mpi", ident), environ,
                            ("OMPI_COMM_WORLD_RANK",), ("OMPI_COMM_WORLD_LOCAL_RANK",),
                            ("OMPI_COMM_WORLD_SIZE",), (), ())
            if found is not None:
                return found
    job_id = environ.get("SLURM_JOB_ID", "").strip()
    step_id = (environ.get("SLURM_STEP_ID") or environ.get("SLURM_STEPID") or "").strip()
    if job_id and step_id:  # a task of an srun step (a batch script has no step id)
        return _launch("slurm", _job_key("slurm", f"{job_id}.{step_id}"), environ,
                       ("SLURM_PROCID",), ("SLURM_LOCALID",),
                       ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"),
                       ("SLURM_STEP_NUM_NODES", "SLURM_NNODES"), ("SLURMD_NODENAME",))
    return None


def unranked_launch(environ: Mapping[str, str], rank: int) -> Launch | None:
    """For a process of a job that no launcher numbered (a SLURM batch script, a Kubernetes
    pod): its place as the node's lock gave it (:mod:`mrv_ml.run.node_lock`, ``rank`` 0 the
    measurer), or None where it belongs to no job."""
    job_id = environ.get("SLURM_JOB_ID", "").strip()
    pod = next((environ[n].strip() for n in ("MY_POD_NAME", "POD_NAME", "HOSTNAME")
                if environ.get(n, "").strip()), "")
    if job_id:
        job, node_src = _job_key("slurm", job_id), "SLURMD_NODENAME"
    elif environ.get("KUBERNETES_SERVICE_HOST", "").strip() and pod:
        job, node_src = _job_key("pod", pod), "MY_NODE_NAME"
    else:
        return None
    node = environ.get(node_src, "").strip()[:255] or socket.gethostname()
    return Launch("node-lock", job, rank, rank, 0, node, 1,
                  {"rank": "node lock", "node": node_src if environ.get(node_src) else
                   "hostname"})
