"""Every case of the shared verdict table, through Python's verify() and `mrv verify --json`,
on the embedded chain and on anvil (a real node). The dashboard runs the same table in
tests/dashboard/test_dashboard_cases.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.chain.localchain import anvil_dev_accounts, dev_accounts
from mrv_ml.config import Secret, Settings
from mrv_ml.errors import MRVError
from mrv_ml.verification.verifier import verify
from tests.support.cli import MRV as Runner
from tests.support.verdict_cases import CASE_IDS, CASES, CaseChain, prepare_chain

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def case_chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[CaseChain]:
    """A chain holding every case's registrations; the reviewer's settings name only the
    network (the registry comes from the proof, or the recorded deployment)."""
    data_dir = tmp_path_factory.mktemp("cases") / "mrv_data"
    if request.param == "anvil":
        from mrv_ml.chain.deploy import deploy

        node = request.getfixturevalue("anvil")
        node.ensure_running()
        settings = Settings(data_dir=data_dir, network="anvil", rpc_url=node.url)
        accounts = anvil_dev_accounts()
        registry = deploy(settings.replace(private_key=Secret(accounts[0].key.hex()))).address
    else:
        from mrv_ml.chain.connection import connect

        settings = Settings(data_dir=data_dir, network_chosen=True)  # as `--network local`
        accounts = dev_accounts()
        with connect(settings) as conn:  # deploys the embedded chain's registry
            registry = conn.registry_address
    yield prepare_chain(settings, {"$dev0": accounts[0], "$dev1": accounts[1]}, registry)


def test_the_table_is_generated_and_covers_what_the_issue_asks() -> None:
    done = subprocess.run([sys.executable, "scripts/make_verdict_cases.py", "--check"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(CASES) >= 20
    outcomes = {c["expect"].get("status") or c["expect"]["key"] for c in CASES}
    assert {"VALID", "TAMPERED", "NOT_FOUND", "SUBMITTER_MISMATCH", "proof_needed",
            "proof_of_another_record", "proof_chain_mismatch", "no_contract", "duplicate_key",
            "bom", "lone_surrogate", "non_finite", "unsafe_integer", "bad_signature"} <= outcomes
    modes = {(c["proof"] or {}).get("anchor", {}).get("mode") for c in CASES}
    assert {"single", "batch", None} <= modes


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_python_verify(case: dict[str, Any], case_chain: CaseChain, tmp_path: Path) -> None:
    path = case_chain.write(case, tmp_path)
    expect = case["expect"]
    if "status" in expect:
        v = verify(path, expected_submitter=case_chain.pin(case),
                   expected_signer=case["signer_pin"], settings=case_chain.settings)
        assert (v.status.value, v.reason, v.exit_code) == \
            (expect["status"], expect["reason"], expect["exit_code"]), v.detail
        assert v.figures_trusted is (expect["status"] == "VALID")
        assert v.contract_address == case_chain.mapping["$registry"]
    else:
        with pytest.raises(MRVError) as info:
            verify(path, expected_submitter=case_chain.pin(case),
                   expected_signer=case["signer_pin"], settings=case_chain.settings)
        e = info.value
        assert (type(e).__name__, e.key, e.exit_code) == \
            (expect["error"], expect["key"], expect["exit_code"]), str(e)
        assert "\n" not in str(e)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cli_verify(case: dict[str, Any], case_chain: CaseChain, tmp_path: Path,
                    mrv: Runner) -> None:
    path = case_chain.write(case, tmp_path)
    pin = case_chain.pin(case)
    args = ["verify", str(path), "--json", *case_chain.cli_args,
            *(["--submitter", pin] if pin else []),
            *(["--signer", case["signer_pin"]] if case["signer_pin"] else [])]
    code, out, err = mrv(*args)
    expect = case["expect"]
    data = json.loads(out)
    assert code == expect["exit_code"] == data["exit_code"], err
    if "status" in expect:
        assert (data["status"], data["reason"]) == (expect["status"], expect["reason"])
        assert data["figures_trusted"] is (expect["status"] == "VALID")
    else:
        assert (data["status"], data["error_key"]) == ("ERROR", expect["key"])
    # and as text: the verdict, or one line on standard error, never a traceback
    code, out, err = mrv(*args[:2], *args[3:])
    assert code == expect["exit_code"] and "Traceback" not in out + err
    if "error" in expect:
        assert out == "" and len(err.strip().splitlines()) == 1
