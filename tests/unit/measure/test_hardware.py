"""Hardware facts: real psutil and NVML; no GPU is normal and silent."""

from __future__ import annotations

import sys
import types

import psutil
import pytest

from mrv_ml.measure import hardware


def test_reports_cpu_and_memory_of_this_machine() -> None:
    info = hardware.get_hardware_info()
    assert info["cpu_logical_cores"] == psutil.cpu_count(logical=True)
    assert info["ram_gb"] == pytest.approx(psutil.virtual_memory().total / 1024**3, rel=0.01)
    assert info["cpu_model"]
    assert info["gpu_count"] == len(info["gpus"])


def test_no_nvml_means_no_gpus_silently(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fake = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def init() -> None:
        raise NVMLError("Driver Not Loaded")

    fake.NVMLError = NVMLError  # type: ignore[attr-defined]
    fake.nvmlInit = init  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert hardware.get_gpus() == []
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_gpus_are_listed_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    # NVML itself cannot run without a GPU; this checks our translation of its answers.
    fake = types.ModuleType("pynvml")
    fake.NVMLError = type("NVMLError", (Exception,), {})  # type: ignore[attr-defined]
    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(  # type: ignore[attr-defined]
        total=80 * 1024**3)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpus = hardware.get_gpus()
    assert gpus == [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_gb": 80.0},
                    {"index": 1, "name": "NVIDIA H100 80GB HBM3", "memory_gb": 80.0}]
