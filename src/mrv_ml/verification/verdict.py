"""The verdict, decided once: a pure function from the evidence read to the outcome.

Verification reads evidence (the record's hash, its proof, what the chain answers) and
asks :func:`decide` what it proves. ``decide`` never reads anything itself: when the
evidence it needs is missing it answers ``Decision(need=...)`` and the reader fetches
exactly that, so cheap cases (a VALID record) cost the fewest chain reads and every rule
lives here. ``dashboard/verdict.js`` is the same function for the page; both are run over
every case of ``data/verdict_cases.json``.

An outcome is either a verdict (VALID, TAMPERED, NOT_FOUND, SUBMITTER_MISMATCH) or an
error key: evidence that cannot be trusted or is incomplete (a proof of another record or
chain, no registry code, a batched record without its proof) is never a verdict.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mrv_ml.errors import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SUBMITTER_MISMATCH,
    EXIT_TAMPERED,
)
from mrv_ml.record.proof import Proof

ZERO_HASH = "0" * 64


class VerdictStatus(str, enum.Enum):
    VALID = "VALID"
    TAMPERED = "TAMPERED"
    NOT_FOUND = "NOT_FOUND"
    SUBMITTER_MISMATCH = "SUBMITTER_MISMATCH"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    VerdictStatus.VALID: EXIT_OK,
    VerdictStatus.TAMPERED: EXIT_TAMPERED,
    VerdictStatus.NOT_FOUND: EXIT_NOT_FOUND,
    VerdictStatus.SUBMITTER_MISMATCH: EXIT_SUBMITTER_MISMATCH,
}


class Need(str, enum.Enum):
    """The evidence :func:`decide` asks the reader for next. The values are the strings
    ``dashboard/verdict.js`` answers in ``{need}`` (a ``str`` enum: they compare equal)."""

    CHAIN = "chain"  # chain ID, registry code: who answers, and whether it can be trusted
    ANCHOR_BLOCK = "anchor_block"  # the proof's anchoring block/tx is on this chain
    SIGNATURE = "signature"  # who the proof's signature recovers to
    ENTRY = "entry"  # getMRVHashBy(mrv_id, expected)
    FIRST = "first"  # getMRVHash(mrv_id)
    HASH_REGISTRANTS = "hash_registrants"  # MRVRegistered(id, *, hash)
    MERKLE = "merkle"  # the local Merkle check
    BATCH = "batch"  # getBatch(root, expected), and verifyBatchProof
    ROOT_ANCHORERS = "root_anchorers"  # BatchAnchored(root, *)


@dataclass(frozen=True)
class Registration:
    """One on-chain entry a verdict rests on: who put it there, when, and (for a single
    registration) the hash it holds."""

    submitter: str
    timestamp: int
    hash: str | None = None  # hex64, single registrations only
    tx_hash: str | None = None
    block_number: int | None = None


@dataclass(frozen=True)
class Entry:
    """A registry slot as a view returns it; ``hash == ZERO_HASH`` means empty."""

    hash: str
    timestamp: int
    submitter: str | None = None  # getMRVHash names the first registrant


@dataclass(frozen=True)
class Batch:
    """``getBatch(root, submitter)``; ``timestamp == 0`` means never anchored by them."""

    timestamp: int
    leaf_count: int


@dataclass(frozen=True)
class Evidence:
    """Everything a verdict may depend on. ``None`` means "not read (yet)"."""

    mrv_id: str  # the ID looked up on chain (the record's own unless --mrv-id)
    record_mrv_id: str
    record_hash: str  # hex64
    proof: Proof | None = None
    # The pins, as the verifier's policy (:mod:`mrv_ml.verification.policy`) carries them.
    pin: str | None = None  # the submitter the user expects (checksummed), if any
    registry_address: str | None = None
    chain_id: int | None = None  # what the node says
    chain_kind: str | None = None  # "embedded", "dev", "public" or "other" (see trust_of)
    registry_has_code: bool | None = None
    registry_is_release: bool | None = None  # its code hash is a released MRVRegistry's
    anchor_block_ok: bool | None = None  # the proof's anchoring block/tx is on this chain
    entry: Entry | None = None  # getMRVHashBy(mrv_id, expected)
    first: Entry | None = None  # getMRVHash(mrv_id)
    hash_registrants: tuple[Registration, ...] | None = None  # MRVRegistered(id, *, hash)
    merkle_ok: bool | None = None  # the proof links record_hash to merkle_root (local check)
    batch: Batch | None = None  # getBatch(root, expected)
    root_anchorers: tuple[Registration, ...] | None = None  # BatchAnchored(root, *)
    registry_merkle_ok: bool | None = None  # verifyBatchProof; optional cross-check
    signer_pin: str | None = None  # the researcher expected to have signed (checksummed)
    # The address the proof's signature recovers to over (record_mrv_id, record_hash);
    # "" when it recovers none (malformed).
    recovered_signer: str | None = None

    @property
    def anchored_proof(self) -> Proof | None:
        return self.proof if self.proof is not None and self.proof.anchor is not None else None

    @property
    def mode(self) -> str:
        proof = self.anchored_proof
        return proof.anchor.mode if proof is not None and proof.anchor is not None else "single"

    @property
    def expected_submitter(self) -> str | None:
        """Whose registration counts: the pinned address, else the proof's submitter."""
        if self.pin:
            return self.pin
        proof = self.anchored_proof
        return proof.anchor.submitter if proof is not None and proof.anchor is not None else None

    @property
    def signed_by(self) -> str | None:
        """Who the proof says signed the record's fingerprint (checked against the
        signature in :func:`decide`)."""
        signature = self.proof.signature if self.proof is not None else None
        return signature.signer if signature is not None else None

    @property
    def merkle_root(self) -> str | None:
        proof = self.anchored_proof
        if proof is None or proof.anchor is None or proof.anchor.merkle is None:
            return None
        return proof.anchor.merkle.root


@dataclass(frozen=True)
class Decision:
    """Exactly one of ``status`` (a verdict), ``error`` (an error key) or ``need`` (the
    evidence to read next) is set. ``reason`` keys the message; ``registration`` is the
    on-chain entry the verdict rests on, if any."""

    status: VerdictStatus | None = None
    error: str | None = None
    need: Need | None = None
    reason: str = ""
    registration: Registration | None = None


def _verdict(status: VerdictStatus, reason: str,
             registration: Registration | None = None) -> Decision:
    return Decision(status=status, reason=reason, registration=registration)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def decide(ev: Evidence) -> Decision:
    """The outcome the evidence supports, or what to read next (see the module doc)."""
    proof = ev.anchored_proof
    if ev.proof is not None and ev.proof.mrv_id != ev.record_mrv_id:
        return Decision(error="proof_of_another_record")
    if ev.chain_id is None or ev.registry_has_code is None:
        return Decision(need=Need.CHAIN)
    if proof is not None and proof.anchor is not None:
        if proof.anchor.chain_id != ev.chain_id:
            return Decision(error="proof_chain_mismatch")
        if not _same(proof.anchor.contract_address, ev.registry_address):
            return Decision(error="proof_registry_mismatch")
    if not ev.registry_has_code:
        return Decision(error="no_contract")
    if not ev.registry_is_release:
        return Decision(error="not_a_registry")  # anyone can deploy a contract saying "yes"
    if proof is not None and proof.anchor is not None and proof.anchor.block_number is not None \
            and (proof.anchor.block_hash or proof.anchor.tx_hash):
        if ev.anchor_block_ok is None:
            return Decision(need=Need.ANCHOR_BLOCK)
        if not ev.anchor_block_ok:
            # Another instance of the chain (another machine's embedded chain, a restarted
            # dev node) or a reorganisation: its registry cannot speak for this proof.
            return Decision(error="local_only_elsewhere" if ev.chain_kind == "embedded"
                            else "anchor_not_on_chain")
    decision = _decide_batch(ev) if ev.mode == "batch" else _decide_single(ev)
    if decision.status is not VerdictStatus.VALID:
        return decision  # a record changed or not anchored: who signed it is beside the point
    return _decide_signature(ev, decision)


def _decide_signature(ev: Evidence, anchored: Decision) -> Decision:
    """A VALID anchoring, and who vouches for the record: a signature in the proof must be
    over this very record (else the proof cannot be trusted), and a pinned signer must be
    the one who signed."""
    if ev.signed_by is not None:
        if ev.recovered_signer is None:
            return Decision(need=Need.SIGNATURE)
        if not _same(ev.recovered_signer, ev.signed_by):
            return Decision(error="bad_signature")
    if ev.signer_pin is not None:
        if ev.signed_by is None:
            return _verdict(VerdictStatus.SUBMITTER_MISMATCH, "unsigned", anchored.registration)
        if not _same(ev.signed_by, ev.signer_pin):
            return _verdict(VerdictStatus.SUBMITTER_MISMATCH, "signed_by_other",
                            anchored.registration)
    return anchored


def _by_others(registrations: tuple[Registration, ...], expected: str | None
               ) -> list[Registration]:
    return [r for r in registrations if not _same(r.submitter, expected)]


def _decide_batch(ev: Evidence) -> Decision:
    expected = ev.expected_submitter
    if ev.merkle_ok is None:
        return Decision(need=Need.MERKLE)
    if ev.batch is None:
        return Decision(need=Need.BATCH)
    if ev.batch.timestamp == 0:
        if ev.merkle_ok:
            if ev.root_anchorers is None:
                return Decision(need=Need.ROOT_ANCHORERS)
            others = _by_others(ev.root_anchorers, expected)
            if others:
                return _verdict(VerdictStatus.SUBMITTER_MISMATCH, "root_anchored_by_other",
                                others[0])
        return _verdict(VerdictStatus.NOT_FOUND, "root_not_anchored")
    if ev.registry_merkle_ok is not None and ev.registry_merkle_ok != ev.merkle_ok:
        return Decision(error="evidence_conflict")
    assert expected is not None  # a batch proof always names its submitter
    anchored = Registration(submitter=expected, timestamp=ev.batch.timestamp)
    if not ev.merkle_ok:
        return _verdict(VerdictStatus.TAMPERED, "not_in_batch", anchored)
    return _verdict(VerdictStatus.VALID, "in_anchored_batch", anchored)


def _decide_single(ev: Evidence) -> Decision:
    expected = ev.expected_submitter
    pending = ev.proof is not None and ev.proof.status == "pending"
    if expected is not None:
        if ev.entry is None:
            return Decision(need=Need.ENTRY)
        if ev.entry.hash != ZERO_HASH:
            held = Registration(submitter=expected, timestamp=ev.entry.timestamp,
                                hash=ev.entry.hash)
            if ev.entry.hash == ev.record_hash:
                return _verdict(VerdictStatus.VALID, "registered_by_submitter", held)
            return _verdict(VerdictStatus.TAMPERED, "hash_differs", held)
        if ev.hash_registrants is None:
            return Decision(need=Need.HASH_REGISTRANTS)
        others = _by_others(ev.hash_registrants, expected)
        if others:
            return _verdict(VerdictStatus.SUBMITTER_MISMATCH, "hash_registered_by_other",
                            others[0])
        if ev.anchored_proof is not None:
            return _verdict(VerdictStatus.NOT_FOUND, "submitter_never_registered")
        if pending:
            return _verdict(VerdictStatus.NOT_FOUND, "not_anchored_yet")
        return Decision(error="proof_needed")  # pinned, no proof: it may sit in a batch
    if ev.first is None:
        return Decision(need=Need.FIRST)
    if ev.first.hash == ZERO_HASH:
        if pending:
            return _verdict(VerdictStatus.NOT_FOUND, "not_anchored_yet")
        return Decision(error="proof_needed")  # invisible under its ID: it may sit in a batch
    first = Registration(submitter=ev.first.submitter or "", timestamp=ev.first.timestamp,
                         hash=ev.first.hash)
    if ev.first.hash == ev.record_hash:
        return _verdict(VerdictStatus.VALID, "registered", first)
    if ev.hash_registrants is None:
        return Decision(need=Need.HASH_REGISTRANTS)
    if ev.hash_registrants:
        # The first registrant may be a squatter; someone registered exactly this hash.
        return _verdict(VerdictStatus.VALID, "registered_by_later_submitter",
                        ev.hash_registrants[0])
    return _verdict(VerdictStatus.TAMPERED, "hash_differs", first)


#: One line per reason, for people; ``{...}`` are filled by verifier._verdict (and app.js).
REASONS = {
    "registered": "the hash registered under {mrv_id} (first registrant {submitter}) equals "
                  "this record's",
    "registered_by_submitter": "{submitter} registered {mrv_id} with exactly this record's hash",
    "registered_by_later_submitter": "{submitter} registered exactly this hash under {mrv_id}; "
                                     "the first registrant of the ID holds another hash",
    "hash_differs": "{submitter} registered {mrv_id} with another hash: the record changed "
                    "after it was anchored",
    "hash_registered_by_other": "this hash is registered under {mrv_id} only by {submitter}, "
                                "not by the expected {expected}",
    "submitter_never_registered": "{expected} never registered {mrv_id} on this registry",
    "not_anchored_yet": "the proof says {mrv_id} is still pending; it was never anchored",
    "in_anchored_batch": "the record's hash is a leaf of batch root {merkle_root}, anchored by "
                         "{submitter}",
    "not_in_batch": "the Merkle proof does not link this record's hash to root {merkle_root} "
                    "(the record changed, or the proof belongs to another record)",
    "root_not_anchored": "{expected} never anchored batch root {merkle_root} on this registry",
    "root_anchored_by_other": "batch root {merkle_root} was anchored only by {submitter}, not "
                              "by the expected {expected}",
    "unsigned": "anchored by {submitter}, but the proof carries no signature: the expected "
                "signer {signer_pin} never vouched for this record",
    "signed_by_other": "anchored by {submitter} and signed by {signer}, not by the expected "
                       "signer {signer_pin}",
}
