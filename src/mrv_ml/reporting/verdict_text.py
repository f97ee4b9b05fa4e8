"""A verification verdict in words, for people: its headline and its label/value rows
(``mrv verify``, ``mrv attest``, the reports over many records). The record's own figures
are marked untrusted under any verdict but VALID."""

from __future__ import annotations

from datetime import datetime, timezone

from mrv_ml.units import format_co2_kg, format_energy_kwh
from mrv_ml.verification.model import Verdict
from mrv_ml.verification.verdict import VerdictStatus

__all__ = ["UNTRUSTED_NOTE", "verdict_headline", "verdict_rows"]

_HEADLINES = {
    ("VALID", "single"): "✅ VALID - Hashes match!",
    ("VALID", "batch"): "✅ VALID - the record is a leaf of the anchored batch",
    ("TAMPERED", "single"): "❌ TAMPERED - Hashes differ!",
    ("TAMPERED", "batch"): "❌ TAMPERED - the record is not in the anchored batch",
    ("NOT_FOUND", "single"): "⚠️ NOT FOUND - no such registration on chain",
    ("NOT_FOUND", "batch"): "⚠️ NOT FOUND - the batch root is not anchored",
    ("SUBMITTER_MISMATCH", "single"): "⚠️ SUBMITTER MISMATCH - registered by another address",
    ("SUBMITTER_MISMATCH", "batch"): "⚠️ SUBMITTER MISMATCH - anchored by another address",
    ("VALID", "rfc3161"): "✅ VALID - timestamped, unchanged since",
    ("TAMPERED", "rfc3161"): "❌ TAMPERED - the authority timestamped other content",
}
#: What the record's own figures are worth under each verdict (shown under the figures).
UNTRUSTED_NOTE = {
    VerdictStatus.TAMPERED: "untrusted: these figures come from the file being verified, "
                            "which differs from what was anchored",
    VerdictStatus.NOT_FOUND: "unverified: nothing on chain vouches for these figures",
    VerdictStatus.SUBMITTER_MISMATCH: "unverified: only another address vouches for them",
}


def _utc(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def verdict_headline(verdict: Verdict) -> str:
    return _HEADLINES[(verdict.status.value, verdict.mode)]


def verdict_rows(verdict: Verdict, source: str) -> list[tuple[str, str]]:
    """Label/value rows of a verdict: the figures marked untrusted unless VALID, the
    record's hash and what it was compared with (on-chain hash, or Merkle root) apart."""
    v = verdict
    mark = "" if v.figures_trusted else " (untrusted)"
    rows = [("Record", source), ("MRV ID", v.mrv_id),
            (f"CO2e{mark}", format_co2_kg(v.co2_kg)),
            (f"Energy{mark}", format_energy_kwh(v.energy_kwh))]
    if not v.figures_trusted:
        rows.append(("Figures", UNTRUSTED_NOTE[v.status]))
    rows.append(("Timestamp", _utc(v.timestamp)))
    if v.mode != "rfc3161":
        rows.append(("Submitter", v.submitter or "-"))
    if v.expected_submitter and v.expected_submitter != v.submitter:
        rows.append(("Expected submitter", v.expected_submitter))
    if v.signer or v.expected_signer:
        rows.append(("Signed by", v.signer or "nobody (no signature)"))
    if v.expected_signer and v.expected_signer != v.signer:
        rows.append(("Expected signer", v.expected_signer))
    for n, r in enumerate(v.registries, 1):
        if r["status"] == "PENDING":
            said = "pending there"
        elif r["status"] == "ERROR":
            said = f"cannot be checked: {r['error']}"
        else:
            said = (f"{r['status']}, anchored by {r['submitter'] or '-'} on chain "
                    f"{r['chain_id']} (tx {r['tx_hash'] or '-'}; {r['trust']})")
        rows.append((f"Registry {n}", f"{r['url']}: {said}"))
    for n, t in enumerate(v.timestamps, 1):
        rows.append((f"Timestamp {n}", f"{t['status']}: {t['detail']}"))
    if v.mode == "rfc3161":  # the verdict stands on a timestamp: what the chain said too
        chain = next((a for a in v.anchors if a["kind"] == "chain"), None)
        if chain is not None:
            rows.append(("Chain anchor", f"{chain['status']}: {chain['detail']}"))
    if v.requirement is not None:
        met = "met" if v.requirement["met"] else "not met"
        rows.append(("Required", f"{v.requirement['text']} ({met})"))
        rows += [(f"  {t['term']}", f"{'held' if t['held'] else 'did not hold'}: {t['why']}")
                 for t in v.requirement["terms"]]
    rows.append(("Record hash", v.record_hash))
    if v.mode == "rfc3161":
        pass  # no chain evidence: the timestamps above are the evidence
    elif v.mode == "batch":
        rows.append(("Merkle root", v.merkle_root or "-"))
    else:
        rows.append(("On-chain hash", v.onchain_hash or "-"))
    if v.mode != "rfc3161":
        rows.append(("Tx", v.tx_hash or "-"))
        if v.explorer_url:
            rows.append(("Explorer", v.explorer_url))
        rows += [("Block", "-" if v.block_number is None else str(v.block_number)),
                 ("Network", f"{v.network} (chain {v.chain_id}), registry "
                             f"{v.contract_address}")]
    rows.append(("Trust", f"{v.trust}: {v.trust_note}"))
    if v.confirmations is not None:
        finality = "" if v.final is None else " (final)" if v.final else " (not final yet)"
        rows.append(("Confirmations", f"{v.confirmations}{finality}"))
    if v.detail:
        rows.append(("Detail", v.detail))
    return rows
