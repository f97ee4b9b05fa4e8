"""What the run ran on: CPU, memory and GPUs.

GPUs are read through NVIDIA's own NVML bindings (nvidia-ml-py), not by shelling out to
nvidia-smi. No GPU (or no driver) is the normal case on many machines and is silent.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import platform
from pathlib import Path
from typing import Any

import psutil

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
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:  # no driver / no GPU: the normal case here
        log.debug("NVML unavailable: %s", e)
        return []
    gpus: list[dict[str, Any]] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "memory_gb": round(memory.total / _BYTES_PER_GB, 2),
            })
    except pynvml.NVMLError as e:
        log.warning("NVML failed while listing GPUs: %s", e)
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
    return gpus


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
