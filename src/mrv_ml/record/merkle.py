"""OpenZeppelin ``StandardMerkleTree`` for ``["bytes32"]`` leaves, in Python.

Byte-for-byte the tree that ``@openzeppelin/merkle-tree`` builds (and that
``MerkleProof.verify`` in the registry accepts): leaf = keccak256(keccak256(abi.encode(v))),
leaves sorted by hash, an array-backed complete binary tree whose node ``i`` has children
``2i+1``/``2i+2``, parents hashing their children as a sorted pair. ``dump()``/``load()``
read and write OZ's ``"standard-v1"`` JSON so trees can travel between the two libraries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mrv_ml.errors import RecordError

try:  # pycryptodome directly: a third less call overhead than eth_hash's dispatch
    from Crypto.Hash import keccak as _keccak_mod

    def keccak(data: bytes) -> bytes:
        return bytes(_keccak_mod.new(data=data, digest_bits=256).digest())
except ImportError:  # pragma: no cover - eth_hash picks whatever backend is installed
    from eth_hash.auto import keccak as _eth_keccak

    def keccak(data: bytes) -> bytes:
        return bytes(_eth_keccak(data))

LEAF_ENCODING: tuple[str, ...] = ("bytes32",)
DUMP_FORMAT = "standard-v1"
PROOF_FORMAT = "openzeppelin-standard-merkle-tree-v1"  # the name used in proof sidecars


class MerkleError(RecordError):
    """A Merkle tree cannot be built, loaded or used with the given input."""


def to_bytes32(value: bytes | str) -> bytes:
    """A 32-byte value from bytes or hex (with or without 0x); MerkleError otherwise."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value[2:] if value[:2].lower() == "0x" else value
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise MerkleError(f"not a hex value: {value[:70]!r}") from None
    else:
        raise MerkleError(f"a bytes32 leaf must be bytes or hex, not {type(value).__name__}")
    if len(raw) != 32:
        raise MerkleError(f"a bytes32 leaf must be 32 bytes, got {len(raw)}")
    return raw


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def leaf_hash(value: bytes | str) -> bytes:
    # abi.encode(bytes32) is the 32 bytes themselves; the double hash stops a leaf from
    # being passed off as an inner node (second-preimage defence, as in OZ).
    return keccak(keccak(to_bytes32(value)))


def node_hash(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a <= b else b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes | str],
                  memo: dict[bytes, bytes] | None = None) -> bytes:
    """The root that ``proof`` leads to from ``leaf``. ``memo`` caches node hashes across
    proofs of one tree (their upper levels are shared), for verifying many records."""
    node = leaf
    for sibling in proof:
        s = to_bytes32(sibling)
        pair = node + s if node <= s else s + node
        if memo is None:
            node = keccak(pair)
            continue
        known = memo.get(pair)
        if known is None:
            known = memo[pair] = keccak(pair)
        node = known
    return node


def verify_proof(root: bytes | str, leaf_value: bytes | str, proof: Sequence[bytes | str],
                 memo: dict[bytes, bytes] | None = None) -> bool:
    """Whether ``proof`` links ``leaf_value`` to ``root``. Malformed input -> False."""
    try:
        return process_proof(leaf_hash(leaf_value), proof, memo) == to_bytes32(root)
    except MerkleError:
        return False


class StandardMerkleTree:
    """A built tree: ``tree`` is the node array (root first), ``values`` the leaf values in
    input order with the tree index of each."""

    def __init__(self, tree: list[bytes], values: list[tuple[bytes, int]]) -> None:
        self._tree = tree
        self._values = values
        self._lookup = {tree[i]: n for n, (_v, i) in enumerate(values)}

    @classmethod
    def of(cls, values: Sequence[bytes | str]) -> StandardMerkleTree:
        """Build the tree. MerkleError on no values, a non-32-byte value or a duplicate
        (a duplicate leaf would make a proof by value ambiguous)."""
        if len(values) == 0:
            raise MerkleError("cannot build a Merkle tree of no values")
        raws = [to_bytes32(v) for v in values]
        hashed = [(leaf_hash(v), n) for n, v in enumerate(raws)]
        seen: dict[bytes, int] = {}
        for h, n in hashed:
            if h in seen:
                raise MerkleError(f"duplicate leaf value {_hex(raws[n])} at positions "
                                  f"{seen[h]} and {n}")
            seen[h] = n
        hashed.sort()
        size = 2 * len(hashed) - 1
        tree: list[bytes] = [b""] * size
        tree_index = [0] * len(raws)
        for leaf_pos, (h, n) in enumerate(hashed):
            tree[size - 1 - leaf_pos] = h
            tree_index[n] = size - 1 - leaf_pos
        for i in range(size - 1 - len(hashed), -1, -1):
            tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
        return cls(tree, [(raws[n], tree_index[n]) for n in range(len(raws))])

    @property
    def root(self) -> str:
        return _hex(self._tree[0])

    @property
    def root_bytes(self) -> bytes:
        return self._tree[0]

    def __len__(self) -> int:
        return len(self._values)

    def at(self, index: int) -> str:
        return _hex(self._values[index][0])

    @staticmethod
    def leaf_hash(value: bytes | str) -> str:
        return _hex(leaf_hash(value))

    def index_of(self, value: bytes | str) -> int:
        """Position of ``value`` in the input values; MerkleError if it is not a leaf."""
        n = self._lookup.get(leaf_hash(value))
        if n is None:
            raise MerkleError(f"{_hex(to_bytes32(value))} is not a leaf of this tree")
        return n

    def get_proof(self, leaf: int | bytes | str) -> list[str]:
        """Sibling hashes from the leaf up, for a value index or the value itself."""
        if isinstance(leaf, int):
            if not 0 <= leaf < len(self._values):
                raise MerkleError(f"leaf index {leaf} out of range (0..{len(self._values) - 1})")
            n = leaf
        else:
            n = self.index_of(leaf)
        i = self._values[n][1]
        proof: list[str] = []
        while i > 0:
            proof.append(_hex(self._tree[i + 1 if i % 2 else i - 1]))
            i = (i - 1) // 2
        return proof

    @staticmethod
    def verify(root: bytes | str, leaf_value: bytes | str, proof: Sequence[bytes | str]) -> bool:
        """Whether ``proof`` links ``leaf_value`` to ``root``. Malformed input -> False."""
        return verify_proof(root, leaf_value, proof)

    def dump(self) -> dict[str, Any]:
        return {"format": DUMP_FORMAT, "leafEncoding": list(LEAF_ENCODING),
                "tree": [_hex(n) for n in self._tree],
                "values": [{"value": [_hex(v)], "treeIndex": i} for v, i in self._values]}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Load an OZ ``standard-v1`` dump, checking every node (MerkleError if invalid)."""
        if not isinstance(data, Mapping) or data.get("format") != DUMP_FORMAT:
            fmt = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise MerkleError(f"unknown Merkle tree dump format {str(fmt)[:40]!r}")
        if list(data.get("leafEncoding") or []) != list(LEAF_ENCODING):
            raise MerkleError(f"unsupported leaf encoding {data.get('leafEncoding')!r:.60}; "
                              "only ['bytes32']")
        try:
            tree = [to_bytes32(n) for n in data["tree"]]
            values = [(to_bytes32(v["value"][0]), int(v["treeIndex"])) for v in data["values"]]
        except (KeyError, TypeError, IndexError, ValueError) as e:
            raise MerkleError(f"malformed Merkle tree dump: {type(e).__name__}") from None
        size = len(tree)
        if size == 0 or not values:
            raise MerkleError("malformed Merkle tree dump: no nodes")
        for i in range(size):
            left = 2 * i + 1
            if left < size and (left + 1 >= size
                                or tree[i] != node_hash(tree[left], tree[left + 1])):
                raise MerkleError(f"Merkle tree dump is invalid at node {i}")
        for v, i in values:
            if not (size // 2 <= i < size) or tree[i] != leaf_hash(v):
                raise MerkleError(f"Merkle tree dump value {_hex(v)} does not match node {i}")
        return cls(tree, values)
