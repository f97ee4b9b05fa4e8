"""The installed distribution's version, in a module of its own so that nothing inside the
package imports the package ``__init__`` (which re-exports the library lazily) for it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrv-ml")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
