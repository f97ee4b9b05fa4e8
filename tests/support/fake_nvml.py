"""A fake GPU model behind the real nvidia-ml-py module: its functions are replaced, its
error classes (``pynvml.NVMLError_*``) stay NVIDIA's, so the code under test takes the path
it takes on a GPU machine.

Each fake GPU draws ``power_w`` (set it with :meth:`FakeNVML.set_power`); its energy counter
integrates that power over real time, as a driver's does. :func:`simulated_gpu_machine`
also makes CodeCarbon see the GPUs (its GPU code is NVML calls too), so its real GPU path
runs end to end: detection, selection by ``gpu_ids``, counter deltas, power fallback."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvml
import pytest


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-11111111-2222-3333-4444-555555555555"
    memory_total: int = 80 * 1024**3
    compute_pids: list[int] = field(default_factory=list)
    graphics_pids: list[int] = field(default_factory=list)
    mig: list[str] | None = None  # MIG instance UUIDs when MIG is enabled
    energy_mj: float = 0.0
    power_w: float = 0.0
    power_limit_w: float = 700.0
    counter_fails: bool = False  # the energy counter raises NVMLError_NotSupported
    lost: bool = False  # fell off the bus: every call on it raises NVMLError_GpuIsLost
    _at: float = field(default_factory=time.monotonic)  # when energy_mj was last brought up

    def integrate(self) -> None:
        now = time.monotonic()
        self.energy_mj += self.power_w * (now - self._at) * 1000.0
        self._at = now


@dataclass
class _Proc:
    pid: int
    usedGpuMemory: int = 0


class FakeNVML:
    """``gpus``; ``fail_after``: calls before every call raises ``fail_with``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.calls = 0
        self.fail_after: int | None = None
        self.fail_with: type[Exception] = pynvml.NVMLError_Unknown
        self.inits = 0
        self.shutdowns = 0
        self.unmodelled: set[str] = set()  # NVML functions called that this model lacks
        self._lock = threading.Lock()
        for name in dir(pynvml):  # strict: a call this model lacks is seen, never real
            if name.startswith("nvml") and callable(getattr(pynvml, name)):
                monkeypatch.setattr(pynvml, name, getattr(self, name, self._unmodelled(name)))

    def _unmodelled(self, name: str) -> Any:
        def call(*_args: Any) -> Any:
            self.unmodelled.add(name)
            raise pynvml.NVMLError_NotSupported()
        return call

    def set_power(self, index: int, watts: float) -> None:
        """GPU ``index`` draws ``watts`` from now on (its counter keeps what came before)."""
        with self._lock:
            self.gpus[index].integrate()
            self.gpus[index].power_w = watts

    def counter_kwh(self, index: int) -> float:
        """GPU ``index``'s energy counter now, in kWh (as the tracker should see it)."""
        with self._lock:
            self.gpus[index].integrate()
            return self.gpus[index].energy_mj / 3.6e9

    def _tick(self) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise self.fail_with()

    def _gpu(self, handle: Any) -> FakeGpu:
        if isinstance(handle, tuple):  # a MIG handle
            return self.gpus[handle[0]]
        if handle >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        if self.gpus[handle].lost:
            raise pynvml.NVMLError_GpuIsLost()
        return self.gpus[handle]

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        self._tick()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._tick()
        if index >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return index

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        self._tick()
        if isinstance(handle, tuple):
            mig = self._gpu(handle).mig
            assert mig is not None
            return mig[handle[1]]
        return self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: Any) -> str:
        self._tick()
        return self._gpu(handle).name

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        self._tick()
        return type("Memory", (), {"total": self._gpu(handle).memory_total})()

    def nvmlDeviceGetMigMode(self, handle: Any) -> tuple[int, int]:
        self._tick()
        if self._gpu(handle).mig is None:
            raise pynvml.NVMLError_NotSupported()
        return (1, 1)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        self._tick()
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, i: int) -> tuple[int, int]:
        self._tick()
        mig = self._gpu(handle).mig or []
        if i >= len(mig):
            raise pynvml.NVMLError_NotFound()
        return (handle, i)

    def nvmlDeviceGetGpuInstanceId(self, handle: Any) -> int:
        self._tick()
        return 1 + handle[1]

    def nvmlDeviceGetComputeInstanceId(self, handle: Any) -> int:
        self._tick()
        return 0

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[_Proc]:
        self._tick()
        return [_Proc(pid) for pid in self._gpu(handle).compute_pids]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> list[_Proc]:
        self._tick()
        return [_Proc(pid) for pid in self._gpu(handle).graphics_pids]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        self._tick()
        gpu = self._gpu(handle)
        if gpu.counter_fails:
            raise pynvml.NVMLError_NotSupported()
        with self._lock:
            gpu.integrate()
            return int(gpu.energy_mj)

    # -- what CodeCarbon's GPU code asks besides (codecarbon/core/gpu_nvidia.py) ----------

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        self._tick()
        return int(self._gpu(handle).power_w * 1000)  # mW

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        self._tick()
        return int(self._gpu(handle).power_limit_w * 1000)  # mW

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        self._tick()
        busy = 100 if self._gpu(handle).power_w > 100 else 0
        return type("Utilization", (), {"gpu": busy, "memory": busy})()

    def nvmlDeviceGetTemperature(self, handle: Any, _sensor: int) -> int:
        self._tick()
        return 40

    def nvmlDeviceGetComputeMode(self, handle: Any) -> int:
        self._tick()
        return 0


def simulated_gpu_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                          gpus: list[FakeGpu]) -> FakeNVML:
    """The fake GPUs behind pynvml, seen by mrv-ml and by CodeCarbon: CodeCarbon decides
    "NVIDIA system" by running ``nvidia-smi`` (one that exits 0 is put first on PATH) and
    had found NVML unusable when it was imported on this GPU-less machine, so its module
    flags are set as on a GPU machine. Use through the ``simulated_gpus`` fixture, which
    clears CodeCarbon's per-process hardware cache before and after (it would otherwise
    keep these GPUs for later tests)."""
    from codecarbon.core import gpu, gpu_nvidia, hardware_cache

    fake = FakeNVML(monkeypatch, gpus)
    bin_dir = tmp_path / "simulated-gpu-bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nexit 0\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    for module in (gpu, gpu_nvidia):
        monkeypatch.setattr(module, "pynvml", pynvml)
        monkeypatch.setattr(module, "PYNVML_AVAILABLE", True)
    hardware_cache.clear_cache()
    return fake
