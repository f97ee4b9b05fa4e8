"""The Software Carbon Intensity of a training (ISO/IEC 21031:2024, the Green Software
Foundation's SCI): ``SCI = (E × I + M) / R``, per functional unit, with every term shown.

- **E**: the energy the records state, kWh (the sum over several records: a fine-tune and
  its parent, a sweep); its range is the records' (:mod:`~mrv_ml.reporting.standards.evidence`).
- **I**: the grid's carbon intensity each record used, g CO2e/kWh (CodeCarbon's
  location-based average: the standard prefers a marginal rate, which CodeCarbon does not
  give, and the output says so); ``E × I`` is recomputed from them and must agree with the
  records' own CO2e, else the records are inconsistent and nothing is scored.
- **M**: the embodied emissions of the hardware, amortised: ``TE × (TiR / EL) × share``
  (``--embodied-kg`` TE, the hardware's total embodied emissions; ``--lifetime-years`` EL;
  TiR each record's duration; ``--hardware-share`` the part of the hardware reserved, 1 for
  a dedicated machine). There is no built-in default per device class: no figure for
  GPUs and servers could be checked against a published source when this was written, and
  a guessed M would be a silent one. ``--embodied-kg 0`` says M is left out, and the output
  says so.
- **R**: ``--functional-unit "LABEL=N"``: N units of LABEL in the run (``"1M training
  tokens=42"``); ``epoch`` takes N from the records' epochs.

The score's range carries E's and I's ranges through (M and R are as given).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mrv_ml.errors import RecordError
from mrv_ml.reporting.standards.evidence import Evidence
from mrv_ml.reporting.text import field_at

__all__ = ["Embodied", "FunctionalUnit", "Score", "parse_functional_unit", "render", "score"]

HOURS_PER_YEAR = 365.25 * 24
#: How far E × I may differ from the records' CO2e: their own rounding, no more.
AGREEMENT = 1e-3


@dataclass(frozen=True)
class FunctionalUnit:
    label: str
    count: float | None  # None: from the records (epochs)


_UNIT = re.compile(r"^\s*([^=]{1,100}?)\s*=\s*([0-9][0-9_.eE+-]*)\s*$")


def parse_functional_unit(text: str) -> FunctionalUnit:
    """``"LABEL=N"`` or ``epoch``; RecordError for anything else."""
    if text.strip().lower() in ("epoch", "per epoch"):
        return FunctionalUnit("epoch", None)
    m = _UNIT.match(text)
    count = None
    if m is not None:
        try:
            count = float(m.group(2).replace("_", ""))
        except ValueError:
            count = None
    if m is None or count is None or not math.isfinite(count) or count <= 0:
        raise RecordError(f"--functional-unit {text[:60]!r}: give LABEL=N with N > 0 (\"1M "
                          "training tokens=42\", \"sample=50000\", \"FLOP=3.1e18\") or epoch")
    return FunctionalUnit(m.group(1).removeprefix("per ").strip(), count)


@dataclass(frozen=True)
class Embodied:
    total_kg: float  # TE
    lifetime_years: float | None  # EL (None only when TE is 0)
    share: float = 1.0  # the part of the hardware reserved for the run

    def __post_init__(self) -> None:
        if not math.isfinite(self.total_kg) or self.total_kg < 0:
            raise RecordError("--embodied-kg: a number of kg CO2e, 0 or more")
        if self.total_kg > 0 and (self.lifetime_years is None or
                                  not math.isfinite(self.lifetime_years) or
                                  self.lifetime_years <= 0):
            raise RecordError("--embodied-kg needs --lifetime-years (the hardware's expected "
                              "lifespan, over which its embodied emissions are spread)")
        if not math.isfinite(self.share) or not 0 < self.share <= 1:
            raise RecordError("--hardware-share: the part of the hardware reserved, in (0, 1]")


@dataclass(frozen=True)
class Score:
    """Every term of the score, in the units ISO/IEC 21031 names."""

    functional_unit: str
    r: float
    e_kwh: float
    e_low_kwh: float
    e_high_kwh: float
    i_g_per_kwh: float  # E-weighted over the records
    i_low_g_per_kwh: float
    i_high_g_per_kwh: float
    operational_g: float  # E × I
    m_g: float
    sci_g_per_unit: float
    sci_low_g_per_unit: float
    sci_high_g_per_unit: float
    notes: tuple[str, ...]


def _intensity(e: Evidence) -> float:
    f = e.figures
    if f.carbon_intensity_g_per_kwh is None:
        raise RecordError(f"{e.mrv_id}: the record states no carbon intensity: I is unknown")
    computed, stated = f.energy_kwh * f.carbon_intensity_g_per_kwh, f.co2_kg * 1000
    if not math.isclose(computed, stated, rel_tol=AGREEMENT, abs_tol=1e-9):
        raise RecordError(f"{e.mrv_id}: E x I = {computed:.6g} g but the record states "
                          f"{stated:.6g} g CO2e: its figures disagree, so no SCI is scored")
    return f.carbon_intensity_g_per_kwh


def score(evidence: Sequence[Evidence], unit: FunctionalUnit, embodied: Embodied) -> Score:
    """The SCI of the records ``evidence`` (see the module's docstring)."""
    if not evidence:
        raise RecordError("no record to score")
    r = unit.count
    if r is None:
        epochs = [field_at(e.record, "training", "epochs") for e in evidence]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in epochs):
            raise RecordError("--functional-unit epoch: a record does not state its epochs; "
                              "give LABEL=N")
        r = float(sum(epochs))
    e_kwh = sum(e.figures.energy_kwh for e in evidence)
    pairs = [(e.figures, _intensity(e)) for e in evidence]
    operational = sum(f.energy_kwh * i for f, i in pairs)
    op_low = sum(f.energy_low_kwh * i * f.grid_low_factor for f, i in pairs)
    op_high = sum(f.energy_high_kwh * i * f.grid_high_factor for f, i in pairs)
    i = operational / e_kwh if e_kwh > 0 else pairs[0][1]
    durations = [e.figures.duration_s for e in evidence]
    notes = ["I is CodeCarbon's location-based average intensity; ISO/IEC 21031 prefers a "
             "marginal rate, which is not available"]
    if embodied.total_kg == 0:
        m_g = 0.0
        notes.append("M is left out (--embodied-kg 0): the score is operational only")
    else:
        if any(d is None for d in durations):
            raise RecordError("M needs each record's duration, and a record has none")
        assert embodied.lifetime_years is not None
        hours = sum(d for d in durations if d is not None) / 3600
        m_g = embodied.total_kg * 1000 * hours / (embodied.lifetime_years * HOURS_PER_YEAR) \
            * embodied.share
        notes.append(f"M = {embodied.total_kg:g} kg x ({hours:.4g} h / "
                     f"{embodied.lifetime_years:g} years) x share {embodied.share:g}")
    return Score(functional_unit=unit.label, r=r, e_kwh=e_kwh,
                 e_low_kwh=sum(e.figures.energy_low_kwh for e in evidence),
                 e_high_kwh=sum(e.figures.energy_high_kwh for e in evidence),
                 i_g_per_kwh=i,
                 i_low_g_per_kwh=min(x * f.grid_low_factor for f, x in pairs),
                 i_high_g_per_kwh=max(x * f.grid_high_factor for f, x in pairs),
                 operational_g=operational, m_g=m_g,
                 sci_g_per_unit=(operational + m_g) / r,
                 sci_low_g_per_unit=(op_low + m_g) / r,
                 sci_high_g_per_unit=(op_high + m_g) / r, notes=tuple(notes))


def render(evidence: Sequence[Evidence], unit: FunctionalUnit, embodied: Embodied) -> str:
    """The score as JSON: the formula, each term, the range, and each record by its MRV ID
    and fingerprint."""
    s = score(evidence, unit, embodied)
    doc: dict[str, Any] = {
        "standard": "ISO/IEC 21031:2024 Software Carbon Intensity (SCI)",
        "formula": "SCI = (E * I + M) / R",
        "sci": {"value_g_co2e_per_unit": s.sci_g_per_unit,
                "range_g_co2e_per_unit": [s.sci_low_g_per_unit, s.sci_high_g_per_unit],
                "functional_unit": s.functional_unit},
        "terms": {"E_kwh": s.e_kwh, "E_range_kwh": [s.e_low_kwh, s.e_high_kwh],
                  "I_g_co2e_per_kwh": s.i_g_per_kwh,
                  "I_range_g_co2e_per_kwh": [s.i_low_g_per_kwh, s.i_high_g_per_kwh],
                  "E_times_I_g_co2e": s.operational_g, "M_g_co2e": s.m_g, "R": s.r,
                  "embodied_input": asdict(embodied)},
        "notes": list(s.notes),
        "records": [{"mrv_id": e.mrv_id, "fingerprint": e.fingerprint_uri,
                     "anchored": e.anchored_where, "verify": e.verify_command,
                     "energy_kwh": e.figures.energy_kwh, "co2_kg": e.figures.co2_kg}
                    for e in evidence],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
