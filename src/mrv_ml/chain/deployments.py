"""The ``deployments.json`` file of a data directory: the registry each chain uses by
default (what :func:`mrv_ml.chain.deploy.deploy` records and :func:`connect
<mrv_ml.chain.connection.connect>` finds), with the ones it replaced kept in its history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import filelock

from mrv_ml.errors import ConfigError, StoreError
from mrv_ml.networks import DEPLOYMENTS_FILE
from mrv_ml.storage import atomicfile


def read_deployments(data_dir: Path) -> dict[str, Any]:
    """The data directory's deployments by chain id (``{}`` when it has none)."""
    path = Path(data_dir) / DEPLOYMENTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    return data if isinstance(data, dict) else {}


def write_deployment(data_dir: Path, chain_id: int, entry: dict[str, Any]
                     ) -> tuple[Path, str | None]:
    """Record ``entry`` as the registry of ``chain_id``; an earlier one is kept under
    ``previous`` (records anchored there still name it). Returns (file, replaced address)."""
    path = Path(data_dir) / DEPLOYMENTS_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(path) + ".lock", timeout=30):
            data = read_deployments(data_dir)
            old = data.get(str(chain_id))
            replaced = None
            if isinstance(old, dict) and old.get("address") != entry.get("address"):
                previous = old.pop("previous", [])
                entry["previous"] = [old, *(previous if isinstance(previous, list) else [])]
                replaced = str(old.get("address"))
            data[str(chain_id)] = entry
            atomicfile.write_json(path, data, what="the deployment")
    except (OSError, filelock.Timeout, StoreError) as e:
        raise ConfigError(f"cannot record the deployment in {path}: {e}") from None
    return path, replaced
