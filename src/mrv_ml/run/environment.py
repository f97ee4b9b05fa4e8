"""Software versions and source-code state, for the record's ``software`` and ``source``."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# Frameworks reported when the training code has imported them (we never import them).
_FRAMEWORKS = {
    "torch": "torch", "tensorflow": "tensorflow", "keras": "keras", "jax": "jax",
    "lightning": "lightning", "pytorch_lightning": "pytorch-lightning",
    "transformers": "transformers", "sklearn": "scikit-learn", "xgboost": "xgboost",
}
_GIT_TIMEOUT_S = 2.0


def _version_of(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def software_versions() -> dict[str, Any]:
    from mrv_ml._version import __version__

    frameworks = {}
    for module, distribution in _FRAMEWORKS.items():
        if module in sys.modules:
            found = getattr(sys.modules[module], "__version__", None) or _version_of(distribution)
            if found:
                frameworks[module] = str(found)
    return {
        "python": platform.python_version(),
        "mrv_ml": __version__,
        "codecarbon": _version_of("codecarbon"),
        "frameworks": frameworks,
        "os": platform.platform(),
    }


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def source_state(cwd: Path | None = None) -> dict[str, Any] | None:
    """Git commit and dirty flag of the working directory; ``None`` outside a work tree."""
    where = cwd or Path.cwd()
    commit = _git(["rev-parse", "HEAD"], where)
    if not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return {"git_commit": commit.strip(), "git_dirty": bool(status and status.strip())}
