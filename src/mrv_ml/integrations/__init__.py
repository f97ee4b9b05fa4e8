"""Optional integrations with training frameworks: one MRV record per fit.

- :mod:`mrv_ml.integrations.lightning`: ``MRVCallback`` for PyTorch Lightning
  (``pip install mrv-ml[lightning]``)
- :mod:`mrv_ml.integrations.huggingface`: ``MRVCallback`` for ``transformers.Trainer``
  (``pip install mrv-ml[huggingface]``)
- :mod:`mrv_ml.integrations.keras`: ``MRVCallback`` for Keras 3 (``pip install mrv-ml[keras]``)
- :mod:`mrv_ml.integrations.distributed`: ``DistributedMRVTracker``, one record for a
  ``torch.distributed`` job (``pip install mrv-ml[torch]``)
- :mod:`mrv_ml.run.log_to.mlflow`, :mod:`mrv_ml.run.log_to.wandb`: the record into the
  active MLflow / W&B run (``MRVTracker(..., log_to=...)``, dispatched by
  :mod:`mrv_ml.run.log_to.dispatch`; ``pip install mrv-ml[mlflow]`` / ``mrv-ml[wandb]``)

The core package never imports these modules, and importing one without its framework
raises :class:`~mrv_ml.errors.MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mrv_ml.run.tracker import MRVTracker


def plain_number(value: Any) -> float | int | None:
    """A finite Python number from a float, int, numpy scalar or 0-d tensor; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
            value = value.item()
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if math.isfinite(number) else None


def plain_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float | int]:
    """Metric name → finite number; tensors converted, NaN/inf and non-numbers dropped
    (a record cannot hold NaN, and a training loss of NaN is better left unsaid than faked)."""
    out: dict[str, float | int] = {}
    for key, value in (metrics or {}).items():
        number = plain_number(value)
        if number is not None:
            out[str(key)] = number
    return out


class FitRun:
    """The tracker lifecycle shared by the framework callbacks.

    ``begin`` creates and starts an :class:`~mrv_ml.run.tracker.MRVTracker`; ``finish`` adds the
    facts the framework knows and stops it (writing, hashing and anchoring the record);
    ``finish`` with an exception marks the run failed (or interrupted). Frameworks without an
    exception hook (transformers, Keras) rely on :meth:`guard` or, as a last resort, on an
    ``atexit`` handler that records a run which began but never ended as failed.
    """

    def __init__(self, experiment_name: str, framework: str,
                 tracker_kwargs: Mapping[str, Any],
                 facts_so_far: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.experiment_name = experiment_name
        # what the framework knows at any moment: used when a crash ends the fit early
        self.facts_so_far = facts_so_far
        self.framework = framework
        self.tracker_kwargs = dict(tracker_kwargs)
        if self.tracker_kwargs.get("log_to"):  # a typo, a missing package: now, not mid-fit
            from mrv_ml.config import Settings
            from mrv_ml.run.log_to.dispatch import check_installed

            check_installed(Settings().replace(log_to=self.tracker_kwargs["log_to"]).log_to)
        # a bad budget fails when the callback is made, not when the fit starts
        from mrv_ml.run.budget import check_limit, check_on_budget

        check_limit("budget_kwh", self.tracker_kwargs.get("budget_kwh"))
        check_limit("budget_co2_kg", self.tracker_kwargs.get("budget_co2_kg"))
        if self.tracker_kwargs.get("on_budget") is not None:
            check_on_budget(self.tracker_kwargs["on_budget"])
        self.tracker: MRVTracker | None = None
        self.trackers: list[MRVTracker] = []  # one per fit, oldest first
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.tracker is not None

    def begin(self, **defaults: Any) -> MRVTracker:
        """Start tracking a fit; ``defaults`` fill constructor arguments the user left out."""
        from mrv_ml.run.tracker import MRVTracker

        with self._lock:
            if self.tracker is not None:  # a previous fit never ended: close it first
                self._stop(self.tracker, RuntimeError("a new fit began before this one ended"))
            kwargs = {k: v for k, v in defaults.items() if v is not None}
            kwargs.update(self.tracker_kwargs)
            kwargs.setdefault("framework", self.framework)
            # the callbacks track on global rank 0 alone: no parts to wait for
            kwargs.setdefault("job", False)
            tracker = MRVTracker(experiment_name=self.experiment_name, **kwargs)
            tracker.start()
            self.tracker = tracker
            self.trackers.append(tracker)
            atexit.register(self._finish_abandoned)
            return tracker

    def finish(self, facts: Mapping[str, Any] | None = None,
               exc: BaseException | None = None) -> MRVTracker | None:
        """Record ``facts`` and stop; ``exc`` marks the run failed. Idempotent."""
        with self._lock:
            tracker, self.tracker = self.tracker, None
            if tracker is None:
                return None
            atexit.unregister(self._finish_abandoned)
            if facts is None and self.facts_so_far is not None:
                try:
                    facts = self.facts_so_far()
                except Exception:  # facts are a bonus; the record must still be written
                    facts = None
            if facts:
                tracker.update_training(**{k: v for k, v in facts.items() if v is not None})
            self._stop(tracker, exc)
            return tracker

    def epoch_done(self, done: Any, total: Any, *, unit: str = "epochs",
                   epoch: int | None = None) -> bool:
        """At an epoch's end: progress for the forecast and the budget check; whether the
        fit should stop now (``on_budget="stop"`` and the budget crossed: the record then
        says the run was stopped by its budget at this epoch boundary)."""
        tracker = self.tracker
        if tracker is None:
            return False
        tracker.update_progress(done, total, unit=unit)
        budget = tracker.budget
        if budget is None or budget.on_budget != "stop" or not tracker.budget_exceeded:
            return False
        shown = epoch if epoch is not None else done
        tracker.mark_stopped_by_budget(f"stopped at the end of epoch {shown}")
        return True

    @staticmethod
    def _stop(tracker: MRVTracker, exc: BaseException | None) -> None:
        if exc is None:
            tracker.stop()
        else:  # the tracker's own exit path records the outcome and error
            tracker.__exit__(type(exc), exc, exc.__traceback__)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Wrap ``trainer.train()`` / ``model.fit()`` so a crash is recorded as a failed run
        (the exception still propagates)."""
        try:
            yield
        except BaseException as e:
            if self.active:
                self.finish(exc=e)
            raise

    def _finish_abandoned(self) -> None:
        """At interpreter exit: a fit that began and never ended crashed or was killed."""
        if not self.active:
            return
        exc = getattr(sys, "last_value", None)  # set for an uncaught exception
        if not isinstance(exc, BaseException):
            exc = RuntimeError("training ended without the framework's end-of-training hook")
        with contextlib.suppress(Exception):  # at exit there is nobody left to tell
            self.finish(exc=exc)


class FitRunAccessors:
    """What every framework callback offers its user; the callback sets ``self._run``."""

    _run: FitRun

    @property
    def tracker(self) -> MRVTracker | None:
        """The tracker of the last fit (``mrv_id``, ``mrv_hash``, ``tx_hash``, ``record``...)."""
        return self._run.trackers[-1] if self._run.trackers else None

    @property
    def trackers(self) -> list[MRVTracker]:
        """One tracker per fit, oldest first."""
        return list(self._run.trackers)

    def guard(self) -> contextlib.AbstractContextManager[None]:
        """``with mrv.guard(): trainer.fit(...)`` records a crash as a failed run."""
        return self._run.guard()


def count_parameters(model: Any) -> int | None:
    """Number of parameters of a torch module (cheap: no forward pass); else ``None``."""
    params = getattr(model, "parameters", None)
    if params is None:
        return None
    try:
        return int(sum(p.numel() for p in params()))
    except Exception:
        return None
