"""A tracker's place in a job of many processes, and what it does there.

:class:`JobPlace` is what :class:`~mrv_ml.run.tracker.MRVTracker` holds when its process is
one of a job's: numbered by a launcher (:func:`~mrv_ml.run.launch.launch_from`), or elected
by the node's lock when none numbered it (:mod:`mrv_ml.run.node_lock`). The tracker asks it
three things: which role this process plays (:attr:`role`), to hand a part over
(:meth:`hand_over`, on the other ranks), and to turn the writer's record into the job's
(:meth:`complete`, a record hook on rank 0).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mrv_ml.run.job import (
    JOBS_FOLDER,
    JOIN_GRACE_S,
    PartExchange,
    aggregate_energy,
    build_distributed_section,
    job_outcome,
)
from mrv_ml.run.launch import Launch, unranked_launch
from mrv_ml.run.node_lock import Round, join_node_round

__all__ = ["JobPlace"]


class JobPlace:
    """This process's part in its job: ``launch`` (rank, local rank, node), ``role``, and
    the exchange its parts go through. Built by :meth:`for_process`."""

    def __init__(self, launch: Launch, exchange: PartExchange, tracking_mode: str,
                 gather_timeout_s: float, say: Callable[[str], None],
                 node_round: Round | None = None) -> None:
        self.launch = launch
        self.exchange = exchange
        self.role = launch.role_in(tracking_mode)
        self.gather_timeout_s = gather_timeout_s
        self._say = say
        self._round = node_round

    @classmethod
    def for_process(cls, launch: Launch | None, environ: Mapping[str, str], store_root: Path,
                    tracking_mode: str, gather_timeout_s: float, say: Callable[[str], None]
                    ) -> JobPlace | None:
        """Where this process stands in its job, or None when it runs alone: ``launch``,
        the launcher's ranks (:func:`~mrv_ml.run.launch.launch_from`), or else, for a job no
        launcher numbered, the node's lock, joined now: call this when the run starts."""
        if launch is not None:
            return cls(launch, PartExchange(store_root / JOBS_FOLDER / launch.job),
                       tracking_mode, gather_timeout_s, say)
        first = unranked_launch(environ, 0)
        if first is None:
            return None
        joined = join_node_round(first.job)
        if joined is None:  # no usable temporary folder: this process alone, as before
            return None
        placed = unranked_launch(environ, joined.rank)
        assert placed is not None
        return cls(placed, joined.exchange, tracking_mode, gather_timeout_s, say, joined)

    def part(self, energy: Mapping[str, Any] | None, hardware: Mapping[str, Any] | None,
             outcome: Mapping[str, Any], start_time: str | None, end_time: str | None
             ) -> dict[str, Any]:
        return {"rank": self.launch.rank, "local_rank": self.launch.local_rank,
                "node": self.launch.node, "hostname": socket.gethostname(),
                "role": self.role.value, "hardware": dict(hardware) if hardware else None,
                "energy_emissions": dict(energy) if energy is not None else None,
                "outcome": dict(outcome), "start_time": start_time, "end_time": end_time}

    def announce(self) -> None:
        """(Not the writer.) Tell rank 0 that this rank tracks, so that it waits for it."""
        self.exchange.announce(self.launch.rank)

    def hand_over(self, part: Mapping[str, Any]) -> None:
        self.exchange.publish(part)

    def complete(self, record: dict[str, Any], start_time: str | None) -> None:
        """(The writer, as a record hook.) The other ranks' parts, the totals counting each
        host once, the job's outcome."""
        if self._round is not None:
            members, missing = self._round.close(self.gather_timeout_s)
            if not members:
                return  # no other process of the job ran here meanwhile: its own record
            parts, unusable = self.exchange.collect(
                [m for m in members if m not in missing], 0.0)
            self._assemble(record, start_time, parts, sorted({*missing, *unusable}),
                           1 + len(members))
            return
        launch = self.launch
        others = range(1, launch.world_size)
        if not self.exchange.announced(others, min(JOIN_GRACE_S, self.gather_timeout_s)):
            # no other rank tracks (`if rank == 0: MRVTracker(...)`): a record of its own
            record["energy_emissions"].setdefault("notes", []).append(
                f"rank 0 of {launch.world_size} ({launch.launcher} {launch.job}); no other "
                f"rank tracked, so this record measures node {launch.node} only")
            return
        parts, missing = self.exchange.collect(others, 0.0)
        if missing:
            self._say(f"⏳ MRV: waiting for {len(missing)} of {launch.world_size - 1} other "
                      f"rank(s) of {launch.job} (up to {self.gather_timeout_s:g} s)")
            late, missing = self.exchange.collect(missing, self.gather_timeout_s)
            parts += late
        self._assemble(record, start_time, parts, missing, launch.world_size)

    def _assemble(self, record: dict[str, Any], start_time: str | None,
                  parts: list[dict[str, Any]], missing: list[int], world_size: int) -> None:
        if missing:
            self._say(f"⚠️  MRV: no part from rank(s) {', '.join(map(str, missing))}: "
                      "the record says they are missing")
        mine = self.part(record["energy_emissions"], record.get("hardware"),
                         record["outcome"], start_time, record["timestamps"]["end_time"])
        every = [mine, *parts]
        record["distributed"] = build_distributed_section(
            every, world_size, None, missing, self.gather_timeout_s,
            launcher=self.launch.launcher, job=self.launch.job)
        record["energy_emissions"] = aggregate_energy(every)
        record["outcome"] = {**record["outcome"], **job_outcome(
            record["outcome"], parts, missing, self.gather_timeout_s)}

    def done(self) -> None:
        """(The writer, once the record is stored.) The parts are in it: remove them."""
        self.exchange.remove()


