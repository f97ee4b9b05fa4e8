"""One record for a torch.distributed job: per-rank parts, totals, a dead rank."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch")

from mrv_ml.integrations.distributed import (  # noqa: E402
    aggregate_energy,
    build_distributed_section,
    job_outcome,
)


def _ee(energy_kwh: float | None, co2_kg: float | None = None, *, duration_s: float = 10.0,
        status: str = "measured", country: str = "FRA") -> dict[str, Any]:
    return {"measurement_tool": "CodeCarbon", "measurement_tool_version": "3.3.2",
            "measurement_status": status, "measurement_error": None if status == "measured"
            else "no sensor", "energy_kwh": energy_kwh, "co2_kg": co2_kg,
            "cpu_energy_kwh": None if energy_kwh is None else energy_kwh * 0.75,
            "gpu_energy_kwh": None if energy_kwh is None else 0.0,
            "ram_energy_kwh": None if energy_kwh is None else energy_kwh * 0.25,
            "duration_seconds": duration_s, "carbon_intensity_g_per_kwh": 50.0, "pue": 1.0,
            "country_iso_code": country, "region": None, "location_source": "default",
            "intervals": [{"start_offset_s": 0.0, "end_offset_s": duration_s}]}


def _part(rank: int, host: str, ee: dict[str, Any] | None) -> dict[str, Any]:
    return {"rank": rank, "hostname": host, "energy_emissions": ee,
            "outcome": {"status": "completed"}}


def test_totals_count_each_host_once_and_sum_hosts() -> None:
    parts = [_part(0, "a", _ee(0.010, 0.001)), _part(1, "a", _ee(0.012, 0.0012, duration_s=12)),
             _part(2, "b", _ee(0.020, 0.004, country="DEU"))]
    totals = aggregate_energy(parts)
    assert totals["measurement_status"] == "measured"
    assert totals["energy_kwh"] == pytest.approx(0.032)  # host a's larger reading + host b
    assert totals["co2_kg"] == pytest.approx(0.0052)
    assert totals["cpu_energy_kwh"] == pytest.approx(0.024)
    assert totals["carbon_intensity_g_per_kwh"] == pytest.approx(0.0052 / 0.032 * 1000)
    assert totals["duration_seconds"] == 12
    assert totals["country_iso_code"] is None  # two countries: no single one to name
    assert "intervals" not in totals


def test_totals_leave_out_unmeasured_ranks_and_say_so() -> None:
    parts = [_part(0, "a", _ee(0.01, 0.001)), _part(1, "b", _ee(None, status="failed"))]
    totals = aggregate_energy(parts)
    assert totals["energy_kwh"] == pytest.approx(0.01)
    assert "ranks 1 not measured" in totals["measurement_error"]


def test_totals_null_when_no_rank_measured() -> None:
    totals = aggregate_energy([_part(0, "a", _ee(None, status="failed")),
                               _part(1, "a", None)])
    assert totals["measurement_status"] == "failed"
    assert totals["energy_kwh"] is None and totals["co2_kg"] is None


def test_outcome_names_the_first_cause() -> None:
    ok = {"status": "completed", "error_type": None, "error_message": None}
    failed_part = {**_part(1, "a", None), "outcome": {"status": "failed",
                                                      "error_type": "ValueError",
                                                      "error_message": "bad batch"}}
    assert job_outcome(ok, [_part(1, "a", None)], [], 5)["status"] == "completed"
    assert job_outcome(ok, [failed_part], [], 5)["error_message"] == "rank 1: bad batch"
    missing = job_outcome(ok, [], [1, 2], 5)
    assert missing["status"] == "failed" and missing["error_type"] == "MissingRanks"
    assert "rank(s) 1, 2 did not report within 5 s" in missing["error_message"]
    own = {"status": "interrupted", "error_type": "KeyboardInterrupt", "error_message": None}
    assert job_outcome(own, [failed_part], [2], 5) == own


def test_section_lists_ranks_in_order_and_missing() -> None:
    section = build_distributed_section([_part(1, "b", None), _part(0, "a", None)], 3, "gloo",
                                        [2], 5.0)
    assert [r["rank"] for r in section["ranks"]] == [0, 1]
    assert section["missing_ranks"] == [2] and section["world_size"] == 3
