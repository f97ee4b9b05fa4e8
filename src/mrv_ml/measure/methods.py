"""How CodeCarbon measured each component, read from its hardware objects.

For the record's ``energy_emissions.methods`` (method, measured or estimated, the
assumption behind an estimate and its range from :mod:`mrv_ml.measure.uncertainty`), its
``tracking_scope`` (what CodeCarbon's ``tracking_mode`` covers, component by component,
as CodeCarbon 3.x does it), and the methods changing during a run (CodeCarbon falling back
from RAPL to TDP, or from a GPU's energy counter to power readings).

CodeCarbon's hardware objects are private API (``_mode``, ``_tdp``, ``_use_power_fallback``):
everything here reads them with ``getattr`` and a default, so a CodeCarbon that renamed
them gives less detail, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mrv_ml.measure.uncertainty import RANGES, cpu_range

# CodeCarbon's CPU modes: (method shown in the record, measured rather than estimated).
CPU_METHODS: dict[str, tuple[str, bool]] = {
    "intel_rapl": ("RAPL energy counters", True),
    "intel_power_gadget": ("Intel Power Gadget", True),
    "windows_emi": ("Windows Energy Meter Interface", True),
    "apple_powermetrics": ("Apple powermetrics", True),
    "cpu_load": ("estimated from CPU load and TDP", False),
    "constant": ("estimated from TDP (constant)", False),
}
#: CodeCarbon's RAM model (codecarbon/external/ram.py, 3.x): watts per DIMM, DIMMs guessed.
RAM_W_PER_DIMM_X86 = 5.0
RAM_W_PER_DIMM_ARM = 1.5

GPU_COUNTER = "NVML total-energy counter"
GPU_POWER = "NVML power readings (sampled; the energy counter was unavailable)"
NO_VISIBLE_GPU = "none (no GPU visible to the run: CUDA_VISIBLE_DEVICES)"


def _gpu_devices(hw: Any) -> list[Any]:
    """The GPU devices CodeCarbon measures: those of its ``gpu_ids`` (all when unset)."""
    devices = list(getattr(getattr(hw, "devices", None), "devices", None) or [])
    ids = getattr(hw, "gpu_ids", None)
    if ids is None:
        return devices
    wanted = {int(i) for i in ids if isinstance(i, int) or str(i).isdigit()}
    return [d for d in devices if getattr(d, "gpu_index", None) in wanted]


def component_modes(tracker: Any) -> dict[str, str]:
    """``{"cpu": "intel_rapl", "gpu": "counter"|"power"|"counter,power", ...}`` now."""
    modes: dict[str, str] = {}
    for hw in getattr(tracker, "_hardware", None) or []:
        kind = type(hw).__name__
        if kind == "CPU":
            modes["cpu"] = str(getattr(hw, "_mode", ""))
        elif kind in ("GPU", "AllGPUDevices"):
            modes["gpu"] = ",".join(
                "power" if getattr(d, "_use_power_fallback", False) else "counter"
                for d in _gpu_devices(hw))
        elif kind == "RAM":
            modes["ram"] = "model"
    return modes


def _cpu_label(mode: str) -> str:
    return CPU_METHODS.get(mode, (f"CodeCarbon mode {mode!r}", False))[0]


def _gpu_label(mode: str) -> str:
    return {"counter": GPU_COUNTER, "power": GPU_POWER}.get(mode, f"NVML ({mode})")


def describe_change(component: str, before: str | None, after: str | None) -> str | None:
    """The note for a method that changed during the run, ``None`` when it did not."""
    if before == after:
        return None
    if component == "cpu":
        was, now = _cpu_label(before or ""), _cpu_label(after or "")
    elif component == "gpu":
        was = ", ".join(_gpu_label(m) for m in (before or "").split(",") if m) or "none"
        now = ", ".join(_gpu_label(m) for m in (after or "").split(",") if m) or "none"
    else:
        was, now = before or "none", after or "none"
    return (f"CodeCarbon's {component.upper()} method changed during the run, from {was} to "
            f"{now}: the {component.upper()} figure mixes both methods")


class ModeWatch:
    """The methods at start and at each of CodeCarbon's measurements; the changes seen."""

    def __init__(self) -> None:
        self._last: dict[str, str] | None = None
        self.changes: list[str] = []

    def observe(self, tracker: Any) -> None:
        try:
            now = component_modes(tracker)
        except Exception:  # noqa: BLE001 - private API; seeing less is no failure
            return
        if self._last is not None:
            for component in sorted(set(self._last) | set(now)):
                note = describe_change(component, self._last.get(component), now.get(component))
                if note is not None and note not in self.changes:
                    self.changes.append(note)
        self._last = now


def methods(tracker: Any, changes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The record's ``methods``: per component its method, whether it was measured, the
    assumption of an estimate and its ``uncertainty`` range (:mod:`mrv_ml.measure.uncertainty`)."""
    out: dict[str, dict[str, Any]] = {
        "cpu": {"method": "none", "measured": False},
        "gpu": {"method": "none (no GPU detected)", "measured": False},
        "ram": {"method": "none", "measured": False},
    }
    for hw in getattr(tracker, "_hardware", None) or []:
        kind = type(hw).__name__
        if kind == "CPU":
            out["cpu"] = _cpu(hw)
        elif kind in ("GPU", "AllGPUDevices"):
            modes = component_modes(tracker).get("gpu", "").split(",")
            if modes == [""]:  # GPUs on the machine, none of them the run's
                out["gpu"] = {"method": NO_VISIBLE_GPU, "measured": False}
            elif "power" in modes:
                out["gpu"] = {"method": GPU_POWER, "measured": True,
                              "uncertainty": RANGES["gpu_nvml_power"].to_record()}
            else:
                out["gpu"] = {"method": GPU_COUNTER, "measured": True}
        elif kind == "RAM":
            out["ram"] = _ram(hw)
        elif kind == "AppleSiliconChip":
            out["cpu"] = {"method": "Apple powermetrics", "measured": True}
    for component in out:
        if changes and any(f"{component.upper()} method changed" in c for c in changes):
            out[component]["method_changed_during_run"] = True
    return out


def _cpu(hw: Any) -> dict[str, Any]:
    mode = str(getattr(hw, "_mode", ""))
    label, measured = CPU_METHODS.get(mode, (f"CodeCarbon mode {mode!r}", False))
    entry: dict[str, Any] = {"method": label, "measured": measured}
    tdp = getattr(hw, "_tdp", None)
    if not measured and tdp:
        generic = bool(getattr(hw, "_is_generic_tdp", False))
        entry["tdp_w"] = float(tdp)
        entry["generic_tdp"] = generic
        source = ("CodeCarbon's generic default: the CPU model is not in its database"
                  if generic else "CodeCarbon's CPU database")
        rule = ("50 % of TDP throughout" if mode == "constant"
                else "TDP scaled by the CPU load")
        entry["assumption"] = f"TDP {float(tdp):g} W ({source}); {rule}"
        rng = cpu_range(mode, generic_tdp=generic)
        if rng is not None:
            entry["uncertainty"] = rng.to_record()
    return entry


def _ram(hw: Any) -> dict[str, Any]:
    forced = getattr(hw, "_force_ram_power", None)
    if forced is not None:
        return {"method": "a constant RAM power given to CodeCarbon", "measured": False,
                "assumption": f"{float(forced):g} W throughout (user-provided)"}
    per_dimm = RAM_W_PER_DIMM_ARM if getattr(hw, "is_arm_cpu", False) else RAM_W_PER_DIMM_X86
    memory = ("this process and its descendants' resident memory"
              if getattr(hw, "_tracking_mode", "machine") == "process"
              else "the machine's installed memory")
    return {"method": "estimated from installed memory size", "measured": False,
            "assumption": f"CodeCarbon's RAM model: {per_dimm:g} W per DIMM, the DIMM count "
                          f"guessed from {memory} (at least 2 DIMMs)",
            "uncertainty": RANGES["ram_model"].to_record()}


def grid_method(location_source: str) -> dict[str, Any]:
    """``methods.grid``: where the carbon intensity comes from; a range for the world
    average."""
    if location_source == "default":
        return {"method": "world-average carbon intensity (CodeCarbon, no country configured)",
                "measured": False, "assumption": "CodeCarbon's world average, 475 g/kWh",
                "uncertainty": RANGES["grid_world_average"].to_record()}
    how = "looked up online" if location_source == "online" else "configured country"
    return {"method": f"annual average carbon intensity of the {how}'s grid (CodeCarbon)",
            "measured": False}


def tracking_scope(tracking_mode: str, modes: dict[str, str]) -> dict[str, str]:
    """``energy_emissions.tracking_scope``: what each component's figure covers under
    CodeCarbon's ``tracking_mode``, as CodeCarbon 3.x implements it."""
    gpu = ("each measured GPU whole, whatever else runs on it (CodeCarbon has no per-process "
           "GPU energy; see gpu_sharing)")
    if tracking_mode != "process":
        return {"cpu": "the whole machine's CPU(s)", "ram": "the machine's installed memory",
                "gpu": gpu}
    cpu_mode = modes.get("cpu", "")
    if cpu_mode == "cpu_load":
        cpu = ("this process and its descendants: their CPU time over the interval, divided "
               "by the logical CPUs, times TDP (a descendant's CPU time before its first "
               "sample, and after its last, is not counted)")
    elif cpu_mode == "constant":
        cpu = "the whole CPU: CodeCarbon's constant TDP mode does not divide by process"
    elif cpu_mode:
        cpu = (f"the whole CPU package: CodeCarbon reads {_cpu_label(cpu_mode)} for the "
               "package and does not divide it by process")
    else:
        cpu = "no CPU figure"
    return {"cpu": cpu,
            "ram": ("this process and its descendants' resident memory through CodeCarbon's "
                    "RAM model"),
            "gpu": gpu}


def attribution(tracking_mode: str, share: Mapping[str, Any], *, chosen: bool) -> dict[str, Any]:
    """``energy_emissions.methods.attribution``: how much of the node the figures give the
    job, and why (``share``: :func:`mrv_ml.run.scheduler.node_share`)."""
    given = (f"{share['cpus_given']:g} of the machine's {share['machine_cpus']} CPUs "
             f"({share['source']})")
    if not share["shared"]:
        return {"method": f"the whole node: the job was given {given}", "measured": False}
    why = "as chosen" if chosen else "because the job shares its node"
    if tracking_mode == "process":
        return {"method": f"the job's own processes ({why}): it was given {given}; "
                          "CodeCarbon's process mode counts their CPU time and memory, "
                          "GPUs are the ones CUDA_VISIBLE_DEVICES gives the job, measured "
                          "whole (what each figure covers: tracking_scope)",
                "measured": False,
                "assumption": "where CodeCarbon cannot divide the CPU by process (RAPL, "
                              "constant TDP) the CPU figure is the whole package's; the "
                              f"job's share of the CPUs is {share['cpus_given']:g}/"
                              f"{share['machine_cpus']}, not applied to it"}
    return {"method": f"the whole node ({why}), though the job was given {given}: the "
                      "figures include whatever else ran on the node", "measured": False}
