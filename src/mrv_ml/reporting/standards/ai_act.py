"""The energy part of the technical documentation of a general-purpose AI model under the
EU AI Act (Regulation (EU) 2024/1689, Annex XI, Section 1, point 2(d) and (e)): the
computational resources used to train the model (floating point operations), the training
time, and its known or estimated energy consumption, with the method.

One Markdown section a provider pastes into their documentation, with the same facts as a
JSON block for their tooling, from the records of every training stage of the model (a
pre-training and its fine-tunes, each a record):

- **Compute**: ``--training-flops`` as the provider states it; else, when the parameters
  and the training tokens are given, the common estimate C ≈ 6 · N · D (Kaplan et al.,
  2020, "Scaling Laws for Neural Language Models", for dense transformers), labelled as an
  estimate with its formula; else "not stated" (a record cannot know it).
- **Time**: the records' wall-clock durations, and their sum.
- **Energy**: the records' sum, "known (metered)" only when every component of every
  record was read from a meter, else "estimated", with each method and the range the
  estimate carries (:mod:`~mrv_ml.reporting.standards.evidence`).
- **How to verify**: each record's MRV ID, fingerprint, where it is anchored, and the
  command; the figures are the records' own and are checked by ``mrv verify``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mrv_ml.errors import RecordError
from mrv_ml.reporting.standards.evidence import Evidence
from mrv_ml.reporting.text import printable

__all__ = ["Compute", "compute_of", "render", "section"]

LEGAL_BASIS = "Regulation (EU) 2024/1689 (AI Act), Annex XI, Section 1, point 2(d) and (e)"
ESTIMATE_FORMULA = ("C ≈ 6 · N · D (N parameters, D training tokens; Kaplan et al. 2020, "
                    "for dense transformers)")


@dataclass(frozen=True)
class Compute:
    flops: float | None
    basis: str  # "stated", "estimated" or "not stated"
    how: str


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise RecordError(f"{name}: a positive number")
    return value


def compute_of(training_flops: float | None = None, parameters: float | None = None,
               tokens: float | None = None) -> Compute:
    """What can be said of the training compute from what the provider gives."""
    flops = _positive("--training-flops", training_flops)
    n, d = _positive("--parameters", parameters), _positive("--tokens", tokens)
    if flops is not None:
        return Compute(flops, "stated", "as stated by the provider (--training-flops)")
    if n is not None and d is not None:
        return Compute(6 * n * d, "estimated", f"estimated: {ESTIMATE_FORMULA}, with "
                                               f"N = {n:.4g} and D = {d:.4g}")
    if n is not None or d is not None:
        raise RecordError("an estimate of the training compute needs both --parameters and "
                          "--tokens (or give --training-flops)")
    return Compute(None, "not stated", "not stated: give --training-flops, or --parameters "
                                       "and --tokens for an estimate")


def section(evidence: Sequence[Evidence], compute: Compute) -> dict[str, Any]:
    """The section's facts, as the JSON block holds them."""
    if not evidence:
        raise RecordError("no record for the section")
    energy = sum(e.figures.energy_kwh for e in evidence)
    metered = all(e.figures.all_measured for e in evidence)
    durations = [e.figures.duration_s for e in evidence]
    return {
        "legal_basis": LEGAL_BASIS,
        "training_compute": {"flops": compute.flops, "basis": compute.basis,
                             "how": compute.how},
        "training_time": {"total_s": sum(d for d in durations if d is not None)
                          if all(d is not None for d in durations) else None,
                          "per_record_s": durations},
        "energy_consumption": {
            "total_kwh": energy,
            "range_kwh": [sum(e.figures.energy_low_kwh for e in evidence),
                          sum(e.figures.energy_high_kwh for e in evidence)],
            "known_or_estimated": "known (metered)" if metered else "estimated",
            "method": [{"mrv_id": e.mrv_id, "tool": " ".join(
                x for x in (e.figures.measurement_tool, e.figures.measurement_tool_version)
                if x),
                "components": {c.name: {"method": c.method, "measured": c.measured,
                                        "kwh": c.energy_kwh,
                                        "range_kwh": [c.low_kwh, c.high_kwh]}
                               for c in e.figures.components}} for e in evidence]},
        "emissions_kg_co2e": sum(e.figures.co2_kg for e in evidence),
        "verification": [{"mrv_id": e.mrv_id, "fingerprint": e.fingerprint_uri,
                          "anchored": e.anchored_where, "verify": e.verify_command}
                         for e in evidence],
    }


def _hours(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 3600:.4g} h ({seconds:.4g} s)"


def render(evidence: Sequence[Evidence], compute: Compute) -> str:
    """The Markdown section with its JSON block."""
    s = section(evidence, compute)
    e, t = s["energy_consumption"], s["training_time"]
    flops = s["training_compute"]
    compute_text = (f"{flops['flops']:.4g} FLOP, {flops['how']}" if flops["flops"] is not None
                    else flops["how"])
    methods = "; ".join(
        f"{m['mrv_id']}: {m['tool']}, " + ", ".join(
            f"{name} {c['method']} ({'metered' if c['measured'] else 'estimated'})"
            for name, c in m["components"].items()) for m in e["method"])
    rows = [
        ("Computational resources used for training (2(d))", compute_text),
        ("Training time (2(d))", _hours(t["total_s"]) + (
            f", over {len(evidence)} training runs" if len(evidence) > 1 else "")),
        ("Energy consumption (2(e))",
         f"{e['total_kwh']:.4g} kWh, {e['known_or_estimated']}; range "
         f"{e['range_kwh'][0]:.4g}–{e['range_kwh'][1]:.4g} kWh"),
        ("Method of the energy figure", methods),
        ("Emissions (not required by Annex XI)", f"{s['emissions_kg_co2e']:.4g} kg CO2e"),
    ]
    lines = ["## Energy and compute of training", "",
             f"Under {LEGAL_BASIS}. Each figure comes from an MRV record whose fingerprint is "
             "anchored; anyone can check it with the command given.", "",
             "| Item | Value |", "| --- | --- |"]
    lines += [f"| {label} | {_cell(value)} |" for label, value in rows]
    lines += ["", "How to verify:", ""]
    lines += [f"- `{v['mrv_id']}`: fingerprint `{v['fingerprint']}`, anchored: "
              f"{_cell(v['anchored'])}; run `{v['verify']}` with its `.proof.json` beside it"
              for v in s["verification"]]
    lines += ["", "```json", json.dumps(s, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Record text in a Markdown table cell: no control characters, no cell breaks."""
    return printable(text).replace("|", "\\|").replace("\n", " ")
