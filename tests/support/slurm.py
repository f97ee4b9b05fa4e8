"""pytest plugin: a real SLURM cluster on this machine (Debian's ``slurm-wlm`` and ``munge``,
installed by ``scripts/bootstrap.sh test``).

``slurm_cluster`` (session): ``munged`` with a fresh key, ``slurmctld`` and two ``slurmd``
daemons (``NodeName`` n1 and n2, each with this machine's CPUs: two "nodes" on one host,
as SLURM's multiple-slurmd mode allows), all in the foreground under a temporary folder,
on free loopback ports; stopped and deleted at the end. ``cluster.env`` is the environment
that points ``srun``/``sbatch``/``squeue`` at it (``SLURM_CONF``). Skipped, with the reason,
only when the binaries are not installed.

As root the daemons run as root (SLURM's own ``SlurmUser=root`` set-up); otherwise as the
current user, whose jobs are then the only ones.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

START_TIMEOUT_S = 30
NODES = ("n1", "n2")
SBIN = Path("/usr/sbin")


def slurm_missing() -> str | None:
    """Why the cluster cannot start here, or None."""
    for name in ("munged", "mungekey", "slurmctld", "slurmd"):
        if not (SBIN / name).exists():
            return f"{SBIN / name} not installed (Debian's slurm-wlm and munge)"
    for name in ("srun", "sbatch", "squeue", "scontrol"):
        if shutil.which(name) is None:
            return f"{name} not installed (Debian's slurm-client)"
    return None


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SlurmCluster:
    """munged + slurmctld + one slurmd per node, under ``base``."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="mrv-slurm-"))
        self.conf = self.base / "slurm.conf"
        self.socket = self.base / "munge" / "munge.socket"
        self.cpus = os.cpu_count() or 1
        self._daemons: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        """The calling test's environment (as its fixtures left it), pointed at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        munge = self.base / "munge"
        munge.mkdir(mode=0o700)
        key = munge / "munge.key"
        subprocess.run([str(SBIN / "mungekey"), "-c", "-k", str(key), "-b", "1024"],
                       check=True, capture_output=True)
        key.chmod(0o400)
        self._spawn([str(SBIN / "munged"), "-F", "--force", f"--key-file={key}",
                     f"--socket={self.socket}", f"--pid-file={munge / 'munged.pid'}",
                     f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'seed'}"])
        self._wait_for(self.socket.exists, "munged's socket")
        ctld_port, *node_ports = _free_ports(1 + len(NODES))
        self._write_conf(ctld_port, node_ports)
        for folder in ("state", "log", *(f"spool/{n}" for n in NODES)):
            (self.base / folder).mkdir(parents=True)
        self._spawn([str(SBIN / "slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait_for(lambda: self._scontrol_ping(), "slurmctld")
        for node in NODES:
            self._spawn([str(SBIN / "slurmd"), "-D", "-N", node, "-f", str(self.conf)])
        self._wait_for(self._nodes_idle, "the nodes to be idle")

    def _write_conf(self, ctld_port: int, node_ports: Sequence[int]) -> None:
        host = socket.gethostname().split(".")[0]
        user = "root" if os.geteuid() == 0 else getpass.getuser()
        b = self.base
        lines = [
            f"ClusterName=mrv{os.getpid()}",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmUser={user}", f"SlurmdUser={user}",
            "AuthType=auth/munge", f"AuthInfo=socket={self.socket}", "CredType=cred/munge",
            f"StateSaveLocation={b / 'state'}", f"SlurmdSpoolDir={b / 'spool'}/%n",
            f"SlurmctldPidFile={b / 'slurmctld.pid'}", f"SlurmdPidFile={b / 'slurmd-%n.pid'}",
            f"SlurmctldLogFile={b / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={b / 'log' / 'slurmd-%n.log'}",
            # no cgroup plugins: the test machine's own cgroup is not ours to divide
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/builtin", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU", "MpiDefault=none", "ReturnToService=2",
            "SlurmdParameters=config_overrides", "InactiveLimit=0", "KillWait=5",
            "MinJobAge=2",
        ]
        for node, port in zip(NODES, node_ports, strict=True):
            lines.append(f"NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 "
                         f"Port={port} CPUs={self.cpus} RealMemory=1000 State=UNKNOWN")
        lines.append(f"PartitionName=debug Nodes={','.join(NODES)} Default=YES "
                     "MaxTime=INFINITE State=UP OverSubscribe=FORCE:4")
        self.conf.write_text("\n".join(lines) + "\n")

    def _spawn(self, argv: list[str]) -> None:
        log = (self.base / f"{Path(argv[0]).name}-{len(self._daemons)}.out").open("wb")
        self._daemons.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                              env=self.env, start_new_session=True))

    def _scontrol_ping(self) -> bool:
        done = subprocess.run(["scontrol", "ping"], env=self.env, capture_output=True,
                              text=True, timeout=10)
        return done.returncode == 0 and "UP" in done.stdout

    def _nodes_idle(self) -> bool:
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=self.env,
                              capture_output=True, text=True, timeout=10)
        states = dict(line.split() for line in done.stdout.splitlines() if line.strip())
        return all(states.get(n) == "idle" for n in NODES)

    def _wait_for(self, ready: object, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for daemon in self._daemons:
                if daemon.poll() is not None:
                    raise RuntimeError(f"{daemon.args[0]} exited ({daemon.returncode}) "
                                       f"waiting for {what}: {self.logs()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                if ready():  # type: ignore[operator]
                    return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}: {self.logs()}")

    def logs(self) -> str:
        text = []
        for path in sorted(self.base.glob("**/*.log")) + sorted(self.base.glob("*.out")):
            with contextlib.suppress(OSError):
                text.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(text)

    def run(self, argv: Sequence[str], *, extra_env: Mapping[str, str] | None = None,
            timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A SLURM command (``srun``, ``sbatch``...) against this cluster."""
        return subprocess.run(list(argv), env={**self.env, **(extra_env or {})}, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)

    def wait_job(self, job_id: str, timeout: float = 120) -> None:
        """Until no task of ``job_id`` (an array's too) is pending or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.run(["squeue", "-h", "-j", job_id, "-o", "%i"], timeout=10)
            if done.returncode == 0 and not done.stdout.strip():
                return
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} still queued or running after {timeout:g} s")

    def stop(self) -> None:
        for daemon in reversed(self._daemons):
            if daemon.poll() is None:
                daemon.terminate()
        for daemon in reversed(self._daemons):
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    reason = slurm_missing()
    if reason is not None:
        pytest.skip(reason)
    cluster = SlurmCluster()
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
