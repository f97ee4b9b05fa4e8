"""The explorer across runs: `mrv serve`'s /api/explore over the local store, the
registry's /v1/explore over published records (SQL), and the page (explorer.js) in
Chromium over both: filters, totals (selection.totals, formatted by units), sorting,
paging, deep links, opening a run, hostile record text shown as text only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import Proof
from mrv_ml.serve.local import explore_store, parse_explore_query
from mrv_ml.storage.selection import totals
from mrv_ml.storage.store import RecordStore
from mrv_ml.units import format_co2_kg, format_duration_s, format_energy_kwh, format_number
from tests.support.browser import ServedDashboard, screenshot
from tests.support.records import make_sample_record

HOSTILE = "<script>window.pwned=1</script>\u202eevil\u202c<img src=x onerror=window.pwned=2>"
PUBLIC_ANCHOR = {"mode": "single", "network": "sepolia", "chain_id": 11155111,
                 "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20,
                 "tx_hash": "0x" + "33" * 32, "block_number": 3}
LOCAL_ANCHOR = PUBLIC_ANCHOR | {"network": "local", "chain_id": 1337}


def _record(n: int, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        # IDs of a known shape: "MRV-03" names one record, "MRV-0" all twelve
        "mrv_id": f"MRV-{n:02x}c0ffee-1234-4abc-8def-{n:012x}",
        "experiment__name": ["resnet", "bert", "mnist"][n % 3],
        "experiment__tags": {"team": "green" if n % 2 else "blue", "lr": str(n)},
        "timestamps__start_time": f"2026-{1 + n % 6:02d}-{1 + n:02d}T10:00:00.000000Z",
        "energy_emissions__energy_kwh": 0.01 * (n + 1),
        "energy_emissions__co2_kg": 0.004 * (n + 1),
        "energy_emissions__duration_seconds": 60.0 * (n + 1),
    }
    return make_sample_record(**(base | overrides))


def _proof(record: dict[str, Any], anchor: dict[str, Any] | None) -> Proof:
    data: dict[str, Any] = {"proof_version": "1.0", "mrv_id": record["mrv_id"],
                            "record_hash": {"algorithm": "sha256-jcs",
                                            "digest": compute_hash(record)},
                            "status": "anchored" if anchor else "pending"}
    if anchor:
        data["anchor"] = anchor
    return Proof.from_dict(data)


def fill_store(root: Path) -> list[dict[str, Any]]:
    """Twelve varied runs: three experiments, two teams, six months, a failed and an
    interrupted run, a failed measurement, public / local anchors, pending, no proof, and
    one whose experiment's name is hostile."""
    store = RecordStore(root)
    records = []
    for n in range(12):
        overrides: dict[str, Any] = {}
        if n == 4:
            overrides |= {"outcome__status": "failed", "outcome__error_type": "RuntimeError",
                          "outcome__error_message": "CUDA out of memory"}
        if n == 5:
            overrides |= {"outcome__status": "interrupted"}
        if n == 7:  # the measurement failed: no figures, counted apart
            overrides |= {"energy_emissions__measurement_status": "failed",
                          "energy_emissions__measurement_error": "no RAPL",
                          "energy_emissions__energy_kwh": None, "energy_emissions__co2_kg": None}
        if n == 9:
            overrides |= {"experiment__name": HOSTILE}
        record = _record(n, **overrides)
        store.save(record)
        anchor = {0: PUBLIC_ANCHOR, 3: PUBLIC_ANCHOR, 6: LOCAL_ANCHOR, 9: PUBLIC_ANCHOR}.get(n)
        if anchor or n in (1, 2):
            store.save_proof(_proof(record, anchor))
        records.append(record)
    return records


def explore(store: RecordStore, **params: str) -> dict[str, Any]:
    return explore_store(store, parse_explore_query({k: [v] for k, v in params.items()}))


# --- the store's explorer in Python ---------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> tuple[RecordStore, list[dict[str, Any]]]:
    root = tmp_path / "mrv_data"
    return RecordStore(root), fill_store(root)


def _ids(answer: dict[str, Any]) -> list[str]:
    return [r["mrv_id"] for r in answer["rows"]]


def test_filters_and_totals_over_the_store(store: tuple[RecordStore, list[dict[str, Any]]]
                                           ) -> None:
    s, records = store
    everything = explore(s)
    assert everything["count"] == 12 and len(everything["rows"]) == 12
    assert everything["totals"] == pytest.approx(  # the same sums, in the store's order
        {k: v for k, v in totals(records).to_dict().items() if k != "component_energy_kwh"})
    assert everything["totals"]["not_measured"] == 1  # the failed measurement, not a zero

    by_id = {r["mrv_id"]: r for r in records}
    cases: dict[str, tuple[dict[str, str], Any]] = {
        "experiment": ({"experiment": "bert"},
                       lambda r: r["experiment"]["name"] == "bert"),
        "tag key=value": ({"tag": "team=green"},
                          lambda r: r["experiment"]["tags"]["team"] == "green"),
        "tag key": ({"tag": "lr"}, lambda r: True),
        "failed runs": ({"status": "failed"}, lambda r: r["outcome"]["status"] == "failed"),
        "interrupted": ({"status": "interrupted"},
                        lambda r: r["outcome"]["status"] == "interrupted"),
        "dates": ({"since": "2026-02-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"},
                  lambda r: "2026-02" <= r["timestamps"]["start_time"][:7] <= "2026-03"),
        "anchored": ({"anchor_state": "anchored"},
                     lambda r: r is not None and records.index(r) in (0, 3, 6, 9)),
        "pending": ({"anchor_state": "pending"}, lambda r: records.index(r) in (1, 2)),
        "no proof": ({"anchor_state": "none"},
                     lambda r: records.index(r) not in (0, 1, 2, 3, 6, 9)),
        "public": ({"trust": "public"}, lambda r: records.index(r) in (0, 3, 9)),
        "local only": ({"trust": "local only"}, lambda r: records.index(r) == 6),
        "together": ({"experiment": "resnet", "tag": "team=blue"},
                     lambda r: r["experiment"]["name"] == "resnet"
                     and r["experiment"]["tags"]["team"] == "blue"),
    }
    for name, (params, wanted) in cases.items():
        answer = explore(s, **params)
        expected = [r for r in records if wanted(r)]
        assert sorted(_ids(answer)) == sorted(r["mrv_id"] for r in expected), name
        assert answer["count"] == len(expected), name
        assert answer["totals"]["energy_kwh"] == pytest.approx(
            totals(expected).energy_kwh), name
        assert answer["totals"]["co2_kg"] == pytest.approx(totals(expected).co2_kg), name
        for row in answer["rows"]:
            assert row["experiment"] == by_id[row["mrv_id"]]["experiment"]["name"]


def test_sorting_and_paging(store: tuple[RecordStore, list[dict[str, Any]]]) -> None:
    s, records = store
    energy = [r["energy_kwh"] for r in explore(s, sort="-energy")["rows"]]
    assert energy[-1] is None  # no figure: last, whichever the order
    assert energy[:-1] == sorted(energy[:-1], reverse=True)
    ascending = [r["energy_kwh"] for r in explore(s, sort="energy")["rows"]]
    assert ascending[:-1] == sorted(ascending[:-1]) and ascending[-1] is None
    dates = [r["start_time"] for r in explore(s, sort="date")["rows"]]
    assert dates == sorted(dates)
    names = [r["experiment"] for r in explore(s, sort="experiment")["rows"]]
    assert names == sorted(names)
    durations = [r["duration_s"] for r in explore(s, sort="-duration")["rows"]]
    assert durations == sorted(durations, reverse=True)
    pages = [explore(s, sort="-co2", limit="5", offset=str(o)) for o in (0, 5, 10)]
    assert [len(p["rows"]) for p in pages] == [5, 5, 2]
    assert all(p["count"] == 12 and p["totals"]["count"] == 12 for p in pages)
    assert len({i for p in pages for i in _ids(p)}) == 12  # neither repeats nor skips


@pytest.mark.parametrize("params", [{"sort": ["size"]}, {"sort": ["--date"]},
                                    {"limit": ["0"]}, {"limit": ["501"]}, {"offset": ["-1"]},
                                    {"limit": ["ten"]}, {"colour": ["red"]},
                                    {"since": ["yesterday"]}])
def test_bad_queries_are_refused(store: tuple[RecordStore, list[dict[str, Any]]],
                                 params: dict[str, list[str]]) -> None:
    from mrv_ml.errors import RecordError

    with pytest.raises(RecordError):
        explore_store(store[0], parse_explore_query(params))


# --- over a real `mrv serve` ------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ServedDashboard, list[dict[str, Any]]]]:
    root = tmp_path_factory.mktemp("explore") / "mrv_data"
    records = fill_store(root)
    server = ServedDashboard(root)
    try:
        yield server, records
    finally:
        server.close()


def _get(url: str) -> tuple[int, Any, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_the_api_of_mrv_serve(served: tuple[ServedDashboard, list[dict[str, Any]]]) -> None:
    server, records = served
    status, body, _ = _get(server.url + "api/explore?experiment=bert&sort=-energy")
    assert status == 200
    bert = [r for r in records if r["experiment"]["name"] == "bert"]
    assert body["count"] == len(bert) and body["totals"]["count"] == len(bert)
    assert body["totals"]["energy_kwh"] == pytest.approx(totals(bert).energy_kwh)
    assert "path" not in body["rows"][0]  # never where the files are
    status, body, _ = _get(server.url + "api/explore?sort=weight")
    assert status == 400 and "sort is one of" in body["error"]
    full = records[3]["mrv_id"]
    status, body, _ = _get(server.url + f"api/resolve/{full[:8]}")
    assert (status, body) == (200, {"mrv_id": full})
    for bad in ("MRV-..%2F..%2Fetc", "MRV-XYZ", "abc", "MRV-" + "0" * 40):
        assert _get(server.url + f"api/resolve/{bad}")[0] == 404, bad
    assert _get(server.url + "api/resolve/MRV-")[0] == 404
    status, body, _ = _get(server.url + "api/resolve/MRV-ffffffff")
    assert status == 404
    # a prefix shared by several records is ambiguous: 409, never the first one found
    status, body, _ = _get(server.url + "api/resolve/MRV-0")
    assert status == 409 and "matches 12 records" in body["error"]


def test_a_run_written_meanwhile_is_listed_at_once(tmp_path: Path) -> None:
    """mrv serve keeps the listing between requests, never past a change to the store."""
    root = tmp_path / "mrv_data"
    records = fill_store(root)
    server = ServedDashboard(root)
    try:
        assert _get(server.url + "api/explore")[1]["count"] == 12
        store = RecordStore(root)
        extra = _record(20, experiment__name="late")
        store.save(extra)
        body = _get(server.url + "api/explore?experiment=late")[1]
        assert body["count"] == 1 and body["rows"][0]["mrv_id"] == extra["mrv_id"]
        store.save_proof(_proof(records[5], PUBLIC_ANCHOR))  # a sidecar replaced
        body = _get(server.url + "api/explore?trust=public")[1]
        assert records[5]["mrv_id"] in [r["mrv_id"] for r in body["rows"]]
    finally:
        server.close()


# --- in Chromium ---------------------------------------------------------------------------


def _shown_totals(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        "#ex-totals .total", "els => Object.fromEntries(els.map(e => "
        "[e.dataset.total, e.querySelector('.total-value').textContent]))")


def _expected_totals(chosen: list[dict[str, Any]]) -> dict[str, str]:
    t = totals(chosen)
    shown = {"Runs": format_number(t.count), "Energy": format_energy_kwh(t.energy_kwh),
             "CO₂e": format_co2_kg(t.co2_kg), "Duration": format_duration_s(t.duration_s)}
    if t.not_measured:
        shown["Not measured"] = f"{format_number(t.not_measured)} (not in the sums)"
    return shown


def _wait_listed(page: Any, count: int) -> None:
    page.wait_for_selector(f"#explorer[data-count='{count}']:not([data-loading])")


def test_the_page_lists_filters_sorts_and_opens_a_run(
        page: Any, served: tuple[ServedDashboard, list[dict[str, Any]]]) -> None:
    server, records = served
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # (a record without a sidecar answers its proof's URL with 404: the page expects that)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and "Failed to load resource" not in m.text else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server.url + "?view=explore")
    page.wait_for_selector("body[data-ready='1']")
    _wait_listed(page, 12)
    assert _shown_totals(page) == _expected_totals(records)
    assert page.locator("#ex-rows tr").count() == 12
    assert not page.locator("#input").is_visible()  # the explorer alone
    screenshot(page, "explorer-1280")

    # the hostile experiment name is text, in the list, and ran nothing
    hostile = page.locator(f"#ex-rows tr[data-id='{records[9]['mrv_id']}'] .ex-open")
    assert hostile.text_content() == HOSTILE
    assert page.evaluate("window.pwned") is None
    assert page.locator("#ex-rows img, #ex-rows script").count() == 0

    # a filter through the UI narrows the list, and the URL says so
    page.select_option("#ex-status", "failed")
    _wait_listed(page, 1)
    failed = [r for r in records if r["outcome"]["status"] == "failed"]
    assert _shown_totals(page) == _expected_totals(failed)
    assert "status=failed" in page.url
    page.click("#ex-reset")
    _wait_listed(page, 12)
    page.fill("#ex-tag", "team=green")
    page.press("#ex-tag", "Enter")
    green = [r for r in records if r["experiment"]["tags"]["team"] == "green"]
    _wait_listed(page, len(green))
    assert _shown_totals(page) == _expected_totals(green)
    assert sorted(page.eval_on_selector_all("#ex-rows tr", "els => els.map(e => e.dataset.id)")
                  ) == sorted(r["mrv_id"] for r in green)

    # sorting by energy from the column header: largest first, bars proportional
    page.click("#ex-reset")
    _wait_listed(page, 12)
    page.click("th[data-sort='energy'] button")
    page.wait_for_function("() => location.search.includes('sort=-energy')")
    _wait_listed(page, 12)
    ids = page.eval_on_selector_all("#ex-rows tr", "els => els.map(e => e.dataset.id)")
    measured = sorted((r for r in records if r["energy_emissions"]["energy_kwh"] is not None),
                      key=lambda r: -r["energy_emissions"]["energy_kwh"])
    assert ids[:-1] == [r["mrv_id"] for r in measured]
    widths = page.eval_on_selector_all(
        "#ex-rows .bar-fill", "els => els.map(e => e.getBoundingClientRect().width)")
    top = measured[0]["energy_emissions"]["energy_kwh"]
    for width, r in zip(widths, measured, strict=False):
        assert width / widths[0] == pytest.approx(r["energy_emissions"]["energy_kwh"] / top,
                                                  abs=0.02)
    assert widths[-1] == 0  # the failed measurement has no bar

    # clicking a run opens its record page, loaded from the store as ?id= does
    target = measured[0]
    page.click(f"#ex-rows tr[data-id='{target['mrv_id']}'] .ex-open")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => document.getElementById('mrv-id').value !== ''")
    assert page.input_value("#mrv-id") == target["mrv_id"]
    assert f"id={target['mrv_id']}" in page.url
    assert not page.locator("#explorer").is_visible()
    assert not errors, errors


def test_deep_links_open_the_filtered_view_and_a_record_by_prefix(
        page: Any, served: tuple[ServedDashboard, list[dict[str, Any]]]) -> None:
    server, records = served
    page.set_viewport_size({"width": 375, "height": 800})
    query = urllib.parse.urlencode({"view": "explore", "experiment": "resnet",
                                    "tag": "team=blue", "sort": "-co2"})
    page.goto(server.url + "?" + query)
    page.wait_for_selector("body[data-ready='1']")
    chosen = [r for r in records if r["experiment"]["name"] == "resnet"
              and r["experiment"]["tags"]["team"] == "blue"]
    _wait_listed(page, len(chosen))
    assert page.input_value("#ex-experiment") == "resnet"
    assert page.input_value("#ex-tag") == "team=blue"
    assert page.input_value("#ex-sort") == "co2" and page.is_checked("#ex-desc")
    assert _shown_totals(page) == _expected_totals(chosen)
    co2 = [r["energy_emissions"]["co2_kg"] for r in chosen]
    ids = page.eval_on_selector_all("#ex-rows tr", "els => els.map(e => e.dataset.id)")
    assert ids == [r["mrv_id"] for r in sorted(chosen, key=lambda r: -r["energy_emissions"]
                                                ["co2_kg"])], co2
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scroll
    screenshot(page, "explorer-375")

    # a record by a unique prefix (without "MRV-" too)
    target = records[2]["mrv_id"]
    page.goto(server.url + f"?id={target[4:10]}")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("(id) => document.getElementById('mrv-id').value === id",
                           arg=target)
    # the existing full-ID deep link still works
    page.goto(server.url + f"?id={records[3]['mrv_id']}&network=local")
    page.wait_for_selector("body[data-ready='1']")
    assert page.input_value("#mrv-id") == records[3]["mrv_id"]


# --- the registry: /v1/explore in SQL, the page under /explorer/ -------------------------------


def _post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def publish(base_url: str, records: list[dict[str, Any]]) -> None:
    for record in records:
        status, body = _post(base_url + "/v1/submissions", {
            "fingerprint": compute_hash(record), "mrv_id": record["mrv_id"], "record": record})
        assert status in (200, 202), body


@pytest.fixture
def registry(anvil: Any, anvil_registry: str, registry_db_url: str, tmp_path: Path
             ) -> Iterator[tuple[Any, str, list[dict[str, Any]]]]:
    """A registry with the twelve runs published: the first eight anchored, four pending."""
    from tests.support.registry import operator_settings, running_registry

    records = fill_store(tmp_path / "researcher")
    settings = operator_settings(anvil, anvil_registry, tmp_path / "operator")
    with running_registry(settings, registry_db_url) as (service, url):
        publish(url, records[:8])
        service.loop.anchorer.run_once()
        publish(url, records[8:])
        yield service, url, records


@pytest.mark.anvil
def test_the_registry_explores_in_sql(registry: tuple[Any, str, list[dict[str, Any]]]) -> None:
    _, url, records = registry
    status, info, _ = _get(url + "/v1/info")
    assert status == 200

    def ask(**params: str) -> dict[str, Any]:
        status, body, _ = _get(url + "/v1/explore?" + urllib.parse.urlencode(params))
        assert status == 200, body
        return body

    everything = ask()
    assert everything["count"] == 12 and everything["trust"] == "private network"  # anvil
    assert everything["totals"] == pytest.approx(
        {k: v for k, v in totals(records).to_dict().items() if k != "component_energy_kwh"})
    cases: dict[str, tuple[dict[str, str], list[dict[str, Any]]]] = {
        "experiment": ({"experiment": "mnist"},
                       [r for r in records if r["experiment"]["name"] == "mnist"]),
        "tag": ({"tag": "team=green"},
                [r for r in records if r["experiment"]["tags"]["team"] == "green"]),
        "tag key": ({"tag": "lr"}, records),
        "failed": ({"status": "failed"}, [records[4]]),
        "dates": ({"since": "2026-02-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"},
                  [r for r in records
                   if "2026-02" <= r["timestamps"]["start_time"][:7] <= "2026-03"]),
        "anchored": ({"anchor_state": "anchored"}, records[:8]),
        "pending": ({"anchor_state": "pending"}, records[8:]),
        "never unanchored here": ({"anchor_state": "none"}, []),
        "the registry's trust": ({"trust": "private network"}, records),
        "another trust": ({"trust": "public"}, []),
        "trust's short name": ({"trust": "private"}, records),
        "unanchored is pending here": ({"anchor_state": "unanchored"}, records[8:]),
    }
    for name, (params, expected) in cases.items():
        body = ask(**params, limit="500")
        assert sorted(r["mrv_id"] for r in body["rows"]) == sorted(
            r["mrv_id"] for r in expected), name
        assert body["count"] == len(expected), name
        assert body["totals"]["energy_kwh"] == pytest.approx(totals(expected).energy_kwh), name
        assert body["totals"]["not_measured"] == totals(expected).not_measured, name
    energy = [r["energy_kwh"] for r in ask(sort="-energy")["rows"]]
    assert energy[-1] is None and energy[:-1] == sorted(energy[:-1], reverse=True)
    names = [r["experiment"] for r in ask(sort="experiment")["rows"]]
    assert names == sorted(names)
    pages = [ask(sort="-duration", limit="5", offset=str(o)) for o in (0, 5, 10)]
    assert [len(p["rows"]) for p in pages] == [5, 5, 2]
    assert len({r["mrv_id"] for p in pages for r in p["rows"]}) == 12
    for bad in ({"sort": "weight"}, {"limit": "0"}, {"since": "not a date"},
                {"status": "done"}, {"trust": "trusted"}, {"anchor_state": "maybe"}):
        status, body, _ = _get(url + "/v1/explore?" + urllib.parse.urlencode(bad))
        assert 400 <= status < 500, (bad, body)
    # the keyset pages of /v1/records are still there, unchanged
    status, body, _ = _get(url + "/v1/records?limit=5")
    assert status == 200 and len(body["records"]) == 5 and body["next"]

    # the page, under its own CSP; nothing outside the dashboard folder
    with urllib.request.urlopen(url + "/explorer/", timeout=30) as r:
        assert b'id="explorer"' in r.read()
        csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    for bad_path in ("/explorer/../registry_service/app.py", "/explorer/%2e%2e/serve/local.py",
                     "/explorer/vendor/../../serve/local.py"):
        try:
            code = urllib.request.urlopen(url + bad_path, timeout=30).status
        except urllib.error.HTTPError as e:
            code = e.code
        assert code == 404, bad_path


@pytest.mark.anvil
def test_the_registry_page_explores_and_verifies_in_the_browser(
        page: Any, anvil: Any, registry: tuple[Any, str, list[dict[str, Any]]]) -> None:
    _, url, records = registry
    page.set_viewport_size({"width": 1280, "height": 900})
    # the reader names the chain endpoint; the link carries it to every record page
    page.goto(url + "/explorer/?" + urllib.parse.urlencode({"view": "explore",
                                                            "rpc": anvil.url}))
    page.wait_for_selector("body[data-ready='1']")
    _wait_listed(page, 12)
    assert _shown_totals(page) == _expected_totals(records)
    assert "registry" in (page.text_content("#ex-source") or "")
    page.select_option("#ex-anchor_state", "pending")
    _wait_listed(page, 4)
    hostile_row = f"#ex-rows tr[data-id='{records[9]['mrv_id']}']"
    assert page.locator(f"{hostile_row} .ex-anchor").text_content() == "pending"
    assert page.locator(f"#ex-rows tr[data-id='{records[9]['mrv_id']}'] .ex-open"
                        ).text_content() == HOSTILE
    assert page.evaluate("window.pwned") is None
    screenshot(page, "explorer-registry-1280")
    page.select_option("#ex-anchor_state", "anchored")
    _wait_listed(page, 8)
    target = records[3]
    page.click(f"#ex-rows tr[data-id='{target['mrv_id']}'] .ex-open")
    page.wait_for_selector("body[data-ready='1']")
    # verified here, against the chain the reader named: the registry's word is not asked
    page.wait_for_selector("#verdict:not([hidden])")
    assert page.get_attribute("#verdict", "data-verdict") == "VALID"
    assert page.get_attribute("#verdict", "data-trust") == "private network"
    assert page.input_value("#mrv-id") == target["mrv_id"]


def test_the_migration_backfills_published_records(tmp_path: Path) -> None:
    """A registry of schema 0001 with published records, opened by this mrv-ml: 0002's
    columns are filled from each record's JSON."""
    import sqlalchemy as sa
    from alembic import command as alembic_command
    from alembic.config import Config as AlembicConfig

    from mrv_ml.record.hashing import canonical_bytes
    from mrv_ml.registry_service import db as registry_db
    from mrv_ml.registry_service.db import engine as db_engine

    path = tmp_path / "old.sqlite"
    target = db_engine._target(str(path))
    old = registry_db.RegistryDB(db_engine._sqlite_engine(target.url), target)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(registry_db.MIGRATIONS_DIR))
    with old._transaction(write=True) as conn:
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, "0001")
    records = [_record(4, outcome__status="failed", experiment__dataset_name="ImageNet"),
               _record(7, energy_emissions__duration_seconds=None,
                       energy_emissions__measurement_status="failed",
                       energy_emissions__energy_kwh=None, energy_emissions__co2_kg=None)]
    with old._transaction(write=True) as conn:
        for r in records:
            fp = compute_hash(r)
            conn.execute(sa.text("INSERT INTO leaves (fingerprint, first_seen) VALUES "
                                 "(:f, '2026-12-01 00:00:00')"), {"f": fp})
            conn.execute(sa.text(
                "INSERT INTO records (mrv_id, fingerprint, record_json, experiment, tags, "
                "energy_kwh, published_at) VALUES (:i, :f, :j, :e, '{}', :k, "
                "'2026-12-01 00:00:00')"),
                {"i": r["mrv_id"], "f": fp, "j": canonical_bytes(r).decode(),
                 "e": r["experiment"]["name"], "k": r["energy_emissions"]["energy_kwh"]})
    old.close()
    with registry_db.open_database(str(path)) as upgraded:
        first, second = (upgraded.published(r["mrv_id"]) for r in records)
        assert first is not None and second is not None
        assert (first.status, first.dataset_name, first.duration_s) == ("failed", "ImageNet",
                                                                        300.0)
        assert (second.status, second.duration_s) == ("completed", None)
        found = upgraded.explore(registry_db.ExploreQuery(status="failed"))
        assert [r["mrv_id"] for r in found.rows] == [records[0]["mrv_id"]]
        assert found.totals["count"] == 1 and found.totals["duration_s"] == 300.0
