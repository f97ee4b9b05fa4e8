"""The proof sidecar (``MRV-<uuid>.proof.json``): one typed model, read strictly, written once.

A record never holds its own hash or anchoring facts; its sidecar does::

    {"proof_version": "1.0", "mrv_id": "MRV-...",
     "record_hash": {"algorithm": "sha256-jcs", "digest": "<hex64>"},
     "status": "pending" | "anchored",
     "pending_reason": "...", "attempts": [{"at": "...", "error": "...", "tx_hash": "0x..."}],
     "anchor": {"mode": "single" | "batch", "network", "chain_id", "contract_address",
                "submitter", "tx_hash", "block_number", "block_hash", "block_timestamp",
                "registry_block", "confirmations", "explorer_url", "merkle": {...batch only...}},
     "history": [earlier anchors, oldest first],
     "registries": [{"url", "received_at", "anchor": {...} | absent}],  # registry services
     "signature": {"scheme": "eip191-mrv-v1", "signer": "0x...", "signature": "0x..."},
     "timestamps": [{"kind": "rfc3161", "tsa_url", "tsr": "<base64 DER TimeStampResp>",
                     "gen_time", "tsa_name", "certificates": ["<PEM>", ...]}]}

A ``timestamps`` entry is an RFC 3161 authority's answer over the record's fingerprint
(the SHA-256 of its RFC 8785 bytes): the whole TimeStampResp, which holds the signed token,
so ``openssl ts -verify -in`` reads it as it is. ``gen_time`` and ``tsa_name`` are what the
token said when it was fetched, for listing; verification reads the token itself.

:meth:`Proof.from_dict` checks every field that verification relies on (types, hex widths,
addresses) and raises :class:`MalformedProofError` naming the field; a sidecar whose
anchor cannot be trusted to be well formed must never reach a verdict. Fields this version
does not know are kept (``extra``) and written back unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mrv_ml.errors import MalformedProofError, NotARecordError, RecordError
from mrv_ml.networks import LOCAL, PRESETS
from mrv_ml.record.hashing import HASH_ALGORITHM, compute_hash
from mrv_ml.record.merkle import LEAF_ENCODING, PROOF_FORMAT

PROOF_VERSION = "1.0"
PROOF_SUFFIX = ".proof.json"
MAX_MERKLE_DEPTH = 32  # anchorBatch's leafCount is a uint32: no deeper tree can be anchored
MAX_REGISTRIES = 8  # witnesses: a few registries, never an unbounded list
MAX_ATTEMPTS_KEPT = 50  # a record retried by cron for months must not grow without bound

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TX = re.compile(r"^0x[0-9a-fA-F]{64}$")
_KNOWN = {"proof_version", "mrv_id", "record_hash", "status", "pending_reason", "attempts",
          "anchor", "history", "registries", "signature", "timestamps"}
MAX_TIMESTAMPS = 16  # a few authorities, each asked once or twice: never unbounded
MAX_TSR_BYTES = 64 * 1024  # a TSA's answer with its chain is a few kB
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_SIGNATURE_HEX = re.compile(r"^0x[0-9a-fA-F]{130}$")
_ANCHOR_KNOWN = {"mode", "network", "chain_id", "contract_address", "submitter", "tx_hash",
                 "block_number", "block_hash", "block_timestamp", "registry_block",
                 "confirmations", "explorer_url", "merkle"}


@dataclass(frozen=True)
class MerklePart:
    """Where a batch-anchored record sits in its OpenZeppelin StandardMerkleTree."""

    root: str  # 0x + 64 hex
    proof: tuple[str, ...]  # sibling hashes, 0x + 64 hex each
    leaf_index: int | None = None
    leaf_count: int | None = None
    format: str = PROOF_FORMAT
    leaf_encoding: tuple[str, ...] = LEAF_ENCODING

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "leaf_encoding": list(self.leaf_encoding),
                "root": self.root, "proof": list(self.proof), "leaf_index": self.leaf_index,
                "leaf_count": self.leaf_count}


@dataclass(frozen=True)
class Anchor:
    """Where and by whom the fingerprint (or its batch root) was put on chain."""

    mode: Literal["single", "batch"]
    chain_id: int
    contract_address: str
    submitter: str
    network: str | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    block_timestamp: int | None = None
    confirmations: int | None = None
    explorer_url: str | None = None
    merkle: MerklePart | None = None
    block_hash: str | None = None  # lets a verifier tell this chain from another instance
    registry_block: int | None = None  # where the registry was deployed: logs start there
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def local_only(self) -> bool:
        """Anchored on an embedded chain (``mrv_data/chain``): evidence for nobody but its
        author, and only on the author's machine."""
        embedded = PRESETS[LOCAL]
        return self.network == embedded.name and self.chain_id == embedded.chain_id

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **self.extra, "mode": self.mode, "network": self.network,
            "chain_id": self.chain_id, "contract_address": self.contract_address,
            "submitter": self.submitter, "tx_hash": self.tx_hash,
            "block_number": self.block_number, "block_hash": self.block_hash,
            "block_timestamp": self.block_timestamp, "registry_block": self.registry_block,
            "confirmations": self.confirmations, "explorer_url": self.explorer_url}
        if self.merkle is not None:
            data["merkle"] = self.merkle.to_dict()
        return data


@dataclass(frozen=True)
class Attempt:
    """One failed or unfinished anchoring attempt."""

    at: str
    error: str
    tx_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"at": self.at, "error": self.error}
        if self.tx_hash:
            data["tx_hash"] = self.tx_hash
        return data


@dataclass(frozen=True)
class RegistryReceipt:
    """A registry service that took the fingerprint, and its anchor once fetched. Several
    registries are witnesses: each anchors independently, and verification reports each;
    the proof's own ``anchor`` is the first one fetched."""

    url: str
    received_at: str | None = None
    anchor: Anchor | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"url": self.url, "received_at": self.received_at}
        if self.anchor is not None:
            data["anchor"] = self.anchor.to_dict()
        return data


@dataclass(frozen=True)
class Signature:
    """The researcher's signature over the record's fingerprint (see :mod:`mrv_ml.chain.signing`).
    ``signer`` is what the submitter claimed; verification recovers it from the signature."""

    scheme: str
    signer: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "signer": self.signer, "signature": self.signature}


@dataclass(frozen=True)
class Timestamp:
    """An RFC 3161 timestamp over the record's fingerprint (``kind`` ``"rfc3161"``)."""

    tsa_url: str
    tsr: bytes  # the DER TimeStampResp, token included
    gen_time: str  # as the token states it, RFC 3339 (for listing: the token is the authority)
    tsa_name: str  # the signing certificate's subject, RFC 4514
    certificates: tuple[str, ...] = ()  # PEM: the chain the authority sent, untrusted
    kind: str = "rfc3161"

    def to_dict(self) -> dict[str, Any]:
        import base64

        return {"kind": self.kind, "tsa_url": self.tsa_url,
                "tsr": base64.b64encode(self.tsr).decode(), "gen_time": self.gen_time,
                "tsa_name": self.tsa_name, "certificates": list(self.certificates)}


@dataclass(frozen=True)
class Proof:
    """A record's proof sidecar. ``anchor`` is set exactly when ``status == "anchored"``."""

    mrv_id: str
    record_digest: str  # the fingerprint when last written (hex64); the chain is the authority
    status: Literal["pending", "anchored"] = "pending"
    anchor: Anchor | None = None
    pending_reason: str | None = None
    attempts: tuple[Attempt, ...] = ()
    history: tuple[Anchor, ...] = ()  # earlier anchors (re-anchored elsewhere, reorganised)
    registries: tuple[RegistryReceipt, ...] = ()  # registry services that took it
    signature: Signature | None = None
    timestamps: tuple[Timestamp, ...] = ()  # RFC 3161 tokens, oldest first
    proof_version: str = PROOF_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str | None:
        return self.anchor.mode if self.anchor is not None else None

    def pending(self, reason: str, *, at: str, sent_tx: str | None = None) -> Proof:
        """This proof with one more failed/unfinished attempt, status pending (an anchor it
        had goes to the history: evidence is appended, never dropped)."""
        attempts = (*self.attempts, Attempt(at, reason, sent_tx))[-MAX_ATTEMPTS_KEPT:]
        return replace(self, status="pending", anchor=None, pending_reason=reason,
                       attempts=attempts, history=self._history_with_current())

    def anchored(self, anchor: Anchor, digest: str) -> Proof:
        """This proof, now anchored by ``anchor`` for the record of fingerprint ``digest``;
        a different earlier anchor is kept in the history."""
        history = self._history_with_current() if self.anchor != anchor else self.history
        return replace(self, status="anchored", anchor=anchor, record_digest=digest,
                       pending_reason=None, proof_version=PROOF_VERSION, history=history)

    def with_timestamp(self, timestamp: Timestamp) -> Proof:
        """This proof with one more timestamp (evidence is appended, never dropped; the
        oldest go first when there are more than :data:`MAX_TIMESTAMPS`)."""
        return replace(self, timestamps=(*self.timestamps, timestamp)[-MAX_TIMESTAMPS:])

    def _history_with_current(self) -> tuple[Anchor, ...]:
        return self.history if self.anchor is None else (*self.history, self.anchor)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **self.extra, "proof_version": self.proof_version, "mrv_id": self.mrv_id,
            "record_hash": {"algorithm": HASH_ALGORITHM, "digest": self.record_digest},
            "status": self.status, "attempts": [a.to_dict() for a in self.attempts]}
        if self.pending_reason is not None:
            data["pending_reason"] = self.pending_reason
        if self.anchor is not None:
            data["anchor"] = self.anchor.to_dict()
        if self.history:
            data["history"] = [a.to_dict() for a in self.history]
        if self.registries:
            data["registries"] = [r.to_dict() for r in self.registries]
        if self.signature is not None:
            data["signature"] = self.signature.to_dict()
        if self.timestamps:
            data["timestamps"] = [t.to_dict() for t in self.timestamps]
        return data

    @classmethod
    def new(cls, mrv_id: str, digest: str) -> Proof:
        return cls(mrv_id=mrv_id, record_digest=digest)

    @classmethod
    def from_dict(cls, data: Any, source: str = "proof") -> Proof:
        """Read a parsed sidecar strictly; :class:`MalformedProofError` names the field."""
        return _parse(data, source)


# --- reading ---------------------------------------------------------------------------


def _bad(source: str, where: str, problem: str) -> MalformedProofError:
    return MalformedProofError(f"{source}: not a usable proof sidecar: {where} {problem}")


def _opt(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], source: str,
         where: str) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _bad(source, f"{where}{name}", f"has the wrong type ({type(value).__name__})")
    return value


def _matching(value: Any, pattern: re.Pattern[str], source: str, where: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise _bad(source, where, f"is not {what} ({str(value)[:70]!r})")
    return value


def _parse_merkle(data: Any, source: str) -> MerklePart:
    where = "anchor.merkle"
    if not isinstance(data, Mapping):
        raise _bad(source, where, "is missing (a batch proof needs its Merkle part)")
    fmt = data.get("format", PROOF_FORMAT)
    encoding = data.get("leaf_encoding", list(LEAF_ENCODING))
    if fmt != PROOF_FORMAT or not isinstance(encoding, list) or \
            tuple(encoding) != LEAF_ENCODING:
        raise _bad(source, where, f"uses an unsupported format {str(fmt)[:40]!r}")
    root = _matching(data.get("root"), _BYTES32, source, f"{where}.root", "a 32-byte hex value")
    path = data.get("proof")
    if not isinstance(path, list):
        raise _bad(source, f"{where}.proof", "is not a list of hashes")
    if len(path) > MAX_MERKLE_DEPTH:
        raise _bad(source, f"{where}.proof", f"has {len(path)} hashes; a batch of at most "
                   f"2^32 records needs at most {MAX_MERKLE_DEPTH}")
    siblings = tuple(_matching(p, _BYTES32, source, f"{where}.proof[{i}]", "a 32-byte hex value")
                     for i, p in enumerate(path))
    return MerklePart(root=root.lower(), proof=tuple(p.lower() for p in siblings),
                      leaf_index=_opt(data, "leaf_index", int, source, f"{where}."),
                      leaf_count=_opt(data, "leaf_count", int, source, f"{where}."))


def _parse_anchor(data: Any, source: str) -> Anchor:
    if not isinstance(data, Mapping):
        raise _bad(source, "anchor", "is missing although the status is anchored")
    mode = data.get("mode")
    if mode not in ("single", "batch"):
        raise _bad(source, "anchor.mode", f"is {str(mode)[:30]!r}, not single or batch")
    chain_id = data.get("chain_id")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise _bad(source, "anchor.chain_id", f"is not a chain id ({str(chain_id)[:30]!r})")
    tx = data.get("tx_hash")
    if tx is not None:
        _matching(tx, _TX, source, "anchor.tx_hash", "a transaction hash")
    block_hash = data.get("block_hash")
    if block_hash is not None:
        _matching(block_hash, _BYTES32, source, "anchor.block_hash", "a block hash")
    block = _opt(data, "block_number", int, source, "anchor.")
    registry_block = _opt(data, "registry_block", int, source, "anchor.")
    if block is not None and registry_block is not None and registry_block > block:
        raise _bad(source, "anchor.registry_block",
                   f"({registry_block}) is later than the anchoring block ({block})")
    return Anchor(
        mode=mode, chain_id=chain_id,
        contract_address=_matching(data.get("contract_address"), _ADDRESS, source,
                                   "anchor.contract_address", "an address"),
        submitter=_matching(data.get("submitter"), _ADDRESS, source, "anchor.submitter",
                            "an address"),
        network=_opt(data, "network", str, source, "anchor."), tx_hash=tx,
        block_number=block, block_hash=block_hash, registry_block=registry_block,
        block_timestamp=_opt(data, "block_timestamp", int, source, "anchor."),
        confirmations=_opt(data, "confirmations", int, source, "anchor."),
        explorer_url=_opt(data, "explorer_url", str, source, "anchor."),
        merkle=_parse_merkle(data.get("merkle"), source) if mode == "batch" else None,
        extra={k: v for k, v in data.items() if k not in _ANCHOR_KNOWN})


def _parse_registries(data: Any, source: str) -> tuple[RegistryReceipt, ...]:
    if data is None:
        return ()
    if not isinstance(data, list) or len(data) > MAX_REGISTRIES:
        raise _bad(source, "registries", f"is not a list of at most {MAX_REGISTRIES} entries")
    out = []
    for i, entry in enumerate(data):
        url = entry.get("url") if isinstance(entry, Mapping) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _bad(source, f"registries[{i}].url", "is not an http(s) URL")
        anchor = entry.get("anchor")
        out.append(RegistryReceipt(url, _opt(entry, "received_at", str, source,
                                             f"registries[{i}]."),
                                   None if anchor is None else
                                   _parse_anchor(anchor, f"{source} (registries[{i}])")))
    return tuple(out)


def _parse_signature(data: Any, source: str) -> Signature | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise _bad(source, "signature", "is not an object")
    scheme = data.get("scheme")
    if not isinstance(scheme, str) or not scheme:
        raise _bad(source, "signature.scheme", "is missing")
    return Signature(scheme,
                     _matching(data.get("signer"), _ADDRESS, source, "signature.signer",
                               "an address"),
                     _matching(data.get("signature"), _SIGNATURE_HEX, source,
                               "signature.signature", "a 65-byte hex signature"))


def _parse_timestamps(data: Any, source: str) -> tuple[Timestamp, ...]:
    import base64
    import binascii

    if data is None:
        return ()
    if not isinstance(data, list) or len(data) > MAX_TIMESTAMPS:
        raise _bad(source, "timestamps", f"is not a list of at most {MAX_TIMESTAMPS}")
    out = []
    for i, item in enumerate(data):
        where = f"timestamps[{i}]"
        if not isinstance(item, Mapping) or item.get("kind") != "rfc3161":
            raise _bad(source, where, "is not an rfc3161 timestamp")
        url, tsr = item.get("tsa_url"), item.get("tsr")
        if not isinstance(url, str) or not re.match(r"^https?://\S{1,500}$", url):
            raise _bad(source, f"{where}.tsa_url", "is not an http(s) URL")
        if (not isinstance(tsr, str) or len(tsr) > MAX_TSR_BYTES * 4 // 3 + 4
                or not _BASE64.match(tsr)):
            raise _bad(source, f"{where}.tsr", "is not base64 of at most 64 kB")
        try:
            raw = base64.b64decode(tsr, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(source, f"{where}.tsr", "is not base64") from None
        certificates = item.get("certificates") or []
        if (not isinstance(certificates, list) or len(certificates) > 8
                or not all(isinstance(c, str) and len(c) < 16_384 for c in certificates)):
            raise _bad(source, f"{where}.certificates", "is not a list of PEM certificates")
        out.append(Timestamp(url, raw, str(item.get("gen_time", ""))[:64],
                             str(item.get("tsa_name", ""))[:500], tuple(certificates)))
    return tuple(out)


def _parse(data: Any, source: str) -> Proof:
    if not isinstance(data, Mapping):
        raise MalformedProofError(f"{source}: not a proof sidecar: the JSON is not an object")
    if "schema_version" in data and "proof_version" not in data:
        raise MalformedProofError(f"{source}: this is a record, not its proof file",
                                  key="is_record_file")
    mrv_id = data.get("mrv_id")
    if not isinstance(mrv_id, str) or not mrv_id:
        raise _bad(source, "mrv_id", "is missing")
    digest = data.get("record_hash")
    digest = digest.get("digest") if isinstance(digest, Mapping) else None
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise _bad(source, "record_hash.digest", "is not a SHA-256 hex digest")
    status = data.get("status")
    if status not in ("pending", "anchored"):
        raise _bad(source, "status", f"is {str(status)[:30]!r}, not pending or anchored")
    attempts_raw = data.get("attempts") or []
    if not isinstance(attempts_raw, list):
        raise _bad(source, "attempts", "is not a list")
    attempts = tuple(Attempt(str(a.get("at", "")), str(a.get("error", "")),
                             a.get("tx_hash") if isinstance(a.get("tx_hash"), str) else None)
                     for a in attempts_raw if isinstance(a, Mapping))
    version = data.get("proof_version", PROOF_VERSION)
    history_raw = data.get("history") or []
    if not isinstance(history_raw, list):
        raise _bad(source, "history", "is not a list")
    history = tuple(_parse_anchor(a, f"{source} (history[{i}])")
                    for i, a in enumerate(history_raw))
    return Proof(
        mrv_id=mrv_id, record_digest=digest, status=status,
        anchor=_parse_anchor(data.get("anchor"), source) if status == "anchored" else None,
        pending_reason=_opt(data, "pending_reason", str, source, ""), attempts=attempts,
        history=history, registries=_parse_registries(data.get("registries"), source),
        signature=_parse_signature(data.get("signature"), source),
        timestamps=_parse_timestamps(data.get("timestamps"), source),
        proof_version=str(version), extra={k: v for k, v in data.items() if k not in _KNOWN})


# --- files -----------------------------------------------------------------------------


def proof_path(record_path: str | Path) -> Path:
    """Where a record file's sidecar lives: ``X.json`` -> ``X.proof.json`` beside it."""
    path = Path(record_path)
    stem = path.name[:-len(".json")] if path.name.endswith(".json") else path.name
    return path.with_name(stem + PROOF_SUFFIX)


def find_proof_file(record_path: str | Path, mrv_id: str | None = None,
                    also_in: Sequence[str | Path] = ()) -> Path | None:
    """The sidecar of a record file: ``X.proof.json`` beside ``X.json``, else
    ``<mrv_id>.proof.json`` beside it (a renamed record), else in ``also_in`` directories.
    ``None`` when there is none. The one place that knows where sidecars are looked for."""
    candidates = [proof_path(record_path)]
    if mrv_id:
        candidates.append(Path(record_path).with_name(mrv_id + PROOF_SUFFIX))
        candidates.extend(Path(d) / (mrv_id + PROOF_SUFFIX) for d in also_in)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def read_proof_file(path: str | Path) -> Proof | None:
    """The proof at ``path`` (``None`` when there is no such file). A sidecar that exists but
    cannot be read or used raises a :class:`RecordError` naming the file: a corrupt proof
    must not look like "not anchored yet"."""
    from mrv_ml.record.strictjson import parse_json_strict, read_file_bytes

    p = Path(path)
    if not p.exists():
        return None
    value = parse_json_strict(read_file_bytes(p), str(p))
    if not isinstance(value, dict):
        raise NotARecordError(f"{p}: not a proof sidecar: the JSON is not an object",
                              key="malformed_proof")
    return Proof.from_dict(value, str(p))


def find_proof(record_path: Path, mrv_id: str | None,
               data_dir: Path | None = None) -> tuple[Proof | None, str | None]:
    """The proof sidecar for a record, beside the record file, else in the store, as
    ``(proof, problem)``: a sidecar that cannot be used is no proof, and ``problem`` says why
    (shown as such: "no proof file" would be untrue)."""
    path = find_proof_file(record_path, mrv_id, [data_dir] if data_dir is not None else [])
    if path is None:
        return None, None
    try:
        proof = read_proof_file(path)
    except RecordError as e:
        return None, str(e)
    if proof is not None and mrv_id is not None and proof.mrv_id != mrv_id:
        return None, f"{path} is the proof of another record ({proof.mrv_id})"
    return proof, None


def proof_matches(record: Mapping[str, Any], proof: Proof | None,
                  digest: str | None = None) -> bool:
    """Whether the sidecar's digest is this record's fingerprint (it is not after an edit);
    ``digest``: the fingerprint when the caller has it already (hashing a long record is
    the cost of a report over thousands)."""
    if proof is None:
        return False
    if digest is not None:
        return proof.record_digest == digest
    try:
        return proof.record_digest == compute_hash(record)
    except Exception:  # a record that cannot be hashed matches nothing
        return False
