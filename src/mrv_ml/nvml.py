"""NVIDIA's NVML (nvidia-ml-py, imported as ``pynvml``), the one module that calls it.

Every NVML error is translated here, by class, into :class:`GPUUnavailableError` (no
library, no driver, no GPU: the normal case on many machines), :class:`GPULostError`
(the GPU fell off the bus or the container lost it) or :class:`NVMLFailedError` (NVML
answered with another error), as Zeus does in ``_handle_nvml_errors``. Callers never see a
``pynvml.NVMLError``.

``pynvml`` is imported on each call, not at import time: NVML is optional and tests put a
fake device model behind the real module's functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from mrv_ml.errors import GPUError, GPULostError, GPUUnavailableError, NVMLFailedError

__all__ = ["GpuDevice", "GPUError", "GPULostError", "GPUUnavailableError", "NVMLFailedError",
           "cuda_visible_devices", "device_count", "gpu_summaries", "list_devices", "running_pids",
           "session", "total_energy_mj"]

T = TypeVar("T")
log = logging.getLogger(__name__)


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError as e:
        raise GPUUnavailableError("NVML is not installed (nvidia-ml-py)") from e
    return pynvml


def _call(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with NVML's errors translated by class."""
    pynvml = _pynvml()
    try:
        return fn(*args)
    except pynvml.NVMLError as e:
        lost = tuple(getattr(pynvml, name) for name in (
            "NVMLError_GpuIsLost", "NVMLError_ResetRequired", "NVMLError_GpuNotFound")
            if hasattr(pynvml, name))
        absent = tuple(getattr(pynvml, name) for name in (
            "NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded") if hasattr(pynvml, name))
        if lost and isinstance(e, lost):
            raise GPULostError(f"the GPU is lost: {e}") from e
        if absent and isinstance(e, absent):
            raise GPUUnavailableError(f"NVML unavailable: {e}") from e
        raise NVMLFailedError(f"NVML failed: {type(e).__name__}: {e}") from e


@contextlib.contextmanager
def session() -> Iterator[Any]:
    """NVML initialised for the block (NVML counts its inits; each is paired with a
    shutdown); yields the ``pynvml`` module. :class:`GPUUnavailableError` without NVML."""
    pynvml = _pynvml()
    try:
        _call(pynvml.nvmlInit)
    except NVMLFailedError as e:  # any init failure means: no usable GPU here
        raise GPUUnavailableError(str(e)) from e
    try:
        yield pynvml
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as NVML numbers it; ``mig`` is the MIG mode and instances, or ``None``."""

    nvml_index: int
    uuid: str
    name: str
    memory_gb: float | None
    mig: dict[str, Any] | None
    cuda_visible_index: int | None

    def to_record(self) -> dict[str, Any]:
        return {"nvml_index": self.nvml_index, "uuid": self.uuid, "name": self.name,
                "mig": self.mig, "cuda_visible_index": self.cuda_visible_index}


def cuda_visible_devices(environ: dict[str, str] | None = None) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` as a list of entries (indices or UUIDs), ``None`` unset."""
    raw = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def gpu_summaries() -> list[dict[str, Any]]:
    """The record's ``hardware.gpus``: index, name, memory_gb per GPU; empty without NVML
    (or when it fails: a warning, never an error)."""
    gpus: list[dict[str, Any]] = []
    try:
        with session() as pynvml:
            for index in range(device_count()):
                handle = _call(pynvml.nvmlDeviceGetHandleByIndex, index)
                memory = _call(pynvml.nvmlDeviceGetMemoryInfo, handle)
                gpus.append({"index": index,
                             "name": _text(_call(pynvml.nvmlDeviceGetName, handle)),
                             "memory_gb": round(memory.total / 1024**3, 2)})
    except GPUUnavailableError as e:  # no driver / no GPU: the normal case
        log.debug("NVML unavailable: %s", e)
    except GPUError as e:
        log.warning("NVML failed while listing GPUs: %s", e)
    return gpus


def device_count() -> int:
    pynvml = _pynvml()
    return int(_call(pynvml.nvmlDeviceGetCount))


def _mig(pynvml: Any, handle: Any) -> dict[str, Any] | None:
    """MIG mode and its instances' UUIDs; ``None`` on a GPU without MIG."""
    try:
        current, _pending = _call(pynvml.nvmlDeviceGetMigMode, handle)
    except (NVMLFailedError, AttributeError):  # NotSupported: no MIG on this GPU
        return None
    if not current:
        return {"enabled": False, "instances": []}
    instances: list[dict[str, Any]] = []
    for i in range(int(_call(pynvml.nvmlDeviceGetMaxMigDeviceCount, handle))):
        try:
            mig = _call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, i)
        except NVMLFailedError:  # NotFound: the slot is empty
            continue
        instances.append({"uuid": _text(_call(pynvml.nvmlDeviceGetUUID, mig)),
                          "gpu_instance_id": int(_call(pynvml.nvmlDeviceGetGpuInstanceId, mig)),
                          "compute_instance_id": int(
                              _call(pynvml.nvmlDeviceGetComputeInstanceId, mig))})
    return {"enabled": True, "instances": instances}


def list_devices(visible: list[str] | None = None) -> list[GpuDevice]:
    """The GPUs this process may use: all of them, or those ``CUDA_VISIBLE_DEVICES``
    names (by index or UUID prefix, in its order, as CUDA reads it). Call inside
    :func:`session`."""
    pynvml = _pynvml()
    devices: list[GpuDevice] = []
    for index in range(device_count()):
        handle = _call(pynvml.nvmlDeviceGetHandleByIndex, index)
        uuid = _text(_call(pynvml.nvmlDeviceGetUUID, handle))
        position = _visible_position(visible, index, uuid)
        if visible is not None and position is None:
            continue
        try:
            memory_gb: float | None = round(
                _call(pynvml.nvmlDeviceGetMemoryInfo, handle).total / 1024**3, 2)
        except NVMLFailedError:
            memory_gb = None
        devices.append(GpuDevice(index, uuid, _text(_call(pynvml.nvmlDeviceGetName, handle)),
                                 memory_gb, _mig(pynvml, handle), position))
    return devices


def _visible_position(visible: list[str] | None, index: int, uuid: str) -> int | None:
    if visible is None:
        return None
    for position, entry in enumerate(visible):
        if entry == str(index) or (entry.startswith(("GPU-", "MIG-")) and (
                uuid.startswith(entry) or entry.startswith(uuid))):
            return position
    return None


def running_pids(nvml_index: int) -> set[int]:
    """PIDs of the compute and graphics processes NVML sees on the GPU (host PIDs: in a
    container they may not be ours to compare)."""
    pynvml = _pynvml()
    handle = _call(pynvml.nvmlDeviceGetHandleByIndex, nvml_index)
    pids: set[int] = set()
    for fn in (pynvml.nvmlDeviceGetComputeRunningProcesses,
               pynvml.nvmlDeviceGetGraphicsRunningProcesses):
        pids.update(int(p.pid) for p in _call(fn, handle))
    return pids


def total_energy_mj(nvml_index: int) -> int:
    """The GPU's energy counter since the driver loaded, in millijoules (Volta and later)."""
    pynvml = _pynvml()
    handle = _call(pynvml.nvmlDeviceGetHandleByIndex, nvml_index)
    return int(_call(pynvml.nvmlDeviceGetTotalEnergyConsumption, handle))
