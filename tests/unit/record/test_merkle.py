"""StandardMerkleTree: identical to @openzeppelin/merkle-tree, accepted by the registry."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import MRVError
from mrv_ml.record.merkle import MerkleError, StandardMerkleTree, leaf_hash, to_bytes32

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE = REPO_ROOT / "scripts" / "merkle_reference.mjs"
SIZES = (1, 2, 3, 4, 5, 7, 8, 13, 64, 100, 257, 1000)


def _values(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["0x" + rng.randbytes(32).hex() for _ in range(n)]


def _reference(batches: list[list[str]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (REPO_ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        pytest.skip("node or @openzeppelin/merkle-tree is not installed (npm ci)")
    done = subprocess.run([node, str(REFERENCE)], input=json.dumps(batches), capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120, check=True)
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.mark.node
def test_matches_openzeppelin_js_on_random_batches() -> None:
    batches = [_values(n, seed=n) for n in SIZES]
    # one more batch whose values share long prefixes, so ordering bugs show up
    batches.append(["0x" + "00" * 31 + f"{i:02x}" for i in range(9)])
    expected = _reference(batches)  # one node process for all batches
    for values, ref in zip(batches, expected, strict=True):
        tree = StandardMerkleTree.of(values)
        assert tree.root == ref["root"], len(values)
        assert [tree.get_proof(i) for i in range(len(values))] == ref["proofs"]
        assert tree.dump() == ref["dump"]
        # their dump loads here and yields the same tree
        loaded = StandardMerkleTree.load(ref["dump"])
        assert loaded.root == ref["root"]
        assert loaded.get_proof(values[-1]) == ref["proofs"][-1]
        for i in (0, len(values) // 2, len(values) - 1):
            assert StandardMerkleTree.verify(ref["root"], values[i], ref["proofs"][i])


def test_proof_by_value_and_by_index_agree() -> None:
    values = _values(11, seed=1)
    tree = StandardMerkleTree.of(values)
    for i, v in enumerate(values):
        assert tree.get_proof(v) == tree.get_proof(i)
        assert tree.index_of(v) == i
        assert StandardMerkleTree.verify(tree.root, v, tree.get_proof(i))
    assert tree.leaf_hash(values[0]) == "0x" + leaf_hash(values[0]).hex()


def test_single_leaf_tree_root_is_the_leaf_hash() -> None:
    (value,) = _values(1, seed=2)
    tree = StandardMerkleTree.of([value])
    assert tree.root == tree.leaf_hash(value)
    assert tree.get_proof(0) == []
    assert StandardMerkleTree.verify(tree.root, value, [])


def test_wrong_leaf_and_changed_sibling_fail_verification() -> None:
    values = _values(8, seed=3)
    tree = StandardMerkleTree.of(values)
    proof = tree.get_proof(3)
    assert not StandardMerkleTree.verify(tree.root, values[4], proof)  # another record's proof
    changed = list(proof)
    changed[0] = "0x" + ("ff" if changed[0][2:4] != "ff" else "00") + changed[0][4:]
    assert not StandardMerkleTree.verify(tree.root, values[3], changed)
    assert not StandardMerkleTree.verify(tree.root, values[3], proof[:-1])
    assert not StandardMerkleTree.verify(tree.root, values[3], ["0x12"])  # malformed -> False


def test_empty_input_is_rejected() -> None:
    with pytest.raises(MerkleError, match="no values"):
        StandardMerkleTree.of([])
    assert issubclass(MerkleError, MRVError)


def test_duplicate_values_are_rejected_naming_the_value() -> None:
    values = _values(4, seed=4)
    with pytest.raises(MerkleError, match=rf"duplicate leaf value {values[1]} at positions 1 and 3"):
        StandardMerkleTree.of([values[0], values[1], values[2], values[1]])


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 32, b"\x00" * 31, 42])
def test_non_bytes32_values_are_rejected(bad: Any) -> None:
    with pytest.raises(MerkleError):
        StandardMerkleTree.of([bad])


def test_unknown_leaf_and_index_out_of_range() -> None:
    tree = StandardMerkleTree.of(_values(3, seed=5))
    with pytest.raises(MerkleError, match="not a leaf"):
        tree.get_proof(_values(1, seed=99)[0])
    with pytest.raises(MerkleError, match="out of range"):
        tree.get_proof(3)


def test_load_rejects_tampered_or_foreign_dumps() -> None:
    dump = StandardMerkleTree.of(_values(5, seed=6)).dump()
    assert StandardMerkleTree.load(dump).root == dump["tree"][0]
    bad_node = json.loads(json.dumps(dump))
    bad_node["tree"][0] = "0x" + "00" * 32
    with pytest.raises(MerkleError, match="invalid at node 0"):
        StandardMerkleTree.load(bad_node)
    bad_value = json.loads(json.dumps(dump))
    bad_value["values"][0]["value"] = ["0x" + "ab" * 32]
    with pytest.raises(MerkleError, match="does not match"):
        StandardMerkleTree.load(bad_value)
    with pytest.raises(MerkleError, match="format"):
        StandardMerkleTree.load({**dump, "format": "simple-v1"})
    with pytest.raises(MerkleError, match="leaf encoding"):
        StandardMerkleTree.load({**dump, "leafEncoding": ["address", "uint256"]})
    with pytest.raises(MerkleError, match="malformed"):
        StandardMerkleTree.load({**dump, "tree": None})


def test_registry_verify_batch_proof_accepts_our_proofs_on_embedded_chain() -> None:
    from mrv_ml.chain.connection import connect
    from mrv_ml.config import load_settings

    values = _values(7, seed=7)
    tree = StandardMerkleTree.of(values)
    with connect(load_settings(), need_signer=True) as conn:
        conn.send(conn.registry.functions.anchorBatch(tree.root_bytes, len(values)))
        submitter = conn.signer_address

        def on_chain(value: str, proof: list[str]) -> bool:
            path = [to_bytes32(p) for p in proof]
            return bool(conn.call(lambda r: r.functions.verifyBatchProof(
                tree.root_bytes, submitter, to_bytes32(value), path).call()))

        for i, v in enumerate(values):
            assert on_chain(v, tree.get_proof(i))
        assert not on_chain(values[0], tree.get_proof(1))


def test_shared_memo_gives_the_same_answers() -> None:
    from mrv_ml.record.merkle import verify_proof

    values = _values(33, seed=8)
    tree = StandardMerkleTree.of(values)
    memo: dict[bytes, bytes] = {}
    for i, v in enumerate(values):
        assert verify_proof(tree.root, v, tree.get_proof(i), memo)
        # a wrong pairing must still fail even though its nodes are cached
        assert not verify_proof(tree.root, v, tree.get_proof((i + 1) % len(values)), memo)
    assert memo  # upper levels were reused
