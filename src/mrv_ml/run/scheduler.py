"""Who placed the run: the scheduler's identity of the job, for the record's ``scheduler``
section (schema 1.2), each fact with where it was read.

Only what the job itself can see is read: its environment (SLURM's ``SLURM_*``; for a
Kubernetes pod, the downward API's variables and the service account's namespace file) and
its own cgroup (``/proc/self/cgroup`` names it; ``cpu.max``, ``cpuset.cpus.effective`` and
``memory.max`` under ``/sys/fs/cgroup`` say what the job was given). Nothing is asked of a
scheduler's daemon or API, and nothing outside the job is read.

Kubernetes defines no variable names for the downward API: a pod spec maps them. The names
its documentation uses (``MY_POD_NAME``, ``MY_POD_NAMESPACE``, ``MY_NODE_NAME``) and the
common short ones (``POD_NAME``, ``POD_NAMESPACE``, ``NODE_NAME``) are read; without them
the pod's name is its hostname (a pod's hostname is its name unless the spec sets one), and
the source says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MAX_TEXT", "node_share", "scheduler_section"]

MAX_TEXT = 4096  # a node list of thousands of nodes is compressed by SLURM; never more
_MAX_FILE = 4096

#: (fact, variable) of SLURM, as ``srun``/``sbatch`` set them for the job's processes.
SLURM_VARIABLES = (
    ("job_id", "SLURM_JOB_ID"), ("step_id", "SLURM_STEP_ID"),
    ("array_job_id", "SLURM_ARRAY_JOB_ID"), ("array_task_id", "SLURM_ARRAY_TASK_ID"),
    ("job_name", "SLURM_JOB_NAME"), ("partition", "SLURM_JOB_PARTITION"),
    ("cluster", "SLURM_CLUSTER_NAME"), ("node_list", "SLURM_JOB_NODELIST"),
    ("node_name", "SLURMD_NODENAME"), ("num_nodes", "SLURM_JOB_NUM_NODES"),
    ("ntasks", "SLURM_NTASKS"), ("procid", "SLURM_PROCID"), ("localid", "SLURM_LOCALID"),
    ("cpus_on_node", "SLURM_CPUS_ON_NODE"), ("gpus_on_node", "SLURM_GPUS_ON_NODE"),
    ("job_gpus", "SLURM_JOB_GPUS"), ("step_gpus", "SLURM_STEP_GPUS"),
)
_INTEGERS = {"num_nodes", "ntasks", "procid", "localid", "cpus_on_node", "gpus_on_node"}

#: (fact, variables in the order read) of a Kubernetes pod's downward API.
KUBERNETES_VARIABLES = (
    ("pod", ("MY_POD_NAME", "POD_NAME")),
    ("namespace", ("MY_POD_NAMESPACE", "POD_NAMESPACE")),
    ("node", ("MY_NODE_NAME", "NODE_NAME")),
)
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

_PRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: str) -> str:
    return _PRINTABLE.sub("?", value.strip())[:MAX_TEXT]


def _fact(value: Any, source: str) -> dict[str, Any]:
    return {"value": value, "source": source}


def _read(path: Path) -> str | None:
    """A small text file's content, or None where it cannot be read (never raises)."""
    try:
        with path.open("rb") as f:
            return f.read(_MAX_FILE).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _slurm(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for name, variable in SLURM_VARIABLES:
        raw = environ.get(variable)
        if raw is None or not raw.strip():
            continue
        text = _text(raw)
        value: Any = int(text) if name in _INTEGERS and text.isascii() and text.isdigit() \
            else text
        facts[name] = _fact(value, f"env {variable}")
    return facts


def _kubernetes(environ: Mapping[str, str], service_account_namespace: Path
                ) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for name, variables in KUBERNETES_VARIABLES:
        found = next((v for v in variables if environ.get(v, "").strip()), None)
        if found is not None:
            facts[name] = _fact(_text(environ[found]), f"env {found} (downward API)")
    if "namespace" not in facts:
        namespace = _read(service_account_namespace)
        if namespace:
            facts["namespace"] = _fact(_text(namespace), str(service_account_namespace))
    if "pod" not in facts and environ.get("HOSTNAME", "").strip():
        facts["pod"] = _fact(_text(environ["HOSTNAME"]),
                             "env HOSTNAME (a pod's hostname is its name unless its spec "
                             "sets one)")
    return facts


def _own_cgroup(proc_self_cgroup: Path) -> str | None:
    """The cgroup v2 path of this process (``0::/path`` in ``/proc/self/cgroup``)."""
    text = _read(proc_self_cgroup)
    for line in (text or "").splitlines():
        if line.startswith("0::"):
            path = line[3:].strip()
            return path if path.startswith("/") and ".." not in path.split("/") else None
    return None


def _cgroup(proc_self_cgroup: Path, cgroup_root: Path) -> dict[str, dict[str, Any]]:
    path = _own_cgroup(proc_self_cgroup)
    if path is None:
        return {}
    folder = cgroup_root / path.lstrip("/")
    facts = {"path": _fact(_text(path), str(proc_self_cgroup))}
    cpu_max = _read(folder / "cpu.max")
    if cpu_max:
        parts = cpu_max.split()
        if len(parts) == 2 and parts[0] == "max":
            facts["cpu_quota_cores"] = _fact(None, f"{folder / 'cpu.max'} (no limit)")
        elif len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts) \
                and int(parts[1]) > 0:
            cores = int(parts[0]) / int(parts[1])
            if math.isfinite(cores):
                facts["cpu_quota_cores"] = _fact(cores, str(folder / "cpu.max"))
    cpuset = _read(folder / "cpuset.cpus.effective")
    if cpuset and re.fullmatch(r"[0-9,\-]{1,4096}", cpuset):
        facts["cpuset"] = _fact(cpuset, str(folder / "cpuset.cpus.effective"))
    memory = _read(folder / "memory.max")
    if memory == "max":
        facts["memory_max_bytes"] = _fact(None, f"{folder / 'memory.max'} (no limit)")
    elif memory and memory.isascii() and memory.isdigit():
        facts["memory_max_bytes"] = _fact(int(memory), str(folder / "memory.max"))
    return facts


def scheduler_section(environ: Mapping[str, str], *,
                      proc_self_cgroup: Path = Path("/proc/self/cgroup"),
                      cgroup_root: Path = Path("/sys/fs/cgroup"),
                      service_account_namespace: Path = SERVICE_ACCOUNT_NAMESPACE
                      ) -> dict[str, Any] | None:
    """The record's ``scheduler`` section for a process with ``environ``, or None when no
    scheduler placed it: ``{"kind": "slurm" | "kubernetes", "facts": {name: {"value",
    "source"}}, "cgroup": {name: {"value", "source"}}}``."""
    if environ.get("SLURM_JOB_ID", "").strip():
        kind, facts = "slurm", _slurm(environ)
    elif environ.get("KUBERNETES_SERVICE_HOST", "").strip():
        kind, facts = "kubernetes", _kubernetes(environ, service_account_namespace)
    else:
        return None
    return {"kind": kind, "facts": facts, "cgroup": _cgroup(proc_self_cgroup, cgroup_root)}


def _cpuset_size(text: str) -> int | None:
    """CPUs in a cpuset list such as ``0-3,8``, or None where it cannot be read."""
    count = 0
    for item in text.split(","):
        low, _, high = item.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        count += (int(high) - int(low) + 1) if high else 1
    return count if count > 0 else None


def node_share(section: Mapping[str, Any] | None, machine_cpus: int | None
               ) -> dict[str, Any] | None:
    """Whether the job shares its node: the fewest CPUs any of the scheduler's facts gives it
    (SLURM's ``cpus_on_node``, the cgroup's CPU quota, its cpuset), against the machine's
    logical CPUs. ``{"shared", "cpus_given", "machine_cpus", "source"}``; None where no
    scheduler placed the run or nothing says what it was given (a pod with no CPU limit)."""
    if section is None or not machine_cpus:
        return None
    given: list[tuple[float, str]] = []
    cpus = section["facts"].get("cpus_on_node")
    if cpus is not None and isinstance(cpus["value"], int) and cpus["value"] > 0:
        given.append((float(cpus["value"]), cpus["source"]))
    quota = section["cgroup"].get("cpu_quota_cores")
    if quota is not None and isinstance(quota["value"], (int, float)) and quota["value"] > 0:
        given.append((float(quota["value"]), quota["source"]))
    cpuset = section["cgroup"].get("cpuset")
    size = _cpuset_size(cpuset["value"]) if cpuset is not None else None
    if cpuset is not None and size is not None:
        given.append((float(size), cpuset["source"]))
    if not given:
        return None
    cpus_given, source = min(given)
    return {"shared": cpus_given < machine_cpus, "cpus_given": cpus_given,
            "machine_cpus": machine_cpus, "source": source}
