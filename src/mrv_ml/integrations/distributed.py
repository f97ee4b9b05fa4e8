"""One MRV record for a whole ``torch.distributed`` job.

    import torch.distributed as dist
    from mrv_ml.integrations.distributed import DistributedMRVTracker

    dist.init_process_group("gloo")          # or nccl; env:// as torchrun sets it up
    with DistributedMRVTracker(experiment_name="ddp_resnet", model_name="ResNet18") as t:
        train()                               # every rank, unchanged
    if t.is_writer:
        print(t.mrv_id, t.tx_hash)

Every rank measures its own machine (CodeCarbon through :class:`~mrv_ml.measure.meter.
EnergyMeter`, hardware facts) and publishes its part in the process group's key-value store;
rank 0 collects the parts, writes ONE record with the per-rank breakdown
(``record["distributed"]``) and the totals (``record["energy_emissions"]``), and anchors it
once.

Why a key-value store and not ``gather_object``: a collective waits for every rank, and in
gloo a rank that died makes the others hang (or fail) inside it. The store (the TCPStore that
``init_process_group`` already created, served by rank 0) lets rank 0 poll with a deadline:
parts that arrive are used, ranks that do not report within ``gather_timeout_s`` are listed
in ``missing_ranks`` and the run is marked failed. The store outlives the other ranks because
rank 0 serves it.

Totals count each host once (:func:`mrv_ml.run.job.aggregate_energy`: CodeCarbon measures the
whole machine). Without ``torch.distributed`` (``mrv run`` or ``MRVTracker`` under ``srun``,
``torchrun``, ``mpirun``) the tracker itself elects one measurer per node
(:mod:`mrv_ml.run.launch`); here every rank measures, as it always did.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from mrv_ml.errors import ConfigError
from mrv_ml.extras import require
from mrv_ml.run.job import (
    DEFAULT_GATHER_TIMEOUT_S,
    aggregate_energy,
    build_distributed_section,
    job_outcome,
)
from mrv_ml.run.job import outcome_of as _outcome
from mrv_ml.run.job import utc_now as _utc_now

_torch = require("torch", "torch")
import torch.distributed as dist  # noqa: E402  (after the extra check)

log = logging.getLogger(__name__)

__all__ = ["DistributedMRVTracker", "aggregate_energy", "build_distributed_section"]

_POLL_S = 0.1
_KEY_PREFIX = "mrv-ml"
# Each tracker in a job gets the next number, the same on every rank (they run the same
# code), so two trackers in one job never read each other's parts.
_sequence = itertools.count()


# --- the tracker -------------------------------------------------------------------------


class DistributedMRVTracker:
    """Context manager run on every rank of an initialised process group.

    Rank 0 (the writer) holds an :class:`~mrv_ml.run.tracker.MRVTracker` built from the same
    arguments and gets its attributes (``mrv_id``, ``mrv_hash``, ``record``,
    ``record_path``, ``tx_hash``, ``verify_on_blockchain()``); the other ranks only measure
    and report, and their ``mrv_id`` is ``None``.

    ``store``: a ``torch.distributed.Store`` to exchange parts through (default: the
    default process group's store). ``gather_timeout_s``: how long rank 0 waits for the
    other ranks after its own block ends.
    """

    def __init__(self, experiment_name: str, model_name: str = "Unknown",
                 dataset_name: str = "Unknown", epochs: int | None = None,
                 batch_size: int | None = None, framework: str | None = "PyTorch (distributed)",
                 storage_dir: str | os.PathLike[str] | None = None, registry_url: str | None = None,
                 blockchain_enabled: bool = True, auto_anchor: bool = True, *,
                 gather_timeout_s: float = DEFAULT_GATHER_TIMEOUT_S, store: Any = None,
                 **tracker_kwargs: Any) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise ConfigError("DistributedMRVTracker needs an initialised process group: "
                              "call torch.distributed.init_process_group() first")
        if gather_timeout_s <= 0:
            raise ConfigError(f"gather_timeout_s must be > 0, not {gather_timeout_s}")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.backend = str(dist.get_backend())
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        self.gather_timeout_s = float(gather_timeout_s)
        self.missing_ranks: list[int] = []
        self._tracker_args: dict[str, Any] = dict(
            experiment_name=experiment_name, model_name=model_name, dataset_name=dataset_name,
            epochs=epochs, batch_size=batch_size, framework=framework, storage_dir=storage_dir,
            registry_url=registry_url, blockchain_enabled=blockchain_enabled,
            auto_anchor=auto_anchor, **tracker_kwargs)
        if store is None:
            try:
                store = dist.distributed_c10d._get_default_store()
            except Exception as e:  # private API: say what to do if it ever moves
                raise ConfigError("cannot reach the process group's store; pass store=") from e
        self._store = dist.PrefixStore(f"{_KEY_PREFIX}/{next(_sequence)}/", store)
        self._meter: Any = None
        self._tracker: Any = None  # rank 0 only
        self._hardware: dict[str, Any] | None = None
        self._start_time: str | None = None
        self._stopped = False

    # -- public -------------------------------------------------------------------------

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @property
    def tracker(self) -> Any:
        """Rank 0's :class:`~mrv_ml.run.tracker.MRVTracker` (``None`` on other ranks)."""
        return self._tracker

    def update_training(self, **facts: Any) -> None:
        """Add training facts to the job's record (kept from rank 0; a no-op elsewhere)."""
        if self._tracker is not None:
            self._tracker.update_training(**facts)

    def __getattr__(self, name: str) -> Any:
        # mrv_id, mrv_hash, record, record_path, tx_hash, proof, anchor_error,
        # verify_on_blockchain: rank 0's tracker answers; other ranks have none
        if name in ("mrv_id", "mrv_hash", "record", "record_path", "tx_hash", "proof",
                    "anchor_error"):
            tracker = self.__dict__.get("_tracker")
            return getattr(tracker, name) if tracker is not None else None
        if name == "verify_on_blockchain":
            tracker = self.__dict__.get("_tracker")
            if tracker is None:
                raise AttributeError("only rank 0 holds the record; verify there")
            return tracker.verify_on_blockchain
        raise AttributeError(name)

    def __enter__(self) -> DistributedMRVTracker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop(exc)

    def start(self) -> None:
        if self.is_writer:
            self._tracker = self._make_writer_tracker()
            self._tracker.start()
        else:
            self._meter = self._make_meter()
            with contextlib.suppress(Exception):  # measurement must never kill training
                self._meter.start()
        self._hardware = self._hardware_info()
        self._start_time = _utc_now()

    def stop(self, exc: BaseException | None = None) -> dict[str, Any] | None:
        """Stop measuring; rank 0 collects the parts, writes and anchors the record and
        returns it; other ranks publish their part and return ``None``."""
        if self._stopped:
            return self.record if self.is_writer else None
        self._stopped = True
        if not self.is_writer:
            self._publish(self._own_part(self._stop_meter(), exc))
            return None
        return self._finish_writer(exc)

    # -- internals ----------------------------------------------------------------------

    def _make_writer_tracker(self) -> Any:
        from mrv_ml.run.tracker import MRVTracker

        # job=False: the parts come through this process group, not the launcher's ranks
        return MRVTracker(**self._tracker_args, job=False)

    def _make_meter(self) -> Any:
        from mrv_ml.config import load_settings
        from mrv_ml.measure.meter import EnergyMeter

        settings = self._tracker_args.get("settings") or load_settings()
        # each rank measures as the writer does (MRVTracker(tracking_mode=...))
        return EnergyMeter(settings.replace(tracking_mode=self._tracker_args.get("tracking_mode")))

    def _stop_meter(self) -> dict[str, Any] | None:
        try:
            return dict(self._meter.stop().to_record_section())
        except Exception as e:  # the part still goes out, saying the measurement failed
            log.warning("rank %d: energy measurement failed: %s", self.rank, e)
            return {"measurement_tool": "CodeCarbon", "measurement_status": "failed",
                    "measurement_error": f"{type(e).__name__}: {e}", "energy_kwh": None,
                    "co2_kg": None, "duration_seconds": None}

    def _hardware_info(self) -> dict[str, Any] | None:
        try:
            from mrv_ml.measure.hardware import get_hardware_info

            return dict(get_hardware_info())
        except Exception as e:
            log.warning("rank %d: hardware facts unavailable: %s", self.rank, e)
            return None

    def _own_part(self, energy: Mapping[str, Any] | None,
                  exc: BaseException | None) -> dict[str, Any]:
        return {"rank": self.rank, "local_rank": self.local_rank,
                "hostname": socket.gethostname(), "hardware": self._hardware,
                "energy_emissions": dict(energy) if energy is not None else None,
                "outcome": _outcome(exc), "start_time": self._start_time,
                "end_time": _utc_now()}

    def _publish(self, part: Mapping[str, Any]) -> None:
        try:
            self._store.set(f"rank/{self.rank}", json.dumps(part, allow_nan=False))
        except Exception as e:  # rank 0 gone, or a NaN: rank 0 will list us as missing
            log.warning("rank %d: could not hand the MRV part to rank 0: %s", self.rank, e)

    def _collect(self) -> tuple[list[dict[str, Any]], list[int]]:
        """Parts of ranks 1..n-1 that arrive before the deadline; the others are missing."""
        deadline = time.monotonic() + self.gather_timeout_s
        waiting = set(range(1, self.world_size))
        parts: list[dict[str, Any]] = []
        while waiting:
            for rank in sorted(waiting):
                key = f"rank/{rank}"
                try:
                    if not self._store.check([key]):
                        continue
                    raw = self._store.get(key)
                    part = json.loads(raw)
                except Exception as e:  # a garbled part counts as missing, not as a crash
                    log.warning("rank 0: part of rank %d unusable: %s", rank, e)
                    waiting.discard(rank)
                    continue
                if isinstance(part, dict) and part.get("rank") == rank:
                    parts.append(part)
                waiting.discard(rank)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        missing = sorted(waiting | {r for r in range(1, self.world_size)
                                    if r not in {p["rank"] for p in parts}})
        return parts, missing

    def _finish_writer(self, exc: BaseException | None) -> dict[str, Any] | None:
        parts, missing = self._collect()
        self.missing_ranks = missing
        if missing:
            log.warning("rank 0: no MRV part from rank(s) %s within %.0f s",
                        missing, self.gather_timeout_s)
        tracker = self._tracker
        gather_timeout_s = self.gather_timeout_s
        world_size, backend = self.world_size, self.backend
        own_rank = {"rank": 0, "local_rank": self.local_rank, "hostname": socket.gethostname(),
                    "hardware": self._hardware, "outcome": _outcome(exc),
                    "start_time": self._start_time}

        def complete(record: dict[str, Any]) -> None:
            """Called by the tracker with the finished single-process record of rank 0."""
            mine = {**own_rank, "energy_emissions": record.get("energy_emissions"),
                    "end_time": record.get("timestamps", {}).get("end_time") or _utc_now()}
            every = [mine, *parts]
            record["distributed"] = build_distributed_section(
                every, world_size, backend, missing, gather_timeout_s)
            record["energy_emissions"] = aggregate_energy(every)
            outcome = job_outcome(record.get("outcome") or _outcome(exc), parts, missing,
                                  gather_timeout_s)
            record["outcome"] = {**(record.get("outcome") or {}), **outcome}

        tracker.add_record_hook(complete)
        if exc is None:
            return dict(tracker.stop())
        tracker.__exit__(type(exc), exc, exc.__traceback__)
        record: dict[str, Any] | None = tracker.record
        return record
