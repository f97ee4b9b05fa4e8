"""The parts of a launched job (mrv_ml.run.job): handed over whole, waited for with a
deadline, added up counting each host once, reporters not counted as failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import ConfigError
from mrv_ml.run.job import PartExchange, aggregate_energy, gather_timeout, host_energy


def _part(rank: int, host: str, kwh: float | None, role: str) -> dict[str, Any]:
    energy = None if kwh is None else {
        "measurement_status": "measured", "energy_kwh": kwh, "co2_kg": kwh * 0.4,
        "cpu_energy_kwh": kwh, "gpu_energy_kwh": 0.0, "ram_energy_kwh": 0.0,
        "duration_seconds": 10.0}
    return {"rank": rank, "hostname": host, "role": role, "energy_emissions": energy}


def test_reporters_are_not_counted_and_not_called_unmeasured() -> None:
    totals = aggregate_energy([_part(0, "a", 2.0, "writer"), _part(1, "a", None, "reporter"),
                               _part(2, "b", 3.0, "measurer"), _part(3, "b", None, "reporter")])
    assert totals["energy_kwh"] == 5.0
    assert totals["measurement_error"] is None


def test_a_measurer_that_measured_nothing_is_named() -> None:
    totals = aggregate_energy([_part(0, "a", 2.0, "writer"), _part(2, "b", None, "measurer")])
    assert totals["energy_kwh"] == 2.0
    assert "ranks 2 not measured" in totals["measurement_error"]


def test_parts_are_collected_and_the_missing_named(tmp_path: Path) -> None:
    exchange = PartExchange(tmp_path / ".jobs" / "slurm-1.0")
    exchange.publish(_part(1, "a", None, "reporter"))
    (exchange.folder / "rank-3.json").write_text("{not json")   # garbled: counts as missing
    (exchange.folder / "rank-4.json").write_text(json.dumps({"rank": 5}))  # not its own
    parts, missing = exchange.collect([1, 2, 3, 4], timeout_s=0.3)
    assert [p["rank"] for p in parts] == [1]
    assert missing == [2, 3, 4]
    assert exchange.announced([1, 2], wait_s=0) == {1}
    exchange.remove()
    assert not (tmp_path / ".jobs").exists()


def test_an_announced_rank_is_seen(tmp_path: Path) -> None:
    exchange = PartExchange(tmp_path / "job")
    assert exchange.announced([1], wait_s=0.2) == set()
    exchange.announce(1)
    assert exchange.announced([1, 2], wait_s=5) == {1}


def test_a_part_that_cannot_be_written_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    PartExchange(tmp_path / "file" / "job").publish(_part(1, "a", None, "reporter"))


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "1e9", "soon"])
def test_a_bad_gather_timeout_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="MRV_GATHER_TIMEOUT_S"):
        gather_timeout(None, {"MRV_GATHER_TIMEOUT_S": raw})


def test_the_gather_timeout_comes_from_the_argument_then_the_environment() -> None:
    assert gather_timeout(None, {}) == 300.0
    assert gather_timeout(None, {"MRV_GATHER_TIMEOUT_S": "2.5"}) == 2.5
    assert gather_timeout(7, {"MRV_GATHER_TIMEOUT_S": "2.5"}) == 7.0


def _process(kwh_cpu: float, kwh_gpu: float, gpus: list[str]) -> dict[str, Any]:
    energy = (kwh_cpu + kwh_gpu) * 1.5  # PUE 1.5
    return {"measurement_status": "measured", "tracking_mode": "process",
            "energy_kwh": energy, "co2_kg": energy * 0.4, "cpu_energy_kwh": kwh_cpu,
            "gpu_energy_kwh": kwh_gpu, "ram_energy_kwh": 0.0,
            "gpu_devices": [{"uuid": g} for g in gpus]}


def test_process_mode_sums_each_process_share_and_counts_a_shared_gpu_once() -> None:
    same = host_energy([_process(1.0, 4.0, ["GPU-a"]), _process(2.0, 4.0, ["GPU-a"])])
    assert same["cpu_energy_kwh"] == 3.0 and same["gpu_energy_kwh"] == 4.0
    assert same["energy_kwh"] == pytest.approx(7.0 * 1.5)
    assert same["co2_kg"] == pytest.approx(7.0 * 1.5 * 0.4)
    apart = host_energy([_process(1.0, 4.0, ["GPU-a"]), _process(2.0, 5.0, ["GPU-b"])])
    assert apart["gpu_energy_kwh"] == 9.0 and apart["energy_kwh"] == pytest.approx(12 * 1.5)


def test_machine_mode_takes_the_largest_reading_of_a_host() -> None:
    machine = [{**_process(1.0, 0.0, []), "tracking_mode": "machine"},
               {**_process(3.0, 0.0, []), "tracking_mode": "machine"}]
    assert host_energy(machine)["cpu_energy_kwh"] == 3.0
