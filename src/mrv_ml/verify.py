"""Verification: is this record unchanged since it was anchored, and by whom?

A verdict is a value users can branch on, carrying its evidence. A failure to
*reach* the evidence (chain down, wrong contract) is raised as an error instead.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SUBMITTER_MISMATCH,
    EXIT_TAMPERED,
    ChainUnavailableError,
    ConfigError,
    MRVError,
    RecordError,
)

if TYPE_CHECKING:
    from mrv_ml.config import Settings


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


_ZERO_ADDRESS = "0x" + "0" * 40


def _load_inputs(record: Mapping[str, Any] | str | Path, proof: Mapping[str, Any] | None
                 ) -> tuple[dict[str, Any], Mapping[str, Any] | None, Path | None]:
    from mrv_ml.record import load_record_file, validate_record
    from mrv_ml.store import PROOF_SUFFIX, read_proof_file

    if isinstance(record, (str, Path)):
        path = Path(record)
        data = load_record_file(path)
        if proof is None:
            stem = path.name[:-5] if path.name.endswith(".json") else path.name
            proof = read_proof_file(path.with_name(stem + PROOF_SUFFIX))
        return data, proof, path
    if not isinstance(record, Mapping):
        raise RecordError(f"a record must be a JSON object or a file, not {type(record).__name__}")
    validate_record(record)
    return dict(record), proof, None


def _checked_address(value: str, what: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not isinstance(value, str) or not is_address(value):
        raise ConfigError(f"invalid {what} address {str(value)[:60]!r}")
    return str(to_checksum_address(value))


def verify(record: Mapping[str, Any] | str | Path, *, mrv_id: str | None = None,
           proof: Mapping[str, Any] | None = None, expected_submitter: str | None = None,
           settings: Settings | None = None, connection: Any = None) -> Verdict:
    """Compare the record's hash with the registry. Raises RecordError (unusable input),
    ChainUnavailableError / ConfigError (evidence unreachable); otherwise a Verdict."""
    from mrv_ml.config import load_settings
    from mrv_ml.hashing import compute_hash
    from mrv_ml.record import summarize

    data, proof, _path = _load_inputs(record, proof)
    local_hash = compute_hash(data)
    own_id = str(data["mrv_id"])
    the_id = mrv_id or own_id
    details: list[str] = []
    if the_id != own_id:
        details.append(f"--mrv-id {the_id} differs from the record's own mrv_id {own_id}: the "
                       f"registry entry of {the_id} is compared against this record's hash")
    anchor = proof.get("anchor") if isinstance(proof, Mapping) else None
    anchor = anchor if isinstance(anchor, Mapping) else {}
    summary = summarize(data)
    settings = settings or load_settings()
    if (not settings.contract_address and anchor.get("contract_address")
            and str(anchor.get("network", "")).lower() == settings.network.lower()
            and not settings.rpc_url):
        settings = settings.replace(contract_address=anchor["contract_address"])
    if anchor.get("mode") == "batch" and proof is not None:
        try:
            from mrv_ml import batch
        except ImportError as e:
            raise MRVError(f"this record was anchored in a batch, but batch verification "
                           f"is not available in this install ({e})") from None
        from mrv_ml.chain import connect

        if connection is not None:
            return batch.verify_batched(local_hash, the_id, proof, connection,
                                        expected_submitter=expected_submitter, summary=summary)
        with connect(settings) as conn:
            return batch.verify_batched(local_hash, the_id, proof, conn,
                                        expected_submitter=expected_submitter, summary=summary)
    expected = expected_submitter or anchor.get("submitter") or None
    if expected:
        expected = _checked_address(expected, "submitter")
    from mrv_ml.chain import connect

    if connection is not None:
        return _verify_on(connection, the_id, local_hash, expected, anchor, summary, details)
    with connect(settings) as conn:
        return _verify_on(conn, the_id, local_hash, expected, anchor, summary, details)


def _verify_on(conn: Any, mrv_id: str, local_hash: str, expected: str | None,
               anchor: Mapping[str, Any], summary: Mapping[str, Any],
               details: list[str]) -> Verdict:
    from mrv_ml.chain import Registration, registration_events

    def events(**kw: Any) -> list[Registration]:
        try:
            return registration_events(conn, mrv_id, **kw)
        except ChainUnavailableError:
            raise
        except MRVError:  # nodes limiting log ranges: the verdict stands without the tx
            return []

    def verdict(status: VerdictStatus, onchain: str | None, ts: int | None,
                submitter: str | None) -> Verdict:
        tx_hash = block = None
        if status is not VerdictStatus.NOT_FOUND and submitter:
            if (anchor.get("submitter") or "").lower() == submitter.lower() and \
                    anchor.get("tx_hash") and anchor.get("chain_id") in (None, conn.chain_id):
                tx_hash, block = anchor.get("tx_hash"), anchor.get("block_number")
            elif onchain:
                found = events(submitter=submitter, hash_hex=onchain)
                if found:
                    tx_hash, block = found[0].tx_hash, found[0].block_number
        return Verdict(status=status, mrv_id=mrv_id, local_hash=local_hash,
                       onchain_hash=onchain, timestamp=ts, submitter=submitter,
                       expected_submitter=expected, tx_hash=tx_hash, block_number=block,
                       chain_id=conn.chain_id, contract_address=conn.registry_address,
                       network=conn.network.name, mode="single",
                       co2_kg=summary.get("co2_kg"), energy_kwh=summary.get("energy_kwh"),
                       explorer_url=conn.explorer_tx_url(tx_hash) if tx_hash else None,
                       detail="; ".join(details))

    if expected:
        raw, ts = conn.call(lambda r: r.functions.getMRVHashBy(mrv_id, expected).call())
        onchain = bytes(raw).hex()
        if any(raw):
            if onchain == local_hash:
                return verdict(VerdictStatus.VALID, onchain, int(ts), expected)
            details.append(f"{expected} registered {mrv_id} with a different hash")
            return verdict(VerdictStatus.TAMPERED, onchain, int(ts), expected)
        others = [e for e in events(hash_hex=local_hash) if e.submitter.lower() != expected.lower()]
        if others:
            details.append(f"this hash is registered for {mrv_id} only by {others[0].submitter}, "
                           f"not by the expected submitter {expected}")
            return verdict(VerdictStatus.SUBMITTER_MISMATCH, local_hash, others[0].timestamp,
                           others[0].submitter)
        details.append(f"{expected} never registered {mrv_id}")
        return verdict(VerdictStatus.NOT_FOUND, None, None, None)
    raw, ts, first = conn.call(lambda r: r.functions.getMRVHash(mrv_id).call())
    if not any(raw):
        details.append(f"{mrv_id} is not registered on {conn.network.name}")
        return verdict(VerdictStatus.NOT_FOUND, None, None, None)
    onchain = bytes(raw).hex()
    if onchain == local_hash:
        return verdict(VerdictStatus.VALID, onchain, int(ts), str(first))
    matching = events(hash_hex=local_hash)
    if matching:
        m = matching[0]
        details.append(f"the first registrant {first} holds another hash; this hash was "
                       f"registered by {m.submitter} (no expected submitter given)")
        return verdict(VerdictStatus.VALID, local_hash, m.timestamp, m.submitter)
    details.append(f"registered hash differs (first registrant {first})")
    return verdict(VerdictStatus.TAMPERED, onchain, int(ts), str(first))
