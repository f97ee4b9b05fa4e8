"""Shared fixtures. Every test runs with a clean environment: its own data directory,
no `.env`, no config file, no key from the developer's shell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.anvil", "tests.support.browser"]

REPO_ROOT = Path(__file__).resolve().parent.parent

_ISOLATED_VARS = [
    "BLOCKCHAIN_RPC_URL", "CONTRACT_ADDRESS", "PRIVATE_KEY", "NETWORK", "MRV_NETWORK",
    "MRV_DATA_DIR", "MRV_KEYSTORE", "MRV_KEYSTORE_PASSWORD", "MRV_CONFIRMATIONS",
    "MRV_TX_TIMEOUT", "MRV_COUNTRY", "MRV_REGION", "MRV_ONLINE_LOOKUP", "MRV_PUE", "MRV_CONFIG",
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


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def node_modules_available() -> bool:
    return (REPO_ROOT / "node_modules" / "solc").is_dir()


os.environ.setdefault("MRV_NO_DOTENV", "1")
