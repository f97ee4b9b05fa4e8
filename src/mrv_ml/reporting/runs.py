"""A chosen record with, when one was run, its verification (:class:`Run`), and what it
is worth: the badge words, the trust level, the verdict in one sentence, and the run's raw
fields (a CSV row, a JSON object) that every report over many records shows.

What a run is worth is said as proven and no more: "verified" only after a VALID
verification; an anchored record not verified here is "anchored"; a record anchored only on
its author's embedded chain is "local only", never publicly verifiable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mrv_ml.record.schema import section
from mrv_ml.record.trust import Trust, proof_trust
from mrv_ml.reporting import one_record as report
from mrv_ml.reporting.badge import badge_status
from mrv_ml.reporting.verdict_text import verdict_headline
from mrv_ml.storage.selection import COMPONENTS, Selected
from mrv_ml.verification.model import FileVerdict
from mrv_ml.verification.verdict import VerdictStatus

__all__ = ["Run", "run_fields", "run_trust", "verdict_sentence"]


@dataclass(frozen=True)
class Run:
    """A chosen record and, when one was run, its verification."""

    selected: Selected
    verification: FileVerdict | None = None

    @property
    def record(self) -> dict[str, Any]:
        return self.selected.record


# --- what a run is worth ------------------------------------------------------------------


def _status(run: Run) -> str:
    """The badge words: verified / anchored / local only / pending / unverified / modified /
    tampered / not found / submitter mismatch / "not verified" (verification failed)."""
    sel, fv = run.selected, run.verification
    if fv is not None and fv.verdict is None:
        return "not verified"
    if sel.proof_error is not None and fv is None:
        return "unreadable proof"
    return badge_status(sel.record, sel.proof, fv.verdict if fv is not None else None,
                               sel.digest)


def run_trust(run: Run) -> Trust | None:
    """What the anchoring (or the verification) is worth, ``None`` when nothing backs it."""
    fv, sel = run.verification, run.selected
    if fv is not None:
        v = fv.verdict
        return Trust(v.trust) if v is not None and v.status is VerdictStatus.VALID else None
    if not sel.proof_matches:
        return None
    return proof_trust(sel.proof)


def verdict_sentence(run: Run) -> tuple[str, str]:
    """(tone, sentence): the verdict first, in words that claim no more than it proves."""
    sel, fv = run.selected, run.verification
    a = sel.proof.anchor if sel.proof is not None else None
    where = f"{a.network or 'chain'} (chain {a.chain_id})" if a is not None else "a chain"
    status = _status(run)
    if fv is not None and fv.verdict is None:
        return "bad", f"Not verified: {fv.error}"
    if fv is not None and fv.verdict is not None and fv.verdict.status is not VerdictStatus.VALID:
        return "bad", verdict_headline(fv.verdict) + "."
    sentences = {
        "verified": ("good", f"Verified: the record matches what is anchored on {where}, a "
                             "public chain anyone can check."),
        "verified (private)": ("warn", f"Verified on the private network {where}: evidence "
                                       "only for those who trust that network."),
        # the proof file's own claim, unchecked: not green until a verification says VALID
        "anchored": ("warn", f"Anchored on {where}, a public chain; not verified in this "
                             "report (mrv verify or the verification link checks it)."),
        "anchored (private)": ("warn", f"Anchored on the private network {where}; not "
                                       "publicly verifiable."),
        "local only": ("warn", "Local only: anchored on its author's own embedded chain; not "
                               "publicly verifiable."),
        "pending": ("warn", "Not anchored yet: anchoring is pending."),
        "unverified": ("warn", "Not anchored: nothing vouches for these figures."),
        "modified": ("bad", "Modified since anchoring: these figures differ from what was "
                            "anchored."),
        "unreadable proof": ("bad", f"Its proof file cannot be used: {sel.proof_error}"),
    }
    return sentences.get(status, ("bad", status))


def _anchor_state(sel: Selected) -> str:
    if sel.proof_error is not None:
        return "unreadable"
    return "none" if sel.proof is None else sel.proof.status


def _hardware(record: Mapping[str, Any]) -> str | None:
    hw = report.facts(record)["hardware"]
    if hw is not None:
        return str(hw)
    cpu = section(record, "hardware").get("cpu_model")
    return str(cpu) if cpu else None


def run_fields(run: Run) -> dict[str, Any]:
    """One run's raw fields (base units: kWh, kg, s, g/kWh), the CSV row and JSON object."""
    r = run.record
    ee, exp = section(r, "energy_emissions"), section(r, "experiment")
    times, outcome = section(r, "timestamps"), section(r, "outcome")
    sel = run.selected
    a = sel.proof.anchor if sel.proof is not None else None
    trust = run_trust(run)
    return {
        "mrv_id": r.get("mrv_id"), "experiment": exp.get("name"),
        "model": exp.get("model_name"), "dataset": exp.get("dataset_name"),
        "hardware": _hardware(r), "outcome": outcome.get("status"),
        "start_time": times.get("start_time"), "end_time": times.get("end_time"),
        "duration_s": ee.get("duration_seconds"), "energy_kwh": ee.get("energy_kwh"),
        **{f"{c}_energy_kwh": ee.get(f"{c}_energy_kwh") for c in COMPONENTS},
        "co2_kg": ee.get("co2_kg"),
        "carbon_intensity_g_per_kwh": ee.get("carbon_intensity_g_per_kwh"),
        "pue": ee.get("pue"), "country_iso_code": ee.get("country_iso_code"),
        "measurement_status": ee.get("measurement_status"),
        "fingerprint": sel.digest, "anchor_state": _anchor_state(sel),
        "network": a.network if a is not None else None,
        "chain_id": a.chain_id if a is not None else None,
        "tx_hash": a.tx_hash if a is not None else None,
        "verification": _status(run), "trust": trust.value if trust is not None else None,
        "file": str(sel.path),
    }
