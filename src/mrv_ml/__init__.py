"""mrv-ml: verifiable energy and CO2 records for machine-learning training.

The flow runs one way: tracker → record → store → anchor → chain → verify.

Public names are imported lazily, so ``import mrv_ml`` stays cheap and does not pull
in web3 or CodeCarbon until they are needed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("mrv-ml")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "MRVError": "mrv_ml.errors",
    "MRVTracker": "mrv_ml.tracker",
    "compute_hash": "mrv_ml.hashing",
    "Verdict": "mrv_ml.verify",
    "VerdictStatus": "mrv_ml.verify",
    "verify": "mrv_ml.verify",
    "RecordStore": "mrv_ml.store",
    "load_settings": "mrv_ml.config",
}

__all__ = [
    "MRVError", "MRVTracker", "RecordStore", "Verdict", "VerdictStatus", "__version__",
    "compute_hash", "load_settings", "verify",
]

if TYPE_CHECKING:
    from mrv_ml.config import load_settings
    from mrv_ml.errors import MRVError
    from mrv_ml.hashing import compute_hash
    from mrv_ml.store import RecordStore
    from mrv_ml.tracker import MRVTracker
    from mrv_ml.verify import Verdict, VerdictStatus, verify


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mrv_ml' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
