"""Records grouped by the SLURM job that ran them (``mrv report --group-by slurm_job``).

A job's records are its steps and, for an array, its tasks (grouped under the array's job
id). Their figures add up, except where two records measured the same node at the same time
in CodeCarbon's machine mode: both then counted the whole machine, so only the larger is
counted and the other is named (``overlapping``), the rule a job's own record follows for
its processes (:func:`mrv_ml.run.job.host_energy`). That happens when every task wrote its
own record (``job=False``, an older mrv-ml, a tool of its own); records in process mode
measured their own processes and all count.

The nodes of a record are those that measured in its ``distributed`` section, else the node
its scheduler section names; a record that names none is never taken for an overlap (what
cannot be shown is not assumed).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mrv_ml.reporting import text
from mrv_ml.reporting.many_records import csv_cell
from mrv_ml.reporting.runs import Run
from mrv_ml.storage.selection import Totals, totals
from mrv_ml.units import (
    MISSING,
    format_duration_s,
    format_energy_kwh,
    format_mass_kg,
    utc_moment,
)

__all__ = ["GROUP_BY", "JobGroup", "group_by_slurm_job", "render_groups", "slurm_job_of"]

#: What ``mrv report --group-by`` groups by.
GROUP_BY = ("slurm_job",)
#: The formats of a grouped report.
GROUPED_FORMATS = ("text", "csv", "json")
#: The group of records no SLURM job ran.
NO_JOB = "(no SLURM job)"


@dataclass(frozen=True)
class JobGroup:
    """One SLURM job's records: ``counted`` adds up those counted; ``overlapping`` names the
    records left out because another record of the job measured the same node at the same
    time (machine mode)."""

    job: str | None
    runs: tuple[Run, ...]
    counted: Totals
    overlapping: tuple[str, ...]
    nodes: tuple[str, ...]


def _fact(record: Mapping[str, Any], name: str) -> str | None:
    scheduler = record.get("scheduler")
    if not isinstance(scheduler, Mapping) or scheduler.get("kind") != "slurm":
        return None
    fact = (scheduler.get("facts") or {}).get(name)
    value = fact.get("value") if isinstance(fact, Mapping) else None
    return str(value) if value is not None else None


def slurm_job_of(record: Mapping[str, Any]) -> str | None:
    """The SLURM job a record belongs to: an array task's array job, else its job."""
    return _fact(record, "array_job_id") or _fact(record, "job_id")


def _nodes(record: Mapping[str, Any]) -> frozenset[str]:
    distributed = record.get("distributed")
    if isinstance(distributed, Mapping):
        return frozenset(str(r["node"]) for r in distributed.get("ranks") or []
                         if isinstance(r, Mapping) and r.get("node")
                         and r.get("energy_emissions") is not None)
    node = _fact(record, "node_name")
    return frozenset({node}) if node else frozenset()


def _window(record: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    stamps = record.get("timestamps") or {}
    start, end = utc_moment(stamps.get("start_time")), utc_moment(stamps.get("end_time"))
    return (start, end) if start is not None and end is not None and start <= end else None


def _whole_machine(record: Mapping[str, Any]) -> bool:
    energy = record.get("energy_emissions") or {}
    return energy.get("measurement_status") == "measured" \
        and energy.get("tracking_mode", "machine") == "machine"


def _overlapping(runs: Sequence[Run]) -> set[str]:
    """MRV IDs of machine-mode records that measured a node a larger record of the same
    job measured at the same time."""
    candidates = []
    for run in runs:
        nodes, window = _nodes(run.record), _window(run.record)
        if _whole_machine(run.record) and nodes and window is not None:
            energy = float(run.record["energy_emissions"].get("energy_kwh") or 0)
            candidates.append((energy, str(run.record["mrv_id"]), nodes, window))
    candidates.sort(key=lambda c: -c[0])
    kept: list[tuple[frozenset[str], tuple[datetime, datetime]]] = []
    left_out: set[str] = set()
    for _, mrv_id, nodes, (start, end) in candidates:
        if any(nodes & other and start < o_end and o_start < end
               for other, (o_start, o_end) in kept):
            left_out.add(mrv_id)
        else:
            kept.append((nodes, (start, end)))
    return left_out


def group_by_slurm_job(runs: Sequence[Run]) -> list[JobGroup]:
    """The runs by SLURM job, in job order (numbers as numbers), records of no job last."""
    by_job: dict[str | None, list[Run]] = {}
    for run in runs:
        by_job.setdefault(slurm_job_of(run.record), []).append(run)

    def order(job: str | None) -> tuple[int, int, str]:
        if job is None:
            return (2, 0, "")
        return (0, int(job), "") if job.isdigit() else (1, 0, job)

    groups = []
    for job in sorted(by_job, key=order):
        members = by_job[job]
        left_out = _overlapping(members) if job is not None else set()
        counted = totals([r.selected for r in members
                          if str(r.record.get("mrv_id")) not in left_out])
        nodes = sorted(set().union(*(_nodes(r.record) for r in members)))
        groups.append(JobGroup(job, tuple(members), counted, tuple(sorted(left_out)),
                               tuple(nodes)))
    return groups


# --- renderings ---------------------------------------------------------------------------


def _row(group: JobGroup) -> dict[str, Any]:
    return {"slurm_job": group.job, "records": len(group.runs),
            "mrv_ids": [str(r.record.get("mrv_id")) for r in group.runs],
            "nodes": list(group.nodes), "energy_kwh": group.counted.energy_kwh,
            "co2_kg": group.counted.co2_kg, "duration_s": group.counted.duration_s,
            "not_measured": group.counted.not_measured,
            "overlapping": list(group.overlapping)}


def _text(groups: Sequence[JobGroup]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(groups)} SLURM job(s)", title_justify="left")
    for name, justify in (("Job", "left"), ("Records", "right"), ("Nodes", "left"),
                          ("Duration", "right"), ("Energy", "right"), ("CO2e", "right"),
                          ("Not counted", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    p = text.printable
    for g in groups:
        notes = []
        if g.overlapping:
            notes.append(f"{len(g.overlapping)} overlapping (same node, same time)")
        if g.counted.not_measured:
            notes.append(f"{g.counted.not_measured} not measured")
        table.add_row(p(g.job or NO_JOB), str(len(g.runs)), p(", ".join(g.nodes) or MISSING),
                      format_duration_s(g.counted.duration_s),
                      format_energy_kwh(g.counted.energy_kwh),
                      format_mass_kg(g.counted.co2_kg), "; ".join(notes))
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None, highlight=False).print(table)
    return buffer.getvalue()


def render_groups(groups: Sequence[JobGroup], fmt: str) -> str:
    """One of :data:`GROUPED_FORMATS` as text."""
    if fmt == "json":
        return json.dumps({"group_by": "slurm_job", "jobs": [_row(g) for g in groups]},
                          indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        fields = ("slurm_job", "records", "nodes", "duration_s", "energy_kwh", "co2_kg",
                  "not_measured", "overlapping")
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\r\n",
                                extrasaction="ignore")
        writer.writeheader()
        for g in groups:
            row = dict(_row(g), nodes=" ".join(g.nodes), overlapping=" ".join(g.overlapping))
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
        return buffer.getvalue()
    return _text(groups)
