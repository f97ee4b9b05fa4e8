"""in-toto attestations of a record: writing one, and its verdict.

``mrv export --format in-toto`` writes one; ``mrv verify --attestation`` checks it. The
statement's subjects are the artifacts the researcher names (model weights, say) and the
record itself; its predicate (``PREDICATE_TYPE``, documented in docs/predicate-mrv-v1.md)
carries the record's figures and its anchoring as the proof claims it
(:mod:`mrv_ml.verification.intoto`). The envelope is signed with a standard key
(Ed25519 or ECDSA P-256, ``--key``: what securesystemslib, in-toto and cosign verify) or with
the researcher's Ethereum key (EIP-191 ``personal_sign`` over DSSE's PAE, the ``keyid`` the
checksummed address: any Ethereum tool recovers it) (:mod:`mrv_ml.verification.dsse`).

Verification follows the shape of :mod:`mrv_ml.verification.verifier`: :func:`decide` is pure and asks
for the next piece of evidence (``Decision.need``); :func:`verify_attestation` reads
exactly that (the statement, the subject files' digests, the record, the record's own
verdict) until ``decide`` gives a verdict or names an error. Every rule lives in
``decide``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import (
    EvidenceConflictError,
    KeyConfigError,
    RecordError,
    RecordNotFoundError,
)
from mrv_ml.record.hashing import compute_hash
from mrv_ml.verification.dsse import (
    ADDRESS,
    Envelope,
    SignatureCheck,
    check_signatures,
    envelope_bytes,
    read_envelope,
    sign_envelope,
    sign_envelope_with_key,
)
from mrv_ml.verification.intoto import (
    FINGERPRINT_KEY,
    PREDICATE_TYPE,
    Statement,
    build_statement,
    file_sha256,
    read_statement,
)
from mrv_ml.verification.verdict import VerdictStatus

if TYPE_CHECKING:
    from mrv_ml.chain.connection import ChainConnection
    from mrv_ml.config import Settings
    from mrv_ml.verification.keys import PublicKey, SigningKey
    from mrv_ml.verification.model import Verdict
    from mrv_ml.verification.requirement import Requirement

__all__ = ["ATTESTATION_SUFFIX", "AttestationVerdict", "Attested", "Evidence", "Exported",
           "attest", "decide", "export_attestation", "verify_attestation"]

ATTESTATION_SUFFIX = ".intoto.jsonl"  # in-toto's convention: one envelope per line


@dataclass(frozen=True)
class Exported:
    """What ``mrv export --format in-toto`` wrote."""

    path: Path
    signer: str  # the address (EIP-191), or the standard key's identity
    mrv_id: str
    subjects: tuple[tuple[str, str], ...]  # (name, sha256), the record last
    standard_key: bool = False


def default_output(mrv_id: str) -> Path:
    return Path(mrv_id + ATTESTATION_SUFFIX)


@dataclass(frozen=True)
class Attested:
    """A record read for an attestation, and the statement about it (not yet signed)."""

    record: dict[str, Any]
    path: Path
    data: bytes  # the record file's bytes, as the reviewer will hold them
    statement: dict[str, Any]
    subjects: tuple[tuple[str, str], ...]  # (name, sha256), the record last


def attest(record_path: str | Path, subject_paths: Sequence[str | Path],
           settings: Settings) -> Attested:
    """The in-toto statement of the record at ``record_path`` (a file, or an ID or unique
    prefix in the store) and of the ``subject_paths``, with what the proof claims."""
    from mrv_ml.record.proof import find_proof_file, read_proof_file
    from mrv_ml.record.schema import parse_record_bytes
    from mrv_ml.record.strictjson import read_file_bytes

    rpath = Path(record_path).expanduser()
    if not rpath.is_file():  # an ID or a unique prefix in the store
        from mrv_ml.storage.store import RecordStore

        rpath = RecordStore(settings.data_dir).resolve(str(record_path))
    data = read_file_bytes(rpath)
    record = parse_record_bytes(data, str(rpath))
    proof_file = find_proof_file(rpath, record["mrv_id"])
    proof = read_proof_file(proof_file) if proof_file is not None else None
    subjects = [(Path(p).name, file_sha256(p)) for p in subject_paths]
    statement = build_statement(record, rpath.name, hashlib.sha256(data).hexdigest(), proof,
                                subjects)
    return Attested(record, rpath, data, statement,
                    (*subjects, (rpath.name, hashlib.sha256(data).hexdigest())))


def export_attestation(record_path: str | Path, subject_paths: Sequence[str | Path],
                       settings: Settings, out: str | Path | None = None, *,
                       key: SigningKey | None = None) -> Exported:
    """Sign an attestation (:func:`attest`) and write it to ``out`` (default
    ``<mrv_id>.intoto.jsonl`` here), replaced atomically.
    Signed with ``key`` (a standard key), else with the configured Ethereum key (EIP-191).
    KeyConfigError (exit 7) when there is neither: an unsigned attestation attests
    nothing."""
    from mrv_ml.chain.keys import load_signer
    from mrv_ml.storage.atomicfile import write_bytes

    attested = attest(record_path, subject_paths, settings)
    if key is not None:
        envelope, signed_by = sign_envelope_with_key(attested.statement, key), key.identity
    else:
        signer = load_signer(settings)
        if signer is None:
            raise KeyConfigError("no signing key: give --key KEY.pem (Ed25519 or ECDSA P-256), "
                                 "or set PRIVATE_KEY or create a keystore (mrv account new) "
                                 "for an Ethereum signature; an attestation must be signed")
        envelope, signed_by = sign_envelope(attested.statement, signer), signer.address
    mrv_id = attested.record["mrv_id"]
    target = Path(out) if out is not None else default_output(mrv_id)
    write_bytes(target, envelope_bytes(envelope), what="attestation")
    return Exported(target, signed_by, mrv_id, attested.subjects, key is not None)


# --- the verdict ---------------------------------------------------------------------------


class Check(str, enum.Enum):
    MATCHES = "matches"
    DIFFERS = "differs"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class GivenFile:
    """A file given to check against a subject: its name in the statement, its digests."""

    subject: str
    path: str
    sha256: str
    fingerprint: str | None = None  # the record's, when this is the record


@dataclass(frozen=True)
class Evidence:
    """What :func:`decide` looks at; ``None`` fields are not read yet."""

    envelope: Envelope  # its signatures checked (dsse.check_signatures)
    signer_pin: str | None = None  # checksummed
    keys_named: bool = False  # --key: one of the named keys must have signed
    statement: Statement | None = None
    files: tuple[GivenFile, ...] | None = None  # the subject files given, matched
    record: GivenFile | None = None
    record_verdict: Verdict | None = None


@dataclass(frozen=True)
class Decision:
    need: str | None = None  # "statement", "files", "record", "record_verdict"
    error: str | None = None  # an error key: raised, never a verdict
    status: VerdictStatus | None = None
    reason: str | None = None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _differs(expected: Mapping[str, str], given: GivenFile) -> bool:
    # Every digest we know must match (stricter than in-toto's "any acceptable one").
    if expected.get("sha256", "").lower() != given.sha256:
        return True
    return FINGERPRINT_KEY in expected and \
        expected[FINGERPRINT_KEY].lower() != (given.fingerprint or "")


def decide(ev: Evidence) -> Decision:
    """The attestation rules, in order: no signature is invalid (else ``bad_signature``,
    exit 12) → at least one was checked (else ``unchecked_signature``, exit 7: a standard
    key's signature needs its public key named) → the pinned signer, and one of the named
    keys, signed (else SUBMITTER_MISMATCH, ``signed_by_other``) → each subject file given
    has its digest (else TAMPERED, ``subject_differs``) → the record has the statement's
    digests (else TAMPERED, ``record_differs``) → the record's own verdict (its status;
    VALID only if VALID)."""
    sigs = ev.envelope.signatures
    if any(s.check is SignatureCheck.INVALID for s in sigs):
        return Decision(error="bad_signature")
    verified = [s for s in sigs if s.check is SignatureCheck.VERIFIED]
    if not verified:
        return Decision(error="unchecked_signature")
    if ev.signer_pin is not None and not any(_same(s.signer, ev.signer_pin) for s in verified) \
            or ev.keys_named and all(s.eip191 for s in verified):
        return Decision(status=VerdictStatus.SUBMITTER_MISMATCH, reason="signed_by_other")
    if ev.statement is None:
        return Decision(need="statement")
    if ev.files is None:
        return Decision(need="files")
    wanted = {s.name: s.digest for s in ev.statement.subjects}
    if any(_differs(wanted[f.subject], f) for f in ev.files):
        return Decision(status=VerdictStatus.TAMPERED, reason="subject_differs")
    if ev.record is None:
        return Decision(need="record")
    if _differs(ev.statement.record.digest, ev.record):
        return Decision(status=VerdictStatus.TAMPERED, reason="record_differs")
    if ev.record_verdict is None:
        return Decision(need="record_verdict")
    status = ev.record_verdict.status
    return Decision(status=status, reason="attested" if status is VerdictStatus.VALID
                    else "record_" + status.value.lower())


REASONS = {
    "attested": "signed by {signers}; the record is {mrv_id} and its anchoring is VALID",
    "signed_by_other": "signed by {signers}, not by the expected signer {expected_signer}"
                       "{unchecked}",
    "subject_differs": "{changed}: the file differs from the attested subject",
    "record_differs": "{record_file} is not the record attested (its digests differ from "
                      "the statement's)",
    "record_tampered": "the attested record does not verify: {record_detail}",
    "record_not_found": "the attested record is not anchored: {record_detail}",
    "record_submitter_mismatch": "the attested record's anchoring: {record_detail}",
}


@dataclass(frozen=True)
class SubjectCheck:
    name: str
    sha256: str
    status: str  # Check's value
    file: str | None = None


@dataclass(frozen=True)
class AttestationVerdict:
    """The outcome of ``mrv verify --attestation``: who signed, each subject, the record's
    own verdict (``record``, None when the attestation failed before it was needed)."""

    status: VerdictStatus
    reason: str
    mrv_id: str
    signers: tuple[str, ...]  # who is shown to have signed: addresses, key identities
    expected_signer: str | None = None  # --signer's address, or the --key identities
    unchecked: tuple[str, ...] = ()  # keyids of signatures no named key checks
    subjects: tuple[SubjectCheck, ...] = ()
    record_file: str | None = None
    record: Verdict | None = None
    trust: str | None = None  # the record verdict's; None without one
    detail: str = ""
    predicate_type: str = PREDICATE_TYPE

    def __bool__(self) -> bool:
        return self.status is VerdictStatus.VALID

    @property
    def exit_code(self) -> int:
        return self.status.exit_code

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["exit_code"] = self.exit_code
        data["record"] = self.record.to_dict() if self.record is not None else None
        return data


def _verdict(ev: Evidence, decision: Decision, expected_keys: str | None
             ) -> AttestationVerdict:
    assert decision.status is not None and decision.reason is not None
    st = ev.statement
    given = {f.subject: f for f in ev.files or ()}
    checks: list[SubjectCheck] = []
    for s in st.subjects if st is not None else ():
        f = given.get(s.name)
        status = Check.NOT_CHECKED if f is None else \
            Check.DIFFERS if _differs(s.digest, f) else Check.MATCHES
        checks.append(SubjectCheck(s.name, s.digest["sha256"], status.value,
                                   f.path if f else None))
    if st is not None:
        r = ev.record
        status = Check.NOT_CHECKED if r is None else \
            Check.DIFFERS if _differs(st.record.digest, r) else Check.MATCHES
        checks.append(SubjectCheck(st.record.name, st.record.digest["sha256"], status.value,
                                   r.path if r else None))
    rv = ev.record_verdict if decision.reason not in ("subject_differs", "record_differs") \
        else None
    signers = tuple(s.signer for s in ev.envelope.signatures
                    if s.check is SignatureCheck.VERIFIED and s.signer is not None)
    unchecked = tuple(s.keyid for s in ev.envelope.signatures
                      if s.check is SignatureCheck.UNCHECKED)
    expected = ev.signer_pin or expected_keys
    detail = REASONS[decision.reason].format(
        signers=", ".join(signers), expected_signer=expected,
        unchecked=f"; {len(unchecked)} more signature(s) no key you named checks "
                  f"(keyid {', '.join(k or '(empty)' for k in unchecked)})" if unchecked else "",
        mrv_id=st.mrv_id if st else "?",
        changed=", ".join(c.file or c.name for c in checks if c.status == Check.DIFFERS.value),
        record_file=ev.record.path if ev.record else "?",
        record_detail=rv.detail if rv is not None else "")
    return AttestationVerdict(
        status=decision.status, reason=decision.reason,
        mrv_id=st.mrv_id if st is not None else "", signers=signers,
        expected_signer=expected, unchecked=unchecked, subjects=tuple(checks),
        record_file=ev.record.path if ev.record else None, record=rv,
        trust=rv.trust if rv is not None else None, detail=detail)


def _match_files(st: Statement, paths: Sequence[Path], source: str) -> tuple[GivenFile, ...]:
    """Each file given against the subject of its name, else of its digest."""
    by_name = {s.name: s for s in st.subjects}
    out: list[GivenFile] = []
    for p in paths:
        digest = file_sha256(p)
        subject = by_name.get(p.name) or next(
            (s for s in st.subjects if s.digest["sha256"].lower() == digest), None)
        if subject is None:
            raise RecordError(f"{p}: neither its name nor its digest is a subject of {source}; "
                              f"its subjects: {', '.join(sorted(by_name)) or 'the record only'}",
                              key="not_a_subject")
        out.append(GivenFile(subject.name, str(p), digest))
    return tuple(out)


def _read_record(path: Path, subject: str) -> GivenFile:
    from mrv_ml.record.schema import parse_record_bytes
    from mrv_ml.record.strictjson import read_file_bytes

    data = read_file_bytes(path)
    record = parse_record_bytes(data, str(path))
    return GivenFile(subject, str(path), hashlib.sha256(data).hexdigest(), compute_hash(record))


def _find_record(st: Statement, attestation: Path, settings: Settings | None) -> Path:
    """The record the statement names: beside the attestation (by its subject name, then
    its ID), else in the store."""
    for name in (st.record.name, st.mrv_id + ".json"):
        if "/" not in name and name not in ("", ".", "..") and (attestation.parent / name).is_file():
            return attestation.parent / name
    from mrv_ml.config import load_settings
    from mrv_ml.storage.store import RecordStore

    store_dir = Path((settings or load_settings()).data_dir)
    try:
        return RecordStore(store_dir).resolve(st.mrv_id)
    except RecordNotFoundError:
        raise RecordNotFoundError(
            f"the attested record {st.mrv_id} is neither beside {attestation} nor in the store "
            f"{store_dir}: give its file") from None


def _split(st: Statement, inputs: Sequence[str | Path], settings: Settings | None
           ) -> tuple[Path | None, list[Path]]:
    """The record and the subject files among the inputs: a file named as an artifact
    subject is one; else a file that parses as an MRV record is the record; else a file is
    an artifact; anything else is a record ID (or prefix) in the store."""
    from mrv_ml.record.schema import parse_record_bytes
    from mrv_ml.record.strictjson import read_file_bytes

    artifacts = {s.name for s in st.subjects}
    record: Path | None = None
    files: list[Path] = []
    for ref in inputs:
        p = Path(ref).expanduser()
        if p.is_file():
            is_record = False
            if p.name not in artifacts:
                try:
                    parse_record_bytes(read_file_bytes(p), str(p))
                    is_record = True
                except RecordError:
                    is_record = p.name == st.record.name  # the record, damaged: say so below
            if not is_record:
                files.append(p)
                continue
        elif not p.exists() and str(ref).strip():
            from mrv_ml.config import load_settings
            from mrv_ml.storage.store import RecordStore

            p = RecordStore((settings or load_settings()).data_dir).resolve(str(ref))
        else:
            raise RecordError(f"{p}: not a file, nor a record ID in the store")
        if record is not None:
            raise RecordError(f"two records given ({record}, {p}): an attestation names one")
        record = p
    return record, files


def _attested(ev: Evidence) -> tuple[frozenset[str], frozenset[str]]:
    """The envelope's checked signers, for the record's requirement (signer:, key:): the
    addresses (lowercase) and the standard keys' IDs."""
    verified = [s for s in ev.envelope.signatures if s.check is SignatureCheck.VERIFIED]
    return (frozenset(s.keyid.lower() for s in verified if s.eip191),
            frozenset(s.signer_keyid for s in verified if s.signer_keyid))


def _error(key: str, ev: Evidence, source: str) -> Exception:
    if key == "bad_signature":
        bad = next(s for s in ev.envelope.signatures if s.check is SignatureCheck.INVALID)
        how = ("it recovers " + bad.signer if bad.signer else "it recovers no key") \
            if bad.eip191 else "the key you named of that keyid does not verify it"
        return EvidenceConflictError(
            f"{source}: the signature of {bad.keyid} is not theirs over this envelope "
            f"({how}): the payload or the signature was changed", key=key)
    if key == "unchecked_signature":
        ids = ", ".join(s.keyid or "(empty)" for s in ev.envelope.signatures)
        return KeyConfigError(
            f"{source}: signed with a standard key (keyid {ids}) that no key you named "
            "checks: name the signer's public key with --key PUB.pem", key=key)
    raise AssertionError(f"decide() gave an unknown error {key!r}")


def verify_attestation(attestation: str | Path, inputs: Sequence[str | Path] = (), *,
                       expected_signer: str | None = None,
                       keys: Sequence[PublicKey] = (),
                       expected_submitter: str | None = None,
                       witness_rpc_url: str | None = None,
                       settings: Settings | None = None,
                       connection: ChainConnection | None = None,
                       tsa_roots: Sequence[Any] = (),
                       requirement: Requirement | None = None) -> AttestationVerdict:
    """Verify an attestation: its signatures, the subject files among ``inputs`` against
    their digests, the record (the one among ``inputs``, else the one the statement names,
    beside the attestation or in the store) against its digests, and the record's anchoring
    (:func:`mrv_ml.verification.verifier.verify`). ``keys``: the public keys the reviewer
    trusts (``--key``); one of them must have signed. ``tsa_roots``: as for
    :func:`~mrv_ml.verification.verifier.verify`. ``requirement`` (``--require``): what
    the record's verdict must meet, its ``signer:`` and ``key:`` terms met by this
    envelope's checked signatures as well as the proof's. Raises RecordError (an unusable
    attestation or file, exit 3), EvidenceConflictError (a signature that is not its
    signer's, exit 12), KeyConfigError (signed only by keys not named, exit 7), and
    whatever verifying the record raises. Writes nothing."""
    from mrv_ml.record.strictjson import read_file_bytes
    from mrv_ml.verification.verifier import verify

    source = str(attestation)
    pin = None
    if expected_signer is not None:
        from eth_utils import to_checksum_address

        if not ADDRESS.fullmatch(expected_signer.strip()):
            raise RecordError(f"--signer {expected_signer!r} is not an address (0x + 40 hex)")
        pin = str(to_checksum_address(expected_signer.strip()))
    # the requirement's key: terms check signatures too, without pinning (--key pins)
    from mrv_ml.verification.requirement import KeyTerm, terms

    required_keys = [t.key for t in terms(requirement) if isinstance(t, KeyTerm)] \
        if requirement is not None else []
    envelope = check_signatures(read_envelope(read_file_bytes(attestation), source),
                                [*keys, *required_keys])
    ev = Evidence(envelope, signer_pin=pin, keys_named=bool(keys))
    expected_keys = ", ".join(k.identity for k in keys) or None
    record: Path | None = None
    while True:
        decision = decide(ev)
        if decision.error is not None:
            raise _error(decision.error, ev, source)
        if decision.need is None:
            return _verdict(ev, decision, expected_keys)
        if decision.need == "statement":
            ev = replace(ev, statement=read_statement(ev.envelope.payload, source))
        elif decision.need == "files":
            assert ev.statement is not None
            record, files = _split(ev.statement, inputs, settings)
            ev = replace(ev, files=_match_files(ev.statement, files, source))
        elif decision.need == "record":
            assert ev.statement is not None
            path = record if record is not None else \
                _find_record(ev.statement, Path(attestation), settings)
            ev = replace(ev, record=_read_record(path, ev.statement.record.name))
        elif decision.need == "record_verdict":
            assert ev.record is not None
            ev = replace(ev, record_verdict=verify(
                ev.record.path, expected_submitter=expected_submitter, settings=settings,
                connection=connection, witness_rpc_url=witness_rpc_url, tsa_roots=tsa_roots,
                requirement=requirement, attested_by=_attested(ev)[0],
                keyids=_attested(ev)[1]))
        else:  # pragma: no cover
            raise AssertionError(decision.need)
