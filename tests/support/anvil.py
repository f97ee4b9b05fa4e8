"""pytest plugin: fixtures for anvil tests (see docs/ARCHITECTURE.md).

- ``anvil`` (session): a real anvil JSON-RPC node from npm ``@foundry-rs/anvil`` on a free
  loopback port; ``.url``, ``.chain_id``, ``.accounts`` (anvil's default keys as
  ``LocalAccount``), ``.w3()``, ``.kill()`` / ``.restart()`` for "node dies" tests. Stopped
  at the end of the session. Skipped (with the reason) only when anvil is not installed.
- ``anvil_registry`` (function): deploys a fresh ``MRVRegistry`` and returns its address.

``AnvilNode`` is usable outside pytest too (``benchmarks/contract_gas.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_WRAPPER = REPO_ROOT / "node_modules" / ".bin" / "anvil"
DEFAULT_CHAIN_ID = 31337
START_TIMEOUT_S = 30.0


def anvil_executable() -> Path | None:
    """The native anvil binary (no Node.js wrapper process in between), else the npm wrapper."""
    if not ANVIL_WRAPPER.exists():
        return None
    for native in sorted((REPO_ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil")):
        if os.access(native, os.X_OK):
            return native
    return ANVIL_WRAPPER


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list[Any] | None = None, timeout_s: float = 2.0) -> Any:
    """One JSON-RPC call with the standard library (no web3 needed to probe the node)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


class AnvilNode:
    """An anvil process on 127.0.0.1; ``restart()`` brings it back on the same port (empty chain)."""

    def __init__(self, executable: Path, chain_id: int = DEFAULT_CHAIN_ID, port: int | None = None):
        self.executable = executable
        self.chain_id = chain_id
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        from mrv_ml.chain.localchain import anvil_dev_accounts

        self.accounts = anvil_dev_accounts()

    def start(self) -> None:
        cmd = [
            str(self.executable),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--silent",
        ]
        # Own process group: the npm wrapper forks the real binary, and kill() must end both.
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(
                    f"anvil exited with {self._proc.returncode}: {err.strip()[:300]}"
                )
            try:
                if int(rpc(self.url, "eth_chainId", timeout_s=0.5), 16) == self.chain_id:
                    return
            except (OSError, urllib.error.URLError, ValueError, RuntimeError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"anvil did not answer on {self.url} within {START_TIMEOUT_S:g} s")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Kill the node at once (SIGKILL to its process group), like a crash."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        """Kill (if running) and start again on the same port: a fresh, empty chain."""
        self.kill()
        self.start()

    def ensure_running(self) -> None:
        if not self.is_running():
            self.start()

    def w3(self) -> Any:
        from web3 import Web3

        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 10}))

    def deploy_registry(self) -> str:
        """Deploy a fresh MRVRegistry from account 0 and return its checksummed address."""
        from mrv_ml.chain.contract import load_artifact

        artifact = load_artifact()
        w3 = self.w3()
        factory = w3.eth.contract(abi=artifact.abi_list, bytecode=artifact.bytecode)
        tx_hash = factory.constructor().transact({"from": self.accounts[0].address})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        if receipt["status"] != 1:
            raise RuntimeError("deploying MRVRegistry on anvil reverted")
        return str(receipt["contractAddress"])

    def __enter__(self) -> AnvilNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    executable = anvil_executable()
    if executable is None:
        pytest.skip(f"anvil is not installed ({ANVIL_WRAPPER} missing: run npm ci)")
    node = AnvilNode(executable)
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def anvil_registry(anvil: AnvilNode) -> str:
    """A freshly deployed registry on the session's anvil (restarted first if a test killed it)."""
    anvil.ensure_running()
    return anvil.deploy_registry()
