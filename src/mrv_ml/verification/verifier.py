"""Verification: is this record unchanged since it was anchored, and by whom?

One path for single and batch-anchored records: read the evidence the pure
:func:`mrv_ml.verification.verdict.decide` asks for (the record's hash, its proof, registry reads), then
turn its decision into a :class:`Verdict` or raise the error it names. A failure to
*reach* or *trust* the evidence (chain down, a proof of another chain, no registry code, a
batched record without its proof) is raised, never presented as a verdict.

:func:`verify` checks one record; :func:`verify_files` checks many over one connection,
reading each batch root once, and reports unusable files one by one. The reads themselves
are :mod:`mrv_ml.verification.reader`'s, the pins :mod:`mrv_ml.verification.policy`'s, the
results :mod:`mrv_ml.verification.model`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.anchoring.timestamp import distinct_roots
from mrv_ml.errors import (
    EXIT_BAD_INPUT,
    EXIT_LOCAL_ONLY,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_PROOF_NEEDED,
    EXIT_REQUIREMENT_UNMET,
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
    RequirementUnmetError,
    TimestampUntrustedError,
)
from mrv_ml.networks import is_dev_address
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import (
    PROOF_SUFFIX,
    Proof,
    find_proof_file,
    proof_path,
    read_proof_file,
)
from mrv_ml.record.trust import DEV_KEY_NOTE, TRUST_NOTES, Trust, trust_of
from mrv_ml.storage.selection import record_files
from mrv_ml.verification.model import FileVerdict, Verdict
from mrv_ml.verification.policy import Policy, pinned
from mrv_ml.verification.reader import Input, Reader, Readers
from mrv_ml.verification.requirement import Anchors, Requirement, default_requirement, roots_of
from mrv_ml.verification.requirement import Decision as RequirementDecision
from mrv_ml.verification.requirement import decide as decide_requirement
from mrv_ml.verification.timestamp import StampStatus, TimestampCheck, check_timestamp
from mrv_ml.verification.verdict import (
    REASONS,
    Decision,
    Evidence,
    VerdictStatus,
)

if TYPE_CHECKING:
    from mrv_ml.chain.connection import ChainConnection
    from mrv_ml.config import Settings

__all__ = ["iter_verify_files", "verify", "verify_files", "worse"]

# Worst first decides the exit status of a multi-record run: verdicts by how bad they are
# for the record, then "could not verify" (proof needed, unusable input, other errors).
_SEVERITY = {EXIT_OK: 0, EXIT_NOT_FOUND: 1, EXIT_PROOF_NEEDED: 2, EXIT_LOCAL_ONLY: 2,
             EXIT_SUBMITTER_MISMATCH: 3, EXIT_REQUIREMENT_UNMET: 3, EXIT_TAMPERED: 4,
             EXIT_BAD_INPUT: 5}


# --- inputs ----------------------------------------------------------------------------


def _as_proof(proof: Proof | Mapping[str, Any] | None, source: str) -> Proof | None:
    if proof is None or isinstance(proof, Proof):
        return proof
    return Proof.from_dict(proof, source)


def _load(record: Mapping[str, Any] | str | Path,
          proof: Proof | Mapping[str, Any] | None) -> Input:
    from mrv_ml.record.schema import load_record_file, validate_record

    if isinstance(record, (str, Path)):
        path = Path(record)
        data = load_record_file(path)
        found: Path | None = None
        if proof is None:
            found = find_proof_file(path, str(data["mrv_id"]))
            proof = read_proof_file(found) if found is not None else None
        return Input(data, _as_proof(proof, str(found or "proof")), str(path),
                      str(found or proof_path(path)))
    if not isinstance(record, Mapping):
        raise RecordError(f"a record must be a JSON object or a file, not {type(record).__name__}")
    validate_record(record)
    return Input(dict(record), _as_proof(proof, "proof"), "record",
                  f"{record['mrv_id']}{PROOF_SUFFIX}")


def _with_registry_proof(inp: Input, settings: Settings | None) -> Input:
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


# --- the verdict -------------------------------------------------------------------------


def _error(decision: Decision, ev: Evidence, inp: Input, conn: ChainConnection) -> MRVError:
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


def _verdict(reader: Reader, ev: Evidence, decision: Decision, data: Mapping[str, Any]
             ) -> Verdict:
    from mrv_ml.record.schema import summarize

    conn = reader.conn
    assert decision.status is not None
    reg = decision.registration
    located = reader.transaction_of(ev, reg) if reg is not None else None
    tx, block = (located.tx_hash, located.block_number) if located else (None, None)
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
    if located is not None and located.note:
        notes.append(located.note)
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


def _verify_input(reader: Reader, inp: Input, mrv_id: str | None, policy: Policy) -> Verdict:
    ev, decision = reader.decide(reader.evidence(inp.record, inp.proof, mrv_id, policy))
    if decision.error is not None:
        raise _error(decision, ev, inp, reader.conn)
    return _verdict(reader, ev, decision, inp.record)


def _what_it_says(verdict: Verdict) -> tuple[Any, ...]:
    """What two endpoints of one chain must agree on (not confirmations: heads differ)."""
    return (verdict.status, verdict.reason, verdict.onchain_hash, verdict.merkle_root,
            verdict.submitter, verdict.timestamp, verdict.chain_id, verdict.contract_address)


def _verify_all(readers: Readers, witnesses: Readers | None, inp: Input,
                mrv_id: str | None, policy: Policy, tsa_roots: Sequence[Any] = (),
                requirement: Requirement | None = None,
                attested_by: frozenset[str] = frozenset(),
                keyids: frozenset[str] = frozenset()) -> Verdict:
    """Each anchor of the proof decided on its own (the chain anchor, each RFC 3161
    timestamp, the signatures), then composed by the one rule,
    :func:`mrv_ml.verification.requirement.decide`, against what the reviewer requires
    (``requirement``; else :func:`~mrv_ml.verification.requirement.default_requirement`).
    ``attested_by``/``keyids``: the signers of an attestation of this record, checked."""
    stamps = inp.proof.timestamps if inp.proof is not None else ()
    if requirement is None and not stamps:  # the chain anchor alone: its verdict
        return _verify_chain(readers, witnesses, inp, mrv_id, policy)
    try:
        chain: Verdict | MRVError = _verify_chain(readers, witnesses, inp, mrv_id, policy)
    except RecordError:
        raise  # unusable input (a proof of another record...): no evidence can make up for it
    except MRVError as e:
        chain = e
    pins = policy.submitter is not None or policy.signer is not None
    required = requirement or default_requirement(tsa_roots, pins)
    digest = compute_hash(inp.record)
    roots = distinct_roots([*tsa_roots, *roots_of(required)])
    checks = tuple(check_timestamp(t, digest, roots) for t in stamps)
    anchors = Anchors(chain, checks, _signers(inp, digest) | attested_by, keyids)
    decision = decide_requirement(required, anchors)
    reports = tuple(c.to_dict() for c in checks)
    listed = (_chain_report(chain), *reports)
    said = {"text": required.text, "met": decision.status is VerdictStatus.VALID
            or decision.conflict is not None,
            "terms": [{"term": t, "held": ok, "why": why} for t, ok, why in decision.terms]} \
        if requirement is not None else None
    if decision.conflict is not None:
        raise EvidenceConflictError(
            f"{inp.record['mrv_id']}: the evidence meets {required.text} but "
            f"{decision.conflict}; one piece of evidence is false, so there is no verdict",
            key="anchors_disagree")
    if decision.status is not None:
        if decision.basis == "chain":
            assert isinstance(chain, Verdict)
            verdict = replace(chain, timestamps=reports)
        else:
            assert isinstance(decision.basis, int)
            verdict = _timestamp_verdict(checks[decision.basis], inp, digest, reports, chain,
                                         decision.status)
        return replace(verdict, anchors=listed, requirement=said)
    return _unmet(required, decision, chain, checks, inp, reports, listed, said,
                  explicit=requirement is not None, pins=pins, roots_named=bool(roots))


def _signers(inp: Input, digest: str) -> frozenset[str]:
    """Who signed this record's fingerprint in its proof (lowercase), checked."""
    from mrv_ml.chain.signing import recover_signer

    sig = inp.proof.signature if inp.proof is not None else None
    if sig is None:
        return frozenset()
    try:
        return frozenset({recover_signer(inp.record["mrv_id"], digest, sig.signature).lower()})
    except RecordError:
        return frozenset()  # a signature that recovers no one vouches for nothing


def _chain_report(chain: Verdict | MRVError) -> dict[str, Any]:
    if isinstance(chain, MRVError):
        return {"kind": "chain", "status": "ERROR", "error_key": chain.key,
                "detail": str(chain)}
    return {"kind": "chain", "status": chain.status.value, "chain_id": chain.chain_id,
            "network": chain.network, "trust": chain.trust, "mode": chain.mode,
            "tx_hash": chain.tx_hash, "detail": chain.detail}


def _unmet(required: Requirement, decision: RequirementDecision, chain: Verdict | MRVError,
           checks: Sequence[TimestampCheck], inp: Input, reports: tuple[dict[str, Any], ...],
           listed: tuple[dict[str, Any], ...], said: dict[str, Any] | None, *,
           explicit: bool, pins: bool, roots_named: bool) -> Verdict:
    """The requirement is not met: say why. A chain that cannot be reached is that error
    (nothing is known). A requirement the reviewer wrote fails with every term that did
    not hold (exit 13). The default one fails as a chain-only check would: the chain's
    verdict or error, or, where the reviewer named roots and the chain had no verdict, the
    timestamp's."""
    mrv = inp.record["mrv_id"]
    if isinstance(chain, ChainUnavailableError):
        raise chain
    if explicit:
        why = "; ".join(f"{t}: {w}" for t, ok, w in decision.terms if not ok)
        raise RequirementUnmetError(f"{mrv}: the evidence does not meet {required.text}: "
                                    f"{why}")
    if isinstance(chain, Verdict):
        return replace(chain, timestamps=reports, anchors=listed, requirement=said)
    if pins:
        raise chain
    if not roots_named:
        raise type(chain)(f"{chain}; its proof also holds {len(checks)} RFC 3161 "
                          "timestamp(s): name a root you trust with --tsa-root to check them",
                          key=chain.key)
    untrusted = next((c for c in checks if c.status is StampStatus.UNTRUSTED), checks[0])
    raise TimestampUntrustedError(f"{mrv}: {untrusted.detail}; and the chain: {chain}")


def _timestamp_verdict(check: TimestampCheck, inp: Input, digest: str,
                       reports: tuple[dict[str, Any], ...], chain: Verdict | MRVError,
                       status: VerdictStatus) -> Verdict:
    from datetime import datetime

    from mrv_ml.record.schema import summarize

    said = (f"the chain says {chain.status.value}" if isinstance(chain, Verdict)
            else f"the chain anchor cannot be checked here ({chain})")
    summary = summarize(inp.record)
    when = datetime.fromisoformat(check.gen_time.replace("Z", "+00:00")) if check.gen_time \
        else None
    return Verdict(
        status=status, reason="timestamped" if status is VerdictStatus.VALID
        else "timestamped_other_content", mrv_id=inp.record["mrv_id"],
        record_hash=digest, mode="rfc3161",
        timestamp=int(when.timestamp()) if when else None,
        co2_kg=summary.get("co2_kg"), energy_kwh=summary.get("energy_kwh"),
        trust=Trust.TIMESTAMP.value,
        trust_note=TRUST_NOTES[Trust.TIMESTAMP].format(tsa=check.tsa_name, root=check.root,
                                                        time=check.gen_time)
        if status is VerdictStatus.VALID else
        f"an authority under the root you named ({check.root}) timestamped another "
        f"fingerprint: this record is not the one it saw",
        detail=f"{check.detail}; {said}", timestamps=reports)


def _verify_chain(readers: Readers, witnesses: Readers | None, inp: Input,
                  mrv_id: str | None, policy: Policy) -> Verdict:
    """The verdict of the proof's anchor and, for a record sent to several registries, each
    registry's own anchor verified as well: every witness is reported, none is taken on
    trust, and the verdict stands on the proof's own anchor."""
    verdict = _verify_witnessed(readers, witnesses, inp, mrv_id, policy)
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
                mrv_id, policy)
        except MRVError as e:  # this registry's anchor cannot be checked here: say so
            reports.append({**report, "status": "ERROR", "error_key": e.key, "error": str(e)})
            continue
        reports.append({**report, "status": v.status.value, "reason": v.reason,
                        "submitter": v.submitter, "chain_id": v.chain_id, "tx_hash": v.tx_hash,
                        "block_number": v.block_number, "trust": v.trust})
    return replace(verdict, registries=tuple(reports))


def _verify_witnessed(readers: Readers, witnesses: Readers | None, inp: Input,
                      mrv_id: str | None, policy: Policy) -> Verdict:
    """The verdict of the first endpoint, checked against a second, independent one (as
    OpenTimestamps asks two calendars): one endpoint can always lie, two must agree."""
    outcomes: list[Verdict | MRVError] = []
    for source in (readers, witnesses) if witnesses is not None else (readers,):
        try:
            outcomes.append(_verify_input(source.for_input(inp), inp, mrv_id, policy))
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


def verify(record: Mapping[str, Any] | str | Path, *, mrv_id: str | None = None,
           proof: Proof | Mapping[str, Any] | None = None,
           expected_submitter: str | None = None, expected_signer: str | None = None,
           settings: Settings | None = None, connection: ChainConnection | None = None,
           witness_rpc_url: str | None = None, tsa_roots: Sequence[Any] = (),
           requirement: Requirement | None = None,
           attested_by: frozenset[str] = frozenset(),
           keyids: frozenset[str] = frozenset()) -> Verdict:
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
    ``tsa_roots``: the X.509 roots whose RFC 3161 timestamps the reviewer trusts.
    ``requirement``: what must hold for VALID (``--require``); unmet, RequirementUnmetError.
    Verifying writes nothing."""
    inp = _with_registry_proof(_load(record, proof), settings)
    policy = pinned(expected_submitter, expected_signer)
    readers, witnesses = Readers(settings, connection), _witnesses(settings, witness_rpc_url)
    try:
        return _verify_all(readers, witnesses, inp, mrv_id, policy, tsa_roots, requirement,
                           attested_by, keyids)
    finally:
        readers.close()
        if witnesses is not None:
            witnesses.close()


def _witnesses(settings: Settings | None, witness_rpc_url: str | None) -> Readers | None:
    if not witness_rpc_url:
        return None
    from mrv_ml.config import load_settings

    return Readers((settings or load_settings()).replace(rpc_url=witness_rpc_url), None)


def iter_verify_files(paths: Iterable[str | Path], *, settings: Settings | None = None,
                      expected_submitter: str | None = None,
                      expected_signer: str | None = None, mrv_id: str | None = None,
                      connection: ChainConnection | None = None,
                      cross_check_all: bool = False,
                      witness_rpc_url: str | None = None,
                      tsa_roots: Sequence[Any] = (),
                      requirement: Requirement | None = None) -> Iterator[FileVerdict]:
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
    policy = pinned(expected_submitter, expected_signer)
    readers = Readers(settings, connection, cross_check_all)
    witnesses = _witnesses(settings, witness_rpc_url)
    try:
        for f in files:
            try:
                inp = _with_registry_proof(_load(f, None), settings)
                yield FileVerdict(f, verdict=_verify_all(readers, witnesses, inp, mrv_id,
                                                         policy, tsa_roots, requirement))
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
