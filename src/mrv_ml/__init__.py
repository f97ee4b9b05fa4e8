"""mrv-ml: verifiable energy and CO2 records for machine-learning training.

The flow runs one way: tracker → record → store → anchor → chain → verify.

Public names are imported lazily, so ``import mrv_ml`` stays cheap and does not pull
in web3 or CodeCarbon until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mrv_ml._version import __version__

_EXPORTS = {
    "MRVError": "mrv_ml.errors",
    "MRVTracker": "mrv_ml.run.tracker",
    "compute_hash": "mrv_ml.record.hashing",
    "Verdict": "mrv_ml.verification.model",
    "VerdictStatus": "mrv_ml.verification.verdict",
    "verify": "mrv_ml.verification.verifier",
    "RecordStore": "mrv_ml.storage.store",
    "load_settings": "mrv_ml.config",
}

__all__ = [
    "MRVError", "MRVTracker", "RecordStore", "Verdict", "VerdictStatus", "__version__",
    "compute_hash", "load_settings", "verify",
]

if TYPE_CHECKING:
    from mrv_ml.config import load_settings
    from mrv_ml.errors import MRVError
    from mrv_ml.record.hashing import compute_hash
    from mrv_ml.run.tracker import MRVTracker
    from mrv_ml.storage.store import RecordStore
    from mrv_ml.verification.model import Verdict
    from mrv_ml.verification.verdict import VerdictStatus
    from mrv_ml.verification.verifier import verify


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mrv_ml' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
