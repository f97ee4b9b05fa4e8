"""The committed artifact is what the committed source compiles to, and has the documented ABI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.chain.contract import ARTIFACT_PATH, load_artifact

REPO = Path(__file__).resolve().parents[3]
SOURCE = REPO / "contracts" / "MRVRegistry.sol"
SCRIPT = REPO / "scripts" / "compile_contract.mjs"
DASHBOARD_CONFIG = REPO / "src" / "mrv_ml" / "dashboard" / "config.js"
ABI_PREFIX = "export const REGISTRY_ABI = "

# The ABI of docs/ARCHITECTURE.md ("Contract"): name -> (inputs, outputs, mutability).
EXPECTED_FUNCTIONS = {
    "registerMRV": (["string", "bytes32"], [], "nonpayable"),
    "getMRVHash": (["string"], ["bytes32", "uint256", "address"], "view"),
    "getMRVHashBy": (["string", "address"], ["bytes32", "uint256"], "view"),
    "isMRVRegistered": (["string"], ["bool"], "view"),
    "verifyMRVHash": (["string", "bytes32"], ["bool"], "view"),
    "verifyMRVHashBy": (["string", "address", "bytes32"], ["bool"], "view"),
    "anchorBatch": (["bytes32", "uint32"], [], "nonpayable"),
    "getBatch": (["bytes32", "address"], ["uint256", "uint32"], "view"),
    "verifyBatchProof": (["bytes32", "address", "bytes32", "bytes32[]"], ["bool"], "view"),
}
EXPECTED_EVENTS = {
    "MRVRegistered": [
        ("idKey", "bytes32", True),
        ("submitter", "address", True),
        ("hash", "bytes32", True),
        ("mrvId", "string", False),
        ("timestamp", "uint256", False),
    ],
    "BatchAnchored": [
        ("root", "bytes32", True),
        ("submitter", "address", True),
        ("leafCount", "uint32", False),
        ("timestamp", "uint256", False),
    ],
}
EXPECTED_ERRORS = {
    "MRVEmptyId": [],
    "MRVZeroHash": [],
    "MRVAlreadyRegistered": ["string", "address"],
    "MRVBatchZeroRoot": [],
    "MRVBatchEmpty": [],
    "MRVBatchAlreadyAnchored": ["bytes32", "address"],
}


def test_abi_is_exactly_the_documented_one() -> None:
    abi = load_artifact().abi
    functions = {
        f["name"]: (
            [i["type"] for i in f["inputs"]],
            [o["type"] for o in f["outputs"]],
            f["stateMutability"],
        )
        for f in abi
        if f["type"] == "function"
    }
    events = {
        e["name"]: [(i["name"], i["type"], i["indexed"]) for i in e["inputs"]]
        for e in abi
        if e["type"] == "event"
    }
    errors = {e["name"]: [i["type"] for i in e["inputs"]] for e in abi if e["type"] == "error"}
    assert functions == EXPECTED_FUNCTIONS
    assert events == EXPECTED_EVENTS  # no MRVQueried: a view cannot emit
    assert errors == EXPECTED_ERRORS
    assert not [x for x in abi if x["type"] in ("constructor", "fallback", "receive")]


def test_artifact_records_the_committed_source_and_pinned_compiler() -> None:
    raw = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    # Editing the .sol without recompiling is caught even where Node.js is missing.
    assert raw["sourceSha256"] == digest == load_artifact().source_sha256
    assert raw["sources"]["contracts/MRVRegistry.sol"] == digest
    assert raw["compiler"]["version"].startswith("0.8.30+")
    assert raw["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert raw["compiler"]["settings"]["evmVersion"] == "cancun"
    assert "pragma solidity 0.8.30;" in SOURCE.read_text(encoding="utf-8")
    # Deterministic layout: sorted keys, 2-space indent, trailing newline.
    assert (
        ARTIFACT_PATH.read_text(encoding="utf-8")
        == json.dumps(raw, indent=2, sort_keys=True) + "\n"
    )


def _dashboard_abi(config_js: str) -> tuple[str, list[dict[str, Any]]]:
    """The REGISTRY_ABI line of dashboard/config.js and the ABI it holds."""
    [line] = [x for x in config_js.splitlines() if x.startswith(ABI_PREFIX)]
    assert line.endswith(";"), line[-40:]
    return line, json.loads(line[len(ABI_PREFIX):-1])


def test_dashboard_abi_is_the_committed_artifacts() -> None:
    """dashboard/config.js (written by scripts/vendor_ethers.mjs) holds the artifact's ABI:
    regenerate it (node scripts/vendor_ethers.mjs) after recompiling the contract."""
    artifact_abi = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))["abi"]
    line, dashboard_abi = _dashboard_abi(DASHBOARD_CONFIG.read_text(encoding="utf-8"))
    assert dashboard_abi == artifact_abi
    # exactly what the script writes (JSON.stringify): regenerating changes nothing
    assert line == ABI_PREFIX + json.dumps(artifact_abi, separators=(",", ":")) + ";"


def test_dashboard_abi_check_sees_a_change_on_either_side() -> None:
    artifact_abi = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))["abi"]
    config_js = DASHBOARD_CONFIG.read_text(encoding="utf-8")
    _, dashboard_abi = _dashboard_abi(config_js)
    renamed = json.loads(json.dumps(artifact_abi).replace('"getBatch"', '"getBatchX"'))
    assert renamed != artifact_abi and dashboard_abi != renamed
    edited = config_js.replace('"verifyMRVHash"', '"verifyMRVHashX"')
    assert _dashboard_abi(edited)[1] != artifact_abi


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "solc").is_dir():
        pytest.skip("Node.js or node_modules/solc missing (run npm ci)")
    return node


@pytest.mark.node
def test_recompiling_reproduces_the_committed_artifact() -> None:
    result = subprocess.run(
        [_node(), str(SCRIPT), "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "matches" in result.stdout


@pytest.mark.node
def test_check_fails_when_the_artifact_differs(tmp_path: Path) -> None:
    # A copy of the repository's relevant parts, so the committed artifact is never touched.
    node = _node()
    for rel in (
        "scripts/compile_contract.mjs",
        "contracts/MRVRegistry.sol",
        "src/mrv_ml/contracts/MRVRegistry.json",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, tmp_path / rel)
    os.symlink(REPO / "node_modules", tmp_path / "node_modules")
    script = tmp_path / "scripts" / "compile_contract.mjs"
    assert (
        subprocess.run([node, str(script), "--check"], capture_output=True, timeout=120).returncode
        == 0
    )

    source = tmp_path / "contracts" / "MRVRegistry.sol"
    source.write_text(source.read_text(encoding="utf-8") + "\n// changed\n", encoding="utf-8")
    result = subprocess.run(
        [node, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "differs" in result.stderr

    # Regenerating makes it match again, byte for byte the same on a second run.
    assert subprocess.run([node, str(script)], capture_output=True, timeout=120).returncode == 0
    artifact = tmp_path / "src" / "mrv_ml" / "contracts" / "MRVRegistry.json"
    first = artifact.read_bytes()
    assert subprocess.run([node, str(script)], capture_output=True, timeout=120).returncode == 0
    assert artifact.read_bytes() == first
    assert (
        subprocess.run([node, str(script), "--check"], capture_output=True, timeout=120).returncode
        == 0
    )
