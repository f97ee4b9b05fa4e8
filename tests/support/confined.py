"""Running commands where the disk misbehaves: a read-only directory, a nearly full disk.

Root ignores file permissions, and filling the real disk would hurt the machine, so the
commands run in a private mount namespace (``unshare -m``, as root): there a directory is
bind-mounted read-only over itself, or a small tmpfs is mounted over it, and nothing of it
is seen outside. Where mount namespaces are not available (not root, a locked-down
container), :func:`confinement_unavailable` says why, for ``pytest.skip``.

``Confined(output_dir)`` collects a script: ``.read_only(path)``, ``.tmpfs(path, size)``,
``.fill(path, leaving_kib)`` and ``.run(argv)`` (in the order called); ``.execute(env)``
runs it in one namespace (a tmpfs lives as long as the namespace) and returns each
``run``'s ``(exit code, stdout, stderr)``.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


@functools.lru_cache(maxsize=1)
def confinement_unavailable() -> str | None:
    """Why a private mount namespace cannot be made here (``None``: it can)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare(1) for a private mount namespace"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"mount namespaces are refused here: {probe.stderr.decode(errors='replace')[:200]}"
    return None


class Confined:
    """A script of mounts and commands for one private mount namespace."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir  # must lie outside every mount of the script
        self._lines = ["set -u"]
        self._runs = 0

    def read_only(self, path: Path) -> Confined:
        p = shlex.quote(str(path))
        self._lines.append(f"mount --bind {p} {p} && mount -o remount,bind,ro {p} || exit 90")
        return self

    def tmpfs(self, path: Path, size: str) -> Confined:
        p = shlex.quote(str(path))
        self._lines.append(f"mkdir -p {p} && mount -t tmpfs -o size={size} tmpfs {p} || exit 91")
        return self

    def fill(self, path: Path, leaving_kib: int) -> Confined:
        """Fill the file system of ``path`` (a tmpfs) until ``leaving_kib`` KiB are free."""
        p = shlex.quote(str(path))
        self._lines.append(f"rm -f {p}/filler; avail=$(df -k --output=avail {p} | tail -1); "
                           f"fallocate -l $(( (avail - {leaving_kib}) * 1024 )) {p}/filler "
                           "|| exit 92")
        return self

    def unfill(self, path: Path) -> Confined:
        self._lines.append(f"rm -f {shlex.quote(str(path))}/filler")
        return self

    def run(self, argv: Sequence[str]) -> Confined:
        out = shlex.quote(str(self.output_dir / f"{self._runs}"))
        self._lines.append(f"{shlex.join(argv)} >{out}.out 2>{out}.err; echo $? >{out}.rc")
        self._runs += 1
        return self

    def execute(self, env: Mapping[str, str] | None = None, timeout: float = 300
                ) -> list[tuple[int, str, str]]:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["unshare", "-m", "bash", "-c", "\n".join(self._lines)],
                              env=dict(os.environ, **(env or {})), capture_output=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"confined script failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace')}")
        results = []
        for index in range(self._runs):
            base = self.output_dir / f"{index}"
            results.append((int(Path(f"{base}.rc").read_text()),
                            Path(f"{base}.out").read_text(), Path(f"{base}.err").read_text()))
        return results
