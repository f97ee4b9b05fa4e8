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
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from mrv_ml.errors import GPUError, GPULostError, GPUUnavailableError, NVMLFailedError

__all__ = ["GpuDevice", "GPUError", "GPULostError", "GPUUnavailableError", "NVMLFailedError",
           "VisibleGpus", "device_count", "gpu_summaries", "list_devices", "running_pids",
           "select_visible", "session", "total_energy_mj"]

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
    #: the position in ``CUDA_VISIBLE_DEVICES`` (CUDA's device number), ``None`` unset
    cuda_visible_index: int | None = None
    #: the MIG instance ``CUDA_VISIBLE_DEVICES`` names on this GPU, ``None`` for the whole GPU
    mig_instance: str | None = None

    def to_record(self) -> dict[str, Any]:
        entry = {"nvml_index": self.nvml_index, "uuid": self.uuid, "name": self.name,
                 "mig": self.mig, "cuda_visible_index": self.cuda_visible_index}
        if self.mig_instance is not None:
            entry["mig_instance"] = self.mig_instance
        return entry


@dataclass(frozen=True)
class VisibleGpus:
    """The GPUs a CUDA program started with this environment sees (NVML order), and what
    the record must say about how they were chosen."""

    devices: list[GpuDevice]
    notes: list[str]


def select_visible(devices: list[GpuDevice], environ: Mapping[str, str] | None = None
                   ) -> VisibleGpus:
    """The GPUs of ``devices`` (all of NVML's) that ``CUDA_VISIBLE_DEVICES`` makes visible,
    read as CUDA reads it (CUDA C Programming Guide, "CUDA Environment Variables"): entries
    are indices or (abbreviated, unique) ``GPU-`` UUIDs, or one ``MIG-`` instance; the
    first entry that names no GPU ends the list, so ``0,2,-1,1`` is GPUs 0 and 2 and an
    empty value is no GPU at all. Unset: every GPU.

    The one place that decides which GPUs a run is measured on: the record names them and
    CodeCarbon is told to measure exactly them (its own reading of the variable differs:
    it never matches a ``GPU-`` UUID, skips an invalid entry instead of stopping, and takes
    an empty value for "all")."""
    env = os.environ if environ is None else environ
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return VisibleGpus(list(devices), _mig_notes(devices))
    chosen: list[GpuDevice] = []
    notes: list[str] = []
    by_index = False
    entries = [entry.strip() for entry in raw.split(",")] if raw.strip() else []
    for position, entry in enumerate(entries):
        device, mig_instance, problem = _resolve_entry(devices, entry)
        if device is None:
            notes.append(f"CUDA_VISIBLE_DEVICES={raw!r}: {problem}, so CUDA sees only the "
                         f"GPUs named before it ({len(chosen)}); only those are measured")
            break
        if any(c.nvml_index == device.nvml_index for c in chosen):
            notes.append(f"CUDA_VISIBLE_DEVICES={raw!r} names GPU {device.nvml_index} twice; "
                         "it is measured once")
            continue
        by_index = by_index or entry.lstrip("+").isdigit()
        chosen.append(replace(device, cuda_visible_index=len(chosen),
                              mig_instance=mig_instance))
        if mig_instance is not None:
            if position + 1 < len(entries):
                notes.append(f"CUDA_VISIBLE_DEVICES={raw!r}: CUDA enumerates a single MIG "
                             "instance; the entries after it are not measured")
            break
    if not entries:
        notes.append("CUDA_VISIBLE_DEVICES is empty: CUDA sees no GPU, and none is measured")
    if by_index and len({d.name for d in devices}) > 1 and env.get(
            "CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        notes.append("CUDA_VISIBLE_DEVICES names GPUs by index on a machine with different "
                     "GPU models and CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA numbers them "
                     "fastest first, NVML by PCI bus, so the GPUs measured (NVML's indices) "
                     "may not be the ones used; set CUDA_DEVICE_ORDER=PCI_BUS_ID or name "
                     "them by UUID")
    chosen.sort(key=lambda d: d.nvml_index)
    return VisibleGpus(chosen, notes + _mig_notes(chosen))


def _resolve_entry(devices: list[GpuDevice], entry: str
                   ) -> tuple[GpuDevice | None, str | None, str]:
    """(the GPU, the MIG instance's UUID or ``None``, why not) for one entry."""
    if re.fullmatch(r"\+?\d+", entry):
        index = int(entry)
        if index < len(devices):
            return devices[index], None, ""
        return None, None, f"entry {entry!r} is past the {len(devices)} GPU(s) here"
    if entry.startswith("GPU-"):
        matches = [d for d in devices if d.uuid.startswith(entry)]
        if len(matches) == 1:
            return matches[0], None, ""
        why = "matches no GPU here" if not matches else "matches several GPUs"
        return None, None, f"entry {entry!r} {why}"
    if entry.startswith("MIG-GPU-"):  # the pre-R470 form: MIG-<GPU UUID>/<GI>/<CI>
        parent, _, ids = entry[len("MIG-"):].partition("/")
        for device in devices:
            if device.uuid == parent:
                for instance in (device.mig or {}).get("instances", []):
                    if ids == f"{instance['gpu_instance_id']}/{instance['compute_instance_id']}":
                        return device, instance["uuid"], ""
        return None, None, f"entry {entry!r} matches no MIG instance here"
    if entry.startswith("MIG-"):
        found = [(d, i["uuid"]) for d in devices for i in (d.mig or {}).get("instances", [])
                 if i["uuid"].startswith(entry)]
        if len(found) == 1:
            return found[0][0], found[0][1], ""
        why = "matches no MIG instance here" if not found else "matches several MIG instances"
        return None, None, f"entry {entry!r} {why}"
    return None, None, f"entry {entry!r} names no GPU (neither an index nor a UUID)"


def _mig_notes(devices: list[GpuDevice]) -> list[str]:
    return [f"GPU {d.nvml_index} ({d.name}) is in MIG mode: its energy counter covers the "
            "whole card, the work of its other MIG instances included"
            for d in devices if (d.mig or {}).get("enabled")]


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


def list_devices() -> list[GpuDevice]:
    """Every GPU NVML sees, in its order (:func:`select_visible` picks the run's). Call
    inside :func:`session`."""
    pynvml = _pynvml()
    devices: list[GpuDevice] = []
    for index in range(device_count()):
        handle = _call(pynvml.nvmlDeviceGetHandleByIndex, index)
        uuid = _text(_call(pynvml.nvmlDeviceGetUUID, handle))
        try:
            memory_gb: float | None = round(
                _call(pynvml.nvmlDeviceGetMemoryInfo, handle).total / 1024**3, 2)
        except NVMLFailedError:
            memory_gb = None
        devices.append(GpuDevice(index, uuid, _text(_call(pynvml.nvmlDeviceGetName, handle)),
                                 memory_gb, _mig(pynvml, handle)))
    return devices


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
