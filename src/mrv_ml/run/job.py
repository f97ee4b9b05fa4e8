"""One record for a job of many processes: the parts they hand over, how they add up, and
how the job ended.

Every process of a launched job (:mod:`mrv_ml.run.launch`) makes a **part**: its rank,
local rank, node and host, its outcome and times, and, where it measured its node, the
node's energy (``energy_emissions``) and hardware. The writer (rank 0) collects the parts
and writes ONE record: the per-rank parts in ``record["distributed"]``, the totals in
``record["energy_emissions"]``, the job's outcome in ``record["outcome"]``.
:class:`~mrv_ml.integrations.distributed.DistributedMRVTracker` hands its parts over
``torch.distributed``'s store; ``MRVTracker`` under ``srun``/``torchrun``/``mpirun`` through
a :class:`PartExchange`, a folder in the record store (a filesystem every node of a job sees
on a cluster, as its home or project folder is).

Totals: CodeCarbon measures the whole machine (all CPU packages, all GPUs, all RAM), so
parts from the same host report the same machine. The total counts each host once (the
largest reading among its parts) and sums over hosts; summing every part would count a
host with 8 tasks 8 times.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mrv_ml.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_GATHER_TIMEOUT_S", "JOBS_FOLDER", "JOIN_GRACE_S", "PartExchange",
           "aggregate_energy", "build_distributed_section", "gather_timeout", "host_energy",
           "job_outcome", "outcome_of", "utc_now"]

#: How long rank 0 waits for the other ranks' parts, by default (seconds).
DEFAULT_GATHER_TIMEOUT_S = 300.0
#: How long rank 0 waits for a first sign that other ranks track too (seconds); none by
#: then: only rank 0 tracks (a framework callback, ``if rank == 0``), its record is its own.
JOIN_GRACE_S = 10.0
#: The record store's folder of the parts of jobs still running, one folder per job.
JOBS_FOLDER = ".jobs"

_COMPONENTS = ("cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh")
_MAX_PART_BYTES = 4 * 1024 * 1024  # a part with a long power series is ~100 kB
_POLL_S = 0.2


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def outcome_of(exc: BaseException | None) -> dict[str, Any]:
    """A process's outcome from the exception that ended its block (None: it completed)."""
    if exc is None:
        return {"status": "completed", "error_type": None, "error_message": None}
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    return {"status": status, "error_type": type(exc).__name__,
            "error_message": " ".join(str(exc).split())[:500] or None}


def gather_timeout(value: float | None, environ: Mapping[str, str]) -> float:
    """Seconds rank 0 waits for the others: ``value``, else ``MRV_GATHER_TIMEOUT_S``, else
    300; from more than 0 to a day."""
    raw: Any = value
    source = "gather_timeout_s"
    if raw is None and environ.get("MRV_GATHER_TIMEOUT_S", "").strip():
        raw, source = environ["MRV_GATHER_TIMEOUT_S"].strip(), "MRV_GATHER_TIMEOUT_S"
    if raw is None:
        return DEFAULT_GATHER_TIMEOUT_S
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= 86_400):
        raise ConfigError(f"{source} must be more than 0 and at most 86400 seconds, "
                          f"not {raw!r}")
    return seconds


# --- totals ------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _reports_only(part: Mapping[str, Any]) -> bool:
    """A part that measured nothing by design: another process measured its node."""
    return part.get("role") == "reporter"


def _gpu_set(ee: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(d.get("uuid") or d.get("nvml_index")) for d in
                     ee.get("gpu_devices") or [] if isinstance(d, Mapping))


def host_energy(readings: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """One host's energy from the readings of its processes.

    Machine mode (CodeCarbon's default): each reading is the whole machine, so the host is
    its largest reading. Process mode (a shared node): each process measured its own
    processes' CPU time and memory, which do not overlap, so CPU and RAM are summed; a GPU
    is measured whole by every process that sees it, so processes that see disjoint GPUs
    are summed and processes that see the same GPUs count them once (the largest reading).
    """
    if len(readings) == 1 or any(ee.get("tracking_mode") != "process" for ee in readings):
        return max(readings, key=lambda ee: float(ee["energy_kwh"]))
    gpu_sets = [_gpu_set(ee) for ee in readings]
    disjoint = sum(len(g) for g in gpu_sets) == len(frozenset().union(*gpu_sets))
    gpus = [_num(ee.get("gpu_energy_kwh")) or 0.0 for ee in readings]
    excess = 0.0 if disjoint else sum(gpus) - max(gpus)
    widest = readings[gpus.index(max(gpus))]
    parts = sum(_num(widest.get(c)) or 0.0 for c in _COMPONENTS)
    overhead = float(widest["energy_kwh"]) / parts if parts > 0 else 1.0  # the PUE
    intensity = (_num(widest.get("co2_kg")) or 0.0) / float(widest["energy_kwh"]) \
        if float(widest["energy_kwh"]) > 0 else 0.0
    energy = sum(float(ee["energy_kwh"]) for ee in readings) - excess * overhead
    total: dict[str, Any] = {
        "energy_kwh": energy,
        "co2_kg": sum(_num(ee.get("co2_kg")) or 0.0 for ee in readings)
        - excess * overhead * intensity,
        "country_iso_code": widest.get("country_iso_code"),
    }
    for component in _COMPONENTS:
        values = [_num(ee.get(component)) for ee in readings]
        total[component] = (sum(v for v in values if v is not None)
                            if any(v is not None for v in values) else None)
    if total["gpu_energy_kwh"] is not None:
        total["gpu_energy_kwh"] -= excess
    return total


def aggregate_energy(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Job totals from per-rank parts (``{"rank", "hostname", "energy_emissions"}``).

    Each host is counted once (:func:`host_energy`: its largest reading where CodeCarbon
    measured the whole machine; its processes' own shares summed in process mode); hosts
    are summed. Durations take the longest rank. Parts that measured by
    design nothing (``role: "reporter"``) are not counted; measurers whose measurement
    failed are left out of the sums and named in ``measurement_error``; if none measured,
    the totals are ``null`` with ``measurement_status: failed`` (numbers are never invented).
    """
    measured = [p for p in parts if isinstance(p.get("energy_emissions"), Mapping)
                and p["energy_emissions"].get("measurement_status") == "measured"
                and _num(p["energy_emissions"].get("energy_kwh")) is not None]
    unmeasured = sorted(int(p["rank"]) for p in parts
                        if p not in measured and not _reports_only(p))
    base: dict[str, Any] = {}
    ranked = sorted(parts, key=lambda p: int(p["rank"]))
    for part in ranked:  # tool, location and PUE from the lowest rank that has them
        ee = part.get("energy_emissions")
        if isinstance(ee, Mapping):
            base = dict(ee)
            break
    base.pop("intervals", None)  # per-rank intervals stay in the per-rank entries
    if "power_series" in base:
        # Each rank's power series stays in its own entry; the job's total has none (the
        # ranks' clocks and intervals differ, and a host's series counts the whole machine).
        base["power_series"] = None
    totals: dict[str, Any] = {**base, "measurement_tool": base.get("measurement_tool",
                                                                     "CodeCarbon")}
    durations = [_num((p.get("energy_emissions") or {}).get("duration_seconds")) for p in parts]
    known = [d for d in durations if d is not None]
    totals["duration_seconds"] = max(known) if known else None
    if not measured:
        errors = [f"rank {p['rank']}: {(p.get('energy_emissions') or {}).get('measurement_error')}"
                  for p in ranked if not _reports_only(p)]
        totals.update(measurement_status="failed", energy_kwh=None, co2_kg=None,
                      cpu_energy_kwh=None, gpu_energy_kwh=None, ram_energy_kwh=None,
                      carbon_intensity_g_per_kwh=None,
                      measurement_error="; ".join(errors) or "no rank measured its energy")
        return totals
    by_host: dict[str, list[Mapping[str, Any]]] = {}
    for part in measured:
        host = str(part.get("hostname") or f"rank-{part['rank']}")
        by_host.setdefault(host, []).append(part["energy_emissions"])
    per_host = {host: host_energy(readings) for host, readings in by_host.items()}
    totals["measurement_status"] = "measured"
    totals["energy_kwh"] = sum(float(ee["energy_kwh"]) for ee in per_host.values())
    co2 = [_num(ee.get("co2_kg")) for ee in per_host.values()]
    totals["co2_kg"] = sum(c for c in co2 if c is not None)
    for component in _COMPONENTS:
        values = [_num(ee.get(component)) for ee in per_host.values()]
        totals[component] = (sum(v for v in values if v is not None)
                             if any(v is not None for v in values) else None)
    intensity = None
    if totals["energy_kwh"] > 0:
        intensity = totals["co2_kg"] / totals["energy_kwh"] * 1000.0  # energy-weighted mean
    totals["carbon_intensity_g_per_kwh"] = intensity
    countries = {ee.get("country_iso_code") for ee in per_host.values()}
    if len(countries) > 1:
        totals["country_iso_code"], totals["region"] = None, None
    notes = [f"totals count each of {len(per_host)} host(s) once"]
    if unmeasured:
        notes.append(f"ranks {', '.join(map(str, unmeasured))} not measured and not counted")
    totals["measurement_error"] = "; ".join(notes) if unmeasured else None
    return totals


_RANK_FIELDS = ("rank", "local_rank", "node", "hostname", "role", "hardware",
                "energy_emissions", "outcome", "start_time", "end_time")
_LAUNCH_FIELDS = ("node", "role")  # only in the parts of a launched job


def build_distributed_section(parts: Sequence[Mapping[str, Any]], world_size: int,
                              backend: str | None, missing_ranks: Sequence[int],
                              gather_timeout_s: float, *, launcher: str | None = None,
                              job: str | None = None) -> dict[str, Any]:
    """``record["distributed"]``: per-rank entries, missing ranks, and how totals are made
    (and, for a launched job, which launcher and which job)."""
    process_mode = any((p.get("energy_emissions") or {}).get("tracking_mode") == "process"
                       for p in parts)
    aggregation = ("per host: CPU and RAM of its processes summed, each GPU counted once "
                   "(process mode, a shared node); summed over hosts" if process_mode
                   else "per-host maximum, summed over hosts")
    ranks = [{k: part.get(k) for k in _RANK_FIELDS if k in part or k not in _LAUNCH_FIELDS}
             for part in sorted(parts, key=lambda p: int(p["rank"]))]
    section: dict[str, Any] = {
        "world_size": world_size,
        "backend": backend,
        "ranks": ranks,
        "missing_ranks": sorted(int(r) for r in missing_ranks),
        "gather_timeout_s": gather_timeout_s,
        "aggregation": aggregation,
    }
    if launcher is not None:
        section["launcher"], section["job"] = launcher, job
    return section


def job_outcome(own: Mapping[str, Any], parts: Sequence[Mapping[str, Any]],
                missing_ranks: Sequence[int], gather_timeout_s: float) -> dict[str, Any]:
    """The job failed if rank 0 failed, if any rank reported a failure, or if a rank is
    missing; the first cause found is the one named."""
    if own.get("status") != "completed":
        return dict(own)
    for part in sorted(parts, key=lambda p: int(p["rank"])):
        outcome = part.get("outcome") or {}
        if outcome.get("status") not in (None, "completed"):
            return {"status": outcome["status"], "error_type": outcome.get("error_type"),
                    "error_message": f"rank {part['rank']}: {outcome.get('error_message')}",
                    **({"exit_code": outcome["exit_code"]}
                       if outcome.get("exit_code") is not None else {})}
    if missing_ranks:
        listed = ", ".join(str(r) for r in sorted(missing_ranks))
        return {"status": "failed", "error_type": "MissingRanks",
                "error_message": f"rank(s) {listed} did not report within "
                                 f"{gather_timeout_s:g} s (died or hung)"}
    return dict(own)


# --- the exchange through the record store -----------------------------------------------


class PartExchange:
    """The parts of one launched job, as files ``rank-N.json`` in ``folder`` (under the
    record store: ``.jobs/<job>``). Each rank writes its own part once (write, then
    rename, so a part is read whole or not at all); the writer waits for the others with a
    deadline and removes the folder once the record is stored."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def announce(self, rank: int) -> None:
        """Say that rank ``rank`` tracks too (at its start): rank 0 then waits for its part.
        Never raises, as :meth:`publish`."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"started-{int(rank)}").touch()
        except OSError as e:
            log.warning("rank %d: could not tell rank 0 it tracks (%s): %s",
                        rank, self.folder, e)

    def announced(self, ranks: Iterable[int], wait_s: float) -> set[int]:
        """Those of ``ranks`` that announced themselves or handed a part over, waiting up to
        ``wait_s`` for the first of them."""
        deadline = time.monotonic() + wait_s
        while True:
            found = {r for r in ranks if (self.folder / f"started-{r}").exists()
                     or (self.folder / f"rank-{r}.json").exists()}
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(_POLL_S)

    def publish(self, part: Mapping[str, Any]) -> None:
        """Hand this rank's part over (never raises: a part that cannot be written makes
        the writer list the rank as missing, which is what happened)."""
        rank = int(part["rank"])
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self.folder / f".rank-{rank}.{os.getpid()}.tmp"
            temporary.write_text(json.dumps(part, allow_nan=False), encoding="utf-8")
            os.replace(temporary, self.folder / f"rank-{rank}.json")
        except (OSError, ValueError) as e:
            log.warning("rank %d: could not hand the MRV part to rank 0 (%s): %s",
                        rank, self.folder, e)

    def _read(self, rank: int) -> dict[str, Any] | None | bool:
        """Rank ``rank``'s part; False while there is none; None where it is unusable."""
        path = self.folder / f"rank-{rank}.json"
        try:
            if path.stat().st_size > _MAX_PART_BYTES:
                log.warning("rank 0: part of rank %d is too large to be a part", rank)
                return None
            part = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as e:  # a garbled part counts as missing, not a crash
            log.warning("rank 0: part of rank %d unusable: %s", rank, e)
            return None
        if not isinstance(part, dict) or part.get("rank") != rank:
            log.warning("rank 0: the file of rank %d holds no part of it", rank)
            return None
        return part

    def collect(self, ranks: Iterable[int], timeout_s: float
                ) -> tuple[list[dict[str, Any]], list[int]]:
        """The parts of ``ranks`` that arrive before the deadline, and the ranks missing."""
        deadline = time.monotonic() + timeout_s
        waiting = set(ranks)
        parts: list[dict[str, Any]] = []
        unusable: set[int] = set()
        while waiting:
            for rank in sorted(waiting):
                found = self._read(rank)
                if found is False:
                    continue
                waiting.discard(rank)
                if found is None:
                    unusable.add(rank)
                else:
                    assert isinstance(found, dict)
                    parts.append(found)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        return parts, sorted(waiting | unusable)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # the store's .jobs folder, once it is empty
            self.folder.parent.rmdir()
