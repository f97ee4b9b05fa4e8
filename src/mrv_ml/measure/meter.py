"""Energy and emissions measurement, with CodeCarbon as the engine.

CodeCarbon spends a second or more detecting hardware when it starts. Training should not
wait for that, so :class:`EnergyMeter` starts CodeCarbon on a background thread and lets
the user's code run at once. The short interval before CodeCarbon is ready is accounted
for by extrapolating CodeCarbon's own average power over the measured interval, and the
record says so: ``energy_emissions.intervals`` lists each interval with its method.
CodeCarbon's periodic measurements (every ``measure_power_secs``, 2 s by default) become
``energy_emissions.power_series`` (:mod:`mrv_ml.measure.series`): power over time, bounded in size,
its first interval the extrapolated start-up gap.

Measurement never kills training: if CodeCarbon cannot start or stop, the result says
``measurement_status: "failed"`` with the error and leaves every energy figure ``None``
rather than inventing one.

Offline by default: CodeCarbon's :class:`OfflineEmissionsTracker` with a configured
country (``MRV_COUNTRY``), or the world-average carbon intensity when none is set, so a
machine without internet never waits on a network lookup.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrv_ml.config import Settings
from mrv_ml.errors import ConfigError, MRVStateError
from mrv_ml.measure import methods as cc_methods
from mrv_ml.measure.gpu.sync import WindowEdges
from mrv_ml.measure.gpu.watch import GpuWatch
from mrv_ml.measure.series import (
    Interval,
    PowerSeriesCollector,
    RunningTotals,
    codecarbon_handler,
)

log = logging.getLogger(__name__)

#: Used when no country is configured: CodeCarbon's world-average intensity applies.
DEFAULT_COUNTRY = "WLD"
DEFAULT_LOCATION_NOTE = (
    "no country configured: CodeCarbon's world-average carbon intensity applies; "
    "set MRV_COUNTRY (ISO 3166 alpha-3) for a country-specific figure"
)
#: How long ``stop()`` waits for a CodeCarbon start that is still in progress.
START_JOIN_TIMEOUT_S = 30.0
#: GIL switch interval while CodeCarbon starts. Its detection does thousands of small
#: I/O calls; each one gives up the GIL, and against a CPU-bound Python training loop
#: getting it back waits a whole interval (5 ms default): start-up took 11.5 s instead of
#: 1.5 s here. At 1 ms it took 2.5 s. Restored as soon as CodeCarbon is running.
STARTUP_SWITCH_INTERVAL_S = 0.001
#: Shorter measured intervals are extrapolated from a power reading, not an average.
MIN_AVERAGING_S = 1.0



@dataclass
class Measurement:
    """What one :class:`EnergyMeter` run measured; ``energy_emissions`` of the record."""

    status: str  # "measured" or "failed"
    duration_s: float
    error: str | None = None
    energy_kwh: float | None = None
    cpu_energy_kwh: float | None = None
    gpu_energy_kwh: float | None = None
    ram_energy_kwh: float | None = None
    co2_kg: float | None = None
    carbon_intensity_g_per_kwh: float | None = None
    pue: float = 1.0
    country_iso_code: str | None = None
    region: str | None = None
    location_source: str = "default"
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    intervals: list[dict[str, Any]] = field(default_factory=list)
    power_series: dict[str, Any] | None = None
    tool_version: str | None = None
    notes: list[str] = field(default_factory=list)
    tracking_mode: str = "machine"
    tracking_scope: dict[str, str] | None = None
    #: gpu_devices, cuda_visible_devices, gpu_sharing (mrv_ml.measure.gpu.watch), gpu_sync
    gpu: dict[str, Any] = field(default_factory=dict)

    def to_record_section(self) -> dict[str, Any]:
        section: dict[str, Any] = {
            "measurement_tool": "CodeCarbon",
            "measurement_tool_version": self.tool_version,
            "measurement_status": self.status,
            "measurement_error": self.error,
            "energy_kwh": self.energy_kwh,
            "cpu_energy_kwh": self.cpu_energy_kwh,
            "gpu_energy_kwh": self.gpu_energy_kwh,
            "ram_energy_kwh": self.ram_energy_kwh,
            "co2_kg": self.co2_kg,
            "duration_seconds": self.duration_s,
            "carbon_intensity_g_per_kwh": self.carbon_intensity_g_per_kwh,
            "pue": self.pue,
            "country_iso_code": self.country_iso_code,
            "region": self.region,
            "location_source": self.location_source,
            "methods": self.methods,
            "intervals": self.intervals,
            "power_series": self.power_series,
        }
        section["tracking_mode"] = self.tracking_mode
        if self.tracking_scope is not None:
            section["tracking_scope"] = self.tracking_scope
        section.update(self.gpu)
        if self.notes:
            section["notes"] = list(self.notes)
        return section


@functools.cache
def known_country_codes() -> frozenset[str] | None:
    """The ISO 3166 alpha-3 codes CodeCarbon has an energy mix for (its
    ``global_energy_mix.json``, read without importing CodeCarbon), and ``WLD``, the world
    average; ``None`` when the file cannot be found (nothing is refused then)."""
    try:
        spec = importlib.util.find_spec("codecarbon")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = (Path(next(iter(spec.submodule_search_locations))) / "data" / "private_infra"
                / "global_energy_mix.json")
        codes = {str(code).upper() for code in json.loads(path.read_text(encoding="utf-8"))}
    except (OSError, ValueError, StopIteration):
        return None
    return frozenset(codes | {DEFAULT_COUNTRY})


def check_country(code: str | None) -> None:
    """:class:`ConfigError` for a country CodeCarbon has no figure for: it would silently
    use the world average while the record said the country was configured."""
    if code is None:
        return
    known = known_country_codes()
    if known is not None and code.upper() not in known:
        raise ConfigError(f"unknown country {code!r}: CodeCarbon has no carbon intensity for "
                          "it; give an ISO 3166 alpha-3 code such as FRA, DEU or USA")


def _codecarbon_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("codecarbon")
    except Exception:  # noqa: BLE001 - metadata lookups must never fail a run
        return None


def _quiet_codecarbon_logging() -> None:
    # CodeCarbon logs warnings (e.g. "multiple instances allowed") on every start; the
    # record carries everything an auditor needs, so keep the user's console clean.
    logging.getLogger("codecarbon").setLevel(logging.CRITICAL)


def _stop_quietly(tracker: Any) -> None:
    try:
        tracker.stop()
    except Exception as e:  # noqa: BLE001 - nothing to report to: the run has ended
        log.debug("stopping a CodeCarbon tracker that started too late failed: %s", e)


class EnergyMeter:
    """Measures one interval of work with CodeCarbon, starting it in the background.

    ``start()`` returns at once; ``stop()`` returns a :class:`Measurement`. Either may be
    called from the thread that runs the training; neither raises.
    """

    def __init__(self, settings: Settings | None = None, *,
                 measure_power_secs: float | None = None, tracker_factory: Any = None) -> None:
        self._settings = settings or Settings()
        self._measure_power_secs = (self._settings.measure_power_secs
                                    if measure_power_secs is None else measure_power_secs)
        #: CodeCarbon's periodic measurements, fed by its output handler.
        self.series = PowerSeriesCollector(self._measure_power_secs)
        self._tracker_factory = tracker_factory  # tests inject failures here
        self._tracker: Any = None
        self._start_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._t0 = 0.0  # perf_counter at start(), same clock CodeCarbon uses
        self._cc_start = 0.0
        self._saved_switch_interval: float | None = None
        # Set when stop() gave up waiting for the start: a CodeCarbon that finishes starting
        # after that is stopped at once (its scheduler thread would keep the process alive).
        self._abandoned = False
        self._lock = threading.Lock()
        #: the GPUs measured and their other processes; CodeCarbon's methods as it runs;
        #: CUDA synchronised at the window's edges
        self.gpu_watch = GpuWatch()
        self.mode_watch = cc_methods.ModeWatch()
        self.edges = WindowEdges()

    # -- configuration ------------------------------------------------------------------

    @property
    def country_iso_code(self) -> str:
        return (self._settings.country_iso_code or DEFAULT_COUNTRY).upper()

    @property
    def location_source(self) -> str:
        if self._settings.online_lookup:
            return "online"
        return "configured" if self._settings.country_iso_code else "default"

    def _make_tracker(self) -> Any:
        if self._tracker_factory is not None:
            return self._tracker_factory()
        common: dict[str, Any] = {
            "save_to_file": False,
            "log_level": "critical",
            "measure_power_secs": self._measure_power_secs,
            "allow_multiple_runs": True,
            "pue": self._settings.pue,
            "tracking_mode": self._settings.tracking_mode or "machine",
            # every measurement goes to our handlers: the record's power series, and a look
            # at the GPUs' other processes and CodeCarbon's methods (cheap, rate-limited)
            "output_handlers": [codecarbon_handler(self.series), _tick_handler(self._tick)],
            "api_call_interval": 1,
        }
        measured_gpus = self.gpu_watch.measured_indices
        if measured_gpus is not None:  # the GPUs the record names, chosen once (nvml)
            common["gpu_ids"] = measured_gpus
        if self._settings.online_lookup:
            from codecarbon import EmissionsTracker

            return EmissionsTracker(**common)
        from codecarbon import OfflineEmissionsTracker

        kwargs = dict(common, country_iso_code=self.country_iso_code)
        if self._settings.region:
            kwargs["region"] = self._settings.region
        return OfflineEmissionsTracker(**kwargs)

    # -- running ------------------------------------------------------------------------

    def running_totals(self) -> RunningTotals | None:
        """The figures so far for a heartbeat: CodeCarbon's totals at its latest measurement
        plus the start-up interval extrapolated at their average power, as :meth:`_build`
        does for the record (so the last heartbeat and the closing line agree). ``None``
        until CodeCarbon has measured for :data:`MIN_AVERAGING_S` (its first reading, over
        a fraction of a second, is no average)."""
        totals = self.series.running_totals()
        if totals is None or totals.elapsed_s < MIN_AVERAGING_S:
            return None
        gap_s = max(self._cc_start - self._t0, 0.0)
        scale = 1.0 + gap_s / totals.elapsed_s
        return RunningTotals(elapsed_s=totals.elapsed_s + gap_s,
                             energy_kwh=totals.energy_kwh * scale,
                             co2_kg=totals.co2_kg * scale, power_w=totals.power_w)

    def _start_in_background(self) -> None:
        try:
            import codecarbon  # noqa: F401  (its import resets its log level)

            _quiet_codecarbon_logging()
            self.gpu_watch.start()
            tracker = self._make_tracker()
            tracker.start()
            self.mode_watch.observe(tracker)
            # CodeCarbon's start() swallows its own exceptions; a tracker that did not
            # really start has no start time.
            cc_start = getattr(tracker, "_start_time", None)
            if cc_start is None:
                raise MRVStateError("CodeCarbon did not start (see its log for the cause)")
            with self._lock:
                if self._abandoned:  # stop() already returned without it
                    _stop_quietly(tracker)
                    return
                self._cc_start = float(cc_start)
                self._tracker = tracker
            # CodeCarbon imports its emissions engine (and requests, pycountry) lazily at
            # stop(); import them now, while training runs, to keep stop() fast.
            import codecarbon.core.emissions  # noqa: F401
            import codecarbon.external.geography  # noqa: F401
        except BaseException as e:  # noqa: BLE001 - measurement must never kill training
            self._start_error = e
        finally:
            self._restore_switch_interval()

    def _restore_switch_interval(self) -> None:
        saved, self._saved_switch_interval = self._saved_switch_interval, None
        # Only undo our own change: the user's code may have set its own value since.
        if saved is not None and sys.getswitchinterval() == STARTUP_SWITCH_INTERVAL_S:
            sys.setswitchinterval(saved)

    def _tick(self) -> None:
        """At each of CodeCarbon's measurements, on its thread."""
        self.gpu_watch.sample()
        if self._tracker is not None:
            self.mode_watch.observe(self._tracker)

    def start(self) -> None:
        self.edges.at_start()  # work queued before the run finishes before it starts
        self._t0 = time.perf_counter()
        previous = sys.getswitchinterval()
        if previous > STARTUP_SWITCH_INTERVAL_S:
            self._saved_switch_interval = previous
            sys.setswitchinterval(STARTUP_SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._start_in_background,
                                        name="mrv-codecarbon-start", daemon=True)
        self._thread.start()

    def stop(self) -> Measurement:
        self.edges.at_stop()  # the run's queued GPU work falls inside its window
        t_end = time.perf_counter()
        duration_s = t_end - self._t0
        if self._thread is not None:
            self._thread.join(START_JOIN_TIMEOUT_S)
        self._restore_switch_interval()
        base = Measurement(status="failed", duration_s=round(duration_s, 6),
                           pue=self._settings.pue, country_iso_code=self.country_iso_code,
                           region=self._settings.region, location_source=self.location_source,
                           tool_version=_codecarbon_version(),
                           tracking_mode=self._settings.tracking_mode or "machine")
        if self.location_source == "default":
            base.notes.append(DEFAULT_LOCATION_NOTE)
        self._gpu_facts(base)
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._tracker is None:
                self._abandoned = True
                base.error = (f"CodeCarbon did not finish starting within "
                              f"{START_JOIN_TIMEOUT_S:.0f} s")
                return base
        if self._tracker is None:
            err = self._start_error
            base.error = f"CodeCarbon failed to start: {type(err).__name__}: {err}"
            return base
        try:
            self._tracker.stop()
            data = self._tracker.final_emissions_data
        except Exception as e:  # noqa: BLE001
            base.error = f"CodeCarbon failed to stop: {type(e).__name__}: {e}"
            return base
        try:
            return self._build(base, data, t_end)
        except Exception as e:  # noqa: BLE001 - a malformed result is a failed measurement
            base.error = f"CodeCarbon returned unusable data: {type(e).__name__}: {e}"
            return base

    # -- result -------------------------------------------------------------------------

    def _build(self, m: Measurement, data: Any, t_end: float) -> Measurement:
        duration_s = t_end - self._t0
        # CodeCarbon's interval begins when its hardware detection is done; before that the
        # user's code was already running. A run shorter than the detection is all gap.
        gap_s = min(max(self._cc_start - self._t0, 0.0), duration_s)
        measured_s = max(t_end - self._cc_start, 0.0)
        cpu = float(data.cpu_energy)
        gpu = float(data.gpu_energy)
        ram = float(data.ram_energy)
        total = float(data.energy_consumed)
        co2 = float(data.emissions)
        intensity = co2 / total * 1000.0 if total > 0 else self._intensity_g_per_kwh()

        if measured_s <= 0.0:
            # CodeCarbon was ready only after the user's code ended (a short run, or a
            # CPU-bound Python loop starving its start-up thread of the GIL): its energy
            # covers time after the run, so only its power reading is used.
            how = "CodeCarbon's power reading (it was ready only after the run ended)"
            watts = [float(w or 0.0) for w in (data.cpu_power, data.gpu_power, data.ram_power)]
            cc_components = cpu + gpu + ram
            overhead = total / cc_components if cc_components > 0 else m.pue  # PUE
            cpu, gpu, ram = (w * duration_s / 3.6e6 for w in watts)
            total = (cpu + gpu + ram) * overhead
            gap = [0.0, 0.0, 0.0]
            extrapolated = Interval(0.0, duration_s, cpu * 3.6e6, gpu * 3.6e6, ram * 3.6e6,
                                    measured=False)
        elif measured_s >= MIN_AVERAGING_S:
            how = "CodeCarbon's average power over the measured interval"
            gap = [e * gap_s / measured_s for e in (cpu, gpu, ram)]
            extrapolated = Interval(0.0, gap_s, gap[0] * 3.6e6, gap[1] * 3.6e6,
                                    gap[2] * 3.6e6, measured=False)
        else:  # too short to average: CodeCarbon's last power reading, in watts
            how = "CodeCarbon's power reading (the measured interval was too short to average)"
            gap = [float(w or 0.0) * gap_s / 3.6e6 for w in
                   (data.cpu_power, data.gpu_power, data.ram_power)]
            extrapolated = Interval(0.0, gap_s, gap[0] * 3.6e6, gap[1] * 3.6e6,
                                    gap[2] * 3.6e6, measured=False)
        m.intervals = [
            {"start_offset_s": 0.0, "end_offset_s": round(gap_s, 6),
             "method": f"extrapolated from {how}; CodeCarbon was still detecting hardware",
             "measured": False},
        ]
        if measured_s > 0.0:
            m.intervals.append(
                {"start_offset_s": round(gap_s, 6), "end_offset_s": round(gap_s + measured_s, 6),
                 "method": "CodeCarbon", "measured": True})
        m.cpu_energy_kwh = cpu + gap[0]
        m.gpu_energy_kwh = gpu + gap[1]
        m.ram_energy_kwh = ram + gap[2]
        # CodeCarbon's total includes the PUE overhead; apply the same factor to the gap.
        components = cpu + gpu + ram
        pue_factor = total / components if components > 0 else m.pue
        m.energy_kwh = total + sum(gap) * pue_factor
        m.co2_kg = m.energy_kwh * (intensity or 0.0) / 1000.0
        m.carbon_intensity_g_per_kwh = intensity
        m.pue = float(getattr(data, "pue", m.pue) or m.pue)
        m.region = data.region or m.region
        if self._settings.online_lookup and data.country_iso_code:
            m.country_iso_code = data.country_iso_code
        self.mode_watch.observe(self._tracker)
        m.notes.extend(self.mode_watch.changes)
        m.methods = cc_methods.methods(self._tracker, self.mode_watch.changes)
        m.methods["grid"] = cc_methods.grid_method(m.location_source)
        m.tracking_scope = cc_methods.tracking_scope(
            m.tracking_mode, cc_methods.component_modes(self._tracker))
        m.power_series = self._power_series(extrapolated, gap_s, duration_s, m.pue,
                                            measured=measured_s > 0.0)
        m.status = "measured"
        return m

    def _power_series(self, gap: Interval, gap_s: float, duration_s: float, pue: float, *,
                      measured: bool) -> dict[str, Any] | None:
        """The record's ``power_series``: the extrapolated start-up interval, then
        CodeCarbon's periodic ones (left out when CodeCarbon was ready only after the run);
        ``None`` when CodeCarbon reported none (a failure here never fails the record)."""
        try:
            return self.series.power_series(offset_s=gap_s, run_duration_s=duration_s,
                                            pue=pue, gap=gap, measured=measured)
        except Exception as e:  # noqa: BLE001 - the totals stand without their series
            log.debug("power series unusable: %s", e)
            return None

    def _intensity_g_per_kwh(self) -> float | None:
        """Carbon intensity when nothing was consumed (a very short run)."""
        try:
            from codecarbon.core.units import Energy

            kg = self._tracker._emissions.get_private_infra_emissions(
                Energy.from_energy(kWh=1.0), self._tracker._geo)
            return float(kg) * 1000.0
        except Exception:  # noqa: BLE001 - private API; a missing figure stays missing
            return None


    def _gpu_facts(self, m: Measurement) -> None:
        """The GPUs measured, their other processes, the window's edges (never raises)."""
        try:
            self.gpu_watch.stop()
            fields = self.gpu_watch.to_record_fields()
            m.notes.extend(fields.pop("notes", []))
            m.gpu.update(fields)
            sync = self.edges.describe()
            if sync is not None:
                m.gpu["gpu_sync"] = sync
        except Exception as e:  # noqa: BLE001 - the energy figures stand without these
            m.notes.append(f"the GPU facts could not be gathered: {type(e).__name__}: {e}")


def _tick_handler(callback: Any) -> Any:
    """A CodeCarbon output handler calling ``callback()`` at each measurement; it never
    raises into CodeCarbon."""
    from codecarbon.output_methods.base_output import BaseOutput

    class _Tick(BaseOutput):
        def live_out(self, total: Any, delta: Any) -> None:
            try:
                callback()
            except Exception as e:  # noqa: BLE001
                log.debug("measurement tick: %s", e)

        def out(self, total: Any, delta: Any) -> None:
            pass

    return _Tick()
