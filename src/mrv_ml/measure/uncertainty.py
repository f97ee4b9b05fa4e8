"""How far each estimated figure may be off: the one table of ranges.

A component's figure is ``energy × [low_factor, high_factor]`` where its method is an
estimate (a TDP model, a RAM model, the world-average grid intensity). Every range is
written up with its sources in ``docs/uncertainty.md`` (the ``reference`` anchors below);
where no published figure fits, the range is an engineering judgement and the docs say so.
A figure read from a meter (RAPL, NVML's energy counter) carries no range here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DOC = "docs/uncertainty.md"


@dataclass(frozen=True)
class Range:
    """The plausible true value as factors of the figure, and why."""

    low_factor: float
    high_factor: float
    basis: str
    anchor: str

    def to_record(self) -> dict[str, Any]:
        return {"low_factor": self.low_factor, "high_factor": self.high_factor,
                "basis": self.basis, "reference": f"{DOC}#{self.anchor}"}


#: The one table. Keys: what the measurement module knows about a component's method.
RANGES: dict[str, Range] = {
    "cpu_constant": Range(
        0.4, 2.0, "CodeCarbon assumes 50 % of the CPU's TDP throughout; a real package draws "
        "from ~20 % of TDP idle to about TDP (more under turbo) at full load", "cpu-tdp"),
    "cpu_load": Range(
        0.5, 1.5, "CodeCarbon scales the CPU's TDP by its load; TDP is a thermal design "
        "figure, not a measured power, and load-to-power curves differ per CPU", "cpu-tdp"),
    "cpu_generic_tdp": Range(
        0.25, 3.0, "the CPU model is not in CodeCarbon's database: its generic 85 W TDP "
        "stands in for CPUs from ~15 W (laptops) to ~300 W (servers)", "cpu-generic-tdp"),
    "ram_model": Range(
        0.5, 2.0, "CodeCarbon's RAM model: 5 W per DIMM (1.5 W on ARM) with the DIMM count "
        "guessed from the memory size; DIMMs draw ~1-10 W by generation, size and load",
        "ram-model"),
    "gpu_nvml_power": Range(
        0.95, 1.05, "NVML power readings, sampled; NVIDIA states +/- 5 % of the power draw "
        "for the reading itself", "gpu-nvml"),
    "grid_world_average": Range(
        0.05, 1.8, "no country configured: the world-average intensity (475 g/kWh) stands in "
        "for grids from ~25 g/kWh (hydro, nuclear) to ~850 g/kWh (coal)", "grid-world-average"),
}


def cpu_range(mode: str, *, generic_tdp: bool) -> Range | None:
    """The range of a CPU figure from CodeCarbon's ``mode``; ``None`` for a meter."""
    if mode not in ("constant", "cpu_load"):
        return None
    if generic_tdp:
        return RANGES["cpu_generic_tdp"]
    return RANGES["cpu_constant" if mode == "constant" else "cpu_load"]


def bounds_kwh(energy_kwh: float | None, method: Any) -> tuple[float, float] | None:
    """``(low, high)`` kWh of a component's figure given its ``methods.<c>`` entry, or
    ``None`` when it carries no range (measured, or nothing to scale)."""
    if energy_kwh is None or not isinstance(method, dict):
        return None
    u = method.get("uncertainty")
    if not isinstance(u, dict):
        return None
    low, high = u.get("low_factor"), u.get("high_factor")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return None
    return energy_kwh * float(low), energy_kwh * float(high)
