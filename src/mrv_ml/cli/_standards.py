"""``mrv export --format boamps | cyclonedx | spdx-ai | sci | ai-act``: the records read
once (:func:`mrv_ml.reporting.standards.evidence.load_evidence`), mapped by the format's own
module, written atomically (``-o``) or to standard output. This only parses and prints."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mrv_ml.cli._app import console_err
from mrv_ml.cli._core import _safe

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.reporting.standards.evidence import Evidence
    from mrv_ml.verification.keys import SigningKey

#: Each format, and the options of the command that belong to it alone.
FORMATS = {
    "boamps": ("task_family", "infra_type"),
    "cyclonedx": (),
    "spdx-ai": (),
    "sci": ("functional_unit", "embodied_kg", "lifetime_years", "hardware_share"),
    "ai-act": ("training_flops", "parameters", "tokens"),
}


@dataclass(frozen=True)
class StandardOptions:
    task_family: str | None = None
    infra_type: str | None = None
    functional_unit: str | None = None
    embodied_kg: float | None = None
    lifetime_years: float | None = None
    hardware_share: float | None = None
    training_flops: float | None = None
    parameters: float | None = None
    tokens: float | None = None

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_options(fmt: str | None, options: StandardOptions) -> None:
    """BadParameter for an option given with a format it does not belong to."""
    for name in options.given():
        if fmt is None or name not in FORMATS[fmt]:
            owner = next(f for f, names in FORMATS.items() if name in names)
            raise typer.BadParameter(f"{_flag(name)} is for --format {owner}")


def _render(fmt: str, evidence: Sequence[Evidence], o: StandardOptions,
            key: SigningKey | None) -> str:
    from mrv_ml.reporting.standards import ai_act, boamps, cyclonedx, sci, spdx_ai

    if fmt == "boamps":
        return boamps.render(evidence, key=key, task_family=o.task_family,
                             infra_type=o.infra_type or "other")
    if fmt == "cyclonedx":
        return cyclonedx.render(evidence)
    if fmt == "spdx-ai":
        return spdx_ai.render(evidence)
    if fmt == "sci":
        if o.functional_unit is None or o.embodied_kg is None:
            raise typer.BadParameter("--format sci needs --functional-unit LABEL=N (or epoch) "
                                     "and --embodied-kg KG (0 leaves M out, and says so)")
        return sci.render(evidence, sci.parse_functional_unit(o.functional_unit),
                          sci.Embodied(o.embodied_kg, o.lifetime_years,
                                       o.hardware_share if o.hardware_share is not None
                                       else 1.0))
    return ai_act.render(evidence, ai_act.compute_of(o.training_flops, o.parameters,
                                                     o.tokens))


def export_standard(fmt: str, refs: Sequence[str], settings: Settings, output: Path | None,
                    options: StandardOptions, key: SigningKey | None) -> None:
    """Export the records ``refs`` in ``fmt``; nothing is written unless all of it holds."""
    from mrv_ml.reporting.standards.evidence import load_evidence
    from mrv_ml.storage.atomicfile import write_bytes

    evidence = load_evidence(refs, settings.data_dir)
    text = _render(fmt, evidence, options, key)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_bytes(output, text.encode("utf-8"), what=f"the {fmt} export")
    ids = ", ".join(e.mrv_id for e in evidence)
    console_err.print(_safe(f"wrote {output} ({fmt}: {ids})"), markup=False)
