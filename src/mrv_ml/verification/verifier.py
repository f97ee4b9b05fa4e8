"""Verification: is this record unchanged since it was anchored, and by whom?

One path for single and batch-anchored records: read the evidence the pure
:func:`mrv_ml.verification.verdict.decide` asks for (the record's hash, its proof, registry reads), then
turn its decision into a :class:`Verdict` or raise the error it names. A failure to
*reach* or *trust* the evidence (chain down, a proof of another chain, no registry code, a
batched record without its proof) is raised, never presented as a verdict.

:func:`verify` checks one record; :func:`verify_files` checks many over one connection,
reading each batch root once, and reports unusable files one by one.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import (
    EXIT_BAD_INPUT,
    EXIT_LOCAL_ONLY,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_PROOF_NEEDED,
    EXIT_SUBMITTER_MISMATCH,
    EXIT_TAMPERED,
    AnchorNotOnChainError,
    ChainIdMismatchError,
    ChainUnavailableError,
    ConfigError,
    EvidenceConflictError,
    LocalOnlyError,
    MRVError,
    NoContractError,
    NotARegistryError,
    ProofMismatchError,
    ProofNeededError,
    RecordError,
    RegistryUnavailableError,
)
from mrv_ml.networks import is_dev_address
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import (
    PROOF_SUFFIX,
    Anchor,
    Proof,
    find_proof_file,
    proof_path,
    read_proof_file,
)
from mrv_ml.record.trust import DEV_KEY_NOTE, TRUST_NOTES, Trust, trust_of
from mrv_ml.storage.selection import record_files
from mrv_ml.verification.verdict import (
    REASONS,
    Batch,
    Decision,
    Entry,
    Evidence,
    Registration,
    VerdictStatus,
    decide,
)

if TYPE_CHECKING:
    from mrv_ml.chain.connection import ChainConnection
    from mrv_ml.config import Settings

__all__ = ["FileVerdict", "Verdict", "VerdictStatus", "iter_verify_files", "verify",
           "verify_files", "worse"]

# Worst first decides the exit status of a multi-record run: verdicts by how bad they are
# for the record, then "could not verify" (proof needed, unusable input, other errors).
_SEVERITY = {EXIT_OK: 0, EXIT_NOT_FOUND: 1, EXIT_PROOF_NEEDED: 2, EXIT_LOCAL_ONLY: 2,
             EXIT_SUBMITTER_MISMATCH: 3, EXIT_TAMPERED: 4, EXIT_BAD_INPUT: 5}


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one record, with the evidence behind it.

    ``record_hash`` is this record's fingerprint. A single registration's hash is
    ``onchain_hash``; a batch-anchored record's evidence is ``merkle_root`` (the record's
    hash is a leaf under it), and ``onchain_hash`` is then ``None``. ``reason`` keys the
    one-line ``detail``. The figures (``co2_kg``, ``energy_kwh``) are the file's own: they
    are vouched for only when the verdict is VALID (``figures_trusted``).
    """

    status: VerdictStatus
    reason: str
    mrv_id: str
    record_hash: str
    onchain_hash: str | None = None
    merkle_root: str | None = None
    timestamp: int | None = None  # block timestamp of the registration, Unix seconds
    submitter: str | None = None
    expected_submitter: str | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    chain_id: int | None = None
    contract_address: str | None = None
    network: str | None = None
    mode: str = "single"  # "single" or "batch"
    co2_kg: float | None = None
    energy_kwh: float | None = None
    explorer_url: str | None = None
    detail: str = ""
    trust: str = Trust.PRIVATE.value  # "public", "private network" or "local only"
    trust_note: str = ""  # what the verdict proves, and to whom, in plain words
    confirmations: int | None = None  # blocks on top of the registration, counting its own
    final: bool | None = None  # the registration's block is finalized (None: unknown)
    # The researcher whose signature over this record's fingerprint the proof carries,
    # checked (None: unsigned); and the one pinned with --signer.
    signer: str | None = None
    expected_signer: str | None = None
    # Each registry service the record went through (witnesses), with its own anchoring
    # verified: {"url", "status" (a verdict, PENDING or ERROR), "reason"/"error_key",
    # "submitter", "chain_id", "tx_hash", "block_number", "trust"}.
    registries: tuple[dict[str, Any], ...] = ()

    def __bool__(self) -> bool:
        return self.status is VerdictStatus.VALID

    @property
    def exit_code(self) -> int:
        return self.status.exit_code

    @property
    def figures_trusted(self) -> bool:
        return self.status is VerdictStatus.VALID

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["exit_code"] = self.exit_code
        data["figures_trusted"] = self.figures_trusted
        return data


@dataclass(frozen=True)
class FileVerdict:
    """One file of :func:`verify_files`: a verdict, or the error that kept it from one."""

    path: Path
    verdict: Verdict | None = None
    error: MRVError | None = None

    @property
    def exit_code(self) -> int:
        if self.verdict is not None:
            return self.verdict.exit_code
        assert self.error is not None
        return self.error.exit_code


# --- inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Input:
    record: dict[str, Any]
    proof: Proof | None
    source: str  # the record file, or "record"
    expected_proof_file: str  # where its proof is (or would be) looked for


def _as_proof(proof: Proof | Mapping[str, Any] | None, source: str) -> Proof | None:
    if proof is None or isinstance(proof, Proof):
        return proof
    return Proof.from_dict(proof, source)


def _load(record: Mapping[str, Any] | str | Path,
          proof: Proof | Mapping[str, Any] | None) -> _Input:
    from mrv_ml.record.schema import load_record_file, validate_record

    if isinstance(record, (str, Path)):
        path = Path(record)
        data = load_record_file(path)
        found: Path | None = None
        if proof is None:
            found = find_proof_file(path, str(data["mrv_id"]))
            proof = read_proof_file(found) if found is not None else None
        return _Input(data, _as_proof(proof, str(found or "proof")), str(path),
                      str(found or proof_path(path)))
    if not isinstance(record, Mapping):
        raise RecordError(f"a record must be a JSON object or a file, not {type(record).__name__}")
    validate_record(record)
    return _Input(dict(record), _as_proof(proof, "proof"), "record",
                  f"{record['mrv_id']}{PROOF_SUFFIX}")


@functools.lru_cache(maxsize=1024)
def _checksummed(value: str) -> str | None:
    from eth_utils import is_address, to_checksum_address

    return str(to_checksum_address(value)) if is_address(value) else None


def _checked_address(value: str, what: str) -> str:
    # Cached: verifying a directory checks the same few addresses thousands of times.
    checked = _checksummed(value) if isinstance(value, str) else None
    if checked is None:
        raise ConfigError(f"invalid {what} address {str(value)[:60]!r}")
    return checked


def _with_registry_proof(inp: _Input, settings: Settings | None) -> _Input:
    """A proof with registries whose anchors were not fetched yet: ask them (each answer
    checked on arrival, then verified against the chain like any other; never saved:
    verifying writes nothing, ``mrv anchor --upgrade`` saves). A proof still pending
    everywhere has nothing on chain to check: ProofNeededError says where it waits."""
    proof = inp.proof
    if proof is None or all(r.anchor is not None for r in proof.registries):
        return inp
    from mrv_ml.anchoring.registry_client import fetch_complete

    where = ", ".join(r.url for r in proof.registries if r.anchor is None)
    try:
        complete = fetch_complete(proof, compute_hash(inp.record), settings)
    except RegistryUnavailableError as e:
        if proof.anchor is not None:
            return inp  # a witness that cannot answer now: reported as pending there
        raise ProofNeededError(f"{proof.mrv_id} waits at the registry {where}, which cannot "
                               f"be asked now ({e}); verify again later",
                               key="pending_at_registry") from None
    if complete is not None:
        return replace(inp, proof=complete)
    if proof.anchor is not None:
        return inp
    raise ProofNeededError(f"{proof.mrv_id} was submitted to the registry {where}, which has "
                           "not anchored it yet (its next batch will): verify again later",
                           key="pending_at_registry")


# --- reading the evidence ----------------------------------------------------------------


_MAX_MEMO_NODES = 4096  # Merkle node hashes remembered across proofs (~1 MB at most)


@dataclass(frozen=True)
class Pins:
    """Identities the user expects: who anchored (``--submitter``), who signed (``--signer``)."""

    submitter: str | None = None
    signer: str | None = None

    @classmethod
    def checked(cls, submitter: str | None, signer: str | None) -> Pins:
        return cls(_checked_address(submitter, "submitter") if submitter else None,
                   _checked_address(signer, "signer") if signer else None)


class _Reader:
    """Fills the evidence ``decide`` asks for, over one connection, caching per registry:
    verifying many records of one batch reads its root once."""

    def __init__(self, conn: ChainConnection, *, cross_check_all: bool = False) -> None:
        self.conn = conn
        self.cross_check_all = cross_check_all
        explicit = conn.settings.contract_address
        self.explicit_registry = _checked_address(explicit, "contract") if explicit else None
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
            return _checked_address(proof.anchor.contract_address, "contract")
        if self._configured is None:
            from mrv_ml.chain.connection import find_registry

            self._configured = find_registry(self.conn)
        return self._configured

    def evidence(self, data: Mapping[str, Any], proof: Proof | None, mrv_id: str | None,
                 pin: Pins) -> Evidence:
        return Evidence(mrv_id=mrv_id or str(data["mrv_id"]), record_mrv_id=str(data["mrv_id"]),
                        record_hash=compute_hash(data), proof=proof, pin=pin.submitter,
                        signer_pin=pin.signer)

    def read(self, ev: Evidence, need: str) -> Evidence:
        conn = self.conn
        if need == "chain":
            from mrv_ml.chain.contract import code_hash, released_code_hashes

            registry = self.registry_for(ev.proof)
            if registry not in self._code:
                self._code[registry] = conn.code(registry)
            code = self._code[registry]
            return replace(ev, chain_id=conn.chain_id, registry_address=registry,
                           chain_kind=self.chain_kind, registry_has_code=len(code) > 0,
                           registry_is_release=code_hash(code) in released_code_hashes())
        if need == "anchor_block":
            assert ev.proof is not None and ev.proof.anchor is not None
            return replace(ev, anchor_block_ok=self.anchor_block_ok(ev.proof.anchor))
        if need == "signature":
            from mrv_ml.chain.signing import recover_signer

            assert ev.proof is not None and ev.proof.signature is not None
            try:
                recovered = recover_signer(ev.record_mrv_id, ev.record_hash,
                                           ev.proof.signature.signature)
            except RecordError:
                recovered = ""  # recovers no one: decide() refuses the proof
            return replace(ev, recovered_signer=recovered)
        address = ev.registry_address
        assert address is not None
        expected = ev.expected_submitter
        if need == "entry":
            raw, ts = conn.call(lambda r: r.functions.getMRVHashBy(ev.mrv_id, expected).call(),
                                address=address)
            return replace(ev, entry=Entry(bytes(raw).hex(), int(ts)))
        if need == "first":
            raw, ts, first = conn.call(lambda r: r.functions.getMRVHash(ev.mrv_id).call(),
                                       address=address)
            return replace(ev, first=Entry(bytes(raw).hex(), int(ts), str(first)))
        if need == "hash_registrants":
            from mrv_ml.chain.connection import registration_events

            found = registration_events(conn, ev.mrv_id, hash_hex=ev.record_hash,
                                        address=address, from_block=self.from_block(ev))
            return replace(ev, hash_registrants=tuple(
                Registration(r.submitter, r.timestamp, r.hash_hex, r.tx_hash, r.block_number)
                for r in found))
        root = ev.merkle_root
        assert root is not None and ev.proof is not None and ev.proof.anchor is not None
        merkle = ev.proof.anchor.merkle
        assert merkle is not None
        if need == "merkle":
            from mrv_ml.record.merkle import verify_proof

            if len(self._memo) > _MAX_MEMO_NODES:  # bounded: memory must not grow with N
                self._memo.clear()
            return replace(ev, merkle_ok=verify_proof(root, ev.record_hash, merkle.proof,
                                                      self._memo))
        if need == "batch":
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
        if need == "root_anchorers":
            return replace(ev, root_anchorers=self.root_anchorers(address, root,
                                                                  self.from_block(ev)))
        raise AssertionError(f"decide() asked for unknown evidence {need!r}")

    def root_anchorers(self, address: str, root: str, from_block: int | None = None
                       ) -> tuple[Registration, ...]:
        if (address, root) not in self._anchorers:
            from mrv_ml.chain.connection import batch_events

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

    def transaction_of(self, ev: Evidence, reg: Registration) -> tuple[str | None, int | None]:
        """Display only: the transaction behind the registration a verdict rests on."""
        if reg.tx_hash:
            return reg.tx_hash, reg.block_number
        anchor = ev.proof.anchor if ev.proof is not None else None
        if anchor is not None and anchor.tx_hash and anchor.submitter.lower() == \
                reg.submitter.lower() and anchor.chain_id == ev.chain_id:
            return anchor.tx_hash, anchor.block_number
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
                return found[0].tx_hash, found[0].block_number
        return None, None


# --- the verdict -------------------------------------------------------------------------


def _error(decision: Decision, ev: Evidence, inp: _Input, conn: ChainConnection) -> MRVError:
    key = decision.error
    proof = ev.proof
    anchor = proof.anchor if proof is not None else None
    if key == "proof_of_another_record":
        assert proof is not None
        return ProofMismatchError(f"{inp.expected_proof_file}: this proof is for {proof.mrv_id}, "
                                  f"not for the record {ev.record_mrv_id}")
    if key == "proof_chain_mismatch":
        assert anchor is not None
        return ChainIdMismatchError(
            f"the proof says chain {anchor.chain_id} ({anchor.network or 'unnamed network'}), "
            f"but the node ({conn.network.name}) is chain {ev.chain_id}: verify against a "
            f"node of chain {anchor.chain_id} (--network or --rpc-url)", key=key)
    if key == "proof_registry_mismatch":
        assert anchor is not None
        return ConfigError(f"the proof names registry {anchor.contract_address}, but the "
                           f"configured registry is {ev.registry_address}", key=key)
    if key == "no_contract":
        return NoContractError(f"no contract at {ev.registry_address} on chain {ev.chain_id} "
                               f"({conn.network.name}): nothing there can have anchored "
                               f"{ev.record_mrv_id}")
    if key == "not_a_registry":
        return NotARegistryError(
            f"the contract at {ev.registry_address} on chain {ev.chain_id} is not an "
            "MRVRegistry (its code is not a released registry's): its answers prove nothing")
    if key == "local_only_elsewhere":
        return LocalOnlyError(
            f"{ev.record_mrv_id} was anchored on its author's private local chain, not this "
            "one: it cannot be checked here, and it is evidence for nobody but its author; "
            "ask for a publicly anchored proof")
    if key == "anchor_not_on_chain":
        assert anchor is not None
        return AnchorNotOnChainError(
            f"chain {ev.chain_id} ({conn.network.name}) does not hold the proof's anchoring block "
            f"{anchor.block_number} (another instance of this chain, or the block was "
            "reorganised away): its registry cannot speak for this proof")
    if key == "proof_needed":
        return ProofNeededError(
            f"{ev.mrv_id} is not registered under its ID on {conn.network.name}; if it was "
            f"anchored in a batch, verification needs its proof file {inp.expected_proof_file}")
    if key == "bad_signature":
        return EvidenceConflictError(
            f"the proof says {ev.signed_by} signed {ev.record_mrv_id}, but its signature is "
            f"not theirs over this record's fingerprint: the signature cannot be trusted",
            key=key)
    if key == "evidence_conflict":
        return EvidenceConflictError(
            f"the registry's verifyBatchProof and mrv-ml's Merkle check disagree on "
            f"{ev.record_mrv_id} (root {ev.merkle_root}); please report this")
    raise AssertionError(f"decide() gave an unknown error {key!r}")


def _verdict(reader: _Reader, ev: Evidence, decision: Decision, data: Mapping[str, Any]
             ) -> Verdict:
    from mrv_ml.record.schema import summarize

    conn = reader.conn
    assert decision.status is not None
    reg = decision.registration
    tx, block = reader.transaction_of(ev, reg) if reg is not None else (None, None)
    batch = ev.mode == "batch"
    fields = {"mrv_id": ev.mrv_id, "submitter": reg.submitter if reg else None,
              "expected": ev.expected_submitter, "merkle_root": ev.merkle_root,
              "signer": ev.signed_by, "signer_pin": ev.signer_pin}
    notes = [REASONS[decision.reason].format(**fields)]
    # decide() checked the signature before any VALID: recovered == claimed
    signer = ev.signed_by if ev.recovered_signer else None
    if signer and decision.status is VerdictStatus.VALID:
        notes.append(f"signed by {signer} (EIP-191 over this record's ID and fingerprint)")
    if ev.mrv_id != ev.record_mrv_id:
        notes.append(f"--mrv-id {ev.mrv_id} differs from the record's own mrv_id "
                     f"{ev.record_mrv_id}: the registry entry of {ev.mrv_id} is compared")
    merkle = ev.proof.anchor.merkle if ev.proof and ev.proof.anchor else None
    if batch and merkle and ev.batch and merkle.leaf_count not in (None, ev.batch.leaf_count):
        notes.append(f"the proof says {merkle.leaf_count} leaves, the chain says "
                     f"{ev.batch.leaf_count}")
    summary = summarize(data)
    submitter = reg.submitter if reg else None
    trust = trust_of(ev.chain_kind, bool(submitter) and is_dev_address(submitter))
    trust_note = TRUST_NOTES[trust].format(chain_id=ev.chain_id)
    if trust is not Trust.LOCAL and submitter and is_dev_address(submitter):
        trust_note += DEV_KEY_NOTE
    confirmations = final = None
    if block is not None:
        latest, finalized = reader.head()
        confirmations = max(latest - block + 1, 0)
        final = None if finalized is None else block <= finalized
    return Verdict(trust=trust.value, trust_note=trust_note, confirmations=confirmations,
                   final=final,
        status=decision.status, reason=decision.reason, mrv_id=ev.mrv_id,
        record_hash=ev.record_hash,
        onchain_hash=None if batch or reg is None else reg.hash,
        merkle_root=ev.merkle_root if batch and reg is not None else None,
        timestamp=reg.timestamp if reg else None, submitter=reg.submitter if reg else None,
        expected_submitter=ev.expected_submitter, tx_hash=tx, block_number=block,
        chain_id=ev.chain_id, contract_address=ev.registry_address, network=conn.network.name,
        mode="batch" if batch else "single", co2_kg=summary.get("co2_kg"),
        energy_kwh=summary.get("energy_kwh"),
        explorer_url=conn.explorer_tx_url(tx) if tx else None, detail="; ".join(notes),
        signer=signer, expected_signer=ev.signer_pin)


def _verify_input(reader: _Reader, inp: _Input, mrv_id: str | None, pin: Pins) -> Verdict:
    ev, decision = reader.decide(reader.evidence(inp.record, inp.proof, mrv_id, pin))
    if decision.error is not None:
        raise _error(decision, ev, inp, reader.conn)
    return _verdict(reader, ev, decision, inp.record)


def _what_it_says(verdict: Verdict) -> tuple[Any, ...]:
    """What two endpoints of one chain must agree on (not confirmations: heads differ)."""
    return (verdict.status, verdict.reason, verdict.onchain_hash, verdict.merkle_root,
            verdict.submitter, verdict.timestamp, verdict.chain_id, verdict.contract_address)


def _verify_all(readers: _Readers, witnesses: _Readers | None, inp: _Input,
                mrv_id: str | None, pin: Pins) -> Verdict:
    """The verdict of the proof's anchor and, for a record sent to several registries, each
    registry's own anchor verified as well: every witness is reported, none is taken on
    trust, and the verdict stands on the proof's own anchor."""
    verdict = _verify_witnessed(readers, witnesses, inp, mrv_id, pin)
    proof = inp.proof
    if proof is None or not proof.registries:
        return verdict
    reports: list[dict[str, Any]] = []
    for receipt in proof.registries:
        report: dict[str, Any] = {"url": receipt.url}
        if receipt.anchor is None:
            reports.append({**report, "status": "PENDING"})
            continue
        try:
            v = verdict if receipt.anchor == proof.anchor else _verify_witnessed(
                readers, witnesses, replace(inp, proof=replace(proof, anchor=receipt.anchor)),
                mrv_id, pin)
        except MRVError as e:  # this registry's anchor cannot be checked here: say so
            reports.append({**report, "status": "ERROR", "error_key": e.key, "error": str(e)})
            continue
        reports.append({**report, "status": v.status.value, "reason": v.reason,
                        "submitter": v.submitter, "chain_id": v.chain_id, "tx_hash": v.tx_hash,
                        "block_number": v.block_number, "trust": v.trust})
    return replace(verdict, registries=tuple(reports))


def _verify_witnessed(readers: _Readers, witnesses: _Readers | None, inp: _Input,
                      mrv_id: str | None, pin: Pins) -> Verdict:
    """The verdict of the first endpoint, checked against a second, independent one (as
    OpenTimestamps asks two calendars): one endpoint can always lie, two must agree."""
    outcomes: list[Verdict | MRVError] = []
    for source in (readers, witnesses) if witnesses is not None else (readers,):
        try:
            outcomes.append(_verify_input(source.for_input(inp), inp, mrv_id, pin))
        except ChainUnavailableError:
            raise
        except MRVError as e:
            outcomes.append(e)
    first = outcomes[0]
    for other in outcomes[1:]:
        same = (_what_it_says(first) == _what_it_says(other)
                if isinstance(first, Verdict) and isinstance(other, Verdict)
                else isinstance(first, MRVError) and isinstance(other, MRVError)
                and first.key == other.key)
        if not same:
            def said(o: Verdict | MRVError) -> str:
                return o.status.value if isinstance(o, Verdict) else f"error {o.key}"

            raise EvidenceConflictError(
                f"the two endpoints disagree on {inp.record['mrv_id']}: the first says "
                f"{said(first)}, the second {said(other)}; one of them is lying or not "
                "synced, so there is no verdict", key="endpoints_disagree")
    if isinstance(first, MRVError):
        raise first
    return first


class _Readers:
    """One reader (one connection) per chain a run needs: the chain each proof names, or
    the configured one for records without an anchored proof. Created on first use."""

    def __init__(self, settings: Settings | None, connection: ChainConnection | None,
                 cross_check_all: bool = False) -> None:
        self.settings = settings
        self.given = connection
        self.cross_check_all = cross_check_all
        self._by_chain: dict[int | None, _Reader] = {}

    def for_input(self, inp: _Input) -> _Reader:
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
            self._by_chain[key] = _Reader(conn, cross_check_all=self.cross_check_all)
        return self._by_chain[key]

    def close(self) -> None:
        for reader in self._by_chain.values():
            if reader.conn is not self.given:
                reader.conn.close()


def _connect_configured(settings: Settings, inp: _Input) -> ChainConnection:
    """For a record without an anchored proof: the configured network, read-only. The
    embedded chain only if this data directory has one (verifying never creates it)."""
    from mrv_ml.chain.connection import connect, local_chain_exists
    from mrv_ml.networks import resolve_network

    _network, url = resolve_network(settings)
    if url is None and not local_chain_exists(settings):
        raise ProofNeededError(
            f"{inp.source} has no proof file beside it and there is no local chain here to "
            f"look it up on: verification needs its proof file {inp.expected_proof_file}")
    return connect(settings, deploying=True)


def verify(record: Mapping[str, Any] | str | Path, *, mrv_id: str | None = None,
           proof: Proof | Mapping[str, Any] | None = None,
           expected_submitter: str | None = None, expected_signer: str | None = None,
           settings: Settings | None = None, connection: ChainConnection | None = None,
           witness_rpc_url: str | None = None) -> Verdict:
    """Verify one record (a file, whose proof is looked for beside it, or a parsed record
    with ``proof``). The chain, registry and submitter come from the proof; ``settings``
    give only the endpoint (``rpc_url``) unless the record has no anchored proof.
    ``expected_submitter`` pins whose registration counts, ``expected_signer`` the researcher
    who must have signed the record's fingerprint. Returns a :class:`Verdict`;
    raises RecordError (unusable input), ProofNeededError, LocalOnlyError,
    ChainIdMismatchError / NoContractError / NotARegistryError / ConfigError (evidence that
    cannot be trusted) and ChainUnavailableError / ChainReadError (evidence unreachable).
    ``witness_rpc_url``: a second, independent endpoint of the same chain; any
    disagreement between the two is an EvidenceConflictError, never a verdict.
    Verifying writes nothing."""
    inp = _with_registry_proof(_load(record, proof), settings)
    pin = Pins.checked(expected_submitter, expected_signer)
    readers, witnesses = _Readers(settings, connection), _witnesses(settings, witness_rpc_url)
    try:
        return _verify_all(readers, witnesses, inp, mrv_id, pin)
    finally:
        readers.close()
        if witnesses is not None:
            witnesses.close()


def _witnesses(settings: Settings | None, witness_rpc_url: str | None) -> _Readers | None:
    if not witness_rpc_url:
        return None
    from mrv_ml.config import load_settings

    return _Readers((settings or load_settings()).replace(rpc_url=witness_rpc_url), None)


def iter_verify_files(paths: Iterable[str | Path], *, settings: Settings | None = None,
                      expected_submitter: str | None = None,
                      expected_signer: str | None = None, mrv_id: str | None = None,
                      connection: ChainConnection | None = None,
                      cross_check_all: bool = False,
                      witness_rpc_url: str | None = None) -> Iterator[FileVerdict]:
    """Verify many record files (directories expanded), one at a time: memory does not grow
    with the number of records.

    Each chain is connected once; each batch root is read once per registry and the
    registry's ``verifyBatchProof`` is asked once per root (every record with
    ``cross_check_all``); the other proofs are checked locally against that on-chain root.
    A file that cannot be verified (unusable, proof needed, proof of another chain...) gets
    its error in its :class:`FileVerdict`; only an unreachable chain stops the run.
    """
    paths = list(paths)
    if mrv_id is not None and (len(paths) != 1 or Path(paths[0]).is_dir()):
        raise RecordError("--mrv-id applies to one record only")
    files = record_files(paths)
    pin = Pins.checked(expected_submitter, expected_signer)
    readers = _Readers(settings, connection, cross_check_all)
    witnesses = _witnesses(settings, witness_rpc_url)
    try:
        for f in files:
            try:
                inp = _with_registry_proof(_load(f, None), settings)
                yield FileVerdict(f, verdict=_verify_all(readers, witnesses, inp, mrv_id,
                                                         pin))
            except ChainUnavailableError:
                raise
            except MRVError as e:
                yield FileVerdict(f, error=e)
    finally:
        readers.close()
        if witnesses is not None:
            witnesses.close()


def verify_files(paths: Iterable[str | Path], **options: Any) -> list[FileVerdict]:
    """:func:`iter_verify_files` as a list."""
    return list(iter_verify_files(paths, **options))


def worse(a: int, b: int) -> int:
    """The worse of two exit codes (see _SEVERITY; unknown codes are worst)."""
    return max(a, b, key=lambda c: _SEVERITY.get(c, 6))




class _CallableModule(types.ModuleType):
    """``from mrv_ml import verify`` must give the function (the README's ``verify(...)``),
    but once this module is imported, Python binds the package attribute ``verify`` to the
    module. Making the module callable keeps both meanings working."""

    def __call__(self, *args: Any, **kwargs: Any) -> Verdict:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
