"""Commands: see docs/ARCHITECTURE.md for which helper owns this module."""

from __future__ import annotations

from mrv_ml.cli._app import app, console, console_err  # noqa: F401
