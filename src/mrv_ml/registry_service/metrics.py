"""Prometheus metrics of the registry, read from the database at each scrape.

The totals live in the shared database, so every process of a deployment reports the same
figures and none is lost on restart: submissions, pending leaves, anchored batches, gas
spent, and the age of the last anchor (the one to alert on: a registry that stopped
anchoring still answers every request).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

if TYPE_CHECKING:
    from mrv_ml.registry_service.db import RegistryStats


def render(stats: RegistryStats, *, anchoring_failing: bool, started_at: float
           ) -> tuple[bytes, str]:
    """The exposition text and its content type: the database's totals ``stats``, whether
    this process's last anchoring run failed, and when it started (``time.time()``)."""
    registry = CollectorRegistry()

    def gauge(name: str, text: str, value: float) -> None:
        Gauge(name, text, registry=registry).set(value)

    # Monotonic totals are exposed as gauges read from the database: a Counter would
    # count this process's events only.
    gauge("mrv_registry_submissions", "Submissions accepted (all processes)",
          stats.submissions_total)
    gauge("mrv_registry_pending_leaves", "Fingerprints waiting for a batch",
          stats.leaves_pending)
    gauge("mrv_registry_batches_anchored", "Batches anchored on chain", stats.batches_anchored)
    gauge("mrv_registry_gas_used", "Gas spent on anchoring transactions", stats.gas_used_total)
    last = stats.last_anchored_at.timestamp() if stats.last_anchored_at else None
    gauge("mrv_registry_last_anchor_timestamp_seconds",
          "When the last batch was anchored (0: never)", last or 0)
    gauge("mrv_registry_last_anchor_age_seconds", "Seconds since the last batch was anchored "
          "(-1: never)", time.time() - last if last else -1)
    gauge("mrv_registry_anchoring_failing", "1 when this process's last anchoring run failed",
          1 if anchoring_failing else 0)
    gauge("mrv_registry_uptime_seconds", "Seconds since this process started",
          time.time() - started_at)
    return generate_latest(registry), CONTENT_TYPE_LATEST
