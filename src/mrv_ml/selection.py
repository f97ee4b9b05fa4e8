"""Choosing records: which records a command acts on, and what they add up to.

``RecordFilter`` (engineer A: ``mrv list`` filters) decides whether one record is wanted;
:func:`select` turns the references a person gives (record files, MRV IDs or unique
prefixes in the store, directories) plus a filter into loaded records with their proofs;
:func:`totals` is the one sum over many records (``mrv list``, ``mrv report``, and the
explorer's tests compare the page's totals with it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mrv_ml.errors import RecordError, RecordNotFoundError
from mrv_ml.proof import Proof
from mrv_ml.store import UNREADABLE, RecordStore, RecordSummary

__all__ = ["COMPONENTS", "RecordFilter", "Selected", "Totals", "select", "totals"]


# --- RecordFilter: engineer A's part (a provisional one until A's lands here) --------------


@dataclass(frozen=True)
class RecordFilter:
    """Which records are wanted: every condition given must hold.

    ``experiment``: the experiment's name, exactly; ``tags``: ``(key, value)`` pairs, a
    ``None`` value meaning "has the tag, whatever its value"."""

    experiment: str | None = None
    tags: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse_tag(cls, text: str) -> tuple[str, str | None]:
        """``KEY=VALUE`` or ``KEY`` (the tag is set)."""
        key, eq, value = text.partition("=")
        if not key:
            raise RecordError(f"--tag {text!r}: expected KEY or KEY=VALUE")
        return key, (value if eq else None)

    @property
    def empty(self) -> bool:
        return self.experiment is None and not self.tags

    def matches(self, record: Mapping[str, Any]) -> bool:
        experiment = record.get("experiment")
        experiment = experiment if isinstance(experiment, Mapping) else {}
        if self.experiment is not None and experiment.get("name") != self.experiment:
            return False
        tags = experiment.get("tags")
        tags = tags if isinstance(tags, Mapping) else {}
        for key, value in self.tags:
            if key not in tags or (value is not None and str(tags[key]) != value):
                return False
        return True


# --- select: engineer B's part --------------------------------------------------------------


class _Matcher(Protocol):
    def matches(self, record: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class Selected:
    """One chosen record: where it was read, the record, and its proof sidecar (``None``
    with ``proof_error`` saying why when the sidecar is unusable)."""

    path: Path
    record: dict[str, Any]
    proof: Proof | None
    proof_error: str | None = None


def _files_of(ref: str, store: RecordStore) -> list[Path]:
    """The record files one reference means: a directory's records, else what the store
    resolves (a file, an ID, a unique prefix)."""
    from mrv_ml.verify import record_files

    path = Path(ref).expanduser()
    if path.is_dir():
        return sorted(record_files([path]))  # sorted: the same report on every file system
    return [store.resolve(ref)]


def select(refs: Sequence[str], store: RecordStore,
           record_filter: _Matcher | None = None) -> list[Selected]:
    """The records meant by ``refs`` (all of the store's when there are none) that
    ``record_filter`` accepts, in the order given (a directory's records by file name, the
    store's oldest first), each once: the same file reached twice, or two copies of the
    same record (same ID and fingerprint), is one record.

    Raises :class:`RecordError` (exit 3) for a file that is not a record, a directory
    without records, an ambiguous prefix or an unreadable record of the store;
    :class:`RecordNotFoundError` (exit 2) for an unknown ID, or when nothing is left to
    report (an empty store, a filter no record passes).
    """
    from mrv_ml.hashing import compute_hash
    from mrv_ml.record import load_record_file
    from mrv_ml.report import find_proof

    if refs:
        files = [f for ref in refs for f in _files_of(ref, store)]
    else:
        summaries = store.list()
        for s in summaries:
            if s.status == UNREADABLE:
                raise RecordError(f"{s.path}: {s.error}; name the records to report instead")
        files = [s.path for s in summaries]
    chosen: list[Selected] = []
    seen_paths: set[Path] = set()
    seen_records: set[tuple[str, str]] = set()
    for path in files:
        where = path.resolve()
        if where in seen_paths:
            continue
        seen_paths.add(where)
        record = load_record_file(path)
        if record_filter is not None and not record_filter.matches(record):
            continue
        key = (str(record["mrv_id"]), compute_hash(record))
        if key in seen_records:
            continue
        seen_records.add(key)
        proof, proof_error = find_proof(path, key[0], store.root)
        chosen.append(Selected(path, record, proof, proof_error))
    if not chosen:
        where_from = "the records given" if refs else f"the store {store.root}"
        raise RecordNotFoundError(f"no record to report: none of {where_from} "
                                  + ("matches the filters" if files else "exists"))
    return chosen


# --- totals ----------------------------------------------------------------------------------

#: The components whose energy a record reports apart, in the order shown.
COMPONENTS = ("cpu", "gpu", "ram")


@dataclass(frozen=True)
class Totals:
    """What many records add up to; see :func:`totals` for the exact rules."""

    count: int
    measured: int
    not_measured: int
    energy_kwh: float
    co2_kg: float
    duration_s: float
    component_energy_kwh: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _figures(item: Any) -> dict[str, Any] | None:
    """The figures of a record, a store summary (object or ``to_dict()``) or a
    :class:`Selected`, as one flat mapping; ``None`` when its measurement gave none."""
    if isinstance(item, Selected):
        item = item.record
    if isinstance(item, RecordSummary):
        item = item.to_dict()
    if not isinstance(item, Mapping):
        return None
    ee = item.get("energy_emissions")
    if isinstance(ee, Mapping):  # a record
        if ee.get("measurement_status") != "measured" or _finite(ee.get("energy_kwh")) is None:
            return None
        return {"energy_kwh": ee.get("energy_kwh"), "co2_kg": ee.get("co2_kg"),
                "duration_s": ee.get("duration_seconds"),
                **{f"{c}_energy_kwh": ee.get(f"{c}_energy_kwh") for c in COMPONENTS}}
    # a summary: flat figures, no per-component energy
    if item.get("status") == UNREADABLE or _finite(item.get("energy_kwh")) is None:
        return None
    return {"energy_kwh": item.get("energy_kwh"), "co2_kg": item.get("co2_kg"),
            "duration_s": item.get("duration_s")}


def totals(items: Iterable[Mapping[str, Any] | RecordSummary | Selected]) -> Totals:
    """The sums over many records, the one definition behind every total shown.

    ``items`` are records (dicts as stored), store summaries (``RecordSummary`` or its
    ``to_dict()``, the shape ``mrv list --json`` and the explorer's API give) or
    :class:`Selected`, mixed freely. The rules:

    - ``count`` is every item; ``measured`` those whose measurement gave figures (a record
      with ``measurement_status == "measured"`` and a finite ``energy_kwh``; a summary with
      a finite ``energy_kwh`` that is not unreadable); ``not_measured`` the rest
      (``count == measured + not_measured``). A failed measurement is counted apart, never
      as zero: its energy is unknown, not nothing.
    - ``energy_kwh``, ``co2_kg`` and ``duration_s`` are sums over the measured items only
      (so all three describe the same runs); a measured item without a finite ``co2_kg``
      or duration adds nothing to that sum. An empty sum is ``0.0``.
    - ``component_energy_kwh`` maps ``"cpu"``, ``"gpu"``, ``"ram"`` to the sum of that
      component's energy over the measured items, or ``None`` when any measured item does
      not give it (summaries never do): a partial sum would read as the whole.
    - Values are plain float sums in the order given: no rounding (the formatter rounds
      what is shown).
    """
    count = measured = 0
    energy = co2 = duration = 0.0
    components: dict[str, float | None] = dict.fromkeys(COMPONENTS, 0.0)
    for item in items:
        count += 1
        figures = _figures(item)
        if figures is None:
            continue
        measured += 1
        energy += _finite(figures["energy_kwh"]) or 0.0
        co2 += _finite(figures.get("co2_kg")) or 0.0
        duration += _finite(figures.get("duration_s")) or 0.0
        for c in COMPONENTS:
            part, so_far = _finite(figures.get(f"{c}_energy_kwh")), components[c]
            components[c] = None if part is None or so_far is None else so_far + part
    if measured == 0:
        components = dict.fromkeys(COMPONENTS, None)
    return Totals(count=count, measured=measured, not_measured=count - measured,
                  energy_kwh=energy, co2_kg=co2, duration_s=duration,
                  component_energy_kwh=components)
