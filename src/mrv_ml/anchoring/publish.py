"""Where a record's fingerprint goes, decided once: a registry service, a Merkle batch, or
one transaction of its own.

``mrv anchor``, ``mrv publish``, ``mrv import --anchor`` and the tracker after ``stop()``
all go through :func:`publish` (the tracker through :func:`publish_run`), so the rule
"a configured registry service takes the record unless a batch is asked for" lives here
and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mrv_ml.anchoring.single import AnchorOutcome

if TYPE_CHECKING:
    from mrv_ml.chain.keys import Signer
    from mrv_ml.config import Settings
    from mrv_ml.storage.store import RecordStore

__all__ = ["Route", "choose_route", "publish", "publish_run"]


class Route(str, enum.Enum):
    """How a record is anchored."""

    REGISTRY = "registry"  # a registry service (MRV_REGISTRY_URL) anchors it in its batch
    BATCH = "batch"  # many records under one Merkle root, one transaction
    SINGLE = "single"  # one transaction per record


def choose_route(settings: Settings, *, batch: bool = False, upgrade: bool = False,
                 registry_url: str | None = None) -> Route:
    """The route for these settings: fetching complete proofs (``upgrade``) or a registry
    named here or configured goes to the registry, unless a batch is asked for; a batch is
    one Merkle transaction; else each record has its own."""
    if upgrade or registry_url or (settings.registry_url and not batch):
        return Route.REGISTRY
    return Route.BATCH if batch else Route.SINGLE


def publish(store: RecordStore, settings: Settings, mrv_ids: Sequence[str] | None = None, *,
            route: Route | None = None, batch: bool = False, upgrade: bool = False,
            with_record: bool = False, signer: Signer | None = None,
            registry_url: str | None = None) -> list[AnchorOutcome]:
    """Anchor the records (default: every pending one) by the route the settings choose;
    one outcome per record. ``with_record`` and ``signer`` go to a registry service (the
    record itself, a signature over its fingerprint); ``registry_url`` names one instead of
    the configured ones; ``route`` overrides the choice (``mrv publish`` always goes to a
    registry). A configuration error is raised once, before any record."""
    ids = list(mrv_ids) if mrv_ids is not None else None
    if route is None:
        route = choose_route(settings, batch=batch, upgrade=upgrade, registry_url=registry_url)
    if route is Route.REGISTRY:
        from mrv_ml.anchoring.registry_client import through_registry

        return through_registry(store, settings, ids, publish=with_record, signer=signer,
                                upgrade_only=upgrade, url=registry_url)
    if route is Route.BATCH:
        from mrv_ml.anchoring.batch import anchor_batch

        return anchor_batch(store, ids if ids is not None else store.pending_ids(),
                            settings=settings)
    from mrv_ml.anchoring.single import anchor_pending

    return anchor_pending(store, settings=settings, mrv_ids=ids)


def publish_run(store: RecordStore, settings: Settings, mrv_id: str, *, auto_anchor: bool,
                anchor_mode: str, with_record: bool = False, sign: bool = False
                ) -> AnchorOutcome:
    """The tracker's record, just stored: left pending for a later ``mrv anchor`` (anchoring
    off, or batch mode: it awaits the next batch), else anchored by its route. Chain and
    registry failures come back as a pending outcome with the reason; the record is never
    lost."""
    from mrv_ml.anchoring.single import anchor_record, mark_pending

    if not auto_anchor or anchor_mode == "batch":
        reason = ("awaiting the next batch (mrv anchor --batch)" if anchor_mode == "batch"
                  else "auto_anchor is off (run mrv anchor)")
        return AnchorOutcome(mrv_id, "pending", None, mark_pending(store, mrv_id, reason))
    if choose_route(settings) is Route.REGISTRY:
        from mrv_ml.chain.keys import load_signer

        signer = load_signer(settings) if sign else None
        [outcome] = publish(store, settings, [mrv_id], route=Route.REGISTRY,
                            with_record=with_record, signer=signer)
        return outcome
    # one record: its own transaction (a run is never held back for a batch it did not ask)
    return anchor_record(store, mrv_id, settings=settings)
