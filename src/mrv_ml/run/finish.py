"""What becomes of a run's record after ``stop()`` has stored it: timestamped by the RFC 3161
authorities named, anchored (through the one route
:func:`mrv_ml.anchoring.publish.publish_run`), told in one closing line, and logged into the
experiment trackers' runs.

Each step is a small sink over a :class:`Finished` run, called in that order by the
tracker; each may fail without touching the stored record or the steps after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrv_ml.anchoring.publish import publish_run
from mrv_ml.types import Fingerprint, MrvId

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.record.proof import Proof
    from mrv_ml.run.log_to.dispatch import RunLog
    from mrv_ml.storage.store import RecordStore

log = logging.getLogger(__name__)


@dataclass
class Finished:
    """A stopped run's stored record, and what anchoring made of it."""

    record: dict[str, Any]  # an MRVRecord (mrv_ml.types) that hooks may have extended
    record_path: Path
    mrv_hash: Fingerprint
    proof: Proof | None = None
    tx_hash: str | None = None
    anchor_error: str | None = None

    @property
    def mrv_id(self) -> MrvId:
        return MrvId(str(self.record["mrv_id"]))


def timestamp(run: Finished, store: RecordStore, urls: tuple[str, ...]) -> list[str]:
    """Timestamp the stored record at each authority; one line for each outcome. A failure
    is told and logged, never raised: the record stands (``mrv timestamp`` retries)."""
    from mrv_ml.anchoring.timestamp import timestamp_stored
    from mrv_ml.config import redact_text

    lines = []
    for url in urls:
        try:
            [stamped] = timestamp_stored(store, run.mrv_id, [url])
        except Exception as e:  # noqa: BLE001 - the record stands; timestamp it later
            why = redact_text(f"{type(e).__name__}: {e}")
            log.warning("timestamping %s failed: %s", run.mrv_id, why)
            lines.append(f"⚠️  not timestamped ({why}); retry: mrv timestamp {run.mrv_id}")
            continue
        t = stamped.timestamp
        lines.append(f"🕰  timestamped at {t.gen_time} by {t.tsa_name}")
    return lines


def anchor(run: Finished, store: RecordStore, settings: Settings, *, auto_anchor: bool,
           anchor_mode: str, with_record: bool, sign: bool) -> None:
    """Anchor the stored record by its route; a failure leaves it pending, with the reason
    in ``run.anchor_error`` (anchoring must never lose the run)."""
    try:
        outcome = publish_run(store, settings, run.mrv_id, auto_anchor=auto_anchor,
                              anchor_mode=anchor_mode, with_record=with_record, sign=sign)
    except Exception as e:  # noqa: BLE001 - the record stands; it stays pending
        run.anchor_error = f"{type(e).__name__}: {e}"
        log.warning("anchoring %s failed: %s", run.mrv_id, run.anchor_error)
        return
    run.proof = outcome.proof
    run.tx_hash = outcome.tx_hash
    # a registry that took the record (pending there) is no error
    run.anchor_error = outcome.error if outcome.error_exit_code is not None else None


def closing_line(run: Finished, *, blockchain_enabled: bool, via_registry: bool) -> str:
    """How the run ended, what it cost, where the record is, and where its anchoring stands
    (and what that proves)."""
    from mrv_ml.units import format_co2_kg, format_duration_s, format_energy_kwh

    # the record's outcome: a budget stop turns a completed fit into an interrupted one
    outcome = run.record.get("outcome") or {}
    status = str(outcome.get("status", "completed"))
    icon = {"completed": "✅", "interrupted": "⏹"}.get(status, "❌")
    if outcome.get("stopped_by") == "budget":
        status += " by its budget"
    energy = run.record.get("energy_emissions") or {}
    line = (f"{icon} run {status}: {format_energy_kwh(energy.get('energy_kwh'))}, "
            f"{format_co2_kg(energy.get('co2_kg'))} in "
            f"{format_duration_s(energy.get('duration_seconds'))}; record {run.mrv_id} "
            f"in {run.record_path}")
    anchored = run.proof.anchor if run.proof is not None else None
    if run.tx_hash and anchored is not None:
        trust = ("local only: this machine's own chain" if anchored.local_only
                 else f"{anchored.network or 'chain'} {anchored.chain_id}")
        line += f"; anchored in tx {run.tx_hash} ({trust})"
    elif via_registry and run.proof is not None and run.proof.registries:
        line += f"; submitted to {run.proof.registries[0].url} (mrv anchor --upgrade " \
                "fetches the proof once it is anchored)"
    elif run.anchor_error:
        line += f"; anchoring pending ({run.anchor_error})"
    elif blockchain_enabled:
        line += "; anchoring pending"
    return line


def log_to_runs(run: Finished, run_log: RunLog, *, blockchain_enabled: bool) -> None:
    """The facts and files (the proof as anchoring left it) into the trackers' runs."""
    from mrv_ml.record.proof import find_proof_file
    from mrv_ml.run.log_to.dispatch import run_facts

    try:
        facts = run_facts(run.record, run.mrv_hash, run.proof,
                          blockchain_enabled=blockchain_enabled,
                          anchor_error=run.anchor_error)
        proof_file = find_proof_file(run.record_path, run.mrv_id)
    except Exception as e:  # noqa: BLE001 - the record is stored; this is a bonus
        log.warning("the record's facts for the experiment trackers: %s", e)
        return
    files = [run.record_path] + ([proof_file] if proof_file is not None else [])
    run_log.publish(facts, files)
