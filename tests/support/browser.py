"""pytest plugin: fixtures for browser tests (see docs/ARCHITECTURE.md).

``dashboard_server`` runs ``mrv serve`` (in a thread, on a free port) over a data dir whose
embedded chain holds the registry; ``browser`` is a session-scoped headless Debian Chromium;
``page`` a fresh page per test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-gpu", "--disable-quic", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian Chromium (/usr/bin/chromium) is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    # Generous: the machine running the suite may be shared and busy.
    context.set_default_timeout(60000)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


class ServedDashboard:
    """A running dashboard server and its data dir."""

    def __init__(self, data_dir: Path) -> None:
        from mrv_ml.config import Settings
        from mrv_ml.serve.local import make_server

        self.data_dir = data_dir
        self.httpd = make_server(Settings(data_dir=data_dir), "127.0.0.1", 0)
        self.url = self.httpd.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDashboard]:
    served = ServedDashboard(tmp_path_factory.mktemp("dash") / "mrv_data")
    try:
        yield served
    finally:
        served.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/dashboard/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
