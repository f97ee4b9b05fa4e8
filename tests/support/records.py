"""A valid MRV record builder for tests (shared by every test module).

``make_sample_record()`` returns a fresh, schema-valid record (schema 1.1, with a small
``energy_emissions.power_series`` consistent with its energy figures) with a new
``mrv_id``; ``make_sample_record_1_0()`` the same record as schema 1.0 wrote it (no power
series). Overrides, for both:

- a top-level key replaces that whole value: ``make_sample_record(source=None)``;
- ``section__field`` (double underscore, any depth) sets one nested value:
  ``make_sample_record(energy_emissions__co2_kg=0.5, experiment__name="resnet")``;
- the value :data:`DELETE` removes the key: ``make_sample_record(training__epochs=DELETE)``.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

#: Pass as an override value to remove that key from the record.
DELETE: Any = object()

_TEMPLATE: dict[str, Any] = {
    "schema_version": "1.1",
    "mrv_id": "",  # filled per call
    "experiment": {
        "name": "mnist-baseline",
        "model_name": "SimpleCNN",
        "dataset_name": "MNIST",
        "framework": "pytorch",
        "description": "Small CNN on MNIST, 2 epochs",
        "tags": {"team": "green-ai", "purpose": "test"},
    },
    "training": {
        "epochs": 2,
        "batch_size": 64,
        "command": None,
        "details": {"learning_rate": 0.001, "optimizer": "adam"},
    },
    "outcome": {"status": "completed", "error_type": None, "error_message": None,
                "exit_code": None},
    "hardware": {
        "cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz",
        "cpu_physical_cores": 1,
        "cpu_logical_cores": 2,
        "ram_gb": 7.8,
        "gpu_count": 0,
        "gpus": [],
        "os": "Linux-6.1.0-x86_64-with-glibc2.36",
        "machine": "x86_64",
    },
    "energy_emissions": {
        "measurement_tool": "CodeCarbon",
        "measurement_tool_version": "3.3.2",
        "measurement_status": "measured",
        "measurement_error": None,
        "energy_kwh": 0.000123,
        "cpu_energy_kwh": 0.0001,
        "gpu_energy_kwh": 0.0,
        "ram_energy_kwh": 0.000023,
        "co2_kg": 0.0000451,
        "duration_seconds": 12.5,
        "carbon_intensity_g_per_kwh": 366.7,
        "pue": 1.0,
        "country_iso_code": "FRA",
        "region": None,
        "location_source": "configured",
        "methods": {
            "cpu": {"method": "TDP", "measured": False},
            "gpu": {"method": "none", "measured": False},
            "ram": {"method": "RAM power estimate", "measured": False},
        },
        "intervals": [{"start_offset_s": 0.0, "end_offset_s": 12.5, "method": "TDP"}],
        # 28.8 W CPU and 6.624 W RAM for 12.5 s: the cpu/ram energies above (PUE 1)
        "power_series": {
            "source": "CodeCarbon periodic measurements (every 2 s)",
            "start_offset_s": [0.0, 1.5, 3.5, 5.5, 7.5, 9.5, 11.5],
            "duration_s": [1.5, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0],
            "cpu_power_w": [28.8] * 7,
            "gpu_power_w": [0.0] * 7,
            "ram_power_w": [6.624] * 7,
            "measured": [False, True, True, True, True, True, True],
            "points_measured": 6,
            "downsampled": False,
        },
    },
    "software": {
        "python": "3.11.7",
        "mrv_ml": "0.1.0",
        "codecarbon": "3.3.2",
        "frameworks": {"torch": "2.13.0"},
        "os": "Linux-6.1.0-x86_64-with-glibc2.36",
    },
    "source": {"git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False},
    "distributed": None,
    "timestamps": {"start_time": "2026-11-24T22:00:00.000000Z",
                   "end_time": "2026-11-24T22:00:12.500000Z"},
}


def make_sample_record(**overrides: Any) -> dict[str, Any]:
    """A fresh valid record with a new ``mrv_id``; see the module docstring for overrides."""
    return _apply(copy.deepcopy(_TEMPLATE), overrides)


def make_sample_record_1_0(**overrides: Any) -> dict[str, Any]:
    """A fresh valid record of schema 1.0 (what earlier releases wrote: no power series)."""
    record = copy.deepcopy(_TEMPLATE)
    record["schema_version"] = "1.0"
    del record["energy_emissions"]["power_series"]
    return _apply(record, overrides)


def _apply(record: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    record["mrv_id"] = f"MRV-{uuid.uuid4()}"
    for key, value in overrides.items():
        parts = key.split("__")
        target: Any = record
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if value is DELETE:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return record


def store_bytes(root: Any) -> dict[str, bytes]:
    """Every file under a store directory by relative path, lock files and the listing cache
    aside (taking a lock or refreshing a cache changes nothing anyone relies on): compare two
    of these to assert that no byte of a store changed."""
    from pathlib import Path

    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock") and p.name != ".index.json"}
