"""A registry service for tests: :func:`running_registry` builds it over a database URL and
anvil, runs uvicorn in a thread on a free port, and stops it (graceful) at exit.

The anchoring loop's interval is long: tests anchor when they choose, with
``service.loop.anchorer.run_once()`` (or ``.wake()`` to let the loop do it).
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrv_ml.chain.localchain import anvil_dev_accounts
from mrv_ml.config import Secret, Settings
from tests.support.anvil import free_port

OPERATOR_INDEX = 5  # an anvil account no other test sends from (nonces stay predictable)
WITNESS_OPERATOR_INDEX = 4  # a second registry's operator


def operator_settings(anvil: Any, registry: str, data_dir: Path,
                      operator_index: int = OPERATOR_INDEX) -> Settings:
    key = anvil_dev_accounts()[operator_index].key.hex()
    return Settings(data_dir=data_dir, network="anvil", network_chosen=True, rpc_url=anvil.url,
                    contract_address=registry, private_key=Secret(key), confirmations=0)


@contextlib.contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[str]:
    """Run the ASGI ``app`` under uvicorn in a thread on ``port`` (default: a free one) of
    the loopback; yield its base URL once ``/healthz`` answers, and stop it (graceful) at
    exit."""
    import uvicorn

    port = free_port() if port is None else port
    base_url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base_url + "/healthz", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the registry did not start") from None
            time.sleep(0.05)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def running_registry(settings: Settings, database: str, **options: Any) -> Iterator[Any]:
    """Yield ``(service, base_url)`` of a registry serving on 127.0.0.1."""
    from mrv_ml.registry_service.service import build

    port = free_port()
    options.setdefault("interval_s", 3600.0)
    service = build(settings, database=database, base_url=f"http://127.0.0.1:{port}", **options)
    try:
        with serving(service.app, port) as base_url:
            # the loop anchors once as it starts: wait for that run, so a test's first
            # submissions are not anchored by it when the machine is slow
            deadline = time.monotonic() + 60
            while (service.loop is not None and service.loop.last_run_at is None
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            yield service, base_url
    finally:
        service.close()
