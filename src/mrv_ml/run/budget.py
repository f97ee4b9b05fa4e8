"""An energy or CO2e budget for a run: warned about, or stopped at, when crossed.

:class:`Budget` is the limit (``energy_kwh``, ``co2_kg``, either or both) and what to do
when it is crossed (``on_budget``: ``"warn"`` or ``"stop"``); bad values are a
:class:`~mrv_ml.errors.ConfigError` before anything runs. :class:`BudgetMonitor` checks the
figures so far against it: on a small thread every :data:`CHECK_EVERY_S` seconds (the
meter's running totals, which CodeCarbon updates at each measurement) and whenever the
training reports progress; and it checks each forecast, so a run forecast to cross its
budget is warned about early. It says one line when the forecast crosses the budget and
one when the run does, and with ``"stop"`` calls the stop actions registered with it once:
``mrv run`` interrupts its child, the framework callbacks stop at the next epoch's end, and
the plain tracker only raises its ``budget_exceeded`` flag (raising into the training
loop could leave it half-way through a step; the loop decides). The record's ``budget``
section (:meth:`BudgetMonitor.to_record`) says what happened.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mrv_ml.errors import ConfigError
from mrv_ml.units import format_co2_kg, format_duration_s, format_energy_kwh

if TYPE_CHECKING:
    from mrv_ml.config import Settings

log = logging.getLogger(__name__)

__all__ = ["CHECK_EVERY_S", "ON_BUDGET_CHOICES", "Budget", "BudgetMonitor", "Reading", "budget_from"]

ON_BUDGET_CHOICES = ("warn", "stop")
#: Seconds between two checks of the running totals (CodeCarbon's own interval is 2 s).
CHECK_EVERY_S = 0.5
#: ``action_taken`` of a plain tracker told to stop: it cannot stop the loop itself.
FLAGGED = "flagged: tracker.budget_exceeded set for the training loop to check"


def check_limit(name: str, value: Any) -> float | None:
    """A budget limit as a positive finite float (``None``: no limit), or a ConfigError."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive number, not {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{name} must be a positive number, not {value!r}")
    return number


def check_on_budget(value: Any) -> str:
    if value not in ON_BUDGET_CHOICES:
        raise ConfigError(f"on_budget must be one of {', '.join(ON_BUDGET_CHOICES)}, "
                          f"not {value!r}")
    return str(value)


@dataclass(frozen=True)
class Budget:
    """The limits of one run and what to do when one is crossed."""

    energy_kwh: float | None = None
    co2_kg: float | None = None
    on_budget: str = "warn"

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_kwh", check_limit("budget_kwh", self.energy_kwh))
        object.__setattr__(self, "co2_kg", check_limit("budget_co2_kg", self.co2_kg))
        object.__setattr__(self, "on_budget", check_on_budget(self.on_budget))
        if self.energy_kwh is None and self.co2_kg is None:
            raise ConfigError("a budget needs budget_kwh or budget_co2_kg")

    def crossed(self, energy_kwh: float | None, co2_kg: float | None) -> str | None:
        """Which limit the figures exceed, in words (``None``: within the budget)."""
        if self.energy_kwh is not None and energy_kwh is not None and energy_kwh > self.energy_kwh:
            return (f"{format_energy_kwh(energy_kwh)} of a {format_energy_kwh(self.energy_kwh)} "
                    "energy budget")
        if self.co2_kg is not None and co2_kg is not None and co2_kg > self.co2_kg:
            return f"{format_co2_kg(co2_kg)} of a {format_co2_kg(self.co2_kg)} budget"
        return None

    def limit_crossed(self, energy_kwh: float | None, co2_kg: float | None) -> str | None:
        """``"energy_kwh"`` or ``"co2_kg"``: the limit the figures exceed, else ``None``."""
        if self.energy_kwh is not None and energy_kwh is not None and energy_kwh > self.energy_kwh:
            return "energy_kwh"
        if self.co2_kg is not None and co2_kg is not None and co2_kg > self.co2_kg:
            return "co2_kg"
        return None


@dataclass(frozen=True)
class Reading:
    """The figures so far: ``elapsed_s`` into the run, energy and CO2e used."""

    elapsed_s: float
    energy_kwh: float
    co2_kg: float


class BudgetMonitor:
    """Watches one run's figures against its :class:`Budget`; thread-safe.

    ``reading()`` gives the figures so far (``None`` before the meter's first average);
    ``say(line)`` shows a line to the user. :meth:`start` runs the checking thread,
    :meth:`stop` ends it; :meth:`check` and :meth:`check_forecast` may be called from any
    thread; nothing here raises into the training.
    """

    def __init__(self, budget: Budget, reading: Callable[[], Reading | None],
                 say: Callable[[str], None], *, check_every_s: float = CHECK_EVERY_S) -> None:
        self.budget = budget
        self._reading = reading
        self._say = say
        self._check_every_s = check_every_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._actions: list[Callable[[], str | None]] = []
        self.exceeded_at_s: float | None = None
        self.exceeded_limit: str | None = None
        self.forecast_exceeded_at_s: float | None = None
        self.action_taken = "none"
        #: set by :meth:`mark_stopped` when training really was stopped for the budget
        self.stopped = False

    @property
    def exceeded(self) -> bool:
        return self.exceeded_at_s is not None

    def add_stop_action(self, action: Callable[[], str | None]) -> None:
        """With ``on_budget="stop"``: ``action()`` runs once when the budget is crossed (on
        the checking thread); the words it returns become ``action_taken``."""
        self._actions.append(action)

    def mark_stopped(self, action: str) -> None:
        """Training was stopped for the budget (an epoch boundary, a signal): say how."""
        with self._lock:
            self.action_taken = action
            self.stopped = True

    # -- checking ---------------------------------------------------------------------------

    def start(self) -> BudgetMonitor:
        self._thread = threading.Thread(target=self._run, name="mrv-budget", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(self._check_every_s):
            self.check()

    def check(self, reading: Reading | None = None) -> bool:
        """Compare the figures now (or ``reading``) with the budget; whether it is exceeded.
        The first crossing says one line and, with ``"stop"``, runs the stop actions."""
        try:
            reading = reading if reading is not None else self._reading()
        except Exception as e:  # noqa: BLE001 - a failed reading is no crossing
            log.debug("budget reading failed: %s", e)
            return self.exceeded
        if reading is None:
            return self.exceeded
        with self._lock:
            if self.exceeded:
                return True
            words = self.budget.crossed(reading.energy_kwh, reading.co2_kg)
            if words is None:
                return False
            self.exceeded_at_s = reading.elapsed_s
            self.exceeded_limit = self.budget.limit_crossed(reading.energy_kwh, reading.co2_kg)
            stopping = self.budget.on_budget == "stop"
            self.action_taken = FLAGGED if stopping else "warned"
        when = format_duration_s(reading.elapsed_s)
        if not stopping:
            self._say(f"⚠️  MRV budget crossed: {words} used after {when}; on_budget=warn, "
                      "training goes on")
            return True
        self._say(f"⏹ MRV budget crossed: {words} used after {when}; stopping the run")
        for action in self._actions:
            try:
                taken = action()
            except Exception as e:  # noqa: BLE001 - one failed action must not hide the rest
                log.warning("budget stop action failed: %s", e)
                continue
            if taken:
                self.mark_stopped(taken)
        return True

    def check_forecast(self, elapsed_s: float, energy_kwh: float, co2_kg: float) -> bool:
        """Warn once, early, when a forecast of the whole run crosses the budget."""
        with self._lock:
            if self.forecast_exceeded_at_s is not None or self.exceeded:
                return self.forecast_exceeded_at_s is not None
            words = self.budget.crossed(energy_kwh, co2_kg)
            if words is None:
                return False
            self.forecast_exceeded_at_s = elapsed_s
        self._say(f"⚠️  MRV forecast over budget: {words} forecast for the whole run "
                  f"(on_budget={self.budget.on_budget})")
        return True

    # -- the record ---------------------------------------------------------------------

    def to_record(self, energy_kwh: float | None, co2_kg: float | None,
                  duration_s: float | None) -> dict[str, Any]:
        """The record's ``budget`` section, checked once more against the final figures (a
        crossing after the last check is still a crossing)."""
        with self._lock:
            exceeded_at_s, limit, action = (self.exceeded_at_s, self.exceeded_limit,
                                            self.action_taken)
            if exceeded_at_s is None and self.budget.crossed(energy_kwh, co2_kg) is not None:
                exceeded_at_s = duration_s
                limit = self.budget.limit_crossed(energy_kwh, co2_kg)
                action = "none: crossed only by the final figures, at the end of the run"
            return {"energy_kwh": self.budget.energy_kwh, "co2_kg": self.budget.co2_kg,
                    "on_budget": self.budget.on_budget, "exceeded": exceeded_at_s is not None,
                    "exceeded_at_s": (round(exceeded_at_s, 3) if exceeded_at_s is not None
                                      else None),
                    "exceeded_limit": limit, "action_taken": action,
                    "stopped": self.stopped,
                    "forecast_exceeded": self.forecast_exceeded_at_s is not None,
                    "forecast_exceeded_at_s": (round(self.forecast_exceeded_at_s, 3)
                                               if self.forecast_exceeded_at_s is not None
                                               else None)}


def budget_from(energy_kwh: float | None, co2_kg: float | None, on_budget: str | None,
                settings: Settings) -> Budget | None:
    """The run's budget: arguments over settings (``MRV_BUDGET_KWH``...); ``None`` when no
    limit is set; a :class:`~mrv_ml.errors.ConfigError` for a bad one (zero, negative, an
    ``on_budget`` not warn or stop), before the run."""
    energy_kwh = settings.budget_kwh if energy_kwh is None else energy_kwh
    co2_kg = settings.budget_co2_kg if co2_kg is None else co2_kg
    on_budget = on_budget or settings.on_budget or "warn"
    if energy_kwh is None and co2_kg is None:
        if on_budget not in ("warn", "stop"):
            Budget(1.0, None, on_budget)  # the same one-line error as with a limit
        return None
    return Budget(energy_kwh, co2_kg, on_budget)
