"""A heartbeat for long runs: every few seconds, how long and how much so far, on stderr.

:class:`Heartbeat` runs one daemon thread that wakes every ``interval_s`` seconds (the first
time after ``first_after_s``), asks ``reading()`` for the figures and shows one line: on a
terminal a rich live status line, redrawn in place and cleared by :meth:`Heartbeat.stop`
(so the closing line replaces it; a line wider than the terminal wraps rather than losing
its end); otherwise one plain line each time (a log file keeps them all). Once the run has
been forecast (:mod:`mrv_ml.run.forecast`), the line also says the latest forecast of the
whole run. It writes to stderr only, never to stdout (in ``mrv run`` stdout is the child's),
and never raises into the training: a reading or a write that fails ends the heartbeat
silently. :meth:`Heartbeat.stop` returns once the thread has ended.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from mrv_ml.errors import MRVStateError, MRVValueError
from mrv_ml.run.forecast import Forecast
from mrv_ml.units import (
    format_co2_kg,
    format_duration_s,
    format_energy_kwh,
    format_power_w,
    format_share,
)

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_FIRST_AFTER_S", "DEFAULT_INTERVAL_S", "Heartbeat", "Pulse", "pulse_line"]

#: Seconds between two heartbeat lines, and before the first one.
DEFAULT_INTERVAL_S = 30.0
DEFAULT_FIRST_AFTER_S = 10.0
#: How long :meth:`Heartbeat.stop` waits for the thread (it wakes at once when told).
_JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Pulse:
    """The figures of one heartbeat line. ``energy_kwh``/``co2_kg`` are ``None`` until
    CodeCarbon's first measurement; ``power_w`` is the latest interval's mean power;
    ``forecast`` is the latest forecast of the whole run (the record's first forecast, or
    its latest refresh once there is one), ``None`` until the run has been forecast."""

    elapsed_s: float
    energy_kwh: float | None = None
    co2_kg: float | None = None
    power_w: float | None = None
    forecast: Forecast | None = None


def pulse_line(pulse: Pulse, label: str = "MRV") -> str:
    """``"⏱ MRV: 1.5 min, 60.3 mWh, 28.6 mg CO2e so far (41.2 W)"``, and once the run has
    been forecast ``" · forecast 1.2 kWh, 480 g CO2e, 2.1 h in all (at 12.5 % done)"``
    after it (the share of the work done when that forecast was made)."""
    head = f"⏱ {label}: {format_duration_s(pulse.elapsed_s)}"
    if pulse.energy_kwh is None:
        line = f"{head}, CodeCarbon still detecting hardware"
    else:
        line = (f"{head}, {format_energy_kwh(pulse.energy_kwh)}, "
                f"{format_co2_kg(pulse.co2_kg)} so far")
        if pulse.power_w is not None:
            line += f" ({format_power_w(pulse.power_w)})"
    if pulse.forecast is not None:
        line += f" · {_forecast_part(pulse.forecast)}"
    return line


def _forecast_part(forecast: Forecast) -> str:
    """``"forecast 1.2 kWh, 480 g CO2e, 2.1 h in all (at 12.5 % done)"``."""
    return (f"forecast {format_energy_kwh(forecast.energy_kwh)}, "
            f"{format_co2_kg(forecast.co2_kg)}, {format_duration_s(forecast.duration_s)} "
            f"in all (at {format_share(forecast.done, forecast.total)} done)")


class Heartbeat:
    """Shows ``reading()`` every ``interval_s`` seconds on ``stream`` (stderr) until
    :meth:`stop`. ``live`` forces the terminal (``True``) or plain-line (``False``) form;
    by default it is the terminal form exactly when ``stream`` is a terminal."""

    def __init__(self, reading: Callable[[], Pulse], *, interval_s: float = DEFAULT_INTERVAL_S,
                 first_after_s: float = DEFAULT_FIRST_AFTER_S, stream: IO[str] | None = None,
                 live: bool | None = None, label: str = "MRV") -> None:
        if not interval_s > 0:
            raise MRVValueError("interval_s must be a positive number of seconds")
        self._reading = reading
        self.interval_s = float(interval_s)
        self.first_after_s = max(float(first_after_s), 0.0)
        self._stream = stream
        self._live_wanted = live
        self._label = label
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None  # rich.live.Live while the status line is shown
        self._lock = threading.Lock()
        self.beats = 0  # lines shown so far

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Heartbeat:
        if self._thread is not None:
            raise MRVStateError("this Heartbeat was already started")
        self._thread = threading.Thread(target=self._run, name="mrv-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread and clear the live line; never raises."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)
        self._close_live()

    # -- internals ------------------------------------------------------------------------

    def _out(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    def _is_live(self) -> bool:
        if self._live_wanted is not None:
            return self._live_wanted
        try:
            return bool(self._out().isatty())
        except Exception:  # noqa: BLE001 - a closed or odd stream is no terminal
            return False

    def _run(self) -> None:
        wait = self.first_after_s
        try:
            live = self._is_live()
            while not self._stop.wait(wait):
                started = time.monotonic()
                line = pulse_line(self._reading(), self._label)
                if self._stop.is_set():
                    break
                self._show(line, live)
                self.beats += 1
                wait = max(self.interval_s - (time.monotonic() - started), 0.0)
        except Exception as e:  # noqa: BLE001 - the heartbeat must never disturb the run
            log.debug("heartbeat stopped: %s", e)

    def _show(self, line: str, live: bool) -> None:
        if not live:
            stream = self._out()
            stream.write(line + "\n")
            stream.flush()
            return
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        # Wrapped, not cut, where the terminal is narrower than the line: the forecast at
        # its end is what a long run's operator looks for (the live line clears all rows).
        text = Text(line, style="dim", overflow="fold")
        with self._lock:
            if self._stop.is_set():
                return
            if self._live is None:
                console = Console(file=self._out(), force_terminal=True)
                # No redirection: sys.stdout and sys.stderr stay the training's own.
                self._live = Live(text, console=console, transient=True, auto_refresh=False,
                                  redirect_stdout=False, redirect_stderr=False)
                self._live.start()
            self._live.update(text, refresh=True)

    def _close_live(self) -> None:
        with self._lock:
            live, self._live = self._live, None
        if live is None:
            return
        try:
            live.stop()  # transient: the status line is erased
        except Exception as e:  # noqa: BLE001
            log.debug("clearing the heartbeat line failed: %s", e)
