"""The one way mrv-ml writes a file: complete or not at all, durable once it returns.

The bytes go to a hidden temporary file in the target's directory, are fsynced, and the
final name is then created in one step: ``os.replace`` (``overwrite=True``: sidecars,
journals, deployments, reports) or ``os.link`` (``overwrite=False``: records, which are
never replaced; a filesystem without hard links gets an exclusive placeholder instead).
The directory entry is fsynced too. A failed write leaves neither a partial file nor a
stray temporary file, and raises :class:`StoreError` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

from mrv_ml.errors import RecordExistsError, StoreError

# Filesystems without hard links answer os.link with one of these.
_NO_HARDLINK_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS,
                       errno.EXDEV}


def reason(e: OSError) -> str:
    """'no space left on device' from an OSError, without the file name noise."""
    text = e.strerror or (os.strerror(e.errno) if e.errno else str(e))
    return text[:1].lower() + text[1:] if text else type(e).__name__


def temp_name(final_name: str) -> str:
    """Hidden and unique per writer; store listings ignore it by its leading dot."""
    return f".{final_name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable. Best effort: the file's bytes are already
    fsynced and the entry is visible; some filesystems refuse fsync on directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_temp(tmp: Path, data: bytes, mode: int) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_exclusive_without_link(tmp: Path, final: Path) -> None:
    # No hard links here: claim the name exclusively (an empty placeholder), then move the
    # complete file over it. Still never replaces someone else's file.
    try:
        fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise RecordExistsError(f"{final}: already exists; records are never overwritten"
                                ) from None
    os.close(fd)
    try:
        os.replace(tmp, final)
    except OSError:
        with contextlib.suppress(OSError):  # the placeholder is ours: never leave it half-made
            os.unlink(final)
        raise


def write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True, mode: int = 0o644,
                what: str = "file") -> Path:
    """Write ``data`` to ``path`` atomically (see the module doc); returns ``path``.

    ``overwrite=False`` raises :class:`RecordExistsError` when ``path`` exists. ``what``
    names the file in error messages ("the record", "the proof", ...).
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:
        raise StoreError(f"cannot write {what}: {final.parent} is not a directory") from e
    except OSError as e:
        raise StoreError(f"cannot write {what} to {final.parent}: {reason(e)}") from e
    if not overwrite and os.path.lexists(final):
        raise RecordExistsError(f"{final}: already exists; records are never overwritten")
    tmp = final.with_name(temp_name(final.name))
    try:
        _write_temp(tmp, data, mode)
        if overwrite:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise RecordExistsError(
                    f"{final}: already exists; records are never overwritten") from None
            except OSError as e:
                if e.errno not in _NO_HARDLINK_ERRNOS:
                    raise
                _create_exclusive_without_link(tmp, final)
    except OSError as e:
        raise StoreError(f"cannot write {what} to {final.parent}: {reason(e)}") from e
    finally:
        with contextlib.suppress(OSError):  # already linked/renamed away, or never created
            os.unlink(tmp)
    fsync_dir(final.parent)
    return final


def write_json(path: str | Path, value: Any, *, what: str = "file") -> Path:
    """``value`` as indented, key-sorted UTF-8 JSON with a final newline, atomically."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return write_bytes(path, (text + "\n").encode("utf-8"), what=what)
