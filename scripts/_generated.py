"""One way for the generator scripts to write their file, or (``--check``) to say whether the
committed file is what they would write (tests run every generator with ``--check``)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(out: Path, data: bytes, argv: list[str], script: str) -> int:
    """Write ``data`` to ``out``; with ``--check`` in ``argv``, compare instead.
    Returns the exit status (1: the committed file is out of date)."""
    if "--check" in argv:
        if not out.exists() or out.read_bytes() != data:
            print(f"{out} is out of date; run {script}", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out}")
    return 0
