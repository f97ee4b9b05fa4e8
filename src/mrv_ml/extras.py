"""Optional extras: the one place an optional package is imported, or refused with the
extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from mrv_ml.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``mrv-ml[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"this integration needs {module.split('.')[0]}: install mrv-ml[{extra}] "
            f"(pip install 'mrv-ml[{extra}]'); import failed: {e}") from e
