"""Shared fixtures. Every test runs with a clean environment: its own data directory,
no `.env`, no config file, no key from the developer's shell.

Optional dependencies: a test that needs an optional framework carries its marker (see
:data:`OPTIONAL_DEPENDENCIES`; registered in pyproject.toml) and is skipped, with the extra to
install as the reason, where that framework cannot be imported. A test module that imports
the framework at module level calls :func:`require_optional` with its ``pytestmark`` first.
Set ``MRV_TEST_BLOCK_MODULES=torch,keras`` to run the suite as if those were not installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.support.anvil", "tests.support.browser", "tests.support.cli",
                  "tests.support.postgres", "tests.support.slurm"]

REPO_ROOT = Path(__file__).resolve().parent.parent

# marker -> (the modules a test so marked imports, the extra that installs them)
OPTIONAL_DEPENDENCIES: dict[str, tuple[tuple[str, ...], str]] = {
    "torch": (("torch",), "torch"),
    "distributed": (("torch.distributed",), "torch"),
    "lightning": (("lightning",), "lightning"),
    "huggingface": (("transformers", "accelerate"), "huggingface"),
    "keras": (("keras",), "keras"),
    "hub": (("huggingface_hub", "yaml"), "hub"),
    "mlflow": (("mlflow",), "mlflow"),
    "wandb": (("wandb",), "wandb"),
    "attestation": (("in_toto_attestation", "sigstore_models"), "attestation"),
    "standards": (("cyclonedx", "spdx_python_model"), "standards"),
}

BLOCK_ENV = "MRV_TEST_BLOCK_MODULES"


def _block_modules(names: str) -> None:
    """Make `import NAME` fail (and find_spec return None) for each comma-separated name."""
    for name in filter(None, (n.strip() for n in names.split(","))):
        if sys.modules.get(name) is not None:
            raise RuntimeError(f"{BLOCK_ENV}: {name} is already imported, cannot block it")
        sys.modules[name] = None  # type: ignore[assignment]


_block_modules(os.environ.get(BLOCK_ENV, ""))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or broken parent package
        return False


_missing_cache: dict[str, str | None] = {}


def missing_optional(markers: Iterable[str]) -> str | None:
    """The skip reason for the first of these markers whose modules are not importable."""
    for marker in markers:
        if marker not in OPTIONAL_DEPENDENCIES:
            continue
        if marker not in _missing_cache:
            modules, extra = OPTIONAL_DEPENDENCIES[marker]
            absent = [m for m in modules if not _importable(m)]
            _missing_cache[marker] = (
                f"needs {', '.join(absent)} (pip install 'mrv-ml[{extra}]')" if absent else None)
        if _missing_cache[marker] is not None:
            return _missing_cache[marker]
    return None


def require_optional(marks: Any) -> None:
    """Skip the calling test module, at import time, when its markers' modules are missing.

    For modules that import an optional framework at module level, before those imports:
    ``pytestmark = [pytest.mark.torch]; require_optional(pytestmark)``.
    """
    marks = marks if isinstance(marks, list | tuple) else [marks]
    reason = missing_optional(mark.name for mark in marks)
    if reason is not None:
        pytest.skip(reason, allow_module_level=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = missing_optional(mark.name for mark in item.iter_markers())
    if reason is not None:
        pytest.skip(reason)

_ISOLATED_VARS = [
    "BLOCKCHAIN_RPC_URL", "CONTRACT_ADDRESS", "PRIVATE_KEY", "NETWORK", "MRV_NETWORK",
    "MRV_DATA_DIR", "MRV_KEYSTORE", "MRV_KEYSTORE_PASSWORD", "MRV_CONFIRMATIONS",
    "MRV_TX_TIMEOUT", "MRV_COUNTRY", "MRV_REGION", "MRV_ONLINE_LOOKUP", "MRV_PUE", "MRV_CONFIG",
    "MRV_MEASURE_POWER_SECS", "MRV_HEARTBEAT_S", "MRV_LOG_TO", "MLFLOW_RUN_ID",
    "MRV_BUDGET_KWH", "MRV_BUDGET_CO2_KG", "MRV_ON_BUDGET",
    # a test machine that is itself a SLURM job or a Kubernetes pod: the tests' records are
    # not placed by it (tests/unit/run/test_scheduler.py sets these where it means to)
    "SLURM_JOB_ID", "KUBERNETES_SERVICE_HOST",
    # nor is a test run by a launcher's ranks (tests/unit/run/test_launch.py sets them)
    "SLURM_STEP_ID", "SLURM_STEPID", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT",
    "TORCHELASTIC_RUN_ID", "OMPI_COMM_WORLD_RANK", "MRV_GATHER_TIMEOUT_S",
]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory and data directory per test; returns the data dir."""
    for var in _ISOLATED_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MRV_NO_DOTENV", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    data_dir = tmp_path / "mrv_data"
    monkeypatch.setenv("MRV_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def data_dir(isolated_env: Path) -> Path:
    return isolated_env


@pytest.fixture
def simulated_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """``simulated_gpus([FakeGpu(...), ...]) -> FakeNVML``: a GPU machine for this test, seen
    by mrv-ml and CodeCarbon alike (tests/support/fake_nvml.py). The per-process hardware
    caches (CodeCarbon's, and the record's ``hardware`` section) are cleared before and
    after, so neither this test nor a later one sees another machine's GPUs."""
    from codecarbon.core import hardware_cache

    from mrv_ml.measure import hardware
    from tests.support.fake_nvml import simulated_gpu_machine

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    hardware._static_hardware.cache_clear()
    yield lambda gpus: simulated_gpu_machine(monkeypatch, tmp_path, gpus)
    monkeypatch.undo()  # PATH and CodeCarbon's module flags back first
    hardware_cache.clear_cache()
    hardware._static_hardware.cache_clear()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def node_modules_available() -> bool:
    return (REPO_ROOT / "node_modules" / "solc").is_dir()


os.environ.setdefault("MRV_NO_DOTENV", "1")
