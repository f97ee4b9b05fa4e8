"""Choosing records: which records a command acts on, and what they add up to.

:class:`RecordFilter` decides whether one record (or store summary) is wanted;
:func:`select` turns the references a person gives (record files, MRV IDs or unique
prefixes in the store, directories) plus a filter into loaded records with their proofs;
:func:`totals` is the one sum over many records (``mrv list``, ``mrv report``, and the
explorer's tests compare the page's totals with it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from mrv_ml.errors import MRVValueError, RecordError, RecordNotFoundError
from mrv_ml.networks import DEPLOYMENTS_FILE
from mrv_ml.record.proof import PROOF_SUFFIX, Proof, find_proof
from mrv_ml.record.trust import Trust, proof_trust
from mrv_ml.storage.store import UNREADABLE, RecordStore, RecordSummary
from mrv_ml.units import finite_number

__all__ = ["ANCHOR_STATES", "COMPONENTS", "STATUSES", "TRUST_NAMES", "RecordFilter",
           "Selected", "Totals", "parse_time", "parse_trust", "select", "totals"]


# --- RecordFilter: which records are wanted (mrv list, mrv report, the explorer) ----------

#: Outcomes a record can have (``outcome.status``).
STATUSES = ("completed", "failed", "interrupted")
#: ``anchor_state`` values a filter takes: a store summary's own (``none``: no proof file;
#: ``pending``; ``anchored``; ``unreadable``: a corrupt proof file) and ``unanchored``,
#: none or pending: what ``mrv anchor`` would send (``mrv list --pending``).
ANCHOR_STATES = ("none", "pending", "anchored", "unreadable", "unanchored")
#: ``trust`` values: short names (the command line's) for :class:`~mrv_ml.verification.verdict.Trust`.
TRUST_NAMES = {"public": Trust.PUBLIC, "private": Trust.PRIVATE, "local": Trust.LOCAL}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_time(text: str) -> datetime:
    """An instant from ISO 8601 text: a date (``2026-11-24``, its midnight UTC) or a date
    and time (no offset: UTC). :class:`ValueError` with a message a person can act on."""
    value = text.strip()
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise MRVValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and "
                         "time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def parse_trust(text: str) -> Trust:
    """``public``/``private``/``local``, or a :class:`Trust` value (``"local only"``...)."""
    value = text.strip().lower()
    if value in TRUST_NAMES:
        return TRUST_NAMES[value]
    for trust in Trust:
        if value == trust.value:
            return trust
    raise MRVValueError(f"trust is one of {', '.join(TRUST_NAMES)}, not {text[:40]!r}")


def _start_instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class RecordFilter:
    """Which records are wanted: every condition given must hold (none given: all).

    - ``experiment``: the experiment's name, exactly;
    - ``tags``: ``(key, value)`` pairs, each must hold; a ``None`` value means "has the tag,
      whatever its value" (values compare as text: ``seed=3`` matches the number 3);
    - ``since`` <= the run's start < ``until`` (aware datetimes; a run without a readable
      start time fails either bound);
    - ``status``: the outcome, one of :data:`STATUSES`;
    - ``anchor_state``: one of :data:`ANCHOR_STATES`;
    - ``trust``: what the anchored proof is worth (an unanchored record has no trust and
      fails this condition).

    :meth:`matches` takes a store summary (:class:`~mrv_ml.storage.store.RecordSummary`) or a
    record (a dict as stored; anchoring and trust then come from ``proof``).
    """

    experiment: str | None = None
    tags: tuple[tuple[str, str | None], ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    anchor_state: str | None = None
    trust: Trust | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise RecordError(f"status is one of {', '.join(STATUSES)}, not "
                              f"{self.status[:40]!r}")
        if self.anchor_state is not None and self.anchor_state not in ANCHOR_STATES:
            raise RecordError(f"anchor_state is one of {', '.join(ANCHOR_STATES)}, not "
                              f"{self.anchor_state[:40]!r}")
        for name in ("since", "until"):
            when = getattr(self, name)
            if when is not None and when.tzinfo is None:  # naive: UTC, as parse_time says
                object.__setattr__(self, name, when.replace(tzinfo=timezone.utc))
        if self.trust is not None and not isinstance(self.trust, Trust):
            object.__setattr__(self, "trust", parse_trust(str(self.trust)))

    @classmethod
    def parse_tag(cls, text: str) -> tuple[str, str | None]:
        """``KEY=VALUE`` or ``KEY`` (the tag is set)."""
        key, eq, value = text.partition("=")
        if not key:
            raise RecordError(f"--tag {text!r}: expected KEY or KEY=VALUE")
        return key, (value if eq else None)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RecordFilter:
        """A filter from text values (the explorer's query string, ``/api/explore``): keys
        ``experiment``, ``tag`` (``KEY`` or ``KEY=VALUE``), ``since``, ``until``, ``status``,
        ``anchor_state``, ``trust``; empty values are ignored. :class:`RecordError` names
        what is wrong (unknown key, bad date...)."""
        given = {k: v for k, v in query.items() if v != ""}
        unknown = set(given) - {"experiment", "tag", "since", "until", "status",
                                "anchor_state", "trust"}
        if unknown:
            raise RecordError(f"unknown filter(s): {', '.join(sorted(unknown))[:200]}")
        try:
            return cls(
                experiment=given.get("experiment"),
                tags=(cls.parse_tag(given["tag"]),) if "tag" in given else (),
                since=parse_time(given["since"]) if "since" in given else None,
                until=parse_time(given["until"]) if "until" in given else None,
                status=given.get("status"), anchor_state=given.get("anchor_state"),
                trust=parse_trust(given["trust"]) if "trust" in given else None)
        except ValueError as e:
            raise RecordError(str(e)) from None

    @property
    def empty(self) -> bool:
        return self == RecordFilter()

    def matches(self, item: RecordSummary | Mapping[str, Any],
                proof: Proof | None = None) -> bool:
        """Whether the summary or record ``item`` passes every condition."""
        experiment: Any
        tags: Any
        status: Any
        start: Any
        state: str
        trust: str | None
        if isinstance(item, RecordSummary):
            experiment, tags, status = item.experiment, item.tags, item.status
            start, state, trust = item.start_time, item.anchor_state, item.trust
        else:
            section = item.get("experiment")
            section = section if isinstance(section, Mapping) else {}
            outcome = item.get("outcome")
            timestamps = item.get("timestamps")
            experiment, tags = section.get("name"), section.get("tags")
            status = outcome.get("status") if isinstance(outcome, Mapping) else None
            start = timestamps.get("start_time") if isinstance(timestamps, Mapping) else None
            state = proof.status if proof is not None else "none"
            known = proof_trust(proof)
            trust = known.value if known is not None else None
        if self.experiment is not None and experiment != self.experiment:
            return False
        tags = tags if isinstance(tags, Mapping) else {}
        for key, value in self.tags:
            if key not in tags or (value is not None and _tag_text(tags[key]) != value):
                return False
        if self.status is not None and status != self.status:
            return False
        if self.anchor_state is not None and not (
                state == self.anchor_state
                or (self.anchor_state == "unanchored" and state in ("none", "pending")
                    and status != UNREADABLE)):
            return False
        if self.trust is not None and trust != self.trust.value:
            return False
        if self.since is not None or self.until is not None:
            when = _start_instant(start)
            if when is None:
                return False
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when >= self.until:
                return False
        return True


def _tag_text(value: Any) -> str:
    """A tag's value as the text a person types: ``3``, ``true``, ``nlp``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- select: engineer B's part --------------------------------------------------------------


class _Matcher(Protocol):
    def matches(self, item: Any, proof: Proof | None = None) -> bool: ...


@dataclass(frozen=True)
class Selected:
    """One chosen record: where it was read, the record, and its proof sidecar (``None``
    with ``proof_error`` saying why when the sidecar is unusable). ``fingerprint`` is the
    record's SHA-256 (RFC 8785) digest, computed once (``None``: not computed yet)."""

    path: Path
    record: dict[str, Any]
    proof: Proof | None
    proof_error: str | None = None
    fingerprint: str | None = None

    @property
    def digest(self) -> str:
        """The record's fingerprint (computed here if :func:`select` did not)."""
        if self.fingerprint is not None:
            return self.fingerprint
        from mrv_ml.record.hashing import compute_hash

        return compute_hash(self.record)

    @property
    def proof_matches(self) -> bool:
        """Whether the proof is this record's (its digest is the fingerprint)."""
        return self.proof is not None and self.proof.record_digest == self.digest


#: Files a store directory holds beside its records.
_STORE_FILES = frozenset({DEPLOYMENTS_FILE})


def _is_record_name(name: str) -> bool:
    return name.endswith(".json") and not name.endswith(PROOF_SUFFIX) and \
        not name.startswith(".") and name not in _STORE_FILES


def record_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The record files named: files as given, directories expanded to their records
    (``*.json`` but not sidecars, hidden files or the store's own files) in the order the
    file system lists them, one at a time, so that a directory of millions of records costs
    no memory. Every path is checked before the first record is yielded."""
    checked: list[tuple[Path, bool]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            with os.scandir(path) as entries:
                if not any(_is_record_name(e.name) for e in entries):
                    raise RecordError(f"{path}: no record files in this directory")
            checked.append((path, True))
        elif path.exists():
            checked.append((path, False))
        else:
            raise RecordError(f"no such file or directory: {path}")
    for path, is_dir in checked:
        if not is_dir:
            yield path
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                if _is_record_name(entry.name):
                    yield path / entry.name


def _files_of(ref: str, store: RecordStore) -> list[Path]:
    """The record files one reference means: a directory's records, else what the store
    resolves (a file, an ID, a unique prefix)."""
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
    from mrv_ml.record.hashing import compute_hash
    from mrv_ml.record.schema import load_record_file

    if refs:
        files = [f for ref in refs for f in _files_of(ref, store)]
        offered = len(files)
    else:
        summaries = store.list()
        for s in summaries:
            if s.status == UNREADABLE:
                raise RecordError(f"{s.path}: {s.error}; name the records to report instead")
        # The summaries answer the filter without reading each record; the record itself
        # is asked again below (the listing's cache is no evidence).
        files = [s.path for s in summaries
                 if record_filter is None or record_filter.matches(s)]
        offered = len(summaries)
    chosen: list[Selected] = []
    seen_paths: set[Path] = set()
    seen_records: set[tuple[str, str]] = set()
    for path in files:
        where = path.resolve()
        if where in seen_paths:
            continue
        seen_paths.add(where)
        record = load_record_file(path)
        key = (str(record["mrv_id"]), compute_hash(record))
        if key in seen_records:
            continue
        proof, proof_error = find_proof(path, key[0], store.root)
        if record_filter is not None and not record_filter.matches(record, proof):
            continue
        seen_records.add(key)
        chosen.append(Selected(path, record, proof, proof_error, key[1]))
    if not chosen:
        where_from = "the records given" if refs else f"the store {store.root}"
        raise RecordNotFoundError(f"no record to report: none of {where_from} "
                                  + ("matches the filters" if offered else "exists"))
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
        if ee.get("measurement_status") != "measured" or finite_number(ee.get("energy_kwh")) is None:
            return None
        return {"energy_kwh": ee.get("energy_kwh"), "co2_kg": ee.get("co2_kg"),
                "duration_s": ee.get("duration_seconds"),
                **{f"{c}_energy_kwh": ee.get(f"{c}_energy_kwh") for c in COMPONENTS}}
    # a summary: flat figures, no per-component energy
    if item.get("status") == UNREADABLE or finite_number(item.get("energy_kwh")) is None:
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
        energy += finite_number(figures["energy_kwh"]) or 0.0
        co2 += finite_number(figures.get("co2_kg")) or 0.0
        duration += finite_number(figures.get("duration_s")) or 0.0
        for c in COMPONENTS:
            part, so_far = finite_number(figures.get(f"{c}_energy_kwh")), components[c]
            components[c] = None if part is None or so_far is None else so_far + part
    if measured == 0:
        components = dict.fromkeys(COMPONENTS, None)
    return Totals(count=count, measured=measured, not_measured=count - measured,
                  energy_kwh=energy, co2_kg=co2, duration_s=duration,
                  component_energy_kwh=components)
