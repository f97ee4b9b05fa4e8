"""scripts/deploy.mjs (ethers v6) deploys the committed artifact to a real node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from mrv_ml.chain.contract import load_artifact

pytestmark = [pytest.mark.node, pytest.mark.anvil]
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy.mjs"


def _deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or not (ROOT / "node_modules" / "ethers").is_dir():
        pytest.skip("node and node_modules/ethers are needed (bash scripts/bootstrap.sh test)")
    return subprocess.run(["node", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, cwd=ROOT, check=False)


def test_deploys_the_committed_bytecode(anvil: Any) -> None:
    key = anvil.accounts[0].key.hex()
    done = _deploy({"BLOCKCHAIN_RPC_URL": anvil.url, "PRIVATE_KEY": key})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["chainId"] == anvil.chain_id
    code = Web3(Web3.HTTPProvider(anvil.url)).eth.get_code(result["address"])
    assert code.hex().removeprefix("0x") == load_artifact().deployed_bytecode.removeprefix("0x")
    assert key.removeprefix("0x") not in done.stdout + done.stderr


def test_bad_input_gets_one_line_errors(anvil: Any) -> None:
    bad_key = _deploy({"BLOCKCHAIN_RPC_URL": anvil.url, "PRIVATE_KEY": "0x1234"})
    assert bad_key.returncode == 7 and bad_key.stderr.count("\n") == 1
    assert "0x1234" not in bad_key.stderr
    down = _deploy({"BLOCKCHAIN_RPC_URL": "http://127.0.0.1:9", "PRIVATE_KEY":
                    anvil.accounts[0].key.hex()})
    assert down.returncode == 4 and "cannot reach" in down.stderr
