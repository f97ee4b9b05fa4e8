"""Verification: is this record unchanged since it was anchored, and by whom?

A verdict is a value users can branch on, carrying its evidence. A failure to
*reach* the evidence (chain down, wrong contract) is raised as an error instead.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from mrv_ml.errors import EXIT_NOT_FOUND, EXIT_OK, EXIT_SUBMITTER_MISMATCH, EXIT_TAMPERED


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


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one record, with the evidence behind it."""

    status: VerdictStatus
    mrv_id: str
    local_hash: str
    onchain_hash: str | None = None
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

    def __bool__(self) -> bool:
        return self.status is VerdictStatus.VALID

    @property
    def exit_code(self) -> int:
        return self.status.exit_code

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["exit_code"] = self.exit_code
        return data
