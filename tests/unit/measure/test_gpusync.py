"""GPU window edges: torch.cuda.synchronize at start and stop, only when the user's torch
has initialised CUDA; never importing torch ourselves. A fake torch in sys.modules records
the calls (no GPU here)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from mrv_ml.config import Settings
from mrv_ml.measure.gpu.sync import SYNC_DESCRIPTION, WindowEdges, synchronize
from mrv_ml.measure.meter import EnergyMeter


def _fake_torch(monkeypatch: pytest.MonkeyPatch, *, available: bool = True,
                initialized: bool = True, devices: int = 2,
                fail: Exception | None = None) -> list[Any]:
    calls: list[Any] = []

    def sync(device: int) -> None:
        calls.append(("synchronize", device))
        if fail is not None:
            raise fail

    cuda = types.SimpleNamespace(is_available=lambda: available,
                                 is_initialized=lambda: initialized,
                                 device_count=lambda: devices, synchronize=sync)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    return calls


def test_every_device_is_synchronised_at_both_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_torch(monkeypatch)
    meter = EnergyMeter(Settings())
    meter.start()
    assert calls == [("synchronize", 0), ("synchronize", 1)]  # before the window opens
    section = meter.stop().to_record_section()
    assert calls == [("synchronize", 0), ("synchronize", 1)] * 2
    assert section["gpu_sync"] == SYNC_DESCRIPTION


def test_nothing_happens_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    edges = WindowEdges()
    edges.at_start()
    edges.at_stop()
    assert edges.describe() is None
    assert "torch" not in sys.modules  # never imported by us


def test_cuda_never_initialised_by_us(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_torch(monkeypatch, initialized=False)  # torch imported, CUDA unused
    assert synchronize() is None and calls == []
    calls = _fake_torch(monkeypatch, available=False)
    assert synchronize() is None and calls == []


def test_cuda_first_used_during_the_run_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_torch(monkeypatch, initialized=False)
    edges = WindowEdges()
    edges.at_start()
    _fake_torch(monkeypatch, initialized=True)
    edges.at_stop()
    assert edges.describe() == ("torch.cuda.synchronize at start: not done (CUDA not yet "
                                "initialised); at stop: ok")


def test_a_failing_synchronize_is_recorded_never_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_torch(monkeypatch, fail=RuntimeError("CUDA error: an illegal memory access"))
    edges = WindowEdges()
    edges.at_start()
    edges.at_stop()
    assert "failed: RuntimeError: CUDA error" in str(edges.describe())
