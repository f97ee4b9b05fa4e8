"""The hostile-input corpus (tests/support/hostile.py) against every entry point: each
command that reads a file, hostile settings before anything runs, Python ``verify``, the
server's endpoints, and the page's file input in Chromium.

The rules, for every kind: a one-line error with the documented exit code (or, for odd
but usable records, a clean result with every control character escaped), never a
traceback, never an internal error, and not one byte changed in a store that holds an
anchored record and a pending one. ``scripts/hostile_corpus.py`` counts the same corpus
against another checkout, for the before/after figures.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.cli import main
from mrv_ml.errors import MRVError, ProofNeededError, RecordError
from mrv_ml.run.tracker import MRVTracker
from mrv_ml.storage.store import RecordStore
from tests.support.browser import ServedDashboard
from tests.support.hostile import (
    ALL_KINDS,
    HOSTILE_SETTINGS,
    PROOF_KINDS,
    RECORD_KINDS,
    Kind,
    judge,
    run_cli,
    run_file_kind,
)
from tests.support.records import make_sample_record, store_bytes

KIND_IDS = [k.name for k in ALL_KINDS]


@pytest.fixture(scope="module")
def populated_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A store with one anchored record (on the embedded chain) and one pending: (data dir,
    the anchored record's file)."""
    data_dir = tmp_path_factory.mktemp("hostile") / "mrv_data"
    saved = os.environ.get("MRV_DATA_DIR")
    os.environ["MRV_DATA_DIR"] = str(data_dir)
    try:
        with MRVTracker("anchored", storage_dir=str(data_dir), quiet=True) as tracker:
            pass
        RecordStore(data_dir).save(make_sample_record())
    finally:
        if saved is None:
            os.environ.pop("MRV_DATA_DIR", None)
        else:
            os.environ["MRV_DATA_DIR"] = saved
    assert tracker.record_path is not None and tracker.proof is not None
    yield data_dir, tracker.record_path


@pytest.fixture
def in_store(populated_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[tuple[Path, Path]]:
    """The populated store as this test's data directory; its bytes must not change."""
    data_dir, _ = populated_store
    monkeypatch.setenv("MRV_DATA_DIR", str(data_dir))
    before = store_bytes(data_dir)
    yield populated_store
    assert store_bytes(data_dir) == before


# --- every command that reads a file -------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS, ids=KIND_IDS)
def test_each_command_on_each_kind(kind: Kind, in_store: tuple[Path, Path],
                                   tmp_path: Path) -> None:
    outcomes = run_file_kind(main, kind, tmp_path / "input")
    failures = [f"{' '.join(o.argv[:1])}: {'; '.join(o.problems)} | {o.stderr.strip()[:200]}"
                for o in outcomes if o.problems]
    assert failures == []


def test_the_corpus_is_large_enough() -> None:
    assert len(ALL_KINDS) + len(HOSTILE_SETTINGS) >= 60
    assert len(set(KIND_IDS)) == len(KIND_IDS)


# --- settings: a one-line configuration error before anything runs -------------------------


@pytest.mark.parametrize(("name", "env"), HOSTILE_SETTINGS, ids=[n for n, _ in HOSTILE_SETTINGS])
def test_hostile_settings_stop_before_anything_runs(name: str, env: dict[str, str],
                                                    in_store: tuple[Path, Path],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, anchored = in_store
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("network = [\n")
    for var, value in env.items():
        monkeypatch.setenv(var, value.replace("@malformed-toml", str(bad_config)))
    marker = tmp_path / "child-ran"
    failures = []
    for argv, allowed in ((["anchor"], {7}),
                          (["run", "--", "touch", str(marker)], {7}),
                          (["verify", str(anchored)], {0, 7}),  # reading needs no key
                          (["list"], {0, 7})):
        code, out, err = run_cli(main, argv)
        outcome = judge(name, tuple(argv), code if code in allowed else min(allowed),
                        code, out, err)
        failures += [f"{argv[0]}: {p} | {err.strip()[:200]}" for p in outcome.problems]
    assert failures == []
    assert not marker.exists()  # `mrv run` refused before starting the command


# --- Python verify -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS, ids=KIND_IDS)
def test_python_verify_raises_the_documented_error(kind: Kind, in_store: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    from mrv_ml import verify

    path = kind.build(tmp_path)
    expected = ProofNeededError if kind.expect == "valid" else RecordError
    with pytest.raises(MRVError) as info:
        verify(path)
    assert isinstance(info.value, expected), (type(info.value).__name__, str(info.value))
    assert "\n" not in str(info.value)


# --- the server --------------------------------------------------------------------------


def _request(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _strict_json(body: bytes) -> Any:
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    return json.loads(body, parse_constant=no_constants)


@pytest.mark.parametrize("kind", RECORD_KINDS, ids=[k.name for k in RECORD_KINDS])
def test_the_bridge_answers_each_kind_with_an_error_and_lives(kind: Kind, dashboard_server: ServedDashboard,
                                                              tmp_path: Path) -> None:
    body = kind.build(tmp_path).read_bytes()[: 200_000]  # the bridge's cap is 256 KiB
    status, answer = _request(dashboard_server.url + "rpc", body)
    if status == 200:  # a JSON-RPC error object (or a list of them), never a result
        parsed = _strict_json(answer)
        for item in parsed if isinstance(parsed, list) else [parsed]:
            assert "error" in item and "result" not in item, item
    else:
        assert 400 <= status < 500, status
    status, _ = _request(dashboard_server.url + "api/config")
    assert status == 200


HOSTILE_IDS = ["..%2f..%2fetc%2fpasswd", "MRV-%00", "%2e%2e", "MRV-" + "a" * 5000,
               "MRV-00000000-0000-4000-8000-000000000000%0a", "%1b%5b2J", "NaN",
               "MRV-00000000-0000-4000-8000-00000000000G", "<script>", "%c0%ae%c0%ae"]


@pytest.mark.parametrize("ref", HOSTILE_IDS)
def test_the_record_endpoint_refuses_hostile_ids(ref: str, dashboard_server: ServedDashboard) -> None:
    status, body = _request(dashboard_server.url + "api/records/" + ref)
    assert 400 <= status < 500
    text = body.decode("utf-8", "replace")
    assert str(dashboard_server.data_dir) not in text and "Traceback" not in text
    if body:
        _strict_json(body)


# --- the page ----------------------------------------------------------------------------

_PAGE_KINDS = RECORD_KINDS + PROOF_KINDS
_OUTCOME = "#verdict:not([hidden]), #error:not([hidden]), #files[data-key='is_proof_file']"


@pytest.fixture(scope="module")
def hostile_page(browser: Any, dashboard_server: ServedDashboard) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context()
    context.set_default_timeout(60000)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(dashboard_server.url)
    page.wait_for_selector("body[data-ready='1']")
    try:
        yield page, dialogs
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("kind", _PAGE_KINDS, ids=[k.name for k in _PAGE_KINDS])
def test_the_page_shows_an_error_and_runs_nothing(kind: Kind, hostile_page: tuple[Any, list[str]],
                                                  tmp_path: Path) -> None:
    page, dialogs = hostile_page
    path = kind.build(tmp_path)
    files = [path] + [p for p in tmp_path.glob("*.proof.json")]
    page.click("#clear")
    page.set_input_files("#file", [str(p) for p in files])
    page.wait_for_selector(_OUTCOME)
    if kind.expect in ("bad_input", "bad_proof"):
        assert page.is_visible("#error") and page.is_hidden("#verdict"), page.inner_text("body")
        assert page.get_attribute("#error", "data-key")
    assert page.evaluate("window.__pwned") is None and dialogs == []
    assert page.evaluate("({}).polluted") is None  # no prototype pollution from a record
