"""What every standard export takes from a record: its figures with their methods and
ranges (:class:`Figures`), and the evidence a reader checks it by (:class:`Evidence`: the
MRV ID, the fingerprint ``mrv verify`` recomputes, where it is anchored and at what trust,
its RFC 3161 timestamps, the command that verifies it).

One reading for all formats (BoAmps, CycloneDX, SPDX, SCI, the AI Act's section): each
format module maps these, and none reads the record itself. A record whose measurement
failed has no figures to report and is refused; a proof of another fingerprint (the
record changed since it was anchored) is refused, as for a model card: an export must never
point a reader at evidence that does not hold for what it reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mrv_ml.errors import RecordError
from mrv_ml.measure.uncertainty import bounds_kwh
from mrv_ml.record.hashing import HASH_ALGORITHM, compute_hash
from mrv_ml.record.proof import Proof
from mrv_ml.record.schema import MRV_ID_PATTERN, is_rfc3339
from mrv_ml.record.trust import TRUST_NOTES, Trust, proof_trust
from mrv_ml.reporting.text import field_at
from mrv_ml.units import finite_number, utc_moment

__all__ = ["COMPONENTS", "Anchoring", "Component", "Evidence", "Figures", "bound", "distinct",
           "evidence_of", "load_evidence"]

COMPONENTS = ("cpu", "gpu", "ram")


def bound(value: float) -> float:
    """A range's end as an export writes it: a figure times a factor, so 12 significant
    digits, not float noise."""
    return float(f"{value:.12g}")


@dataclass(frozen=True)
class Component:
    """One component's energy, how it was obtained, and its range where it is an estimate
    (``low_kwh``/``high_kwh`` equal the figure for a metered one)."""

    name: str  # "cpu", "gpu", "ram"
    energy_kwh: float
    method: str
    measured: bool
    low_kwh: float
    high_kwh: float
    assumption: str | None = None

    @property
    def has_range(self) -> bool:
        return (self.low_kwh, self.high_kwh) != (self.energy_kwh, self.energy_kwh)


@dataclass(frozen=True)
class Figures:
    """The record's figures, each as the record states it, with the ranges carried through:
    energy as the sum of its components' ranges, CO2e as that times the grid's range."""

    energy_kwh: float
    co2_kg: float
    duration_s: float | None
    components: tuple[Component, ...]
    carbon_intensity_g_per_kwh: float | None
    grid_method: str | None
    grid_low_factor: float
    grid_high_factor: float
    country_iso_code: str | None
    region: str | None
    location_source: str | None
    pue: float | None
    measurement_tool: str
    measurement_tool_version: str | None

    @property
    def energy_low_kwh(self) -> float:
        return self._scaled(sum(c.low_kwh for c in self.components))

    @property
    def energy_high_kwh(self) -> float:
        return self._scaled(sum(c.high_kwh for c in self.components))

    def _scaled(self, bound: float) -> float:
        # Components may not add up to the total (PUE, a component CodeCarbon does not split
        # out): scale the total by the components' range, never replace it.
        parts = sum(c.energy_kwh for c in self.components)
        if parts <= 0:
            return self.energy_kwh
        return self.energy_kwh * bound / parts

    @property
    def co2_low_kg(self) -> float:
        return self.co2_kg * self._ratio(self.energy_low_kwh) * self.grid_low_factor

    @property
    def co2_high_kg(self) -> float:
        return self.co2_kg * self._ratio(self.energy_high_kwh) * self.grid_high_factor

    def _ratio(self, energy: float) -> float:
        return energy / self.energy_kwh if self.energy_kwh > 0 else 1.0

    @property
    def all_measured(self) -> bool:
        """Every component with energy was read from a meter (no estimate at all)."""
        return all(c.measured for c in self.components if c.energy_kwh > 0)

    @property
    def widest_factor(self) -> float:
        """How far the energy may be off at most, as a factor of the figure (1.0: none)."""
        if self.energy_kwh <= 0:
            return 1.0
        return max(self.energy_high_kwh / self.energy_kwh,
                   self.energy_kwh / self.energy_low_kwh if self.energy_low_kwh > 0
                   else math.inf)


@dataclass(frozen=True)
class Anchoring:
    """Where the fingerprint is anchored, as the proof says (not verified here)."""

    mode: str  # "single" or "batch"
    chain_id: int
    network: str | None
    contract_address: str
    submitter: str
    tx_hash: str | None
    block_number: int | None
    merkle_root: str | None
    trust: Trust
    trust_note: str


@dataclass(frozen=True)
class Evidence:
    """A record and what a reader checks it by."""

    record: Mapping[str, Any]
    path: Path | None  # the record file, when it was read from one
    proof: Proof | None
    mrv_id: str
    fingerprint: str  # hex SHA-256 of the record's RFC 8785 bytes
    figures: Figures
    anchoring: Anchoring | None
    timestamps: tuple[tuple[str, str], ...]  # (authority, stated time) per RFC 3161 token

    @property
    def fingerprint_uri(self) -> str:
        """``sha256-jcs:<hex>``, the form every export writes."""
        return f"{HASH_ALGORITHM}:{self.fingerprint}"

    @property
    def model(self) -> str:
        """The model the record trained: ``experiment.model_name``, else
        ``experiment.name``, else the MRV ID (what groups several records of one model)."""
        for key in ("model_name", "name"):
            value = field_at(self.record, "experiment", key)
            if isinstance(value, str) and value.strip():
                return value
        return self.mrv_id

    @property
    def record_file_name(self) -> str:
        return self.path.name if self.path is not None else f"{self.mrv_id}.json"

    @property
    def end_time(self) -> datetime:
        """When the run ended (else began), UTC: the time an export is dated by, never the
        clock's, so the same records give the same document."""
        stamps = self.record.get("timestamps")
        for key in ("end_time", "start_time"):
            text = stamps.get(key) if isinstance(stamps, Mapping) else None
            moment = utc_moment(text) if isinstance(text, str) and is_rfc3339(text) else None
            if moment is not None:
                return moment
        raise RecordError(f"{self.mrv_id}: the record states no end time: an export is dated "
                          "by it")

    @property
    def verify_command(self) -> str:
        """What a reader runs, with the record and its proof file beside it."""
        return f"mrv verify {self.record_file_name}"

    @property
    def anchored_where(self) -> str:
        """Where it is anchored, in words, with its trust."""
        a = self.anchoring
        if a is None:
            stamps = f"; {len(self.timestamps)} RFC 3161 timestamp(s)" if self.timestamps \
                else ""
            return f"not anchored on any chain{stamps}"
        net = f"{a.network} (chain {a.chain_id})" if a.network else f"chain {a.chain_id}"
        how = "in a Merkle batch" if a.mode == "batch" else "by a single registration"
        return f"{net}, registry {a.contract_address}, {how}; trust: {a.trust.value}"


def _component(ee: Mapping[str, Any], name: str) -> Component | None:
    energy = finite_number(ee.get(f"{name}_energy_kwh"))
    info = field_at(ee, "methods", name)
    if energy is None:
        return None
    method = str(info.get("method")) if isinstance(info, Mapping) and info.get("method") \
        else "unknown"
    measured = bool(info.get("measured")) if isinstance(info, Mapping) else False
    bounds = bounds_kwh(energy, dict(info) if isinstance(info, Mapping) else None)
    low, high = bounds if bounds is not None else (energy, energy)
    assumption = info.get("assumption") if isinstance(info, Mapping) else None
    return Component(name, energy, method, measured, low, high,
                     str(assumption) if assumption else None)


def figures_of(record: Mapping[str, Any]) -> Figures:
    """The record's :class:`Figures`; RecordError when its measurement failed."""
    mrv_id = str(record.get("mrv_id") or "?")
    ee = record.get("energy_emissions")
    if not isinstance(ee, Mapping) or ee.get("measurement_status") != "measured":
        error = ee.get("measurement_error") if isinstance(ee, Mapping) else None
        raise RecordError(f"{mrv_id}: the energy measurement failed ({error or 'no figures'})"
                          ": there is no figure to report", key="no_figures")
    energy, co2 = finite_number(ee.get("energy_kwh")), finite_number(ee.get("co2_kg"))
    if energy is None or co2 is None:
        raise RecordError(f"{mrv_id}: the record states no energy or no CO2e figure: there is "
                          "no figure to report", key="no_figures")
    grid = field_at(ee, "methods", "grid")
    u = grid.get("uncertainty") if isinstance(grid, Mapping) else None
    low = finite_number(u.get("low_factor")) if isinstance(u, Mapping) else None
    high = finite_number(u.get("high_factor")) if isinstance(u, Mapping) else None
    country = ee.get("country_iso_code")
    return Figures(
        energy_kwh=energy, co2_kg=co2, duration_s=finite_number(ee.get("duration_seconds")),
        components=tuple(c for c in (_component(ee, n) for n in COMPONENTS) if c is not None),
        carbon_intensity_g_per_kwh=finite_number(ee.get("carbon_intensity_g_per_kwh")),
        grid_method=str(grid.get("method")) if isinstance(grid, Mapping) else None,
        grid_low_factor=low if low is not None else 1.0,
        grid_high_factor=high if high is not None else 1.0,
        country_iso_code=str(country) if isinstance(country, str) and country else None,
        region=str(ee["region"]) if isinstance(ee.get("region"), str) and ee["region"] else None,
        location_source=str(ee.get("location_source")) if ee.get("location_source") else None,
        pue=finite_number(ee.get("pue")),
        measurement_tool=str(ee.get("measurement_tool") or "CodeCarbon"),
        measurement_tool_version=str(ee["measurement_tool_version"])
        if ee.get("measurement_tool_version") else None)


def _anchoring(proof: Proof | None) -> Anchoring | None:
    trust = proof_trust(proof)
    if proof is None or proof.anchor is None or trust is None:
        return None
    a = proof.anchor
    return Anchoring(a.mode, a.chain_id, a.network, a.contract_address, a.submitter,
                     a.tx_hash, a.block_number,
                     a.merkle.root if a.merkle is not None else None,
                     trust, TRUST_NOTES[trust].format(chain_id=a.chain_id))


def evidence_of(record: Mapping[str, Any], proof: Proof | None = None,
                path: Path | None = None) -> Evidence:
    """The :class:`Evidence` of a parsed ``record`` and its ``proof``. RecordError for a
    failed measurement or a proof of another fingerprint."""
    mrv_id = str(record.get("mrv_id") or "")
    digest = compute_hash(record)
    if proof is not None and proof.record_digest != digest:
        raise RecordError(f"{mrv_id}: the record changed since it was anchored (its proof is "
                          "of another fingerprint): nothing to export that a reader could "
                          "verify", key="modified")
    stamps = tuple((t.tsa_name or t.tsa_url, t.gen_time)
                   for t in (proof.timestamps if proof is not None else ()))
    return Evidence(record, path, proof, mrv_id, digest, figures_of(record),
                    _anchoring(proof), stamps)


def distinct(evidence: Sequence[Evidence], what: str) -> list[Evidence]:
    """The records, each once, by MRV ID; RecordError for none, for an ID not of the
    schema's form (it goes into identifiers and URNs), or for two records under one ID."""
    if not evidence:
        raise RecordError(f"no record to export as {what}")
    by_id: dict[str, Evidence] = {}
    for e in evidence:
        if not MRV_ID_PATTERN.fullmatch(e.mrv_id):
            raise RecordError(f"{e.mrv_id[:80]!r} is not an MRV ID: the record cannot be "
                              f"exported as {what}")
        seen = by_id.setdefault(e.mrv_id, e)
        if seen.fingerprint != e.fingerprint:
            raise RecordError(f"{e.mrv_id}: given twice, as two different records "
                              f"({seen.fingerprint_uri} and {e.fingerprint_uri}): export one")
    return sorted(by_id.values(), key=lambda e: e.mrv_id)


def load_evidence(refs: Sequence[str | Path], data_dir: str | Path) -> list[Evidence]:
    """Each record ``refs`` names (a file, or an ID or unique prefix in the store at
    ``data_dir``) with its proof (beside the file, else in the store), read strictly."""
    from mrv_ml.record.proof import find_proof
    from mrv_ml.record.schema import parse_record_bytes
    from mrv_ml.record.strictjson import read_file_bytes
    from mrv_ml.storage.store import RecordStore

    out: list[Evidence] = []
    store: RecordStore | None = None
    for ref in refs:
        path = Path(ref).expanduser()
        if not path.is_file():
            store = store or RecordStore(data_dir)
            path = store.resolve(str(ref))
        record = parse_record_bytes(read_file_bytes(path), str(path))
        proof, problem = find_proof(path, record["mrv_id"], Path(data_dir))
        if problem is not None:
            raise RecordError(f"{path}: its proof file cannot be used ({problem}): fix or "
                              "remove it before exporting", key="malformed_proof")
        out.append(evidence_of(record, proof, path))
    return out
