"""The record fingerprint: SHA-256 over the RFC 8785 (JCS) canonical form.

We hash canonical bytes, never ``json.dumps`` output or the file as written, so
that Python, the browser and any other JCS implementation agree byte for byte.
The algorithm travels with the digest (:data:`HASH_ALGORITHM`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import rfc8785

from mrv_ml.errors import NonFiniteNumberError, RecordError
from mrv_ml.types import Fingerprint

#: Name of the fingerprint algorithm, stored beside every digest.
HASH_ALGORITHM = "sha256-jcs"


# RFC 8785 numbers are IEEE doubles: integers beyond this lose precision in JavaScript.
_MAX_SAFE_INTEGER = 2**53 - 1


def first_offending(value: Any, is_bad: Callable[[Any], bool],
                    path: str = "") -> tuple[str, Any] | None:
    """(dotted path, value) of the first leaf in a JSON-like tree for which ``is_bad`` holds;
    used to name the field in an error rather than say "somewhere in the record"."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = first_offending(item, is_bad, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = first_offending(item, is_bad, f"{path}[{index}]")
            if found:
                return found
    elif is_bad(value):
        return (path, value)
    return None


def is_non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def is_unrepresentable(value: Any) -> bool:
    """What RFC 8785 cannot carry exactly: NaN, infinity, integers beyond ±(2**53-1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > _MAX_SAFE_INTEGER
    return is_non_finite(value)


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of ``record``.

    Raises :class:`NonFiniteNumberError` for NaN or infinity (naming the field) and
    :class:`RecordError` for anything else JSON cannot represent faithfully
    (integers beyond ±2**53, non-string keys, non-JSON types).
    """
    try:
        return rfc8785.dumps(record)
    except rfc8785.CanonicalizationError as e:
        # rfc8785 refuses exactly NaN, infinity and integers beyond ±(2**53-1); walk the
        # record only now, to name the field (the walk costs as much as the encoding).
        bad = first_offending(record, is_unrepresentable)
        if bad is not None:
            path, value = bad
            if is_non_finite(value):
                raise NonFiniteNumberError(
                    f"{path or 'value'}: NaN or infinity cannot be represented in JSON") from None
            raise RecordError(f"{path or 'value'}: integer outside ±(2**53-1) cannot be "
                              "represented exactly in JSON (RFC 8785)") from None
        raise RecordError(f"record cannot be canonicalized (RFC 8785): {e}") from None
    except TypeError as e:  # non-JSON types such as sets or datetimes
        raise RecordError(f"record contains a value JSON cannot hold: {e}") from None


def compute_hash(record: Mapping[str, Any]) -> Fingerprint:
    """SHA-256 of the canonical form, as 64 lowercase hex characters."""
    return Fingerprint(hashlib.sha256(canonical_bytes(record)).hexdigest())


def hash_to_bytes32(digest_hex: str) -> bytes:
    """The 32 raw bytes of a hex digest (with or without ``0x``), for the contract."""
    text = digest_hex[2:] if digest_hex.startswith(("0x", "0X")) else digest_hex
    if len(text) != 64:
        raise RecordError(f"not a SHA-256 digest: {digest_hex!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RecordError(f"not a hex digest: {digest_hex!r}") from None
