"""How close is the tracker's GPU energy to NVML's own energy counter? Run it on a GPU machine.

A fixed load: torch matrix multiplications for ~60 s, idle ~20 s, matrix multiplications
again ~30 s, measured by ``MRVTracker`` (CodeCarbon underneath) and, independently, by each
GPU's NVML total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since
the driver loaded), read directly just before the tracker starts and just after it stops.
It prints both figures, their ratio, the cards' names and the goal (within 5 %).

    .venv/bin/python benchmarks/gpu_accuracy.py [--quick] [--json]

``--quick``: phases of 10 s, 5 s, 8 s, for a first try. Exit status: 0 within the goal, 1
outside it, 0 with the one line "no GPU here: nothing measured" where torch has no CUDA or
NVML no GPU (nothing is measured then). Needs the ``torch`` extra with a CUDA build. The
GPUs are the run's visible ones (``CUDA_VISIBLE_DEVICES``, read as CUDA reads it).

Not part of the test suite on a real card; the tests run its measuring half (:func:`run`)
on a simulated GPU machine (tests/unit/measure/test_gpu_simulated.py) and check the one line without a
GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

GOAL = 0.05  # |ratio - 1| within 5 %
NO_GPU = "no GPU here: nothing measured"
PHASES_S = {"full": (60.0, 20.0, 30.0), "quick": (10.0, 5.0, 8.0)}
MATRIX_N = 8192


def _cuda() -> Any:
    """torch with a usable CUDA device, else None."""
    try:
        import torch
    except ImportError:
        return None
    try:
        return torch if torch.cuda.is_available() and torch.cuda.device_count() > 0 else None
    except Exception:  # noqa: BLE001 - a broken driver is "no GPU" here
        return None


def _load(torch: Any, seconds: float) -> int:
    """Matrix multiplications on every visible device for ``seconds``; the count."""
    devices = [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    pairs = [(torch.randn(MATRIX_N, MATRIX_N, device=d), torch.randn(MATRIX_N, MATRIX_N, device=d))
             for d in devices]
    count = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for a, b in pairs:
            for _ in range(8):
                a @ b
        count += 8 * len(pairs)
        torch.cuda.synchronize()  # the clock checks real work, not a deep queue
    return count


def _energy_mj(indices: list[int]) -> dict[int, int]:
    from mrv_ml.measure.gpu import nvml

    return {i: nvml.total_energy_mj(i) for i in indices}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (10 s, 5 s, 8 s)")
    parser.add_argument("--json", action="store_true", help="one JSON line of the figures")
    args = parser.parse_args(argv)
    torch = _cuda()
    if torch is None:
        print(NO_GPU)
        return 0

    def load(seconds: float) -> int:
        return _load(torch, seconds)

    def settle() -> None:
        torch.cuda.synchronize()

    load(2.0)  # warm-up: CUDA context, cuBLAS handles, clocks up; outside the window
    settle()
    return run(load, PHASES_S["quick" if args.quick else "full"], as_json=args.json)


def run(load: Callable[[float], int], phases: tuple[float, float, float], *,
        as_json: bool = False) -> int:
    """Measure ``load`` (seconds -> work done) through the tracker and NVML's counters of
    the run's visible GPUs, print the figures; the exit status. The measuring half of
    :func:`main`, apart so that it runs on a simulated GPU machine in the tests."""
    import codecarbon  # noqa: F401 - imported before the window, as a training script has it

    from mrv_ml.errors import GPUError
    from mrv_ml.measure.gpu import nvml

    try:
        with nvml.session():
            devices = nvml.select_visible(nvml.list_devices()).devices
            if not devices:
                print(NO_GPU)
                return 0
            figures = _measure(load, devices, phases)
    except GPUError as e:
        print(f"{NO_GPU} ({e})")
        return 0
    _print(figures, phases, as_json=as_json)
    return 0 if figures["within_goal"] else 1


def _measure(load: Callable[[float], int], devices: list[Any],
             phases: tuple[float, float, float]) -> dict[str, Any]:
    from mrv_ml.config import load_settings
    from mrv_ml.run.tracker import MRVTracker

    indices = [d.nvml_index for d in devices]
    with tempfile.TemporaryDirectory() as store:
        settings = load_settings().replace(pue=1.0)
        tracker = MRVTracker("gpu-accuracy", blockchain_enabled=False, storage_dir=store,
                             settings=settings, quiet=True, heartbeat_s=0)
        before = _energy_mj(indices)
        t0 = time.perf_counter()
        with tracker:
            work = load(phases[0])
            time.sleep(phases[1])
            work += load(phases[2])
        wall_s = time.perf_counter() - t0
        after = _energy_mj(indices)
    ee = (tracker.record or {})["energy_emissions"]
    nvml_kwh = sum(after[i] - before[i] for i in indices) / 3.6e9  # mJ -> kWh
    tracker_kwh = ee.get("gpu_energy_kwh")
    ratio = tracker_kwh / nvml_kwh if tracker_kwh is not None and nvml_kwh > 0 else None
    return {
        "cards": [d.name for d in devices], "nvml_indices": indices,
        "measured_gpus": [g["nvml_index"] for g in ee.get("gpu_devices") or []],
        "phases_s": list(phases), "wall_s": round(wall_s, 2), "work": work,
        "tracker_gpu_kwh": tracker_kwh, "nvml_counter_kwh": nvml_kwh,
        "ratio": ratio, "goal": f"within {GOAL:.0%}",
        "within_goal": ratio is not None and abs(ratio - 1.0) <= GOAL,
        "gpu_method": (ee.get("methods") or {}).get("gpu", {}).get("method"),
        "gpu_sync": ee.get("gpu_sync"), "measurement_status": ee.get("measurement_status"),
        "extrapolated_s": sum(i["end_offset_s"] - i["start_offset_s"]
                              for i in ee.get("intervals") or [] if not i.get("measured")),
        "notes": ee.get("notes") or [],
    }


def _print(figures: dict[str, Any], phases: tuple[float, float, float], *,
           as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    from mrv_ml.units import format_duration_s, format_energy_kwh

    ratio = figures["ratio"]
    print(f"cards:           {', '.join(figures['cards'])} (NVML {figures['nvml_indices']}; "
          f"the record names {figures['measured_gpus']})")
    print(f"load / idle / load: {' / '.join(format_duration_s(p) for p in phases)} "
          f"({figures['work']} matmuls of {MATRIX_N}x{MATRIX_N}), "
          f"window {format_duration_s(figures['wall_s'])}")
    print(f"MRVTracker GPU:  {format_energy_kwh(figures['tracker_gpu_kwh'])} "
          f"({figures['gpu_method']}; {format_duration_s(figures['extrapolated_s'])} "
          "extrapolated at start-up)")
    print(f"NVML counter:    {format_energy_kwh(figures['nvml_counter_kwh'])}")
    print(f"ratio:           {'—' if ratio is None else f'{ratio:.4f}'} "
          f"(goal: within {GOAL:.0%}: {'met' if figures['within_goal'] else 'NOT met'})")


if __name__ == "__main__":
    sys.exit(main())
