"""Which GPUs a run used, and whether other processes used them too.

CodeCarbon measures a GPU's whole power, whatever runs on it: a shared GPU is counted
whole. :class:`GpuWatch` chooses the devices measured, those ``CUDA_VISIBLE_DEVICES``
makes visible as CUDA reads it (:func:`mrv_ml.measure.gpu.nvml.select_visible`; the energy meter tells
CodeCarbon to measure exactly these), names them (``energy_emissions.gpu_devices``, with
``CUDA_VISIBLE_DEVICES`` as seen) and samples NVML's running processes at start,
during the run (from CodeCarbon's measurement thread, at most every
:data:`SAMPLE_EVERY_S`) and at stop; processes other than ours and our children make the
record say ``shared_with_other_processes: true`` with their count (never their command
lines). NVML failing or a GPU disappearing mid-run is written into the record's notes;
it never reaches the training.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

import psutil

from mrv_ml.errors import GPUError, GPULostError, GPUUnavailableError
from mrv_ml.measure.gpu import nvml

log = logging.getLogger(__name__)

#: Sampling NVML's process lists costs about a millisecond per GPU; once in this many
#: seconds is enough to see a neighbour that runs for a while.
SAMPLE_EVERY_S = 10.0
#: Other PIDs remembered (their count is what the record says): bounded in a week-long run.
MAX_OTHER_PIDS = 1000
#: The kernel's initial PID namespace (PROC_PID_INIT_INO, include/linux/proc_ns.h).
HOST_PID_NAMESPACE = "pid:[4026531836]"


def pids_comparable_with_nvml() -> bool:
    """Whether NVML's PIDs are this process's kind of PID: NVML reports the host's PIDs, so
    in a PID namespace of its own (a container) they cannot be matched with ours. Without
    ``/proc`` (not Linux) there are no PID namespaces: comparable."""
    try:
        return os.readlink("/proc/self/ns/pid") == HOST_PID_NAMESPACE
    except OSError:
        return not os.path.isdir("/proc/self")


class GpuWatch:
    """Start with :meth:`start`, call :meth:`sample` as often as convenient (it rate-limits
    itself), end with :meth:`stop`; :meth:`to_record_fields` gives the record's fields.
    No method raises."""

    def __init__(self, *, environ: dict[str, str] | None = None,
                 sample_every_s: float = SAMPLE_EVERY_S,
                 pids_comparable: bool | None = None) -> None:
        self._environ = environ  # None: os.environ as it is at start(), as CUDA reads it
        # None: found out at start(); False: NVML's PIDs say nothing of who shared the GPUs
        self._pids_comparable = pids_comparable
        self._seen: set[int] = set()  # every PID NVML reported, ours included
        self._visible_raw: str | None = None
        self._sample_every_s = sample_every_s
        self._devices: list[nvml.GpuDevice] = []
        self._session: Any = None
        self._others: set[int] = set()
        self._samples = 0
        self._last_sample = 0.0
        self._notes: list[str] = []
        self._lost: set[int] = set()
        self._failed = False
        self._selected = False  # start() chose the GPUs (NVML answered)
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._session is not None and not self._failed

    def start(self) -> None:
        environ = os.environ if self._environ is None else self._environ
        self._visible_raw = environ.get("CUDA_VISIBLE_DEVICES")
        try:
            session = nvml.session()
            session.__enter__()
        except GPUUnavailableError as e:  # no GPU: normal and silent
            log.debug("no GPUs to watch: %s", e)
            return
        except Exception as e:  # noqa: BLE001 - never into the training
            self._notes.append(f"NVML could not be started: {e}")
            return
        self._session = session
        if self._pids_comparable is None:
            self._pids_comparable = pids_comparable_with_nvml()
        try:
            visible = nvml.select_visible(nvml.list_devices(), environ)
        except GPUError as e:
            self._fail(f"NVML failed while listing the GPUs at start: {e}")
            return
        self._devices = visible.devices
        self._notes.extend(visible.notes)
        self._selected = True
        self.sample(force=True)

    @property
    def measured_indices(self) -> list[int] | None:
        """The NVML indices of the GPUs to measure, once :meth:`start` has chosen them
        (the run's visible GPUs; possibly none); ``None`` when NVML could not tell (no
        GPU, or NVML failing), and the energy meter then leaves the choice to CodeCarbon."""
        return [d.nvml_index for d in self._devices] if self._selected else None

    def sample(self, *, force: bool = False) -> None:
        """Other processes on our GPUs now; at most once per ``sample_every_s`` unless
        ``force``. Safe from any thread."""
        if not self.active or not self._devices:
            return
        now = time.monotonic()
        if not self._lock.acquire(blocking=force):
            return  # another thread is sampling
        try:
            if not force and now - self._last_sample < self._sample_every_s:
                return
            self._last_sample = now
            ours = _our_pids()
            for device in self._devices:
                if device.nvml_index in self._lost:
                    continue
                try:
                    pids = nvml.running_pids(device.nvml_index)
                except GPULostError as e:
                    self._lost.add(device.nvml_index)
                    self._notes.append(
                        f"GPU {device.nvml_index} ({device.name}, {device.uuid}) was lost "
                        f"during the run ({e}); its energy after that is not measured")
                    continue
                except GPUError as e:
                    if self._gone(device):  # an index past the end: the GPU went away
                        continue
                    self._fail(f"NVML failed during the run ({e}); other processes on the "
                               "GPUs were not watched after that")
                    return
                if len(self._seen) < MAX_OTHER_PIDS:
                    self._seen.update(pids)
                if self._pids_comparable and len(self._others) < MAX_OTHER_PIDS:
                    self._others.update(pid for pid in pids - ours)
            self._samples += 1
        except Exception as e:  # noqa: BLE001 - never into the training
            self._fail(f"watching the GPUs failed: {type(e).__name__}: {e}")
        finally:
            self._lock.release()

    def stop(self) -> None:
        if self._session is None:
            return
        self.sample(force=True)
        self._check_count()
        session, self._session = self._session, None
        try:
            session.__exit__(None, None, None)
        except Exception as e:  # noqa: BLE001
            log.debug("NVML shutdown: %s", e)

    def _check_count(self) -> None:
        """A GPU gone from NVML's list (a container restart) is a lost GPU too."""
        if self._failed or not self._devices:
            return
        try:
            count = nvml.device_count()
        except GPUError as e:
            self._notes.append(f"NVML could not count the GPUs at stop: {e}")
            return
        for device in self._devices:
            if device.nvml_index >= count and device.nvml_index not in self._lost:
                self._gone(device)

    def _gone(self, device: nvml.GpuDevice) -> bool:
        try:
            count = nvml.device_count()
        except GPUError:
            return False
        if device.nvml_index < count:
            return False
        self._lost.add(device.nvml_index)
        self._notes.append(f"GPU {device.nvml_index} ({device.name}, {device.uuid}) "
                           f"disappeared during the run (NVML now sees {count} GPUs); its "
                           "energy after that is not measured")
        return True

    def _fail(self, note: str) -> None:
        self._failed = True
        self._notes.append(note)
        log.warning("%s", note)

    def to_record_fields(self) -> dict[str, Any]:
        """``gpu_devices``, ``cuda_visible_devices`` and ``gpu_sharing`` (absent without GPUs
        and without CUDA_VISIBLE_DEVICES), and ``notes``."""
        fields: dict[str, Any] = {}
        if self._devices or self._visible_raw is not None:
            fields["gpu_devices"] = [d.to_record() for d in self._devices]
            fields["cuda_visible_devices"] = self._visible_raw
        notes = list(self._notes)
        if self._devices:
            comparable = bool(self._pids_comparable)
            fields["gpu_sharing"] = {
                "shared_with_other_processes": bool(self._others) if comparable else None,
                "other_process_count": len(self._others) if comparable else None,
                "pids_comparable": comparable,
                "processes_seen": len(self._seen),
                "samples": self._samples,
                "watched_whole_run": not self._failed and not self._lost,
            }
            if not comparable:
                notes.append(
                    "this run has a PID namespace of its own (a container): NVML reports the "
                    "host's PIDs, which cannot be matched with this run's, so whether other "
                    f"processes shared the GPUs cannot be told (NVML saw {len(self._seen)} "
                    "process(es) on them, this run's own among them if it used them)")
        fields["notes"] = notes
        return fields


def _our_pids() -> set[int]:
    """This process and its descendants (``mrv run``'s child and what it started)."""
    me = psutil.Process()
    pids = {me.pid}
    with contextlib.suppress(psutil.Error):  # a child gone meanwhile
        pids.update(child.pid for child in me.children(recursive=True))
    return pids
