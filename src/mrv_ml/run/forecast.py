"""Forecast a whole run's energy, CO2e and duration from the progress made so far.

Pure: the caller (the tracker's ``update_progress``, fed by the framework callbacks at each
epoch's end) hands in how much of the work is done, the total, and the figures measured so
far; nothing here reads a clock or a meter.

The method is linear extrapolation of energy, CO2e and time per unit of progress (an
epoch, a step). The first forecast is made once the warm-up is done (by default one unit
of progress, or 1 % of the total if that is more, so a step-counted run is not forecast
from one step) and uses the rate since the start, start-up included. Later calls refresh
it with the rate since that first point only, so the start-up (CodeCarbon detecting
hardware, data loading, compilation in the first epoch) stops weighing on the rate. The
record keeps the first forecast, the one a researcher planned with, and the latest
refresh beside the actual figures (``energy_emissions.forecast``).

Progress that cannot be used is a :class:`~mrv_ml.errors.ProgressError` naming the
problem: an unknown or zero total, a negative or non-finite count, more done than the
total, a count that went backwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mrv_ml.errors import ProgressError
from mrv_ml.units import format_co2_kg, format_duration_s, format_energy_kwh

__all__ = ["Forecast", "Forecaster", "ProgressPoint", "check_progress", "default_warmup",
           "forecast", "forecast_line", "point_at"]


@dataclass(frozen=True)
class ProgressPoint:
    """The figures at one moment: ``done`` units of progress after ``elapsed_s`` seconds
    of the run, having used ``energy_kwh`` and emitted ``co2_kg``."""

    done: float
    elapsed_s: float
    energy_kwh: float
    co2_kg: float


@dataclass(frozen=True)
class Forecast:
    """The whole run's figures as forecast when ``done`` of ``total`` units were done,
    ``made_at_s`` seconds into the run."""

    method: str
    done: float
    total: float
    unit: str
    made_at_s: float
    energy_kwh: float
    co2_kg: float
    duration_s: float

    @property
    def made_at_progress(self) -> float:
        """The share of the work done when the forecast was made (0 to 1)."""
        return self.done / self.total

    def to_record(self) -> dict[str, Any]:
        """The record's ``energy_emissions.forecast`` fields (schema 1.1)."""
        return {"method": self.method, "made_at_progress": round(self.made_at_progress, 6),
                "made_at_s": round(self.made_at_s, 3), "done": _plain(self.done),
                "total": _plain(self.total), "unit": self.unit,
                "energy_kwh": self.energy_kwh, "co2_kg": self.co2_kg,
                "duration_s": round(self.duration_s, 3)}


def _plain(count: float) -> float | int:
    return int(count) if float(count).is_integer() else count


def _count(value: float, unit: str) -> str:
    shown = _plain(value)
    return f"{shown:g} {unit}" if isinstance(shown, float) else f"{shown} {unit}"


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ProgressError(f"{name} must be a number, not {value!r}", key="bad_progress")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProgressError(f"{name} must be a number, not {value!r}",
                            key="bad_progress") from None
    if not math.isfinite(number):
        raise ProgressError(f"{name} must be a finite number, not {value!r}",
                            key="bad_progress")
    return number


def check_progress(done: Any, total: Any, previous_done: float | None = None) -> tuple[float, float]:
    """``(done, total)`` as numbers, or a :class:`ProgressError` saying why they cannot be
    forecast from (its ``key``: ``unknown_total``, ``negative_progress``,
    ``progress_over_total``, ``progress_backwards``, ``bad_progress``)."""
    if total is None:
        raise ProgressError("no forecast: the total amount of work is unknown; pass the total "
                            "(e.g. update_progress(done, total=max_steps))", key="unknown_total")
    done_n = _finite("done", done)
    total_n = _finite("total", total)
    if total_n <= 0:
        raise ProgressError(f"no forecast: the total must be positive, not {_plain(total_n)}",
                            key="unknown_total")
    if done_n < 0:
        raise ProgressError(f"progress cannot be negative ({_plain(done_n)})",
                            key="negative_progress")
    if done_n > total_n:
        raise ProgressError(f"progress {_plain(done_n)} is more than the total "
                            f"{_plain(total_n)}", key="progress_over_total")
    if previous_done is not None and done_n < previous_done:
        raise ProgressError(f"progress went backwards ({_plain(done_n)} after "
                            f"{_plain(previous_done)})", key="progress_backwards")
    return done_n, total_n


def default_warmup(total: float) -> float:
    """Units of progress before the first forecast: one unit, or 1 % of the total if that
    is more (a forecast from the first of 10,000 steps would mostly measure start-up)."""
    return max(1.0, total / 100.0)


def point_at(done: float, now_s: float, measured_s: float, energy_kwh: float,
             co2_kg: float) -> ProgressPoint:
    """The figures at ``now_s`` from a meter's totals at ``measured_s`` (CodeCarbon's last
    measurement, up to one interval earlier): the gap is extrapolated at their average power,
    so energy and progress refer to the same moment."""
    for name, value in (("now_s", now_s), ("measured_s", measured_s),
                        ("energy_kwh", energy_kwh), ("co2_kg", co2_kg)):
        if _finite(name, value) < 0:
            raise ProgressError(f"{name} cannot be negative ({value})", key="bad_progress")
    scale = now_s / measured_s if measured_s > 0 and now_s > measured_s else 1.0
    return ProgressPoint(done, max(now_s, measured_s), energy_kwh * scale, co2_kg * scale)


def forecast(now: ProgressPoint, total: float, *, since: ProgressPoint | None = None,
             unit: str = "steps") -> Forecast:
    """The whole run's energy, CO2e and duration, extrapolated linearly per unit of
    progress: from the start, or from ``since`` (an earlier point) when given, so what
    happened before it (the start-up) does not weigh on the rate."""
    done, total = check_progress(now.done, total)
    if done <= 0:
        raise ProgressError("no forecast before any progress (done is 0)", key="no_progress")
    if since is not None and not (0 <= since.done < done and since.elapsed_s <= now.elapsed_s):
        since = None  # nothing new since that point: extrapolate from the start
    base = since or ProgressPoint(0.0, 0.0, 0.0, 0.0)
    span = done - base.done
    remaining = total - done
    energy = now.energy_kwh + max(now.energy_kwh - base.energy_kwh, 0.0) / span * remaining
    co2 = now.co2_kg + max(now.co2_kg - base.co2_kg, 0.0) / span * remaining
    duration = now.elapsed_s + (now.elapsed_s - base.elapsed_s) / span * remaining
    if since is None:
        method = (f"linear extrapolation of energy, CO2e and time per unit of progress after "
                  f"{_plain(done)} of {_count(total, unit)}, start-up included (the "
                  "interval CodeCarbon spent detecting hardware extrapolated at its average "
                  "power)")
    else:
        method = (f"linear extrapolation of energy, CO2e and time per unit of progress "
                  f"between {_plain(base.done)} and {_plain(done)} of {_count(total, unit)} "
                  f"(the first {_count(base.done, unit)}, with the start-up, excluded from "
                  "the rate)")
    return Forecast(method=method, done=done, total=total, unit=unit, made_at_s=now.elapsed_s,
                    energy_kwh=energy, co2_kg=co2, duration_s=duration)


class Forecaster:
    """The forecasts of one run: :meth:`update` at each report of progress. The first
    forecast comes once ``done`` reaches the warm-up (``warmup`` units; default
    :func:`default_warmup`); each later report with more done refreshes it from that first
    point. Not thread-safe: one training loop reports its progress."""

    def __init__(self, *, warmup: float | None = None) -> None:
        if warmup is not None and not (math.isfinite(warmup) and warmup > 0):
            raise ProgressError(f"the forecast warm-up must be a positive amount of progress, "
                                f"not {warmup!r}", key="bad_progress")
        self.warmup = warmup
        self.first: Forecast | None = None
        self.latest: Forecast | None = None
        self._first_point: ProgressPoint | None = None
        self._last_done: float | None = None

    def update(self, done: Any, total: Any, reading: ProgressPoint | None, *,
               unit: str = "steps") -> Forecast | None:
        """Check the progress (:class:`ProgressError`), then forecast if the warm-up is done
        and ``reading`` (the figures now, with ``done`` in it) is there; the new forecast,
        or ``None`` when none was made this time."""
        done_n, total_n = check_progress(done, total, self._last_done)
        advanced = self._last_done is None or done_n > self._last_done
        self._last_done = done_n
        if reading is None or not advanced:
            return None
        warmup = self.warmup if self.warmup is not None else default_warmup(total_n)
        if done_n < min(warmup, total_n):
            return None
        now = ProgressPoint(done_n, reading.elapsed_s, reading.energy_kwh, reading.co2_kg)
        made = forecast(now, total_n, since=self._first_point, unit=unit)
        if self.first is None:
            self.first, self._first_point = made, now
        self.latest = made
        return made

    def to_record(self) -> dict[str, Any] | None:
        """``energy_emissions.forecast``: the first forecast, with the latest refresh under
        ``refreshed`` (absent when there was none); ``None`` when no forecast was made."""
        if self.first is None:
            return None
        section = self.first.to_record()
        if self.latest is not None and self.latest is not self.first:
            latest = self.latest.to_record()
            section["refreshed"] = {k: latest[k] for k in (
                "method", "made_at_progress", "made_at_s", "done", "total", "energy_kwh",
                "co2_kg", "duration_s")}
        return section


def forecast_line(forecast: Forecast) -> str:
    """``"🔮 MRV forecast for the whole run: 2.1 kWh, 900 g CO2e, 1.5 h (after 1 of 90
    epochs; linear extrapolation)"``."""
    done = int(forecast.done) if forecast.done.is_integer() else forecast.done
    total = int(forecast.total) if forecast.total.is_integer() else forecast.total
    return (f"🔮 MRV forecast for the whole run: {format_energy_kwh(forecast.energy_kwh)}, "
            f"{format_co2_kg(forecast.co2_kg)}, {format_duration_s(forecast.duration_s)} "
            f"(after {done} of {total} {forecast.unit}; linear extrapolation)")
