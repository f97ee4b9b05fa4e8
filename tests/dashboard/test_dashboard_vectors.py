"""Every hash vector: the page's jcs.js + Web Crypto SHA-256 equals the vectors file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import ServedDashboard

pytestmark = pytest.mark.browser

VECTORS = Path(__file__).resolve().parents[2] / "src" / "mrv_ml" / "data" / "hash_vectors.json"


def test_all_hash_vectors_in_browser(page: Any, dashboard_server: ServedDashboard) -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert vectors
    page.goto(dashboard_server.url)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    # Values go in as JSON text and are parsed by the page, as a dropped file would be.
    results = page.evaluate(
        """async (texts) => Promise.all(texts.map(async (t) => {
             const c = window.mrvJcs.canonicalize(JSON.parse(t));
             return [c, await window.mrvJcs.sha256Hex(c)];
           }))""",
        [json.dumps(v["value"], ensure_ascii=False) for v in vectors])
    for vector, (canonical, digest) in zip(vectors, results, strict=True):
        assert canonical == vector["canonical"], vector["name"]
        assert digest == vector["sha256"], vector["name"]
