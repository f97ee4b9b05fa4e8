"""The seed's import path, kept stable: ``from mrv_wrapper import MRVTracker``.

The real package is :mod:`mrv_ml`; this module only re-exports it (lazily).
"""

from __future__ import annotations

from typing import Any

import mrv_ml

__all__ = ["MRVTracker", "Verdict", "VerdictStatus", "compute_hash", "verify"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(mrv_ml, name)
    raise AttributeError(f"module 'mrv_wrapper' has no attribute {name!r}")
