"""The dashboard's static files, as both servers (``mrv serve`` and the registry's
``/explorer/``) hand them out: one rule for which names may be read.

A name is looked up only when it could be one of the page's files (no NUL, at most
:data:`MAX_SEGMENTS` segments of :data:`MAX_SEGMENT_CHARS`), and read only when it resolves
inside the dashboard folder (no ``../``, no symlink out) to a regular file of a known type.
Whatever the file system says about anything else (a name too long, a loop...) is "not
found", never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
MAX_SEGMENTS = 8
MAX_SEGMENT_CHARS = 100

MIME_TYPES = {
    ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml",
    ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class PageFile:
    body: bytes
    content_type: str


def could_be_page_file(name: str) -> bool:
    """Whether ``name`` (relative, ``/``-separated) could name one of the page's files."""
    segments = name.split("/")
    return ("\x00" not in name and len(segments) <= MAX_SEGMENTS
            and all(len(s) <= MAX_SEGMENT_CHARS for s in segments))


def read_page_file(name: str) -> PageFile | None:
    """The dashboard file ``name`` (``""``: the index), or ``None`` when there is none."""
    name = name.lstrip("/") or "index.html"
    if not could_be_page_file(name):
        return None
    root = DASHBOARD_DIR.resolve()
    try:
        target = (root / name).resolve()
        if (not target.is_relative_to(root) or not target.is_file()
                or target.suffix not in MIME_TYPES):
            return None
        return PageFile(target.read_bytes(), MIME_TYPES[target.suffix])
    except OSError:  # a name the file system refuses (too long, a loop...): not one of ours
        return None
