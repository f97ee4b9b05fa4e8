"""The registry database's reads of published records: one by ID, the search API's keyset
pages, and the explorer's filtered, sorted page with the totals of everything it matched.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mrv_ml.errors import MRVValueError, RecordError
from mrv_ml.record.schema import MRV_ID_PATTERN
from mrv_ml.registry_service.db.engine import Database
from mrv_ml.registry_service.db.rows import (
    MAX_PAGE,
    ExploreQuery,
    ExploreResult,
    PublishedRecord,
    _published,
)
from mrv_ml.registry_service.db.schema import UTC, batches, leaves, record_tags, records
from mrv_ml.registry_service.db.validate import _address, _aware, _mrv_id

_EXPLORE_SORT = {"date": records.c.started_at, "energy": records.c.energy_kwh,
                 "co2": records.c.co2_kg, "duration": records.c.duration_s,
                 "experiment": records.c.experiment}


def _has_tag(tag: str) -> Any:
    """The condition "the record has tag ``key``" or "``key=value``" (one filter word)."""
    key, has_value, value = tag.partition("=")
    if not key:
        raise RecordError(f"a tag filter is 'key' or 'key=value', not {tag!r}")
    match = sa.select(record_tags.c.mrv_id).where(
        record_tags.c.mrv_id == records.c.mrv_id, record_tags.c.key == key)
    if has_value:
        match = match.where(record_tags.c.value == value)
    return match.exists()


class PublishedQueries(Database):
    """The queries over published records, for :class:`RegistryDB` (the registry's own API
    and the explorer both read through them)."""

    def published(self, mrv_id: str) -> PublishedRecord | None:
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(records).where(records.c.mrv_id == _mrv_id(mrv_id))
                               ).first()
            return None if row is None else _published(row)

    def search_published(self, *, experiment: str | None = None, signer: str | None = None,
                         tag: str | None = None, since: datetime | None = None,
                         until: datetime | None = None, after: str | None = None,
                         limit: int = 50) -> tuple[list[PublishedRecord], str | None]:
        """Published records, newest first, and the cursor of the next page (``None`` on
        the last). ``tag`` is ``"key"`` or ``"key=value"``; ``since``/``until`` bound the
        training's start (``since <= started_at < until``); ``after`` is a cursor
        returned before. Pages neither repeat nor skip a record, whatever is published
        meanwhile (new records come before the first page)."""
        if not 1 <= limit <= MAX_PAGE:
            raise RecordError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        query = sa.select(records)
        if experiment is not None:
            query = query.where(records.c.experiment == experiment)
        if signer is not None:
            query = query.where(records.c.signer == _address(signer, "signer"))
        if tag is not None:
            query = query.where(_has_tag(tag))
        if since is not None:
            query = query.where(records.c.started_at >= _aware(since, "since"))
        if until is not None:
            query = query.where(records.c.started_at < _aware(until, "until"))
        if after is not None:
            at, last_id = _read_cursor(after)
            query = query.where(sa.or_(
                records.c.published_at < at,
                sa.and_(records.c.published_at == at, records.c.mrv_id < last_id)))
        query = query.order_by(records.c.published_at.desc(), records.c.mrv_id.desc())
        with self._transaction(write=False) as conn:
            rows = [_published(r) for r in conn.execute(query.limit(limit + 1))]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, _cursor(page[-1].published_at, page[-1].mrv_id)

    def explore(self, query: ExploreQuery) -> ExploreResult:
        """The explorer over published records: one page of rows in the order asked, and
        the totals and count of the whole filtered set, both computed in SQL."""
        anchor_state = sa.case((batches.c.status == "anchored", "anchored"),
                               else_="pending").label("anchor_state")
        source = records.outerjoin(leaves, leaves.c.fingerprint == records.c.fingerprint
                                   ).outerjoin(batches, batches.c.id == leaves.c.batch_id)
        where: list[Any] = []
        if query.experiment is not None:
            where.append(records.c.experiment == query.experiment)
        if query.tag is not None:
            where.append(_has_tag(query.tag))
        if query.since is not None:
            where.append(records.c.started_at >= _aware(query.since, "since"))
        if query.until is not None:
            where.append(records.c.started_at < _aware(query.until, "until"))
        if query.status is not None:
            where.append(records.c.status == query.status)
        if query.anchor_state == "anchored":
            where.append(batches.c.status == "anchored")
        elif query.anchor_state == "pending":
            where.append(sa.or_(batches.c.status.is_(None), batches.c.status != "anchored"))
        elif query.anchor_state is not None:
            where.append(sa.false())  # "none" or "unreadable": never so in a registry
        column, descending = _EXPLORE_SORT[query.sort.lstrip("-")], query.sort.startswith("-")
        # NULLs (a failed measurement's energy) last, whichever way: portable as a flag
        order: list[Any] = [sa.case((column.is_(None), 1), else_=0),
                            column.desc() if descending else column.asc(),
                            records.c.mrv_id.asc()]
        page = (sa.select(records.c.mrv_id, records.c.fingerprint, records.c.experiment,
                          records.c.model_name, records.c.dataset_name, records.c.status,
                          records.c.started_at, records.c.duration_s, records.c.energy_kwh,
                          records.c.co2_kg, records.c.tags, records.c.signer, anchor_state)
                .select_from(source).where(*where).order_by(*order)
                .limit(query.limit).offset(query.offset))
        # The rules of selection.totals: sums over the measured runs only (a failed
        # measurement's energy is unknown, not zero), an empty sum is 0.
        measured = records.c.energy_kwh.is_not(None)

        def total(column: Any) -> Any:
            return sa.func.coalesce(sa.func.sum(sa.case((measured, column))), sa.literal(0.0))

        totals = (sa.select(sa.func.count(), sa.func.count(records.c.energy_kwh),
                            total(records.c.energy_kwh), total(records.c.co2_kg),
                            total(records.c.duration_s))
                  .select_from(source).where(*where))
        with self._transaction(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(page)]
            count, n_measured, energy, co2, duration = conn.execute(totals).one()
        return ExploreResult(rows, {"count": int(count), "measured": int(n_measured),
                                    "not_measured": int(count) - int(n_measured),
                                    "energy_kwh": float(energy), "co2_kg": float(co2),
                                    "duration_s": float(duration)})


def _cursor(published_at: datetime, mrv_id: str) -> str:
    raw = json.dumps([published_at.isoformat(), mrv_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, mrv_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        # the ID goes into the query: only an ID (PostgreSQL's text refuses a NUL)
        if (when.tzinfo is None or not isinstance(mrv_id, str)
                or not MRV_ID_PATTERN.fullmatch(mrv_id)):
            raise MRVValueError(cursor)
        return when.astimezone(UTC), mrv_id  # may overflow: 9999-12-31T23:00-05:00
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise RecordError("not a cursor from this registry's search") from None
