"""connect(): the checks made at connection time; deploy; the nonce lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.chain.connection import connect
from mrv_ml.chain.deploy import deploy
from mrv_ml.chain.localchain import anvil_dev_accounts
from mrv_ml.config import Secret, Settings, load_settings
from mrv_ml.errors import (
    ChainIdMismatchError,
    ChainUnavailableError,
    ConfigError,
    KeyConfigError,
    NoContractError,
    TransactionFailedError,
)


def test_local_connect_deploys_once_and_reads_without_key(data_dir: Path) -> None:
    settings = load_settings()
    with connect(settings) as conn:
        first = conn.registry_address
        assert conn.chain_id == 1337 and conn.signer_address is None
        assert conn.call(lambda r: r.functions.isMRVRegistered("MRV-x").call()) is False
    with connect(settings) as conn:
        assert conn.registry_address == first


def test_send_without_key_on_read_connection() -> None:
    with connect(load_settings()) as conn, pytest.raises(KeyConfigError):
        conn.send(conn.registry.functions.registerMRV("MRV-x", b"\x01" * 32))


def test_revert_is_decoded() -> None:
    with connect(load_settings(), need_signer=True) as conn, \
            pytest.raises(TransactionFailedError, match="MRVZeroHash"):
        conn.send(conn.registry.functions.registerMRV("MRV-x", b"\x00" * 32))


def test_unreachable_node_is_exit_4() -> None:
    settings = Settings(network="anvil", rpc_url="http://127.0.0.1:9")
    with pytest.raises(ChainUnavailableError, match=r"cannot reach http://127.0.0.1:9") as info:
        connect(settings)
    assert info.value.exit_code == 4


def test_missing_url_for_public_network() -> None:
    with pytest.raises(ConfigError, match="BLOCKCHAIN_RPC_URL"):
        connect(Settings(network="polygon"))


@pytest.mark.anvil
def test_chain_id_mismatch(anvil: Any) -> None:
    anvil.ensure_running()
    with pytest.raises(ChainIdMismatchError, match="31337") as info:
        connect(Settings(network="sepolia", rpc_url=anvil.url))
    assert info.value.exit_code == 7


@pytest.mark.anvil
def test_no_code_at_contract_address(anvil: Any) -> None:
    anvil.ensure_running()
    empty = anvil.accounts[5].address  # an account, not a contract
    with pytest.raises(NoContractError, match=f"no contract at {empty} on anvil"):
        connect(Settings(network="anvil", rpc_url=anvil.url, contract_address=empty))


@pytest.mark.anvil
def test_no_registry_address_configured(anvil: Any, data_dir: Path) -> None:
    anvil.ensure_running()
    with pytest.raises(ConfigError, match="run `mrv deploy`"):
        connect(Settings(data_dir=data_dir, network="anvil", rpc_url=anvil.url))


@pytest.mark.anvil
def test_deploy_records_address_and_connect_finds_it(anvil: Any, data_dir: Path) -> None:
    anvil.ensure_running()
    own = anvil_dev_accounts()[7]
    settings = Settings(data_dir=data_dir, network="custom", rpc_url=anvil.url,
                        private_key=Secret(own.key.hex()))
    first = deploy(settings)
    address, path = first.address, first.recorded_in
    assert json.loads(path.read_text())["31337"]["address"] == address
    assert first.replaced is None
    with connect(settings) as conn:  # custom: chain id taken from the node
        assert conn.registry_address == address and conn.chain_id == 31337
    # a record anchored on it, then `mrv deploy` again: the first registry is history, not
    # forgotten, and the record still verifies (its proof names its registry)
    from mrv_ml.anchoring.single import anchor_record
    from mrv_ml.storage.store import RecordStore
    from mrv_ml.verification.verifier import verify
    from tests.support.records import make_sample_record

    store = RecordStore(data_dir)
    record = store.save(make_sample_record())
    assert anchor_record(store, record.stem, settings=settings).anchored
    second = deploy(settings)
    assert second.replaced == address and second.address != address
    entry = json.loads(path.read_text())["31337"]
    assert entry["address"] == second.address and entry["previous"][0]["address"] == address
    assert verify(record, settings=Settings(rpc_url=anvil.url))


def test_dev_key_refused_on_public_preset() -> None:
    key = anvil_dev_accounts()[0].key.hex()
    # refused before any network traffic: the URL is never contacted
    with pytest.raises(KeyConfigError, match="well-known development key"):
        connect(Settings(network="sepolia", rpc_url="http://127.0.0.1:9",
                         private_key=Secret(key)), need_signer=True)


@pytest.mark.anvil
def test_custom_url_dev_key_refused_unless_dev_chain(anvil: Any) -> None:
    anvil.ensure_running()
    key = Secret(anvil_dev_accounts()[0].key.hex())
    with connect(Settings(network="custom", rpc_url=anvil.url, private_key=key,
                          contract_address=anvil.deploy_registry()), need_signer=True) as conn:
        assert conn.network.is_dev and conn.signer is not None and conn.signer.dev_key
