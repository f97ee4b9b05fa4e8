"""Every case of the shared verdict table in the page (real headless Chromium, `mrv serve`
on the embedded chain): the same outcome and key as Python and `mrv verify`
(tests/unit/verification/test_verdict_cases.py). Plus how the page takes its files: in any order, together
or one by one, recognising which is which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.chain.localchain import dev_accounts
from mrv_ml.config import Settings
from tests.support.browser import ServedDashboard, screenshot
from tests.support.verdict_cases import CASE_IDS, CASES, CaseChain, prepare_chain

pytestmark = pytest.mark.browser

# Whichever outcome the page reaches: a verdict, an error, or "only a proof so far".
_OUTCOME = ("#verdict:not([hidden]), #error:not([hidden]), #files[data-key='is_proof_file']")


@pytest.fixture(scope="module")
def served_cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedDashboard,
                                                                            CaseChain]]:
    served = ServedDashboard(tmp_path_factory.mktemp("dash-cases") / "mrv_data")
    try:
        from mrv_ml.chain.connection import connect

        settings = Settings(data_dir=served.data_dir)
        with connect(settings) as conn:
            registry = conn.registry_address
        accounts = dev_accounts()
        yield served, prepare_chain(settings, {"$dev0": accounts[0], "$dev1": accounts[1]},
                                    registry)
    finally:
        served.close()


@pytest.fixture(scope="module")
def case_page(browser: Any, served_cases: tuple[ServedDashboard, CaseChain]) -> Iterator[Any]:
    """One page for the whole table (Clear between cases), as a reviewer would use it."""
    context = browser.new_context()
    context.set_default_timeout(60000)
    page = context.new_page()
    page.goto(served_cases[0].url)
    page.wait_for_selector("body[data-ready='1']")
    try:
        yield page
    finally:
        context.close()


def _outcome(page: Any) -> dict[str, str | None]:
    page.wait_for_selector(_OUTCOME)
    return {"verdict": page.get_attribute("#verdict", "data-verdict")
            if page.is_visible("#verdict") else None,
            "reason": page.get_attribute("#verdict", "data-reason"),
            "error": page.get_attribute("#error", "data-key")
            if page.is_visible("#error") else None,
            "files": page.get_attribute("#files", "data-key")}


def _drop(page: Any, *paths: Path) -> None:
    page.set_input_files("#file", [str(p) for p in paths])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_page_verdict(case: dict[str, Any], case_page: Any,
                      served_cases: tuple[ServedDashboard, CaseChain], tmp_path: Path) -> None:
    _, chain = served_cases
    path = chain.write(case, tmp_path)
    proof = path.with_name(path.name[:-5] + ".proof.json")
    case_page.click("#clear")
    case_page.fill("#submitter", chain.pin(case) or "")
    case_page.fill("#signer", case["signer_pin"] or "")
    _drop(case_page, path, *([proof] if proof.exists() else []))
    got = _outcome(case_page)
    expect = case["expect"]
    if "status" in expect:
        assert (got["verdict"], got["reason"]) == (expect["status"], expect["reason"]), got
        # the bridge serves this machine's embedded chain: it says what that is worth
        assert case_page.get_attribute("#verdict", "data-trust") == "local only"
        untrusted = case_page.is_visible("#untrusted")
        assert untrusted is (expect["status"] != "VALID")
        signature = (case["proof"] or {}).get("signature")
        if expect["status"] == "VALID" and signature:  # who vouched, checked by the page
            assert signature["signer"] in case_page.inner_text("#evidence")
        if expect["status"] == "TAMPERED":
            assert "(untrusted)" in case_page.inner_text("#summary")
            assert "differs from what was anchored" in case_page.inner_text("#untrusted")
    elif expect["key"] == "is_proof_file":  # the page takes it as the proof, and says so
        assert got["files"] == "is_proof_file" and got["error"] is None, got
        assert "this is a proof file" in case_page.inner_text("#files")
    else:
        assert got["error"] == expect["key"], (got, case_page.inner_text("#error"))
        assert case_page.is_hidden("#verdict")


def test_batch_verdict_shows_record_hash_and_merkle_root_apart(
        case_page: Any, served_cases: tuple[ServedDashboard, CaseChain], tmp_path: Path) -> None:
    _, chain = served_cases
    case = next(c for c in CASES if c["name"] == "batch_valid")
    path = chain.write(case, tmp_path)
    case_page.click("#clear")
    case_page.fill("#submitter", "")
    case_page.fill("#signer", "")
    _drop(case_page, path, path.with_name("batch_valid.proof.json"))
    assert _outcome(case_page)["verdict"] == "VALID"
    evidence = case_page.inner_text("#evidence")
    root = case["proof"]["anchor"]["merkle"]["root"]
    digest = case["proof"]["record_hash"]["digest"]
    assert "Merkle root (anchored)" in evidence and root in evidence
    assert "Record hash" in evidence and digest in evidence and "On-chain hash" not in evidence
    screenshot(case_page, "batch_valid")


@pytest.mark.parametrize("order", ["proof_first", "record_first", "together_proof_first"])
def test_files_in_any_order(case_page: Any, served_cases: tuple[ServedDashboard, CaseChain],
                            tmp_path: Path, order: str) -> None:
    _, chain = served_cases
    case = next(c for c in CASES if c["name"] == "batch_valid")
    record = chain.write(case, tmp_path)
    proof = record.with_name("batch_valid.proof.json")
    case_page.click("#clear")
    case_page.fill("#submitter", "")
    case_page.fill("#signer", "")
    if order == "proof_first":
        _drop(case_page, proof)  # a proof where a record is expected: recognised as such
        assert _outcome(case_page)["files"] == "is_proof_file"
        assert "this is a proof file" in case_page.inner_text("#files")
        _drop(case_page, record)
    elif order == "record_first":
        _drop(case_page, record)  # batched, no proof yet: asks for it, never NOT FOUND
        got = _outcome(case_page)
        assert got["error"] == "proof_needed" and got["verdict"] is None
        assert "batch_valid.proof.json" in case_page.inner_text("#error")
        case_page.set_input_files("#proof-file", str(proof))
    else:
        _drop(case_page, proof, record)
    case_page.locator("#verdict[data-verdict='VALID']").wait_for()
    files = case_page.inner_text("#files")
    assert "Record: batch_valid.json" in files and "Proof: batch_valid.proof.json" in files


def test_links_cannot_dress_a_chain_up(case_page: Any, served_cases: tuple[ServedDashboard,
                                                                          CaseChain],
                                       tmp_path: Path) -> None:
    served, chain = served_cases
    endpoint = f"{served.url}rpc"
    try:
        # A link naming a network whose chain the endpoint is not: an error, no verdict.
        case_page.goto(f"{served.url}?rpc={endpoint}&network=sepolia")
        case_page.wait_for_selector("body[data-ready='1']")
        status = case_page.inner_text("#status")
        assert "the link says network sepolia (chain 11155111)" in status
        assert "endpoint is chain 1337" in status
        assert "bad" in (case_page.get_attribute("#status", "class") or "")
        # An endpoint from the link is named as such; a submitter pinned by the link is used
        # and shown as pinned.
        dev1 = chain.mapping["$dev1"]
        case_page.goto(f"{served.url}?rpc={endpoint}&submitter={dev1}")
        case_page.wait_for_selector("body[data-ready='1']")
        assert f"trusting the endpoint from the link: {endpoint}" in case_page.inner_text("#status")
        case = next(c for c in CASES if c["name"] == "single_valid")
        path = chain.write(case, tmp_path)
        _drop(case_page, path, path.with_name("single_valid.proof.json"))
        got = _outcome(case_page)
        assert got["verdict"] == "SUBMITTER_MISMATCH", got  # dev0 registered it, not dev1
        evidence = case_page.inner_text("#evidence")
        assert f"{dev1} (pinned by the link)" in evidence
        # through a URL the page cannot know this is anyone's embedded chain: dev chain 1337
        assert case_page.get_attribute("#verdict", "data-trust") == "private network"
    finally:
        case_page.goto(served.url)
        case_page.wait_for_selector("body[data-ready='1']")
