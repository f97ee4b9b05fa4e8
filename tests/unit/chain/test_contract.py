"""MRVRegistry behaviour, one suite run on BOTH backends: the embedded py-evm chain and a
real anvil JSON-RPC node. Transactions are signed locally and sent raw, as users do."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from mrv_ml.chain.contract import (
    decode_registry_error,
    id_key,
    load_artifact,
    registry_contract,
    revert_data,
)
from mrv_ml.chain.localchain import LocalChain, dev_accounts

_ids = itertools.count()


def new_id(prefix: str = "MRV") -> str:
    return f"{prefix}-{time.time_ns()}-{next(_ids)}"


def h(n: int) -> bytes:
    return n.to_bytes(32, "big")


@dataclass
class Backend:
    name: str
    w3: Web3
    registry: Any  # web3 Contract
    accounts: list[LocalAccount]

    def send(self, fn: Any, account: LocalAccount, gas: int | None = None) -> Any:
        """Sign ``fn``'s transaction with ``account`` and send it raw; return the receipt."""
        params: dict[str, Any] = {
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address),
        }
        if gas is not None:
            params["gas"] = gas  # skip estimation: the transaction really goes on chain
        tx = fn.build_transaction(params)
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    def revert_of(self, fn: Any, account: LocalAccount) -> str:
        """The decoded custom error ``fn`` reverts with when sent by ``account``."""
        with pytest.raises(Exception) as info:  # eth-tester and web3 raise different types
            fn.call({"from": account.address})
        return decode_registry_error(info.value)


@pytest.fixture
def local_backend(tmp_path: Path) -> Iterator[Backend]:
    chain = LocalChain(tmp_path / "chain")
    with chain.session() as w3:
        address = chain.registry_address(w3)
        yield Backend("local", w3, registry_contract(w3, address), dev_accounts())


@pytest.fixture
def anvil_backend(anvil: Any, anvil_registry: str) -> Backend:
    w3 = anvil.w3()
    return Backend("anvil", w3, registry_contract(w3, anvil_registry), anvil.accounts)


@pytest.fixture(params=["local", pytest.param("anvil", marks=pytest.mark.anvil)])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")  # type: ignore[no-any-return]


# --- single registrations --------------------------------------------------------------------


def test_register_get_verify(backend: Backend) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    mrv_id = new_id()
    assert reg.functions.isMRVRegistered(mrv_id).call() is False
    assert reg.functions.getMRVHash(mrv_id).call() == [b"\0" * 32, 0, "0x" + "0" * 40]
    receipt = backend.send(reg.functions.registerMRV(mrv_id, h(1)), alice)
    assert receipt["status"] == 1
    block = backend.w3.eth.get_block(receipt["blockNumber"])

    stored, timestamp, submitter = reg.functions.getMRVHash(mrv_id).call()
    assert (stored, timestamp, submitter) == (h(1), block["timestamp"], alice.address)
    assert reg.functions.getMRVHashBy(mrv_id, alice.address).call() == [h(1), block["timestamp"]]
    assert reg.functions.isMRVRegistered(mrv_id).call() is True
    assert reg.functions.verifyMRVHash(mrv_id, h(1)).call() is True
    assert reg.functions.verifyMRVHash(mrv_id, h(2)).call() is False
    assert reg.functions.verifyMRVHashBy(mrv_id, alice.address, h(1)).call() is True
    assert reg.functions.verifyMRVHashBy(mrv_id, backend.accounts[2].address, h(1)).call() is False
    # IDs are exact strings: a near-miss is another ID.
    assert reg.functions.isMRVRegistered(mrv_id + " ").call() is False


def test_zero_hash_never_verifies(backend: Backend) -> None:
    # Zero marks "not registered": an unregistered ID must not verify against it.
    reg = backend.registry
    assert reg.functions.verifyMRVHash(new_id(), b"\0" * 32).call() is False
    assert (
        reg.functions.verifyMRVHashBy(new_id(), backend.accounts[1].address, b"\0" * 32).call()
        is False
    )


def test_no_overwrite(backend: Backend) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    mrv_id = new_id()
    first = backend.send(reg.functions.registerMRV(mrv_id, h(1)), alice)
    error = backend.revert_of(reg.functions.registerMRV(mrv_id, h(2)), alice)
    assert error == f"MRVAlreadyRegistered(mrvId={mrv_id!r}, submitter={alice.address})"
    # Even forced on chain (no gas estimate to stop it) the transaction reverts.
    receipt = backend.send(reg.functions.registerMRV(mrv_id, h(2)), alice, gas=200_000)
    assert receipt["status"] == 0
    timestamp = backend.w3.eth.get_block(first["blockNumber"])["timestamp"]
    assert reg.functions.getMRVHash(mrv_id).call() == [h(1), timestamp, alice.address]


def test_zero_hash_and_empty_id_rejected(backend: Backend) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    mrv_id = new_id()
    assert (
        backend.revert_of(reg.functions.registerMRV(mrv_id, b"\0" * 32), alice) == "MRVZeroHash()"
    )
    assert backend.revert_of(reg.functions.registerMRV("", h(1)), alice) == "MRVEmptyId()"
    assert reg.functions.isMRVRegistered(mrv_id).call() is False
    assert reg.functions.isMRVRegistered("").call() is False


def test_squatter_cannot_block_or_replace_the_honest_registrant(backend: Backend) -> None:
    reg = backend.registry
    victim, attacker = backend.accounts[1], backend.accounts[2]
    mrv_id = new_id()
    honest, forged = h(0xA11CE), h(0xBAD)
    # The attacker saw the pending transaction and registered the ID first, other hash.
    backend.send(reg.functions.registerMRV(mrv_id, forged), attacker)
    receipt = backend.send(reg.functions.registerMRV(mrv_id, honest), victim)
    assert receipt["status"] == 1
    victim_ts = backend.w3.eth.get_block(receipt["blockNumber"])["timestamp"]

    assert reg.functions.getMRVHashBy(mrv_id, victim.address).call() == [honest, victim_ts]
    assert reg.functions.verifyMRVHashBy(mrv_id, victim.address, honest).call() is True
    assert reg.functions.verifyMRVHashBy(mrv_id, victim.address, forged).call() is False
    # The seed's first-registrant view shows the squatter: verifiers must ask by submitter.
    first_hash, _, first_submitter = reg.functions.getMRVHash(mrv_id).call()
    assert (first_hash, first_submitter) == (forged, attacker.address)
    assert reg.functions.verifyMRVHash(mrv_id, honest).call() is False
    # The victim's own entry is protected against overwrite like a first registration.
    error = backend.revert_of(reg.functions.registerMRV(mrv_id, forged), victim)
    assert error.startswith("MRVAlreadyRegistered(")
    assert backend.revert_of(reg.functions.registerMRV(mrv_id, honest), attacker).startswith(
        "MRVAlreadyRegistered("
    )


def test_front_runner_copying_the_hash_gets_its_own_entry(backend: Backend) -> None:
    reg = backend.registry
    victim, attacker, stranger = backend.accounts[1], backend.accounts[2], backend.accounts[3]
    mrv_id = new_id()
    backend.send(reg.functions.registerMRV(mrv_id, h(7)), attacker)
    receipt = backend.send(reg.functions.registerMRV(mrv_id, h(7)), victim)
    assert receipt["status"] == 1
    victim_ts = backend.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert reg.functions.getMRVHashBy(mrv_id, victim.address).call() == [h(7), victim_ts]
    assert reg.functions.getMRVHash(mrv_id).call()[2] == attacker.address
    # Someone who never registered has no entry, whatever the others did.
    assert reg.functions.getMRVHashBy(mrv_id, stranger.address).call() == [b"\0" * 32, 0]
    assert reg.functions.verifyMRVHashBy(mrv_id, stranger.address, h(7)).call() is False


def test_registered_event(backend: Backend) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    mrv_id = new_id("MRV-évènement")  # non-ASCII: idKey is over the UTF-8 bytes
    receipt = backend.send(reg.functions.registerMRV(mrv_id, h(5)), alice)
    (event,) = reg.events.MRVRegistered().process_receipt(receipt)
    block = backend.w3.eth.get_block(receipt["blockNumber"])
    assert event["args"]["idKey"] == id_key(mrv_id) == keccak(mrv_id.encode())
    assert event["args"]["submitter"] == alice.address
    assert event["args"]["hash"] == h(5)
    assert event["args"]["mrvId"] == mrv_id
    assert event["args"]["timestamp"] == block["timestamp"]
    assert event["address"] == reg.address
    # The three indexed fields are filterable topics.
    log = receipt["logs"][0]
    assert bytes(log["topics"][1]) == id_key(mrv_id)
    assert bytes(log["topics"][3]) == h(5)


def test_views_send_no_transaction(backend: Backend) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    mrv_id = new_id()
    backend.send(reg.functions.registerMRV(mrv_id, h(3)), alice)
    head = backend.w3.eth.block_number
    nonce = backend.w3.eth.get_transaction_count(alice.address)
    for _ in range(3):
        reg.functions.getMRVHash(mrv_id).call({"from": alice.address})
    assert backend.w3.eth.block_number == head
    assert backend.w3.eth.get_transaction_count(alice.address) == nonce


def test_gas_near_the_floor(backend: Backend) -> None:
    # Floor: 21,000 base + two new storage slots (2 x 22,100) + calldata and event.
    reg = backend.registry
    mrv_id = new_id()
    first = backend.send(reg.functions.registerMRV(mrv_id, h(1)), backend.accounts[1])
    later = backend.send(reg.functions.registerMRV(mrv_id, h(1)), backend.accounts[2])
    batch = backend.send(reg.functions.anchorBatch(h(99), 10), backend.accounts[1])
    assert 65_000 <= first["gasUsed"] <= 75_000
    assert later["gasUsed"] <= 80_000
    assert 43_000 <= batch["gasUsed"] <= 50_000


# --- Merkle batches --------------------------------------------------------------------------


def leaf(record_hash: bytes) -> bytes:
    """OpenZeppelin StandardMerkleTree leaf for ["bytes32"]: keccak256(keccak256(abi.encode(h)))."""
    return bytes(keccak(keccak(record_hash)))


def node(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(min(a, b) + max(a, b)))  # sorted pairs


def hand_tree(hashes: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and per-record proofs for 1 to 3 records, built by hand."""
    leaves = [leaf(x) for x in hashes]
    if len(leaves) == 1:
        return leaves[0], [[]]
    if len(leaves) == 2:
        return node(*leaves), [[leaves[1]], [leaves[0]]]
    left = node(leaves[0], leaves[1])
    return node(left, leaves[2]), [[leaves[1], leaves[2]], [leaves[0], leaves[2]], [left]]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_batch_anchor_and_proofs(backend: Backend, count: int) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    hashes = [keccak(text=f"{new_id()}-{i}") for i in range(count)]
    root, proofs = hand_tree(hashes)
    assert reg.functions.getBatch(root, alice.address).call() == [0, 0]
    # Before anchoring a correct proof is still not evidence.
    assert reg.functions.verifyBatchProof(root, alice.address, hashes[0], proofs[0]).call() is False

    receipt = backend.send(reg.functions.anchorBatch(root, count), alice)
    assert receipt["status"] == 1
    block = backend.w3.eth.get_block(receipt["blockNumber"])
    assert reg.functions.getBatch(root, alice.address).call() == [block["timestamp"], count]
    (event,) = reg.events.BatchAnchored().process_receipt(receipt)
    assert dict(event["args"]) == {
        "root": root,
        "submitter": alice.address,
        "leafCount": count,
        "timestamp": block["timestamp"],
    }

    for record_hash, proof in zip(hashes, proofs, strict=True):
        assert (
            reg.functions.verifyBatchProof(root, alice.address, record_hash, proof).call() is True
        )
    # A record that is not in the batch, a tampered sibling, another submitter: all false.
    other = keccak(text="not in the batch")
    assert reg.functions.verifyBatchProof(root, alice.address, other, proofs[0]).call() is False
    if count > 1:
        bad = [bytes([proofs[0][0][0] ^ 1]) + proofs[0][0][1:], *proofs[0][1:]]
        assert reg.functions.verifyBatchProof(root, alice.address, hashes[0], bad).call() is False
        # A proof for one record does not prove another one.
        assert (
            reg.functions.verifyBatchProof(root, alice.address, hashes[1], proofs[0]).call()
            is False
        )
    bob = backend.accounts[2]
    assert reg.functions.verifyBatchProof(root, bob.address, hashes[0], proofs[0]).call() is False


def test_batch_root_once_per_submitter_and_not_squattable(backend: Backend) -> None:
    reg, alice, mallory = backend.registry, backend.accounts[1], backend.accounts[2]
    root, proofs = hand_tree([h(11), h(12)])
    backend.send(reg.functions.anchorBatch(root, 2), mallory)  # front-runs alice's root
    assert backend.send(reg.functions.anchorBatch(root, 2), alice)["status"] == 1
    assert reg.functions.verifyBatchProof(root, alice.address, h(11), proofs[0]).call() is True
    error = backend.revert_of(reg.functions.anchorBatch(root, 5), alice)
    assert error == f"MRVBatchAlreadyAnchored(root=0x{root.hex()}, submitter={alice.address})"
    assert reg.functions.getBatch(root, alice.address).call()[1] == 2


def test_batch_bad_input(backend: Backend) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    assert (
        backend.revert_of(reg.functions.anchorBatch(b"\0" * 32, 3), alice) == "MRVBatchZeroRoot()"
    )
    assert backend.revert_of(reg.functions.anchorBatch(h(5), 0), alice) == "MRVBatchEmpty()"
    assert reg.functions.getBatch(h(5), alice.address).call() == [0, 0]


# --- error decoding --------------------------------------------------------------------------


def test_decode_registry_error_on_real_exceptions(backend: Backend) -> None:
    reg, alice = backend.registry, backend.accounts[1]
    mrv_id = new_id()
    backend.send(reg.functions.registerMRV(mrv_id, h(1)), alice)
    with pytest.raises(Exception) as info:
        reg.functions.registerMRV(mrv_id, h(1)).estimate_gas({"from": alice.address})
    data = revert_data(info.value)
    assert data is not None and data[:4] == keccak(text="MRVAlreadyRegistered(string,address)")[:4]
    message = decode_registry_error(info.value)
    assert message == f"MRVAlreadyRegistered(mrvId={mrv_id!r}, submitter={alice.address})"
    assert "\n" not in message


def test_decode_registry_error_without_revert_data() -> None:
    assert (
        decode_registry_error(ConnectionError("connection refused\nmore")) == "connection refused"
    )
    assert decode_registry_error(RuntimeError()) == "RuntimeError"
    # Data that is not one of ours falls back to the message rather than guessing.
    unknown = RuntimeError("execution reverted", "0xdeadbeef")
    assert decode_registry_error(unknown) == "execution reverted"
    # A standard revert string and a panic are readable too.
    from eth_abi import encode

    reason = "0x" + (keccak(text="Error(string)")[:4] + encode(["string"], ["nope"])).hex()
    assert decode_registry_error(RuntimeError("x", reason)) == "reverted: nope"
    panic = "0x" + (keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])).hex()
    assert decode_registry_error(RuntimeError("x", panic)) == "panic: 0x11"


def test_registry_contract_rejects_bad_address(local_backend: Backend) -> None:
    from mrv_ml.errors import ConfigError

    with pytest.raises(ConfigError, match="invalid contract address"):
        registry_contract(local_backend.w3, "0x1234")
    lower = local_backend.registry.address.lower()
    assert registry_contract(local_backend.w3, lower).address == to_checksum_address(lower)


def test_artifact_loaded_once_and_deployed_code_matches(backend: Backend) -> None:
    artifact = load_artifact()
    assert load_artifact() is artifact
    code = backend.w3.eth.get_code(backend.registry.address)
    assert "0x" + bytes(code).hex() == artifact.deployed_bytecode


# --- properties (embedded chain) -------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mrv_id=st.text(min_size=1, max_size=80),
    record_hash=st.binary(min_size=32, max_size=32).filter(lambda b: any(b)),
    other=st.binary(min_size=32, max_size=32),
)
def test_property_register_then_verify(
    local_backend: Backend, mrv_id: str, record_hash: bytes, other: bytes
) -> None:
    reg, alice = local_backend.registry, local_backend.accounts[1]
    unique_id = f"{next(_ids)}:{mrv_id}"  # examples share one chain; IDs stay arbitrary text
    try:
        unique_id.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be sent as a Solidity string at all
    assert (
        local_backend.send(reg.functions.registerMRV(unique_id, record_hash), alice)["status"] == 1
    )
    assert reg.functions.verifyMRVHash(unique_id, record_hash).call() is True
    assert reg.functions.verifyMRVHashBy(unique_id, alice.address, record_hash).call() is True
    if other != record_hash:
        assert reg.functions.verifyMRVHash(unique_id, other).call() is False
        assert reg.functions.verifyMRVHashBy(unique_id, alice.address, other).call() is False
