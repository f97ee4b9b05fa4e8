"""What a record puts on a Hugging Face model card: the two blocks of its metadata
(:class:`CardMetadata`), ``co2_eq_emissions`` in the shape Hugging Face defines and ``mrv``
(the MRV ID, the fingerprint, the energy, where it is anchored, the trust level in words, the
verification link), and what they claim. The card's text is :mod:`mrv_ml.reporting.modelcard`.

The card never claims more than the evidence: "verified" only after a VALID verification
(``export(..., verify=True)``), "anchored" for a proof that was not checked here, and a
record that no one else can check (not anchored, or anchored only on its author's embedded
chain) is refused unless the caller allows it, in which case the card says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from mrv_ml.errors import LocalOnlyError, NotVerifiedError, ProofNeededError, RecordError
from mrv_ml.record.hashing import HASH_ALGORITHM, compute_hash
from mrv_ml.record.proof import Proof
from mrv_ml.record.trust import TRUST_NOTES, Trust, proof_trust
from mrv_ml.reporting.text import deep_link, field_at, is_loopback_url
from mrv_ml.verification.verdict import VerdictStatus

__all__ = ["TRAINING_TYPES", "CardMetadata", "card_metadata", "grams"]

TRAINING_TYPES = ("pre-training", "fine-tuning")

NOT_ANCHORED_NOTE = ("the fingerprint is not anchored on any chain: nothing on this card can "
                     "be checked by anyone")


@dataclass(frozen=True)
class CardMetadata:
    """The two blocks a record puts on a card, and what they claim."""

    co2_eq_emissions: dict[str, Any]
    mrv: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.mrv["status"])


def grams(co2_kg: float) -> float:
    """Kilograms as grams, shifted in decimal (``0.000123`` kg is ``0.123`` g, not
    ``0.12300000000000001``)."""
    return float(Decimal(repr(float(co2_kg))).scaleb(3))


def _location(ee: Mapping[str, Any]) -> str | None:
    country, region = ee.get("country_iso_code"), ee.get("region")
    if not country:
        return None
    where = f"{region}, {country}" if region else str(country)
    if ee.get("location_source") == "default":
        # The grid intensity assumed this place; the run may have been anywhere.
        where += " (CodeCarbon's default location; none was configured)"
    return where


def _hardware(record: Mapping[str, Any]) -> str | None:
    parts: list[str] = []
    gpus = field_at(record, "hardware", "gpus") or []
    counts: dict[str, int] = {}
    for gpu in gpus:
        if isinstance(gpu, Mapping) and gpu.get("name"):
            counts[str(gpu["name"])] = counts.get(str(gpu["name"]), 0) + 1
    parts.extend(f"{n} x {name}" for name, n in counts.items())
    cpu = field_at(record, "hardware", "cpu_model")
    if cpu:
        cores = field_at(record, "hardware", "cpu_logical_cores")
        parts.append(f"{cpu} ({cores} logical cores)" if isinstance(cores, int) else str(cpu))
    world = field_at(record, "distributed", "world_size")
    text = ", ".join(parts) or None
    if isinstance(world, int) and world > 1:
        text = f"{world} processes" + (f", each on {text}" if text else "")
    return text


def _source(record: Mapping[str, Any], ee: Mapping[str, Any]) -> str:
    from mrv_ml._version import __version__

    tool = " ".join(str(x) for x in (ee.get("measurement_tool") or "CodeCarbon",
                                     ee.get("measurement_tool_version")) if x)
    if field_at(record, "provenance", "kind") == "imported":  # `mrv import`: not wrapped by us
        return f"{tool}, imported into an MRV record (mrv-ml {__version__})"
    return f"{tool}, in an MRV record (mrv-ml {__version__})"


def card_metadata(record: Mapping[str, Any], *, proof: Proof | None = None,
                  verdict: Any = None, training_type: str | None = None,
                  dashboard_url: str | None = None,
                  allow_unanchored: bool = False) -> CardMetadata:
    """The card's two blocks for ``record`` with its ``proof`` (and the ``verdict`` of a
    verification, when one was run).

    Raises :class:`RecordError` for a record without emissions figures or a proof of
    another fingerprint, :class:`NotVerifiedError` for a verdict other than VALID, and,
    unless ``allow_unanchored``, :class:`ProofNeededError` (not anchored) or
    :class:`LocalOnlyError` (anchored only on the author's own chain): a published card
    whose figures nobody can check must be asked for, and then it says so.
    """
    mrv_id = str(record.get("mrv_id") or "")
    ee = record.get("energy_emissions") or {}
    co2_kg = ee.get("co2_kg") if isinstance(ee, Mapping) else None
    if ee.get("measurement_status") != "measured" or isinstance(co2_kg, bool) \
            or not isinstance(co2_kg, (int, float)) or not math.isfinite(co2_kg):
        raise RecordError(f"{mrv_id}: the energy measurement failed "
                          f"({ee.get('measurement_error') or 'no figures'}): no emissions "
                          "to put on a model card")
    if training_type is not None and training_type not in TRAINING_TYPES:
        raise RecordError(f"training type {training_type!r}: choose "
                          f"{' or '.join(TRAINING_TYPES)}")
    # A verdict, when there is one, decides first: a changed record is TAMPERED (exit 1).
    if verdict is not None and verdict.status is not VerdictStatus.VALID:
        raise NotVerifiedError(f"{mrv_id}: verification says {verdict.status.value}"
                               f"{' (' + verdict.reason + ')' if verdict.reason else ''}: "
                               "no card for it", exit_code=verdict.exit_code)
    digest = compute_hash(record)
    if proof is not None and proof.record_digest != digest:
        raise RecordError(f"{mrv_id}: the record changed since it was anchored (its proof is "
                          "of another fingerprint): no card for it", key="modified")

    trust = Trust(verdict.trust) if verdict is not None and verdict.trust else \
        proof_trust(proof)
    anchor = proof.anchor if proof is not None else None
    if not allow_unanchored:
        if trust is None:
            raise ProofNeededError(
                f"{mrv_id} is not anchored{' yet (pending)' if proof is not None else ''}: "
                "a card would carry a fingerprint nobody can check; anchor it first "
                "(mrv anchor) or pass --allow-unanchored to say so on the card")
        if trust is Trust.LOCAL:
            raise LocalOnlyError(
                f"{mrv_id} is anchored only on this machine's embedded chain, which no reader "
                "can check; anchor it on a network (mrv anchor --network) or pass "
                "--allow-unanchored to say so on the card")

    co2: dict[str, Any] = {
        "emissions": grams(co2_kg),
        "source": _source(record, ee),
        "training_type": training_type,
        "geographical_location": _location(ee),
        "hardware_used": _hardware(record),
    }
    block: dict[str, Any] = {"mrv_id": mrv_id, "fingerprint": f"{HASH_ALGORITHM}:{digest}"}
    energy = ee.get("energy_kwh")
    if isinstance(energy, (int, float)) and not isinstance(energy, bool):
        block["energy_kwh"] = energy
    if trust is None:
        block.update(status="not anchored", trust="none", trust_note=NOT_ANCHORED_NOTE)
    else:
        # What anchors it: the verification's own reading, else the proof's.
        facts = {"network": anchor.network if anchor else None,
                 "chain_id": anchor.chain_id if anchor else None,
                 "tx_hash": anchor.tx_hash if anchor else None,
                 "explorer_url": anchor.explorer_url if anchor else None}
        if verdict is not None:
            facts.update({k: getattr(verdict, k) for k in facts if getattr(verdict, k, None)})
        note = TRUST_NOTES[trust].format(chain_id=facts["chain_id"])
        if verdict is not None:
            status = "verified"
            block["verified_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            status = "anchored"
            note += "; not verified when this card was written"
        block.update(status=status, trust=trust.value, trust_note=note)
        block.update({k: v for k, v in facts.items() if v})
    # A link is given only where it works for a reader: a public dashboard, a checkable chain.
    if dashboard_url and not is_loopback_url(dashboard_url) and trust not in (None, Trust.LOCAL):
        block["verification_url"] = deep_link(dashboard_url, mrv_id, block.get("network"))
    return CardMetadata({k: v for k, v in co2.items() if v is not None}, block)
