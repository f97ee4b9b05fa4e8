"""Network presets and how settings resolve to (network, RPC URL)."""

from __future__ import annotations

import pytest

from mrv_ml.config import Settings
from mrv_ml.errors import ConfigError
from mrv_ml.networks import PRESETS, get_network, resolve_network


def test_public_presets_have_seed_chain_ids_and_explorers() -> None:
    expected = {"mainnet": 1, "sepolia": 11155111, "polygon": 137, "amoy": 80002, "base": 8453,
                "base-sepolia": 84532, "arbitrum": 42161, "arbitrum-sepolia": 421614,
                "optimism": 10}
    for name, chain_id in expected.items():
        net = get_network(name)
        assert net.chain_id == chain_id
        assert not net.is_dev and net.confirmations >= 2 and net.rpc_url is None
        assert (net.explorer_url("0xab") or "").endswith("/tx/0xab")


def test_dev_presets() -> None:
    assert get_network("local").chain_id == 1337 and get_network("local").embedded
    for name in ("localhost", "anvil", "hardhat"):
        net = get_network(name)
        assert (net.chain_id, net.rpc_url, net.is_dev, net.confirmations) == (
            31337, "http://127.0.0.1:8545", True, 0)
        assert net.explorer_url("0x1") is None


def test_public_network_without_url_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="BLOCKCHAIN_RPC_URL"):
        resolve_network(Settings(network="sepolia"))


def test_unknown_network_lists_choices() -> None:
    with pytest.raises(ConfigError, match="sepolia"):
        resolve_network(Settings(network="moonbase"))


def test_bad_url_scheme_refused() -> None:
    with pytest.raises(ConfigError, match="http"):
        resolve_network(Settings(network="sepolia", rpc_url="ws://x"))


def test_url_with_default_network_becomes_custom_with_chain_id_from_node() -> None:
    net, url = resolve_network(Settings(rpc_url="http://127.0.0.1:9"))
    assert net.name == "custom" and net.chain_id is None and url == "http://127.0.0.1:9"


def test_confirmations_override_and_case_insensitive_name() -> None:
    net, url = resolve_network(Settings(network="Sepolia", rpc_url="https://x", confirmations=5))
    assert net.confirmations == 5 and net.chain_id == 11155111 and url == "https://x"
    assert PRESETS["sepolia"].confirmations == 2  # the preset itself is untouched


def test_dev_addresses_are_the_well_known_keys_addresses() -> None:
    from mrv_ml.chain.localchain import anvil_dev_accounts, dev_accounts
    from mrv_ml.networks import DEV_ADDRESSES

    assert {a.address.lower() for a in [*dev_accounts(), *anvil_dev_accounts()]} == DEV_ADDRESSES


def test_the_page_knows_what_python_knows_about_chains() -> None:
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "scripts/make_page_data.py", "--check"], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_released_registry_is_the_committed_artifact() -> None:
    from mrv_ml.chain.contract import code_hash, load_artifact, released_code_hashes

    deployed = bytes.fromhex(load_artifact().deployed_bytecode.removeprefix("0x"))
    assert code_hash(deployed) in released_code_hashes()
