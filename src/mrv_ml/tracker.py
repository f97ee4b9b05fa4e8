"""``MRVTracker``: wrap a training run, get a stored (and anchored) MRV record.

Use it as a context manager, with ``start()``/``stop()``, or as a decorator::

    with MRVTracker(experiment_name="resnet18_cifar10", model_name="ResNet18") as tracker:
        train()
    tracker.mrv_id, tracker.mrv_hash, tracker.record_path, tracker.tx_hash

The order in ``stop()`` is the data flow of the whole project: measurement → record →
validate → store (the file is safely on disk) → anchor (only then any chain call). A
record is written for failed and interrupted runs too, and the user's exception always
propagates unchanged. Measurement and anchoring never kill training; failing to *store*
the record is the one error ``stop()`` raises, because then nothing was kept.

Between the opening and the closing line a heartbeat (:mod:`mrv_ml.heartbeat`) shows the
elapsed time and the energy and CO2e measured so far on stderr: every ``heartbeat_s``
seconds (``MRV_HEARTBEAT_S``, 30 s; the first after 10 s; 0 turns it off), a live status
line on a terminal, plain lines otherwise; ``quiet`` silences it with the rest.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from mrv_ml.config import Settings, load_settings
from mrv_ml.environment import software_versions, source_state
from mrv_ml.hardware import get_hardware_info
from mrv_ml.hashing import compute_hash
from mrv_ml.heartbeat import DEFAULT_FIRST_AFTER_S, Heartbeat, Pulse
from mrv_ml.measurement import EnergyMeter, check_country
from mrv_ml.networks import check_address_and_key, check_for_anchoring
from mrv_ml.record import (
    SCHEMA_VERSION,
    new_mrv_id,
    repair_record,
    warm_up_validator,
)
from mrv_ml.store import RecordStore

if TYPE_CHECKING:
    from mrv_ml.integrations.trackers import RunLog
    from mrv_ml.proof import Proof
    from mrv_ml.verify import Verdict

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

ANCHOR_MODES = ("single", "batch")
_MAX_ERROR_MESSAGE = 2000


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MRVTracker:
    """Measure a training run and produce a verifiable MRV record.

    The first ten arguments are the seed's. ``registry_url`` is a registry service
    (``mrv registry serve``; also ``MRV_REGISTRY_URL``): the record's fingerprint is
    submitted there when the run stops (the record itself too with ``publish=True``, signed
    with your key with ``sign=True``), the service anchors it in its next batch, and
    ``mrv anchor --upgrade`` fetches the complete proof. Without a registry the record is
    anchored on the chain directly; ``rpc_url`` is that chain's JSON-RPC endpoint (same as
    ``BLOCKCHAIN_RPC_URL``; before version 0.2, ``registry_url`` meant this).
    ``anchor_mode="batch"`` leaves the record pending for the next ``mrv anchor --batch``
    instead of sending one transaction per run. ``settings`` overrides everything read from
    the environment. ``heartbeat_s`` overrides ``MRV_HEARTBEAT_S`` (seconds between the
    progress lines on stderr; 0: none). ``log_to`` (``"mlflow"``, ``"wandb"``; also
    ``MRV_LOG_TO=mlflow,wandb``) logs the record's facts and files into that tool's active
    run (:mod:`mrv_ml.integrations.trackers`).
    ``tracking_mode`` (``"machine"``, the default, or ``"process"``; ``MRV_TRACKING_MODE``)
    is CodeCarbon's: process mode counts this process and its descendants' share of CPU
    and RAM; GPUs are measured per device (``energy_emissions.tracking_scope``).
    """

    def __init__(
        self,
        experiment_name: str,
        model_name: str = "Unknown",
        dataset_name: str = "Unknown",
        epochs: int | None = None,
        batch_size: int | None = None,
        framework: str | None = None,
        storage_dir: str | Path | None = None,
        registry_url: str | None = None,
        blockchain_enabled: bool = True,
        auto_anchor: bool = True,
        *,
        anchor_mode: str = "single",
        rpc_url: str | None = None,
        publish: bool = False,
        sign: bool = False,
        settings: Settings | None = None,
        command: list[str] | str | None = None,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        quiet: bool | None = None,
        heartbeat_s: float | None = None,
        log_to: str | Sequence[str] | None = None,
        tracking_mode: str | None = None,
    ) -> None:
        if not experiment_name or not isinstance(experiment_name, str):
            raise ValueError("experiment_name must be a non-empty string")
        if anchor_mode not in ANCHOR_MODES:
            raise ValueError(f"anchor_mode must be one of {ANCHOR_MODES}, not {anchor_mode!r}")
        base = settings if settings is not None else load_settings()
        self.settings = base.replace(data_dir=storage_dir, rpc_url=rpc_url,
                                     registry_url=registry_url, log_to=log_to,
                                     tracking_mode=tracking_mode)
        self.publish = publish
        self.sign = sign
        self.experiment_name = experiment_name
        self.model_name = model_name
        self.dataset_name = dataset_name
        self.framework = framework
        self.blockchain_enabled = blockchain_enabled
        self.auto_anchor = auto_anchor
        self.anchor_mode = anchor_mode
        self.command = command
        self.description = description
        self.tags = dict(tags or {})
        self.training: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size}
        self.details: dict[str, Any] = dict(details or {})
        self.quiet = bool(os.environ.get("MRV_QUIET")) if quiet is None else quiet
        if heartbeat_s is not None and not 0 <= heartbeat_s <= 86_400:
            raise ValueError("heartbeat_s must be from 0 (no heartbeat) to 86400 seconds")
        self.heartbeat_s = (self.settings.heartbeat_s if heartbeat_s is None
                            else float(heartbeat_s))
        self.store = RecordStore(self.settings.data_dir)
        self.run_log: RunLog | None = None  # the experiment trackers' runs (log_to)
        if self.settings.log_to:  # a missing package fails now, not after the training
            from mrv_ml.integrations.trackers import RunLog

            self.run_log = RunLog(self.settings.log_to, self._say)
        if not self.settings.online_lookup:  # a country CodeCarbon does not know: now
            check_country(self.settings.country_iso_code)
        if blockchain_enabled and auto_anchor and anchor_mode == "single":
            # a typo fails now, not after the training
            if self.via_registry:  # the registry's URLs instead of the chain's settings
                from mrv_ml.registry.client import registry_urls

                registry_urls(self.settings)
                check_address_and_key(self.settings)
            else:
                check_for_anchoring(self.settings)

        # Results, set by stop().
        self.mrv_id: str | None = None
        self.mrv_hash: str | None = None
        self.record: dict[str, Any] | None = None
        self.record_path: Path | None = None
        self.tx_hash: str | None = None
        self.proof: Proof | None = None
        self.anchor_error: str | None = None

        self._meter: EnergyMeter | None = None
        self._heartbeat: Heartbeat | None = None
        self._started_at = 0.0  # time.monotonic() at start()
        self._prefetch: threading.Thread | None = None
        self._static: dict[str, Any] = {}
        self._start_time: str | None = None
        self._record_hooks: list[Callable[[dict[str, Any]], None]] = []
        self._outcome: dict[str, Any] = {"status": "completed", "error_type": None,
                                         "error_message": None, "exit_code": None}

    def __repr__(self) -> str:
        return (f"MRVTracker(experiment_name={self.experiment_name!r}, "
                f"mrv_id={self.mrv_id!r}, network={self.settings.network!r})")

    # -- facts from the training code ----------------------------------------------------

    def update_training(self, **facts: Any) -> None:
        """Add facts known only during training (epochs actually run, final loss, ...).

        ``epochs`` and ``batch_size`` fill the record's own fields; anything else goes to
        ``training.details``.
        """
        for key, value in facts.items():
            if key in ("epochs", "batch_size"):
                self.training[key] = value
            else:
                self.details[key] = value

    def add_record_hook(self, hook: Callable[[dict[str, Any]], None]) -> None:
        """Call ``hook(record)`` on the finished record before it is validated and stored."""
        self._record_hooks.append(hook)

    def set_outcome(self, status: str, *, error_type: str | None = None,
                    error_message: str | None = None, exit_code: int | None = None) -> None:
        """Set the run's outcome explicitly (``mrv run`` uses it for the child's status)."""
        self._outcome = {"status": status, "error_type": error_type,
                         "error_message": error_message, "exit_code": exit_code}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> MRVTracker:
        if self._meter is not None:
            raise RuntimeError("this MRVTracker was already started; create a new one per run")
        self._start_time = utc_now_iso()
        self._meter = EnergyMeter(self.settings)
        self._meter.start()
        # Facts that do not change during the run are gathered now, off the critical
        # path, so that stop() after training stays fast.
        self._prefetch = threading.Thread(target=self._gather_static, daemon=True,
                                          name="mrv-prefetch")
        self._prefetch.start()
        self._say(f"🌱 MRV tracking started: {self.experiment_name}")
        if self.run_log is not None:
            self.run_log.capture()
        self._started_at = time.monotonic()
        if not self.quiet and self.heartbeat_s > 0:
            self._heartbeat = Heartbeat(
                self._pulse, interval_s=self.heartbeat_s,
                first_after_s=min(DEFAULT_FIRST_AFTER_S, self.heartbeat_s)).start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop measuring, write the record, anchor it if enabled; returns the record."""
        if self._meter is None:
            raise RuntimeError("stop() called before start()")
        if self.record is not None:
            return self.record
        end_time = utc_now_iso()  # the run ended now, not after the meter has wound down
        self._stop_heartbeat()  # its line is cleared before anything else is said
        measurement = self._meter.stop()
        record = self._build_record(measurement.to_record_section(), end_time)
        for hook in self._record_hooks:
            hook(record)
        # The run happened: a bad value reported beside it (a diverged loss, a set of tags)
        # is dropped and named in the record, never a reason to lose the measurement.
        record, dropped = repair_record(record)
        if dropped:
            log.warning("values the record cannot hold were dropped: %s", "; ".join(dropped))
            self._say(f"⚠️  values the record cannot hold were dropped: {'; '.join(dropped)}")
        self.mrv_id = record["mrv_id"]
        self.mrv_hash = compute_hash(record)
        # The record is safely on disk before any chain call (StoreError propagates).
        self.record_path = self.store.save(record)
        self.record = record
        self._anchor()
        self._report()
        self._log_to_runs()
        return record

    def __enter__(self) -> MRVTracker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if exc is not None:
            self._note_exception(exc)
            try:
                self.stop()
            except Exception as store_error:  # the user's exception must win
                log.error("MRV record could not be written: %s", store_error)
                self._say(f"⚠️  MRV record could not be written: {store_error}")
            return False  # propagate unchanged
        self.stop()
        return False

    def __call__(self, func: F) -> F:
        """Use the tracker as a decorator: each call of ``func`` is one tracked run."""
        template = self

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracker = template._fresh_copy()
            try:
                with tracker:
                    return func(*args, **kwargs)
            finally:
                template._adopt(tracker)

        return wrapper  # type: ignore[return-value]

    # -- verification -----------------------------------------------------------------------

    def verify_on_blockchain(self) -> Verdict:
        """Verify this run's stored record against the chain; truthy only when VALID."""
        if self.record_path is None:
            raise RuntimeError("nothing to verify: the tracker has not stopped yet")
        from mrv_ml.verify import verify

        return verify(self.record_path, settings=self.settings)

    # -- internals ------------------------------------------------------------------------

    def _gather_static(self) -> None:
        try:
            self._static["hardware"] = get_hardware_info()
            self._static["source"] = source_state()
            warm_up_validator()
        except Exception as e:  # noqa: BLE001 - stop() gathers again what is missing
            log.debug("prefetch failed: %s", e)
        if self.blockchain_enabled and self.auto_anchor and self.anchor_mode == "single":
            # web3 and the chain modules take ~1 s to import: do it while training runs,
            # not after it ends.
            from mrv_ml import anchor, chain, localchain  # noqa: F401

    def _pulse(self) -> Pulse:
        """The heartbeat's figures: the time since start(), CodeCarbon's totals so far."""
        elapsed_s = time.monotonic() - self._started_at
        totals = self._meter.running_totals() if self._meter is not None else None
        if totals is None:
            return Pulse(elapsed_s)
        return Pulse(elapsed_s, totals.energy_kwh, totals.co2_kg, totals.power_w)

    def _stop_heartbeat(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()

    def _note_exception(self, exc: BaseException) -> None:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        message = str(exc)[:_MAX_ERROR_MESSAGE] or None
        self._outcome = {"status": status, "error_type": type(exc).__name__,
                         "error_message": message, "exit_code": None}

    def _build_record(self, energy: dict[str, Any], end_time: str) -> dict[str, Any]:
        if self._prefetch is not None:
            self._prefetch.join()
        hardware = self._static.get("hardware") or get_hardware_info()
        source = self._static["source"] if "source" in self._static else source_state()
        return {
            "schema_version": SCHEMA_VERSION,
            "mrv_id": new_mrv_id(),
            "experiment": {
                "name": self.experiment_name,
                "model_name": self.model_name,
                "dataset_name": self.dataset_name,
                "framework": self.framework,
                "description": self.description,
                "tags": self.tags,
            },
            "training": {
                "epochs": self.training.get("epochs"),
                "batch_size": self.training.get("batch_size"),
                "command": self.command,
                "details": self.details,
            },
            "outcome": dict(self._outcome),
            "hardware": hardware,
            "energy_emissions": energy,
            "software": software_versions(),
            "source": source,
            "distributed": None,
            "timestamps": {"start_time": self._start_time, "end_time": end_time},
        }

    @property
    def via_registry(self) -> bool:
        """Whether the record goes to a registry service rather than to the chain."""
        return bool(self.settings.registry_url)

    def _anchor(self) -> None:
        if not self.blockchain_enabled:
            return
        assert self.mrv_id is not None
        from mrv_ml import anchor  # lazy: web3 is slow to import (imported while training)

        if not self.auto_anchor or self.anchor_mode == "batch":
            reason = ("awaiting the next batch (mrv anchor --batch)" if self.anchor_mode == "batch"
                      else "auto_anchor is off (run mrv anchor)")
            self.proof = anchor.mark_pending(self.store, self.mrv_id, reason)
            return
        try:
            if self.via_registry:
                outcome = self._submit()
            else:
                outcome = anchor.anchor_record(self.store, self.mrv_id, settings=self.settings)
        except Exception as e:  # anchoring must never lose the run; it stays pending
            self.anchor_error = f"{type(e).__name__}: {e}"
            log.warning("anchoring %s failed: %s", self.mrv_id, self.anchor_error)
            return
        self.proof = outcome.proof
        self.tx_hash = outcome.tx_hash
        # a registry that took the record (pending there) is no error
        self.anchor_error = outcome.error if outcome.error_exit_code is not None else None

    def _log_to_runs(self) -> None:
        """The facts and files (the proof as anchoring left it) into the trackers' runs."""
        if self.run_log is None or self.record is None or self.record_path is None:
            return
        from mrv_ml.integrations.trackers import run_facts
        from mrv_ml.proof import find_proof_file

        try:
            facts = run_facts(self.record, str(self.mrv_hash), self.proof,
                              blockchain_enabled=self.blockchain_enabled,
                              anchor_error=self.anchor_error)
            proof_file = find_proof_file(self.record_path, self.mrv_id)
        except Exception as e:  # noqa: BLE001 - the record is stored; this is a bonus
            log.warning("the record's facts for the experiment trackers: %s", e)
            return
        files = [self.record_path] + ([proof_file] if proof_file is not None else [])
        self.run_log.publish(facts, files)

    def _submit(self) -> Any:
        """The fingerprint (and record, signature) to the registry; its outcome."""
        from mrv_ml.registry.client import through_registry

        signer = None
        if self.sign:
            from mrv_ml.keys import load_signer

            signer = load_signer(self.settings)
        [outcome] = through_registry(self.store, self.settings, [str(self.mrv_id)],
                                     publish=self.publish, signer=signer)
        return outcome

    def _report(self) -> None:
        """One closing line: how the run ended, what it cost, where the record is, and
        where its anchoring stands (and what that proves)."""
        from mrv_ml.units import format_co2_kg, format_duration_s, format_energy_kwh

        status = self._outcome["status"]
        icon = {"completed": "✅", "interrupted": "⏹"}.get(status, "❌")
        energy = (self.record or {}).get("energy_emissions") or {}
        line = (f"{icon} run {status}: {format_energy_kwh(energy.get('energy_kwh'))}, "
                f"{format_co2_kg(energy.get('co2_kg'))} in "
                f"{format_duration_s(energy.get('duration_seconds'))}; record {self.mrv_id} "
                f"in {self.record_path}")
        anchor = self.proof.anchor if self.proof is not None else None
        if self.tx_hash and anchor is not None:
            trust = ("local only: this machine's own chain" if anchor.local_only
                     else f"{anchor.network or 'chain'} {anchor.chain_id}")
            line += f"; anchored in tx {self.tx_hash} ({trust})"
        elif self.via_registry and self.proof is not None and self.proof.registries:
            line += f"; submitted to {self.proof.registries[0].url} (mrv anchor --upgrade " \
                    "fetches the proof once it is anchored)"
        elif self.anchor_error:
            line += f"; anchoring pending ({self.anchor_error})"
        elif self.blockchain_enabled:
            line += "; anchoring pending"
        self._say(line)

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def _fresh_copy(self) -> MRVTracker:
        fresh = MRVTracker(
            self.experiment_name, self.model_name, self.dataset_name,
            self.training.get("epochs"), self.training.get("batch_size"), self.framework,
            blockchain_enabled=self.blockchain_enabled, auto_anchor=self.auto_anchor,
            anchor_mode=self.anchor_mode, publish=self.publish, sign=self.sign,
            settings=self.settings, command=self.command,
            description=self.description, tags=self.tags, details=self.details,
            quiet=self.quiet, heartbeat_s=self.heartbeat_s)
        return fresh

    def _adopt(self, other: MRVTracker) -> None:
        for name in ("mrv_id", "mrv_hash", "record", "record_path", "tx_hash", "proof",
                     "anchor_error"):
            setattr(self, name, getattr(other, name))
