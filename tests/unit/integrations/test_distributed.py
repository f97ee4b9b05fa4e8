"""One record for a torch.distributed job: per-rank parts, totals, a dead rank."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, require_optional

pytestmark = [pytest.mark.torch, pytest.mark.distributed]
require_optional(pytestmark)

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


# --- two real processes on the gloo backend ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_job(data_dir: Path, mode: str, gather_timeout_s: float) -> list[subprocess.CompletedProcess[str]]:
    port = str(_free_port())
    env = {**os.environ, "MRV_DATA_DIR": str(data_dir), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": port, "WORLD_SIZE": "2", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(REPO_ROOT)}  # this file imports tests.conftest
    procs = [subprocess.Popen([sys.executable, __file__, mode, str(gather_timeout_s)],
                              env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    results = []
    for rank, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError(f"rank {rank} hung") from None
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _only_record(data_dir: Path) -> dict[str, Any]:
    [path] = [p for p in data_dir.glob("MRV-*.json") if ".proof" not in p.name]
    return json.loads(path.read_text())


@pytest.mark.slow
def test_two_gloo_ranks_make_one_record(data_dir: Path) -> None:
    rank0, rank1 = _run_job(data_dir, "ok", gather_timeout_s=120)
    assert rank0.returncode == 0, rank0.stderr
    assert rank1.returncode == 0, rank1.stderr
    record = _only_record(data_dir)
    summary = json.loads(rank0.stdout.strip().splitlines()[-1])
    assert summary["mrv_id"] == record["mrv_id"] and summary["verdict"] == "VALID"
    assert "mrv_id=None" in rank1.stdout  # only rank 0 writes
    dist_section = record["distributed"]
    assert dist_section["world_size"] == 2 and dist_section["backend"] == "gloo"
    assert [r["rank"] for r in dist_section["ranks"]] == [0, 1]
    assert dist_section["missing_ranks"] == []
    for entry in dist_section["ranks"]:
        assert entry["hardware"]["cpu_logical_cores"] >= 1
        assert entry["energy_emissions"]["measurement_status"] == "measured"
        assert entry["outcome"]["status"] == "completed"
    # both ranks ran on this one host: the host is counted once, not twice
    readings = [r["energy_emissions"]["energy_kwh"] for r in dist_section["ranks"]]
    assert record["energy_emissions"]["energy_kwh"] == pytest.approx(max(readings))
    assert record["outcome"]["status"] == "completed"
    assert record["training"]["details"]["ddp_steps"] == 3
    proofs = list(data_dir.glob("MRV-*.proof.json"))
    assert len(proofs) == 1 and json.loads(proofs[0].read_text())["status"] == "anchored"


@pytest.mark.slow
def test_dead_rank_is_listed_missing_and_run_failed(data_dir: Path) -> None:
    rank0, rank1 = _run_job(data_dir, "die", gather_timeout_s=3)
    assert rank1.returncode == 17  # it died inside the tracked block
    assert rank0.returncode == 0, rank0.stderr
    record = _only_record(data_dir)
    assert record["distributed"]["missing_ranks"] == [1]
    assert [r["rank"] for r in record["distributed"]["ranks"]] == [0]
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_type"] == "MissingRanks"
    assert record["energy_emissions"]["measurement_status"] == "measured"
    assert json.loads(rank0.stdout.strip().splitlines()[-1])["missing"] == [1]


def _worker(mode: str, gather_timeout_s: float) -> None:
    """One rank of the job the tests above start (RANK etc. come from the environment)."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from mrv_ml.integrations.distributed import DistributedMRVTracker

    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank = dist.get_rank()
    with DistributedMRVTracker(experiment_name="ddp_tiny", model_name="Linear",
                               dataset_name="random", batch_size=4,
                               gather_timeout_s=gather_timeout_s) as tracker:
        torch.manual_seed(rank)
        model = DistributedDataParallel(torch.nn.Linear(4, 2))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):  # real all-reduces between the two processes
            optimizer.zero_grad()
            model(torch.randn(4, 4)).pow(2).mean().backward()
            optimizer.step()
        tracker.update_training(ddp_steps=3)
        if mode == "die" and rank == 1:
            os._exit(17)  # killed: no exception, no cleanup, no part sent
    if rank == 0:
        verdict = tracker.verify_on_blockchain() if tracker.tx_hash else None
        print(json.dumps({"mrv_id": tracker.mrv_id, "missing": tracker.missing_ranks,
                          "verdict": verdict.status.value if verdict else None}))
    else:
        print(f"mrv_id={tracker.mrv_id}")
    dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1], float(sys.argv[2]))
