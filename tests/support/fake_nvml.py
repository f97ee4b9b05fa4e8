"""A fake GPU model behind the real nvidia-ml-py module: its functions are replaced, its
error classes (``pynvml.NVMLError_*``) stay NVIDIA's, so the code under test takes the path
it takes on a GPU machine."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    energy_mj: int = 0


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
        for name in dir(self):
            if name.startswith("nvml"):
                monkeypatch.setattr(pynvml, name, getattr(self, name))

    def _tick(self) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise self.fail_with()

    def _gpu(self, handle: Any) -> FakeGpu:
        if isinstance(handle, tuple):  # a MIG handle
            return self.gpus[handle[0]]
        if handle >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
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
        return self._gpu(handle).energy_mj
