"""Strict JSON bytes: reading what other readers would read the same way, and writing.

Reading is strict on purpose: Python's ``json`` module accepts ``NaN``, ``Infinity``
and duplicate keys, none of which another verifier (a browser, another language)
would read the same way, so a record containing them cannot be fingerprinted
reproducibly and is refused (:func:`parse_json_strict`, :func:`read_file_bytes`).
Writing (:func:`dump_json_bytes`) refuses NaN/infinity too.

This is the Python twin of ``src/mrv_ml/dashboard/strictjson.js``, the page's reader:
both refuse the same inputs with the same error keys (``empty``, ``bom``,
``invalid_utf8``, ``too_deep``, ``not_json``, ``non_finite``, ``duplicate_key``; the cases
are in ``src/mrv_ml/data/verdict_cases.json``), so change them together.
"""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path
from typing import Any

from mrv_ml.errors import NonFiniteNumberError, NotJSONError, RecordError
from mrv_ml.record.hashing import first_offending, is_non_finite


class _Refused(ValueError):
    """Raised by the parser hooks; ``key`` says which rule."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def _reject_constant(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON", "non_finite")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {key!r}", "duplicate_key")
        result[key] = value
    return result


#: Deeper JSON is refused before parsing. The C decoder recurses once per level and
#: trusts the interpreter's recursion limit, which libraries such as torch raise: a
#: hostile file could then overflow the C stack and kill the process.
MAX_JSON_NESTING = 256
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _max_nesting(data: bytes) -> int:
    """Deepest bracket nesting of JSON text, outside strings (cheap for real records)."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_NESTING:
        return 0  # cannot be deeper than the number of opening brackets
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def parse_json_strict(data: bytes, source: str, *, check_duplicates: bool = True) -> Any:
    """Parse UTF-8 JSON bytes strictly; :class:`NotJSONError` names ``source``.

    Refuses what the ``json`` module would let through but other readers would not:
    invalid UTF-8, a byte-order mark, ``NaN``/``Infinity`` literals, duplicate keys
    (``check_duplicates=False`` skips that last check, which is the slow one).
    """
    if not data.strip():
        raise NotJSONError(f"{source}: not JSON: the file is empty", key="empty")
    if data.startswith(b"\xef\xbb\xbf"):
        raise NotJSONError(f"{source}: not JSON: starts with a UTF-8 byte-order mark", key="bom")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotJSONError(
            f"{source}: not JSON: invalid UTF-8 at byte {e.start}", key="invalid_utf8"
        ) from e
    depth = _max_nesting(data)
    if depth > MAX_JSON_NESTING:
        raise NotJSONError(f"{source}: invalid JSON: nested {depth} levels deep "
                           f"(at most {MAX_JSON_NESTING})", key="too_deep")
    try:
        if not check_duplicates:
            return json.loads(text, parse_constant=_reject_constant)
        return json.loads(text, parse_constant=_reject_constant,
                          object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        # The parser ran off the end of the text: most likely a cut-off file.
        truncated = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")
        hint = "truncated or incomplete JSON" if truncated else "invalid JSON"
        raise NotJSONError(
            f"{source}: {hint}: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from e
    except _Refused as e:  # our hooks: NaN/Infinity, duplicate keys
        raise NotJSONError(f"{source}: invalid JSON: {e}", key=e.key) from e
    except ValueError as e:  # the interpreter's cap on integer digits (sys.int_info)
        raise NotJSONError(f"{source}: invalid JSON: a number of more than "
                           f"{sys.get_int_max_str_digits():,} digits", key="number_too_long"
                           ) from e
    except RecursionError as e:
        raise NotJSONError(f"{source}: invalid JSON: nested too deeply", key="too_deep") from e


#: Larger input files are refused before they are read (a record is kilobytes).
MAX_INPUT_BYTES = 64 * 1024 * 1024


def read_file_bytes(path: str | Path) -> bytes:
    """The bytes of an input file; :class:`RecordError` (one line) when it cannot be read.
    Only regular files, and at most :data:`MAX_INPUT_BYTES`: a device (``/dev/zero``) or a
    FIFO would exhaust memory or hang."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(p)
        if not stat.S_ISREG(mode):
            raise RecordError(f"{p}: not a regular file")
        with p.open("rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise RecordError(f"{p}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
        return data
    except FileNotFoundError as e:
        raise RecordError(f"{p}: no such file") from e
    except IsADirectoryError as e:
        raise RecordError(f"{p}: is a directory, not a record file") from e
    except PermissionError as e:
        raise RecordError(f"{p}: permission denied") from e
    except OSError as e:
        raise RecordError(f"{p}: cannot be read: {e.strerror or e}") from e


def dump_json_bytes(value: Any) -> bytes:
    """UTF-8 JSON as the store writes it: sorted keys, 2-space indent, final newline.

    The file layout is for people; the fingerprint is computed over the RFC 8785
    form, never over these bytes.
    """
    try:
        text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError as e:
        bad = first_offending(value, is_non_finite)
        if bad is not None:
            raise NonFiniteNumberError(
                f"{bad[0] or 'record'}: NaN or infinity cannot be represented in JSON"
            ) from e
        raise RecordError(f"cannot be written as JSON: {e}") from e
    except TypeError as e:
        raise RecordError(f"contains a value JSON cannot hold: {e}") from e
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError as e:
        raise RecordError("contains text that is not valid Unicode (a lone surrogate)") from e
