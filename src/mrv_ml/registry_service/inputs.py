"""The registry API's inputs as bounded types, checked before any database or file-system
call: what a route cannot receive, it cannot fail on.

- :data:`Text`: at most :data:`MAX_TEXT_CHARS` characters, no NUL (PostgreSQL's text
  cannot hold one) and no other control character.
- :data:`Instant`: an RFC 3339 date-time, zone included, whose UTC form lies within years
  1 to 9999, so converting it for the database cannot overflow.
- :data:`Offset`: 0 to 2^63 - 1, what a 64-bit signed ``OFFSET`` holds.

Each is declared in the OpenAPI document (lengths, patterns, bounds), so clients and the
fuzzing tests see the same rules the service applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, Field

from mrv_ml.record.schema import MRV_ID_PATTERN, is_rfc3339

FINGERPRINT = r"^[0-9a-f]{64}$"
MRV_ID = MRV_ID_PATTERN.pattern
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
SIGNATURE = r"^0x[0-9a-fA-F]{130}$"

MAX_TEXT_CHARS = 200
MAX_CURSOR_CHARS = 400  # a cursor is a timestamp and an MRV ID, base64: some 110 chars
MAX_OFFSET = 2**63 - 1

# Printable text: no C0 controls (NUL included) or DEL. JSON Schema patterns are ECMA 262.
_PRINTABLE = r"^[^\u0000-\u001f\u007f]*$"


def _rfc3339(value: Any) -> Any:
    """Only an RFC 3339 date-time with its zone, as the document states (not the bare
    dates, naive times and Unix numbers pydantic would read)."""
    if not isinstance(value, str) or not is_rfc3339(value):
        raise ValueError("not an RFC 3339 date-time with its zone (2026-12-07T00:00:00Z)")
    return value


def _as_utc(value: datetime) -> datetime:
    """The instant in UTC, refused when that leaves years 1..9999 (``9999-12-31T23:00-05:00``
    is in year 10000 once in UTC)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant lies outside years 1 to 9999 (UTC)") from None


Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS, pattern=_PRINTABLE)]
#: ``key`` or ``key=value``: printable, the key not empty (an empty filter is no filter)
Tag = Annotated[str, Field(max_length=MAX_TEXT_CHARS,
                           pattern=r"^([^=\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*)?$")]
Address = Annotated[str, Field(pattern=ADDRESS)]
Cursor = Annotated[str, Field(max_length=MAX_CURSOR_CHARS, pattern=r"^[A-Za-z0-9_-]*$")]
Instant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_as_utc)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def one_of(values: Iterable[str], description: str, default: str | None = None) -> Any:
    """A query parameter whose OpenAPI schema lists the words the route accepts (the route
    itself decides, with its own message)."""
    words = list(values)
    return Query(default, description=f"{', '.join(words)}: {description}",
                 json_schema_extra={"enum": words})
