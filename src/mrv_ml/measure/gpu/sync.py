"""GPU window edges: wait for the GPU's queued work at the start and the end of a run.

CUDA kernels run asynchronously: when ``stop()`` is called, work the training queued may
still be running, and work queued before ``start()`` may still be running after it. When
the user's code has imported torch and initialised CUDA, :func:`synchronize` waits for every
visible device (``torch.cuda.synchronize`` per device), as Zeus does at its window edges,
so that work falls inside the window it belongs to. torch is never imported here and CUDA
never initialised: a process that did not use CUDA has nothing queued.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

#: What the record says (``energy_emissions.gpu_sync``) when both edges were synchronised.
SYNC_DESCRIPTION = "torch.cuda.synchronize on every visible device at start and stop"


def _initialised_cuda() -> Any:
    """``torch.cuda`` when the user's torch has initialised CUDA, else ``None``."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None) if torch is not None else None
    if cuda is None:
        return None
    try:
        # is_initialized: CUDA was used; is_available alone would not mean work is queued
        # and calling into a fresh CUDA would initialise it (seconds, and memory per device)
        if not cuda.is_available() or not cuda.is_initialized():
            return None
    except Exception:  # noqa: BLE001 - a broken torch is not ours to fix
        return None
    return cuda


def synchronize() -> str | None:
    """Wait for every device's queued work; ``None`` when there was nothing to wait for,
    an error's one-line description when waiting failed (never raised)."""
    cuda = _initialised_cuda()
    if cuda is None:
        return None
    try:
        for device in range(int(cuda.device_count())):
            cuda.synchronize(device)
    except Exception as e:  # noqa: BLE001 - a failed kernel is the training's to report
        log.warning("torch.cuda.synchronize failed: %s", e)
        return f"failed: {type(e).__name__}: {e}"
    return "ok"


class WindowEdges:
    """The two edges of one run: :meth:`at_start`, :meth:`at_stop`, then :meth:`describe`."""

    def __init__(self) -> None:
        self.start: str | None = None
        self.stop: str | None = None

    def at_start(self) -> None:
        self.start = synchronize()

    def at_stop(self) -> None:
        self.stop = synchronize()

    def describe(self) -> str | None:
        """The record's ``gpu_sync``: ``None`` when CUDA was never in use."""
        if self.start is None and self.stop is None:
            return None
        if self.start == "ok" and self.stop == "ok":
            return SYNC_DESCRIPTION
        start = self.start or "not done (CUDA not yet initialised)"
        stop = self.stop or "not done (CUDA not initialised)"
        return f"torch.cuda.synchronize at start: {start}; at stop: {stop}"
