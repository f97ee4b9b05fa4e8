"""Power over time: CodeCarbon's periodic measurements as a small series in the record.

CodeCarbon measures every ``measure_power_secs`` seconds and hands each measurement to its
output handlers (``BaseOutput.live_out(total, delta)``; the last one, at ``stop()``, through
``out(total, delta)``). :class:`PowerSeriesCollector` receives those deltas through
:func:`codecarbon_handler` (CodeCarbon's public extension point, ``output_handlers`` with
``api_call_interval=1``) and keeps them as a series of at most :data:`MAX_SERIES_POINTS`
intervals, however long the run: it streams, holding at most about twice that many
intervals, and merges adjacent pairs when full. Merging conserves energy exactly (each
interval keeps the energy of each component, so its mean power is duration-weighted), and a
measured interval is never merged with an extrapolated one.

:meth:`PowerSeriesCollector.power_series` gives the record's
``energy_emissions.power_series`` (schema 1.1)::

    {"source": "CodeCarbon periodic measurements (every 2 s)",
     "start_offset_s": [...], "duration_s": [...],          # seconds since the run's start
     "cpu_power_w": [...], "gpu_power_w": [...], "ram_power_w": [...],  # watts, PUE not applied
     "measured": [...], "points_measured": N, "downsampled": false}

Offsets and durations are rounded to the millisecond (so the intervals still tile the run)
and powers to four significant digits: the energy of the series stays within 0.05 % of the
energy it was built from.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from mrv_ml.errors import MRVValueError

__all__ = ["MAX_SERIES_POINTS", "Interval", "PowerSeriesCollector", "RunningTotals",
           "codecarbon_handler", "downsample"]

#: The most intervals a record's power series holds: enough for a plot at screen width,
#: small enough that a week-long run's record stays a few tens of kilobytes.
MAX_SERIES_POINTS = 300
#: Intervals kept while collecting before adjacent pairs are merged: the final series is
#: then at most ``MAX_SERIES_POINTS`` with room for the extrapolated start-up interval and
#: the partly filled last one.
_STREAM_LIMIT = 2 * (MAX_SERIES_POINTS - 2)
#: Shorter CodeCarbon intervals (the one at ``stop()`` right after the last periodic one)
#: are not counted as points of their own; their energy goes into the neighbouring
#: interval. CodeCarbon itself does not measure again within 50 ms at ``stop()``. The
#: reading CodeCarbon takes as it starts (its first, over the fraction of a second its
#: schedulers take to start, with readings skewed by the start) goes into the next one too.
MIN_POINT_S = 0.05
_JOULES_PER_KWH = 3.6e6
_POWER_DIGITS = 4


@dataclass
class Interval:
    """One interval of the series: energies in joules (as measured, PUE included or not as
    the caller says), so that merging is a sum and conserves energy exactly."""

    start_s: float
    duration_s: float
    cpu_j: float
    gpu_j: float
    ram_j: float
    measured: bool = True
    count: int = 0  # CodeCarbon intervals of at least MIN_POINT_S merged into this one

    def absorb(self, other: Interval) -> None:
        """Add the adjacent ``other`` (after this one) into this interval."""
        self.duration_s = other.start_s + other.duration_s - self.start_s
        self.cpu_j += other.cpu_j
        self.gpu_j += other.gpu_j
        self.ram_j += other.ram_j
        self.count += other.count


def downsample(intervals: list[Interval]) -> list[Interval]:
    """Adjacent pairs merged (first with second, third with fourth...); a measured interval
    is never merged with an extrapolated one. Returns new intervals; energy is conserved."""
    out: list[Interval] = []
    i = 0
    while i < len(intervals):
        first = intervals[i]
        merged = Interval(first.start_s, first.duration_s, first.cpu_j, first.gpu_j,
                          first.ram_j, first.measured, first.count)
        if i + 1 < len(intervals) and intervals[i + 1].measured == first.measured:
            merged.absorb(intervals[i + 1])
            i += 2
        else:
            i += 1
        out.append(merged)
    return out


@dataclass(frozen=True)
class RunningTotals:
    """What CodeCarbon has measured so far (its own figures: PUE included)."""

    elapsed_s: float  # since CodeCarbon started measuring
    energy_kwh: float
    co2_kg: float
    power_w: float | None  # mean power of the last interval


def _finite_number(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise MRVValueError(f"{value!r} is not a finite number")
    return number


class PowerSeriesCollector:
    """Collects CodeCarbon's deltas into a bounded series; thread-safe (CodeCarbon calls it
    from its scheduler thread, the heartbeat reads it from another)."""

    def __init__(self, measure_power_secs: float | None = None) -> None:
        self.measure_power_secs = measure_power_secs
        self._lock = threading.Lock()
        self._done: list[Interval] = []
        self._pending: Interval | None = None
        self._factor = 1  # CodeCarbon intervals per stored interval
        self._end_s = 0.0  # end of the last interval, seconds since CodeCarbon's start
        self._points = 0
        self._merged = False
        self._totals: RunningTotals | None = None
        self.errors = 0  # deltas that could not be used (never raised into CodeCarbon)

    # -- feeding --------------------------------------------------------------------------

    def add(self, duration_s: float, cpu_kwh: float, gpu_kwh: float, ram_kwh: float,
            *, end_s: float | None = None, measured: bool = True,
            counted: bool = True) -> None:
        """One interval of ``duration_s`` seconds ending at ``end_s`` (seconds since
        CodeCarbon started; default: right after the previous one), energies in kWh.
        ``counted=False`` (or a duration under :data:`MIN_POINT_S`): no point of its own,
        its energy goes into the neighbouring interval."""
        duration_s = max(_finite_number(duration_s), 0.0)
        cpu_j, gpu_j, ram_j = (max(_finite_number(e), 0.0) * _JOULES_PER_KWH
                               for e in (cpu_kwh, gpu_kwh, ram_kwh))
        with self._lock:
            end = self._end_s + duration_s if end_s is None else max(float(end_s), self._end_s)
            start = max(end - duration_s, self._end_s)  # intervals never overlap
            point = Interval(start, end - start, cpu_j, gpu_j, ram_j, measured=measured,
                             count=1 if counted and duration_s >= MIN_POINT_S else 0)
            self._end_s = end
            self._points += point.count
            pending = self._pending
            if pending is not None and pending.measured != measured:
                self._done.append(pending)
                pending = None
            if pending is None:
                pending = point
            else:
                pending.absorb(point)
            if pending.count >= self._factor:
                self._done.append(pending)
                pending = None
            self._pending = pending
            if len(self._done) >= _STREAM_LIMIT:
                self._done = downsample(self._done)
                self._factor *= 2
                self._merged = True

    def add_codecarbon(self, total: Any, delta: Any) -> None:
        """A CodeCarbon ``(total, delta)`` pair (``EmissionsData``): the interval ends at
        ``total.duration`` seconds after CodeCarbon's start and lasts ``delta.duration``.
        The first (CodeCarbon's reading as it starts) is folded into the second."""
        self.add(delta.duration, delta.cpu_energy, delta.gpu_energy, delta.ram_energy,
                 end_s=_finite_number(total.duration), counted=self._totals is not None)
        duration = max(float(delta.duration), 0.0)
        power = (float(delta.energy_consumed) * _JOULES_PER_KWH / duration
                 if duration >= MIN_POINT_S else None)
        with self._lock:
            previous = self._totals
            self._totals = RunningTotals(
                elapsed_s=float(total.duration), energy_kwh=float(total.energy_consumed),
                co2_kg=float(total.emissions),
                power_w=power if power is not None else (previous.power_w if previous else None))

    # -- reading --------------------------------------------------------------------------

    @property
    def points_measured(self) -> int:
        """CodeCarbon intervals received so far (before any merging)."""
        return self._points

    @property
    def stored(self) -> int:
        """Intervals held now (bounded by about twice :data:`MAX_SERIES_POINTS`)."""
        with self._lock:
            return len(self._done) + (self._pending is not None)

    def running_totals(self) -> RunningTotals | None:
        """CodeCarbon's figures at its last measurement; ``None`` before the first."""
        return self._totals

    def intervals(self) -> list[Interval]:
        """The measured intervals, seconds since CodeCarbon's start (a copy)."""
        with self._lock:
            done = [Interval(p.start_s, p.duration_s, p.cpu_j, p.gpu_j, p.ram_j, p.measured,
                             p.count) for p in self._done]
            p = self._pending
            if p is not None:
                tail = Interval(p.start_s, p.duration_s, p.cpu_j, p.gpu_j, p.ram_j,
                                p.measured, p.count)
                if tail.count == 0 and done and done[-1].measured == tail.measured:
                    done[-1].absorb(tail)  # the short reading at stop(): no point of its own
                else:
                    done.append(tail)
            return done

    def power_series(self, *, offset_s: float = 0.0, run_duration_s: float | None = None,
                     pue: float = 1.0, gap: Interval | None = None,
                     measured: bool = True) -> dict[str, Any] | None:
        """The record's ``power_series``: the collected intervals moved by ``offset_s``
        (where CodeCarbon's start falls in the run), after the extrapolated ``gap``
        interval if any, the last one cut at ``run_duration_s``, energies divided by
        ``pue`` (CodeCarbon's figures include it; the series' powers do not). With
        ``measured=False`` the collected intervals are left out (only ``gap`` is used).
        ``None`` when nothing at all was collected."""
        with self._lock:
            if self._points == 0 and not self._done and self._pending is None:
                return None
        points = []
        if gap is not None:
            points.append(gap)
        if measured:
            for p in self.intervals():
                p.start_s += offset_s
                points.append(p)
        merged = self._merged
        while len(points) > MAX_SERIES_POINTS:
            smaller = downsample(points)
            if len(smaller) == len(points):
                break  # cannot happen with one extrapolated interval; never merge across
            points, merged = smaller, True
        return _render(points, run_duration_s=run_duration_s, pue=pue,
                       measure_power_secs=self.measure_power_secs,
                       points_measured=self._points, downsampled=merged)


def _sig(value: float, digits: int = _POWER_DIGITS) -> float:
    return float(f"{value:.{digits - 1}e}") if value else 0.0


def _render(points: list[Interval], *, run_duration_s: float | None, pue: float,
            measure_power_secs: float | None, points_measured: int,
            downsampled: bool) -> dict[str, Any] | None:
    # Boundaries rounded to the millisecond, each interval ending where the next begins
    # (the last one cut at the run's end); an interval that rounds to nothing gives its
    # energy to its neighbour of the same kind, or is dropped when it has none.
    rows: list[tuple[float, float, list[float], bool]] = []
    for index, p in enumerate(points):
        start = round(p.start_s, 3)
        if index + 1 < len(points):
            end = round(points[index + 1].start_s, 3)
        else:
            end_s = p.start_s + p.duration_s
            if run_duration_s is not None:
                end_s = min(end_s, run_duration_s)
            end = round(end_s, 3)
        end = max(end, start)
        energies = [p.cpu_j, p.gpu_j, p.ram_j]
        if rows and rows[-1][3] == p.measured and (end == start or rows[-1][1] == rows[-1][0]):
            last = rows[-1]
            rows[-1] = (last[0], max(end, last[1]), [a + b for a, b in zip(last[2], energies, strict=True)],
                        p.measured)
            continue
        rows.append((start, end, energies, p.measured))
    rows = [r for r in rows if r[1] > r[0]]
    if not rows:
        return None
    divisor = pue if pue and pue > 0 else 1.0
    every = f" (every {measure_power_secs:g} s)" if measure_power_secs else ""
    series: dict[str, Any] = {
        "source": f"CodeCarbon periodic measurements{every}",
        "start_offset_s": [], "duration_s": [], "cpu_power_w": [], "gpu_power_w": [],
        "ram_power_w": [], "measured": [], "points_measured": points_measured,
        "downsampled": downsampled,
    }
    for start, end, energies, is_measured in rows:
        duration = round(end - start, 3)
        series["start_offset_s"].append(start)
        series["duration_s"].append(duration)
        for key, joules in zip(("cpu_power_w", "gpu_power_w", "ram_power_w"), energies, strict=True):
            series[key].append(_sig(joules / divisor / duration))
        series["measured"].append(is_measured)
    return series


def series_energy_kwh(series: dict[str, Any], component: str) -> float:
    """Σ power × duration of one component (``"cpu"``, ``"gpu"``, ``"ram"``) in kWh."""
    powers, durations = series[f"{component}_power_w"], series["duration_s"]
    return float(sum(p * d for p, d in zip(powers, durations, strict=True))) / _JOULES_PER_KWH


def codecarbon_handler(collector: PowerSeriesCollector) -> Any:
    """A CodeCarbon output handler feeding ``collector``. Imports CodeCarbon (slow): call it
    where CodeCarbon is being started anyway. It never raises into CodeCarbon: a delta it
    cannot use is counted in ``collector.errors`` and skipped."""
    from codecarbon.output_methods.base_output import BaseOutput

    class _SeriesOutput(BaseOutput):
        def live_out(self, total: Any, delta: Any) -> None:
            self._take(total, delta)

        def out(self, total: Any, delta: Any) -> None:  # the last interval, at stop()
            self._take(total, delta)

        @staticmethod
        def _take(total: Any, delta: Any) -> None:
            try:
                collector.add_codecarbon(total, delta)
            except Exception:  # noqa: BLE001 - a measurement must never stop CodeCarbon
                collector.errors += 1

    return _SeriesOutput()

