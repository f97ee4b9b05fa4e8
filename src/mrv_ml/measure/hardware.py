"""What the run ran on: CPU, memory and GPUs.

GPUs are read through NVIDIA's own NVML bindings (nvidia-ml-py, all calls in
:mod:`mrv_ml.measure.gpu.nvml`), not by shelling out to nvidia-smi. No GPU (or no driver) is the normal
case on many machines and is silent.
"""

from __future__ import annotations

import functools
import logging
import platform
from pathlib import Path
from typing import Any

import psutil

from mrv_ml.measure.gpu.nvml import gpu_summaries

log = logging.getLogger(__name__)

_BYTES_PER_GB = 1024**3


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def get_gpus() -> list[dict[str, Any]]:
    """One entry per NVIDIA GPU: index, name, memory_gb. Empty without NVML or GPUs."""
    return gpu_summaries()


@functools.lru_cache(maxsize=1)
def _static_hardware() -> tuple[tuple[str, Any], ...]:
    gpus = get_gpus()
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "cpu_logical_cores": psutil.cpu_count(logical=True) or 1,
        "ram_gb": round(psutil.virtual_memory().total / _BYTES_PER_GB, 2),
        "gpu_count": len(gpus),
        "gpus": gpus,
        "os": platform.platform(),
        "machine": platform.machine(),
    }
    return tuple(info.items())


def get_hardware_info() -> dict[str, Any]:
    """The record's ``hardware`` section (cached per process: hardware does not change)."""
    info = dict(_static_hardware())
    info["gpus"] = [dict(g) for g in info["gpus"]]
    return info
