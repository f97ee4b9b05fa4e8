"""How close is the tracker's GPU energy to NVML's own energy counter? Run it on a GPU machine.

A fixed load: torch matrix multiplications for ~60 s, idle ~20 s, matrix multiplications
again ~30 s, measured by ``MRVTracker`` (CodeCarbon underneath) and, independently, by each
GPU's NVML total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since
the driver loaded), read directly just before the tracker starts and just after it stops.
It prints both figures, their ratio, the cards' names and the goal (within 5 %).

    .venv/bin/python benchmarks/gpu_accuracy.py [--quick] [--json]

``--quick``: phases of 10 s, 5 s, 8 s, for a first try. Exit status: 0 within the goal, 1
outside it, 0 with the one line "no GPU here: nothing measured" where torch has no CUDA or
NVML no GPU (nothing is measured then). Not part of the test suite (a test only checks the
line without a GPU). Needs the ``torch`` extra with a CUDA build.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
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
    from mrv_ml import nvml

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
    from mrv_ml import nvml
    from mrv_ml.errors import GPUError

    try:
        with nvml.session():
            devices = nvml.list_devices(nvml.cuda_visible_devices())
            if not devices:
                print(NO_GPU)
                return 0
            return _measure(torch, devices, PHASES_S["quick" if args.quick else "full"],
                            as_json=args.json)
    except GPUError as e:
        print(f"{NO_GPU} ({e})")
        return 0


def _measure(torch: Any, devices: list[Any], phases: tuple[float, float, float], *,
             as_json: bool) -> int:
    from mrv_ml.config import load_settings
    from mrv_ml.tracker import MRVTracker

    indices = [d.nvml_index for d in devices]
    _load(torch, 2.0)  # warm-up: CUDA context, cuBLAS handles, clocks up; outside the window
    torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as store:
        settings = load_settings().replace(pue=1.0)
        tracker = MRVTracker("gpu-accuracy", blockchain_enabled=False, storage_dir=store,
                             settings=settings, quiet=True, heartbeat_s=0)
        before = _energy_mj(indices)
        t0 = time.perf_counter()
        with tracker:
            matmuls = _load(torch, phases[0])
            time.sleep(phases[1])
            matmuls += _load(torch, phases[2])
        wall_s = time.perf_counter() - t0
        after = _energy_mj(indices)
    ee = (tracker.record or {})["energy_emissions"]
    nvml_kwh = sum(after[i] - before[i] for i in indices) / 3.6e9  # mJ -> kWh
    tracker_kwh = ee.get("gpu_energy_kwh")
    ratio = tracker_kwh / nvml_kwh if tracker_kwh is not None and nvml_kwh > 0 else None
    within = ratio is not None and abs(ratio - 1.0) <= GOAL
    figures = {
        "cards": [d.name for d in devices], "phases_s": list(phases), "wall_s": round(wall_s, 2),
        "matmuls": matmuls, "tracker_gpu_kwh": tracker_kwh, "nvml_counter_kwh": nvml_kwh,
        "ratio": ratio, "goal": f"within {GOAL:.0%}", "within_goal": within,
        "gpu_method": (ee.get("methods") or {}).get("gpu", {}).get("method"),
        "gpu_sync": ee.get("gpu_sync"), "measurement_status": ee.get("measurement_status"),
        "extrapolated_s": sum(i["end_offset_s"] - i["start_offset_s"]
                              for i in ee.get("intervals") or [] if not i.get("measured")),
    }
    if as_json:
        print(json.dumps(figures))
    else:
        from mrv_ml.units import format_duration_s, format_energy_kwh

        print(f"cards:           {', '.join(figures['cards'])}")
        print(f"load / idle / load: {' / '.join(format_duration_s(p) for p in phases)} "
              f"({matmuls} matmuls of {MATRIX_N}x{MATRIX_N}), window {format_duration_s(wall_s)}")
        print(f"MRVTracker GPU:  {format_energy_kwh(tracker_kwh)} ({figures['gpu_method']}; "
              f"{format_duration_s(figures['extrapolated_s'])} extrapolated at start-up)")
        print(f"NVML counter:    {format_energy_kwh(nvml_kwh)}")
        print(f"ratio:           {'—' if ratio is None else f'{ratio:.4f}'} "
              f"(goal: within {GOAL:.0%}: {'met' if within else 'NOT met'})")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
