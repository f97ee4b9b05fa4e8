"""Reading the evidence :func:`mrv_ml.verification.verdict.decide` asks for, over one
connection per chain: one small read per :class:`~mrv_ml.verification.verdict.Need`,
cached per registry, so verifying many records of one batch reads its root once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from mrv_ml.config import redact_text
from mrv_ml.errors import (
    ChainUnavailableError,
    MRVError,
    ProofNeededError,
    RecordError,
)
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import Anchor, MerklePart, Proof
from mrv_ml.verification.policy import Policy, checked_address
from mrv_ml.verification.verdict import (
    Batch,
    Decision,
    Entry,
    Evidence,
    Need,
    Registration,
    decide,
)

if TYPE_CHECKING:
    from mrv_ml.chain.connection import ChainConnection
    from mrv_ml.config import Settings

__all__ = ["Input", "Reader", "Readers"]



@dataclass(frozen=True)
class Input:
    record: dict[str, Any]
    proof: Proof | None
    source: str  # the record file, or "record"
    expected_proof_file: str  # where its proof is (or would be) looked for


_MAX_MEMO_NODES = 4096  # Merkle node hashes remembered across proofs (~1 MB at most)


class Reader:
    """Fills the evidence ``decide`` asks for, over one connection, caching per registry:
    verifying many records of one batch reads its root once."""

    def __init__(self, conn: ChainConnection, *, cross_check_all: bool = False) -> None:
        self.conn = conn
        self.cross_check_all = cross_check_all
        explicit = conn.settings.contract_address
        self.explicit_registry = checked_address(explicit, "contract") if explicit else None
        self._configured: str | None = None
        self._code: dict[str, bytes] = {}
        self._blocks: dict[tuple[int, str], bool] = {}
        self._head: tuple[int, int | None] | None = None
        self._batches: dict[tuple[str, str, str], Batch] = {}
        self._anchorers: dict[tuple[str, str], tuple[Registration, ...]] = {}
        self._cross_checked: set[tuple[str, str, str]] = set()
        self._memo: dict[bytes, bytes] = {}  # Merkle node hashes shared by a tree's proofs

    def registry_for(self, proof: Proof | None) -> str:
        """The registry to read: a configured one, else the proof's, else the default."""
        if self.explicit_registry:
            return self.explicit_registry
        if proof is not None and proof.anchor is not None:
            return checked_address(proof.anchor.contract_address, "contract")
        if self._configured is None:
            from mrv_ml.chain.connection import find_registry

            self._configured = find_registry(self.conn)
        return self._configured

    def evidence(self, data: Mapping[str, Any], proof: Proof | None, mrv_id: str | None,
                 policy: Policy) -> Evidence:
        """The record's own evidence, and the pins ``policy`` carries (decide() weighs them)."""
        return Evidence(mrv_id=mrv_id or str(data["mrv_id"]), record_mrv_id=str(data["mrv_id"]),
                        record_hash=compute_hash(data), proof=proof, pin=policy.submitter,
                        signer_pin=policy.signer)

    def read(self, ev: Evidence, need: Need) -> Evidence:
        """``ev`` with the evidence ``need`` names read (one method per need, in _READS)."""
        return self._READS[need](self, ev)

    def read_chain(self, ev: Evidence) -> Evidence:
        from mrv_ml.chain.contract import code_hash, released_code_hashes

        conn = self.conn
        registry = self.registry_for(ev.proof)
        if registry not in self._code:
            self._code[registry] = conn.code(registry)
        code = self._code[registry]
        return replace(ev, chain_id=conn.chain_id, registry_address=registry,
                       chain_kind=self.chain_kind, registry_has_code=len(code) > 0,
                       registry_is_release=code_hash(code) in released_code_hashes())

    def read_anchor_block(self, ev: Evidence) -> Evidence:
        assert ev.proof is not None and ev.proof.anchor is not None
        return replace(ev, anchor_block_ok=self.anchor_block_ok(ev.proof.anchor))

    def read_signature(self, ev: Evidence) -> Evidence:
        from mrv_ml.chain.signing import recover_signer

        assert ev.proof is not None and ev.proof.signature is not None
        try:
            recovered = recover_signer(ev.record_mrv_id, ev.record_hash,
                                       ev.proof.signature.signature)
        except RecordError:
            recovered = ""  # recovers no one: decide() refuses the proof
        return replace(ev, recovered_signer=recovered)

    @staticmethod
    def _registry(ev: Evidence) -> str:
        """The registry the chain read settled on (every read after ``Need.CHAIN``)."""
        address = ev.registry_address
        assert address is not None
        return address

    @staticmethod
    def _batch_proof(ev: Evidence) -> tuple[str, MerklePart]:
        """The batch root and the Merkle part of a batch-anchored proof."""
        root = ev.merkle_root
        assert root is not None and ev.proof is not None and ev.proof.anchor is not None
        merkle = ev.proof.anchor.merkle
        assert merkle is not None
        return root, merkle

    def read_entry(self, ev: Evidence) -> Evidence:
        address, expected = self._registry(ev), ev.expected_submitter
        raw, ts = self.conn.call(
            lambda r: r.functions.getMRVHashBy(ev.mrv_id, expected).call(), address=address)
        return replace(ev, entry=Entry(bytes(raw).hex(), int(ts)))

    def read_first(self, ev: Evidence) -> Evidence:
        address = self._registry(ev)
        raw, ts, first = self.conn.call(lambda r: r.functions.getMRVHash(ev.mrv_id).call(),
                                        address=address)
        return replace(ev, first=Entry(bytes(raw).hex(), int(ts), str(first)))

    def read_hash_registrants(self, ev: Evidence) -> Evidence:
        from mrv_ml.chain.events import registration_events

        address = self._registry(ev)
        found = registration_events(self.conn, ev.mrv_id, hash_hex=ev.record_hash,
                                    address=address, from_block=self.from_block(ev))
        return replace(ev, hash_registrants=tuple(
            Registration(r.submitter, r.timestamp, r.hash_hex, r.tx_hash, r.block_number)
            for r in found))

    def read_merkle(self, ev: Evidence) -> Evidence:
        from mrv_ml.record.merkle import verify_proof

        root, merkle = self._batch_proof(ev)
        if len(self._memo) > _MAX_MEMO_NODES:  # bounded: memory must not grow with N
            self._memo.clear()
        return replace(ev, merkle_ok=verify_proof(root, ev.record_hash, merkle.proof,
                                                  self._memo))

    def read_batch(self, ev: Evidence) -> Evidence:
        conn = self.conn
        address, expected = self._registry(ev), ev.expected_submitter
        root, merkle = self._batch_proof(ev)
        assert expected is not None
        key = (address, root, expected.lower())
        if key not in self._batches:
            ts, count = conn.call(lambda r: r.functions.getBatch(root, expected).call(),
                                  address=address)
            self._batches[key] = Batch(int(ts), int(count))
        ev = replace(ev, batch=self._batches[key])
        if ev.batch is not None and ev.batch.timestamp and \
                (self.cross_check_all or key not in self._cross_checked):
            # The registry's own MerkleProof.verify, once per root: guards our Merkle code.
            onchain = bool(conn.call(lambda r: r.functions.verifyBatchProof(
                root, expected, "0x" + ev.record_hash, list(merkle.proof)).call(),
                address=address))
            if onchain == ev.merkle_ok:
                self._cross_checked.add(key)
            ev = replace(ev, registry_merkle_ok=onchain)
        return ev

    def read_root_anchorers(self, ev: Evidence) -> Evidence:
        address = self._registry(ev)
        root, _merkle = self._batch_proof(ev)
        return replace(ev, root_anchorers=self.root_anchorers(address, root,
                                                              self.from_block(ev)))

    #: What each need reads: decide() asks, exactly one of these answers.
    _READS: ClassVar[Mapping[Need, Callable[[Reader, Evidence], Evidence]]] = {
        Need.CHAIN: read_chain,
        Need.ANCHOR_BLOCK: read_anchor_block,
        Need.SIGNATURE: read_signature,
        Need.ENTRY: read_entry,
        Need.FIRST: read_first,
        Need.HASH_REGISTRANTS: read_hash_registrants,
        Need.MERKLE: read_merkle,
        Need.BATCH: read_batch,
        Need.ROOT_ANCHORERS: read_root_anchorers,
    }

    def root_anchorers(self, address: str, root: str, from_block: int | None = None
                       ) -> tuple[Registration, ...]:
        if (address, root) not in self._anchorers:
            from mrv_ml.chain.events import batch_events

            self._anchorers[(address, root)] = tuple(
                Registration(b.submitter, b.timestamp, None, b.tx_hash, b.block_number)
                for b in batch_events(self.conn, root, address=address,
                                      from_block=from_block))
        return self._anchorers[(address, root)]

    @property
    def chain_kind(self) -> str:
        from mrv_ml.chain.connection import DEV_CHAIN_IDS
        from mrv_ml.networks import PUBLIC_CHAIN_IDS

        conn = self.conn
        if conn._local is not None:
            return "embedded"
        if conn.network.is_dev or conn.chain_id in DEV_CHAIN_IDS:
            return "dev"
        return "public" if conn.chain_id in PUBLIC_CHAIN_IDS else "other"

    def from_block(self, ev: Evidence) -> int | None:
        """Where log queries start: the registry's deployment block, as the proof (or the
        recorded deployment of the configured registry) says; else the genesis."""
        anchor = ev.proof.anchor if ev.proof is not None else None
        if anchor is not None and anchor.registry_block is not None and \
                anchor.contract_address.lower() == (ev.registry_address or "").lower():
            return anchor.registry_block
        if ev.registry_address and ev.registry_address == self.conn.registry_address:
            return self.conn.registry_block
        return 0

    def anchor_block_ok(self, anchor: Anchor) -> bool:
        """Whether this chain holds the proof's anchoring block (by hash) or transaction."""
        assert anchor.block_number is not None
        key = (anchor.block_number, (anchor.block_hash or anchor.tx_hash or "").lower())
        if key not in self._blocks:
            if anchor.block_hash:
                held = self.conn.block_hash(anchor.block_number)
                self._blocks[key] = held is not None and held.lower() == key[1]
            else:
                assert anchor.tx_hash is not None
                self._blocks[key] = self.conn.transaction_block(anchor.tx_hash) == \
                    anchor.block_number
        return self._blocks[key]

    def head(self) -> tuple[int, int | None]:
        """(latest, finalized) block numbers, read once per run."""
        if self._head is None:
            self._head = self.conn.head()
        return self._head

    def decide(self, ev: Evidence) -> tuple[Evidence, Decision]:
        decision = decide(ev)
        while decision.need is not None:
            ev = self.read(ev, decision.need)
            decision = decide(ev)
        return ev, decision

    def transaction_of(self, ev: Evidence, reg: Registration) -> Located:
        """Display only: the transaction behind the registration a verdict rests on (the
        verdict itself rests on what the contract answered, never on this)."""
        if reg.tx_hash:
            return Located(reg.tx_hash, reg.block_number)
        anchor = ev.proof.anchor if ev.proof is not None else None
        if anchor is not None and anchor.tx_hash and anchor.submitter.lower() == \
                reg.submitter.lower() and anchor.chain_id == ev.chain_id:
            return Located(anchor.tx_hash, anchor.block_number)
        if ev.merkle_root is not None and ev.registry_address is not None:
            try:
                found = [a for a in self.root_anchorers(ev.registry_address, ev.merkle_root,
                                                        self.from_block(ev))
                         if a.submitter.lower() == reg.submitter.lower()]
            except ChainUnavailableError:
                raise
            except MRVError:
                found = []  # a node refusing log queries: the verdict stands without the tx
            if found:
                return Located(found[0].tx_hash, found[0].block_number)
            return Located(None, None)
        if reg.hash is not None and ev.registry_address is not None:
            return self._single_registration(ev, reg)
        return Located(None, None)

    def _single_registration(self, ev: Evidence, reg: Registration) -> Located:
        """A single registration read by ID (no proof, or a proof without the transaction):
        its ``MRVRegistered`` event, found from the entry's timestamp."""
        from mrv_ml.chain.events import find_registration

        assert reg.hash is not None and ev.registry_address is not None
        try:
            found = find_registration(self.conn, ev.mrv_id, submitter=reg.submitter,
                                      hash_hex=reg.hash, timestamp=reg.timestamp,
                                      address=ev.registry_address,
                                      from_block=self.from_block(ev) or 0)
        except ChainUnavailableError:
            raise
        except MRVError as e:
            return Located(None, None, "the registration's transaction was not looked up: "
                                       f"the node refused ({redact_text(str(e))[:160]}); its "
                                       "confirmations are unknown")
        if found is None:
            return Located(None, None, "no MRVRegistered event of this registration was found "
                                       "(a node that prunes logs?); its transaction and "
                                       "confirmations are unknown")
        return Located(found.tx_hash, found.block_number)


@dataclass(frozen=True)
class Located:
    """Where a registration was mined, for display; ``note`` says why it is unknown."""

    tx_hash: str | None
    block_number: int | None
    note: str | None = None


class Readers:
    """One reader (one connection) per chain a run needs: the chain each proof names, or
    the configured one for records without an anchored proof. Created on first use."""

    def __init__(self, settings: Settings | None, connection: ChainConnection | None,
                 cross_check_all: bool = False) -> None:
        self.settings = settings
        self.given = connection
        self.cross_check_all = cross_check_all
        self._by_chain: dict[int | None, Reader] = {}

    def for_input(self, inp: Input) -> Reader:
        from mrv_ml.chain.connection import connect_for_proof
        from mrv_ml.config import load_settings

        anchor = inp.proof.anchor if inp.proof is not None else None
        key = anchor.chain_id if anchor is not None else None
        if key not in self._by_chain:
            if self.given is not None:
                conn = self.given
            else:
                settings = self.settings or load_settings()
                conn = (connect_for_proof(settings, key) if key is not None
                        else _connect_configured(settings, inp))
            self._by_chain[key] = Reader(conn, cross_check_all=self.cross_check_all)
        return self._by_chain[key]

    def close(self) -> None:
        for reader in self._by_chain.values():
            if reader.conn is not self.given:
                reader.conn.close()


def _connect_configured(settings: Settings, inp: Input) -> ChainConnection:
    """For a record without an anchored proof: the configured network, read-only. The
    embedded chain only if this data directory has one (verifying never creates it)."""
    from mrv_ml.chain.connection import connect, local_chain_exists
    from mrv_ml.networks import resolve_network

    _network, url = resolve_network(settings)
    if url is None and not local_chain_exists(settings):
        if inp.proof is not None:  # a proof, pending: timestamps at most, no chain anchor
            raise ProofNeededError(
                f"{inp.source}: its proof holds no chain anchor (status {inp.proof.status}) "
                "and there is no local chain here to look it up on")
        raise ProofNeededError(
            f"{inp.source} has no proof file beside it and there is no local chain here to "
            f"look it up on: verification needs its proof file {inp.expected_proof_file}")
    return connect(settings, deploying=True)
