"""The results of verification, apart from the reader that produces them: a record's
:class:`Verdict` and a file's :class:`FileVerdict` (a verdict or the error that kept it from
one). Reporting and the command line import these without pulling in the chain reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mrv_ml.errors import MRVError
from mrv_ml.record.trust import Trust
from mrv_ml.verification.verdict import VerdictStatus

__all__ = ["FileVerdict", "Verdict"]


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
    # Each RFC 3161 timestamp of the proof, checked offline against the roots named
    # (--tsa-root): {"kind": "rfc3161", "status" (VALID, TAMPERED, UNTRUSTED, MALFORMED),
    # "tsa_url", "tsa_name", "gen_time", "root", "detail"}.
    timestamps: tuple[dict[str, Any], ...] = ()
    # Every anchor of the proof with its own result: the chain anchor ({"kind": "chain",
    # "status" (a verdict or ERROR), "chain_id", "network", "trust", "detail"}), then each
    # timestamp as above. Empty for a proof with a chain anchor only (the verdict is it).
    anchors: tuple[dict[str, Any], ...] = ()
    # What the reviewer required (--require) and each term's result:
    # {"text", "met", "terms": [{"term", "held", "why"}]}; None: the default rule.
    requirement: dict[str, Any] | None = None

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
