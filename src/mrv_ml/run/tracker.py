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

Between the opening and the closing line a heartbeat (:mod:`mrv_ml.run.heartbeat`) shows the
elapsed time and the energy and CO2e measured so far on stderr, and once the run has been
forecast the latest forecast of the whole run: every ``heartbeat_s`` seconds
(``MRV_HEARTBEAT_S``, 30 s; the first after 10 s; 0 turns it off), a live status line on a
terminal, plain lines otherwise; ``quiet`` silences it with the rest.

Forecast and budget: ``tracker.update_progress(done, total)`` (the framework callbacks call
it at each epoch's end) forecasts the whole run's energy, CO2e and duration once the
warm-up is done (:mod:`mrv_ml.run.forecast`; one line on stderr, kept in the record's
``energy_emissions.forecast``). ``budget_kwh``/``budget_co2_kg`` with ``on_budget="warn"``
or ``"stop"`` (:mod:`mrv_ml.run.budget`) are checked as the figures grow and against each
forecast; the plain tracker never raises into the loop, it sets ``budget_exceeded``, which
a loop that wants to stop checks::

    for epoch in range(epochs):
        train_one_epoch()
        tracker.update_progress(epoch + 1, epochs, unit="epochs")
        if tracker.budget_exceeded:
            break
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from mrv_ml.anchoring.publish import Route, choose_route
from mrv_ml.config import Settings, load_settings
from mrv_ml.errors import MRVStateError, MRVValueError, ProgressError
from mrv_ml.measure.hardware import get_hardware_info
from mrv_ml.measure.meter import EnergyMeter, check_country
from mrv_ml.measure.methods import attribution
from mrv_ml.networks import check_address_and_key, check_for_anchoring
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.repair import repair_record
from mrv_ml.record.schema import (
    SCHEMA_VERSION,
    new_mrv_id,
    warm_up_validator,
)
from mrv_ml.run import finish
from mrv_ml.run.budget import BudgetMonitor, Reading, budget_from
from mrv_ml.run.environment import software_versions, source_state
from mrv_ml.run.finish import Finished
from mrv_ml.run.forecast import Forecast, Forecaster, forecast_line, point_at
from mrv_ml.run.heartbeat import DEFAULT_FIRST_AFTER_S, Heartbeat, Pulse
from mrv_ml.run.job import gather_timeout, utc_now
from mrv_ml.run.job_place import JobPlace
from mrv_ml.run.launch import Role, launch_from
from mrv_ml.run.scheduler import node_share, scheduler_section
from mrv_ml.storage.store import RecordStore
from mrv_ml.types import Fingerprint

if TYPE_CHECKING:
    from mrv_ml.record.proof import Proof
    from mrv_ml.run.log_to.dispatch import RunLog
    from mrv_ml.verification.model import Verdict

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

ANCHOR_MODES = ("single", "batch")
_MAX_ERROR_MESSAGE = 2000


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
    run (:mod:`mrv_ml.run.log_to.dispatch`). ``budget_kwh``, ``budget_co2_kg`` (also
    ``MRV_BUDGET_KWH``, ``MRV_BUDGET_CO2_KG``) and ``on_budget`` (``"warn"``, the default,
    or ``"stop"``; ``MRV_ON_BUDGET``) set a budget; ``forecast_after`` is the progress (in
    the units given to :meth:`update_progress`) after which the run is first forecast.
    ``tracking_mode`` (``"machine"`` or ``"process"``; ``MRV_TRACKING_MODE``) is CodeCarbon's:
    process mode counts this process and its descendants' share of CPU and RAM; GPUs are
    measured per device (``energy_emissions.tracking_scope``). Not chosen, it is process
    mode where a scheduler placed the run on a node it shares (fewer CPUs given than the
    machine has: :func:`~mrv_ml.run.scheduler.node_share`), machine mode otherwise; the
    record says which and why (``energy_emissions.methods.attribution``).
    ``timestamp`` (an RFC 3161 authority's URL or preset name, or several; ``MRV_TSA_URL``)
    asks each for a timestamp of the record right after it is written, into its proof.

    Under a launcher (``srun``, ``torchrun``, ``mpirun``: :mod:`mrv_ml.run.launch`) the job
    writes one record: rank 0 measures its node and writes it, local rank 0 of every other
    node measures that node, the other processes only report; all hand their part to rank 0
    through the record store (``.jobs/``: ``storage_dir`` must be a folder every node
    sees), which waits for them up to ``gather_timeout_s`` (``MRV_GATHER_TIMEOUT_S``,
    300 s). On the other ranks ``stop()`` returns the part handed over and ``mrv_id`` stays
    ``None``. ``job=False`` makes every process its own run, as it is without a launcher.
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
        budget_kwh: float | None = None,
        budget_co2_kg: float | None = None,
        on_budget: str | None = None,
        forecast_after: float | None = None,
        tracking_mode: str | None = None,
        timestamp: str | Sequence[str] | None = None,
        job: bool = True,
        gather_timeout_s: float | None = None,
    ) -> None:
        if not experiment_name or not isinstance(experiment_name, str):
            raise MRVValueError("experiment_name must be a non-empty string")
        if anchor_mode not in ANCHOR_MODES:
            raise MRVValueError(f"anchor_mode must be one of {ANCHOR_MODES}, not {anchor_mode!r}")
        base = settings if settings is not None else load_settings()
        # the job that placed this run, if any, and whether it shares its node
        self.scheduler = scheduler_section(os.environ)
        self.node_share = node_share(self.scheduler, os.cpu_count())
        chosen = tracking_mode or base.tracking_mode
        shared = self.node_share is not None and self.node_share["shared"]
        self._mode_chosen = chosen is not None
        self.settings = base.replace(data_dir=storage_dir, rpc_url=rpc_url,
                                     registry_url=registry_url, log_to=log_to,
                                     tracking_mode=chosen or ("process" if shared
                                                              else "machine"),
                                     tsa=(timestamp,) if isinstance(timestamp, str)
                                     else timestamp)
        if self.settings.tsa:  # a bad authority fails now, not after the training
            from mrv_ml.anchoring.timestamp import tsa_url

            self.tsa_urls = tuple(tsa_url(name) for name in self.settings.tsa)
        else:
            self.tsa_urls = ()
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
            raise MRVValueError("heartbeat_s must be from 0 (no heartbeat) to 86400 seconds")
        self.heartbeat_s = (self.settings.heartbeat_s if heartbeat_s is None
                            else float(heartbeat_s))
        self.store = RecordStore(self.settings.data_dir)
        # a job of many processes: the launcher's ranks now (impossible ones fail before the
        # run), this process's place among them at start()
        self.job = job
        self.gather_timeout_s = gather_timeout(gather_timeout_s, os.environ)
        self._launch = launch_from(os.environ) if job else None
        self.job_place: JobPlace | None = None
        self.role = Role.WRITER
        #: what this process handed to rank 0, when it is not the writer
        self.part: dict[str, Any] | None = None
        # the budget (arguments over MRV_BUDGET_*): a bad value fails now, before the run
        self.budget = budget_from(budget_kwh, budget_co2_kg, on_budget, self.settings)
        self.forecast_after = forecast_after
        self._forecaster = Forecaster(warmup=forecast_after)
        self._monitor: BudgetMonitor | None = None
        self._progress_warned: set[str] = set()
        self.run_log: RunLog | None = None  # the experiment trackers' runs (log_to)
        if self.settings.log_to:  # a missing package fails now, not after the training
            from mrv_ml.run.log_to.dispatch import RunLog

            self.run_log = RunLog(self.settings.log_to, self._say)
        if not self.settings.online_lookup:  # a country CodeCarbon does not know: now
            check_country(self.settings.country_iso_code)
        if blockchain_enabled and auto_anchor and anchor_mode == "single":
            # a typo fails now, not after the training
            if self.via_registry:  # the registry's URLs instead of the chain's settings
                from mrv_ml.anchoring.registry_client import registry_urls

                registry_urls(self.settings)
                check_address_and_key(self.settings)
            else:
                check_for_anchoring(self.settings)

        # Results, set by stop().
        self.mrv_id: str | None = None
        self.mrv_hash: Fingerprint | None = None
        self.record: dict[str, Any] | None = None
        self.record_path: Path | None = None
        self.tx_hash: str | None = None
        self.proof: Proof | None = None
        self.anchor_error: str | None = None

        self._meter: EnergyMeter | None = None
        self._started = False
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

    # -- forecast and budget --------------------------------------------------------------

    def update_progress(self, done: float, total: float | None = None, *,
                        unit: str = "steps") -> Forecast | None:
        """Report progress: ``done`` of ``total`` units (steps, epochs...). Once the warm-up
        is done (``forecast_after`` units; default one unit or 1 % of the total, whichever
        is more, and CodeCarbon's first average) the whole run is forecast, one line on
        stderr the first time; later calls refresh it. The budget is checked too. Never
        raises into the loop: progress that cannot be used (an unknown or zero total,
        negative, over the total, backwards) is one warning line per kind and no forecast.
        Returns the forecast made by this call, if any."""
        reading = None
        totals = self._meter.running_totals() if self._meter is not None else None
        if totals is not None:
            now_s = time.monotonic() - self._started_at
            try:
                reading = point_at(0.0, now_s, totals.elapsed_s, totals.energy_kwh,
                                   totals.co2_kg)
            except ProgressError as e:  # a meter's odd figures: no forecast this time
                log.debug("no forecast: %s", e)
        try:
            made = self._forecaster.update(done, total, reading, unit=unit)
        except ProgressError as e:
            if e.key not in self._progress_warned:  # once per kind, not once per step
                self._progress_warned.add(e.key)
                self._say(f"⚠️  MRV: {e}")
            log.debug("progress not used: %s", e)
            return None
        if made is not None and made is self._forecaster.first:
            self._say(forecast_line(made))
        if self._monitor is not None:
            if made is not None:
                self._monitor.check_forecast(made.made_at_s, made.energy_kwh, made.co2_kg)
            self._monitor.check()
        return made

    @property
    def forecast(self) -> Forecast | None:
        """The latest forecast of the whole run (``None`` until one was made)."""
        return self._forecaster.latest

    @property
    def budget_exceeded(self) -> bool:
        """Whether the run has crossed its budget (checked every half second and at each
        ``update_progress``); a training loop with ``on_budget="stop"`` ends when it is."""
        return self._monitor is not None and (self._monitor.exceeded or self._monitor.check())

    @property
    def stopped_by_budget(self) -> bool:
        """Whether the run was really stopped for its budget (by a callback, ``mrv run``)."""
        return self._monitor is not None and self._monitor.stopped

    def add_budget_stop_action(self, action: Callable[[], str | None]) -> None:
        """With ``on_budget="stop"``: ``action()`` runs once when the budget is crossed
        (``mrv run`` interrupts its child); the words it returns are the record's
        ``budget.action_taken`` and the run is recorded as stopped by its budget."""
        if self._monitor is None:
            raise MRVStateError("add_budget_stop_action() needs a started tracker with a budget")
        self._monitor.add_stop_action(action)

    def mark_stopped_by_budget(self, action: str) -> None:
        """The training was stopped because of the budget (the framework callbacks, at an
        epoch's end): the record says ``outcome.stopped_by: "budget"`` and ``action``."""
        if self._monitor is not None:
            self._monitor.mark_stopped(action)

    def _budget_reading(self) -> Reading | None:
        """CodeCarbon's totals at its latest measurement (start-up extrapolated as in the
        record): a budget is judged on measured figures, not on an extrapolation to now."""
        totals = self._meter.running_totals() if self._meter is not None else None
        if totals is None:
            return None
        return Reading(totals.elapsed_s, totals.energy_kwh, totals.co2_kg)

    def _add_plan(self, record: dict[str, Any]) -> None:
        """The forecast beside the actual figures, the budget and what it did."""
        energy = record["energy_emissions"]
        planned = self._forecaster.to_record()
        if planned is not None:
            energy["forecast"] = planned
        if self._monitor is None:
            return
        record["budget"] = self._monitor.to_record(
            energy.get("energy_kwh"), energy.get("co2_kg"), energy.get("duration_seconds"))
        if record["budget"]["exceeded"] and not self._monitor.exceeded:
            self._say("⚠️  MRV budget crossed by the run's final figures, after the last check")
        if self._monitor.stopped and record["outcome"]["status"] != "failed":
            record["outcome"]["status"] = "interrupted"
        if self._monitor.stopped:
            record["outcome"]["stopped_by"] = "budget"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> MRVTracker:
        if self._started:
            raise MRVStateError("this MRVTracker was already started; create a new one per run")
        self._started = True
        self._start_time = utc_now()
        if self.job:
            self.job_place = JobPlace.for_process(
                self._launch, os.environ, self.store.root, str(self.settings.tracking_mode),
                self.gather_timeout_s, self._say)
        if self.job_place is not None:
            self.role = self.job_place.role
            if self.role is not Role.WRITER:
                return self._start_member()
            place, started = self.job_place, self._start_time
            self.add_record_hook(lambda record: place.complete(record, started))
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
        if self.budget is not None:
            self._monitor = BudgetMonitor(self.budget, self._budget_reading, self._say).start()
        if not self.quiet and self.heartbeat_s > 0:
            self._heartbeat = Heartbeat(
                self._pulse, interval_s=self.heartbeat_s,
                first_after_s=min(DEFAULT_FIRST_AFTER_S, self.heartbeat_s)).start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop measuring, write the record, anchor it if enabled; returns the record (on
        a launched job's other ranks: the part handed to rank 0)."""
        if not self._started:
            raise MRVStateError("stop() called before start()")
        if self.record is not None:
            return self.record
        end_time = utc_now()  # the run ended now, not after the meter has wound down
        if self.role is not Role.WRITER:
            return self._stop_member(end_time)
        assert self._meter is not None
        self._stop_heartbeat()  # its line is cleared before anything else is said
        if self._monitor is not None:
            self._monitor.stop()
        measurement = self._meter.stop()
        record = self._build_record(measurement.to_record_section(), end_time)
        self._add_plan(record)
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
        if self.job_place is not None:  # the parts are in the record now
            self.job_place.done()
        self._finish()
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

    # -- one record for a job of many processes -------------------------------------------

    def _start_member(self) -> MRVTracker:
        """Not the writer: measure the node (or, in process mode, this process's own) if
        this process's role says so, else nothing; no lines (rank 0 speaks for the job)."""
        assert self.job_place is not None
        self.job_place.announce()
        if self.role is Role.MEASURER:
            self._meter = EnergyMeter(self.settings)
            self._meter.start()
            self._prefetch = threading.Thread(target=self._gather_static, daemon=True,
                                              name="mrv-prefetch")
            self._prefetch.start()
        return self

    def _stop_member(self, end_time: str) -> dict[str, Any]:
        if self.part is not None:
            return self.part
        assert self.job_place is not None
        energy = hardware = None
        if self._meter is not None:
            energy = self._meter.stop().to_record_section()
            if self._prefetch is not None:
                self._prefetch.join()
            hardware = self._static.get("hardware")
        self.part = self.job_place.part(energy, hardware, self._outcome, self._start_time,
                                        end_time)
        self.job_place.hand_over(self.part)
        return self.part

    # -- verification -----------------------------------------------------------------------

    def verify_on_blockchain(self) -> Verdict:
        """Verify this run's stored record against the chain; truthy only when VALID."""
        if self.record_path is None:
            raise MRVStateError("nothing to verify: the tracker has not stopped yet")
        from mrv_ml.verification.verifier import verify

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
            from mrv_ml.chain import connection, localchain  # noqa: F401

    def _pulse(self) -> Pulse:
        """The heartbeat's figures: the time since start(), CodeCarbon's totals so far and
        the latest forecast of the whole run (the forecaster's own, as the record keeps it;
        read once, so the line shows one forecast even if a refresh lands meanwhile)."""
        elapsed_s = time.monotonic() - self._started_at
        planned = self._forecaster.latest
        totals = self._meter.running_totals() if self._meter is not None else None
        if totals is None:
            return Pulse(elapsed_s, forecast=planned)
        return Pulse(elapsed_s, totals.energy_kwh, totals.co2_kg, totals.power_w,
                     forecast=planned)

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
        record: dict[str, Any] = {
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
        if self.scheduler is not None:
            record["scheduler"] = dict(self.scheduler)
            if self.node_share is not None:
                record["scheduler"]["node_share"] = self.node_share
                energy.setdefault("methods", {})["attribution"] = attribution(
                    str(self.settings.tracking_mode), self.node_share,
                    chosen=self._mode_chosen)
        return record

    @property
    def via_registry(self) -> bool:
        """Whether the record goes to a registry service rather than to the chain."""
        return choose_route(self.settings) is Route.REGISTRY

    def _finish(self) -> None:
        """The stored record to its anchoring route; the closing line; the trackers' runs."""
        assert self.record is not None and self.record_path is not None
        assert self.mrv_hash is not None
        run = Finished(self.record, self.record_path, self.mrv_hash)
        for line in finish.timestamp(run, self.store, self.tsa_urls):
            self._say(line)
        if self.blockchain_enabled:
            finish.anchor(run, self.store, self.settings, auto_anchor=self.auto_anchor,
                          anchor_mode=self.anchor_mode, with_record=self.publish,
                          sign=self.sign)
            self.proof, self.tx_hash, self.anchor_error = run.proof, run.tx_hash, run.anchor_error
        self._say(finish.closing_line(run, blockchain_enabled=self.blockchain_enabled,
                                      via_registry=self.via_registry))
        if self.run_log is not None:
            finish.log_to_runs(run, self.run_log, blockchain_enabled=self.blockchain_enabled)

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
            quiet=self.quiet, heartbeat_s=self.heartbeat_s,
            budget_kwh=self.budget.energy_kwh if self.budget else None,
            budget_co2_kg=self.budget.co2_kg if self.budget else None,
            on_budget=self.budget.on_budget if self.budget else None,
            forecast_after=self.forecast_after)
        return fresh

    def _adopt(self, other: MRVTracker) -> None:
        for name in ("mrv_id", "mrv_hash", "record", "record_path", "tx_hash", "proof",
                     "anchor_error"):
            setattr(self, name, getattr(other, name))
