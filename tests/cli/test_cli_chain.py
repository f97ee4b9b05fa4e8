"""The chain commands as a user runs them: messages and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.anchoring.single import anchor_record, mark_pending
from mrv_ml.chain.localchain import dev_accounts
from mrv_ml.config import load_settings
from mrv_ml.storage.store import RecordStore
from tests.support.records import make_sample_record

REPO = Path(__file__).resolve().parents[2]


def _cli(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from mrv_ml.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capfd.readouterr()
    return int(info.value.code or 0), out.out, out.err


def _anchored() -> tuple[RecordStore, Path]:
    store = RecordStore(load_settings().data_dir)
    record = make_sample_record(energy_emissions__co2_kg=0.0123)
    path = store.save(record)
    assert anchor_record(store, record["mrv_id"], settings=load_settings()).anchored
    return store, path


def _tampered(path: Path, tmp_dir: Path) -> Path:
    text = path.read_text().replace("0.0123", "0.0124")
    out = tmp_dir / path.name
    out.write_text(text)
    proof = path.with_name(path.name[:-5] + ".proof.json")
    (tmp_dir / proof.name).write_text(proof.read_text())
    return out


def test_verify_valid_text(capfd: pytest.CaptureFixture[str]) -> None:
    _, path = _anchored()
    code, out, _ = _cli(capfd, "verify", str(path))
    assert code == 0
    assert "✅ VALID" in out and "CO2e:" in out and "12.3 g CO2e" in out and "Tx:" in out
    assert "Block:" in out and "untrusted" not in out
    assert dev_accounts()[0].address in out


def test_verify_tampered_not_found_and_json(capfd: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    store, path = _anchored()
    bad = _tampered(path, tmp_path)
    code, out, err = _cli(capfd, "verify", str(bad))
    assert code == 1 and "❌ TAMPERED" in out, err
    # the forged figures are marked as such, with a one-line note
    assert "CO2e (untrusted):" in out and "differs from what was anchored" in out
    fresh = store.save(make_sample_record())
    code, out, _ = _cli(capfd, "verify", str(fresh), "--json")
    data = json.loads(out)
    # no proof and nothing under its ID: it might sit in a batch, so not NOT FOUND
    assert code == 9 and data["status"] == "ERROR" and data["error_key"] == "proof_needed"
    assert data["exit_code"] == 9 and ".proof.json" in data["error"]
    code, _, err = _cli(capfd, "verify", str(fresh))
    assert code == 9 and "needs its proof file" in err and "Traceback" not in err
    mark_pending(store, fresh.stem, "auto_anchor is off")
    code, out, _ = _cli(capfd, "verify", str(fresh), "--json")
    data = json.loads(out)
    assert code == 2 and data["status"] == "NOT_FOUND" and data["reason"] == "not_anchored_yet"


def test_verify_directory_summary_worst_exit(capfd: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    store, path = _anchored()
    _tampered(path, tmp_path)
    (tmp_path / "valid.json").write_text(path.read_text())
    code, out, _ = _cli(capfd, "verify", str(tmp_path), str(store.root))
    assert code == 1  # TAMPERED is worse than VALID
    assert "1 TAMPERED" in out and "VALID" in out
    assert "12.3 g CO2e  local only" in out  # each row's figure through mrv_ml.units
    code, out, _ = _cli(capfd, "verify", str(store.root), "--json")
    assert code == 0 and [i["status"] for i in json.loads(out)] == ["VALID"]


def test_verify_submitter_mismatch_exit_5(capfd: pytest.CaptureFixture[str]) -> None:
    _, path = _anchored()
    code, out, _ = _cli(capfd, "verify", str(path), "--submitter", dev_accounts()[1].address)
    # the hash is on chain, but only under account 0, not the expected account 1
    assert code == 5 and "⚠️ SUBMITTER MISMATCH" in out and "Expected submitter" in out
    code, _, err = _cli(capfd, "verify", str(path), "--submitter", "0x123")
    assert code == 7 and "invalid submitter" in err


def test_unusable_input_exit_3(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    code, out, err = _cli(capfd, "verify", str(bad))
    assert code == 3 and "Traceback" not in out + err
    code, _, _ = _cli(capfd, "verify", str(tmp_path / "missing.json"))
    assert code == 3


def test_unreachable_and_bad_config_exit_codes(capfd: pytest.CaptureFixture[str]) -> None:
    _, path = _anchored()
    code, _, err = _cli(capfd, "verify", str(path), "--rpc-url", "http://127.0.0.1:9")
    assert code == 4 and "cannot reach" in err
    # the proof names chain 1337: a network naming another chain is refused before any call
    code, _, err = _cli(capfd, "verify", str(path), "--network", "anvil",
                        "--rpc-url", "http://127.0.0.1:9")
    assert code == 7 and "the proof says chain 1337" in err
    code, _, err = _cli(capfd, "verify", str(path), "--network", "nowhere")
    assert code == 7 and "unknown network" in err


def test_invalid_private_key_exit_7_without_key_text(capfd: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = RecordStore(load_settings().data_dir)
    store.save(make_sample_record())
    secretish = "0x" + "c0ffee" * 10 + "zzzz"
    monkeypatch.setenv("PRIVATE_KEY", secretish)
    code, out, err = _cli(capfd, "anchor")
    assert code == 7
    assert "c0ffee" not in (out + err).lower() and "not a valid private key" in out + err


@pytest.mark.anvil
def test_wrong_contract_and_chain_id_mismatch_exit_7(anvil: Any, capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    anvil.ensure_running()
    _, path = _anchored()
    # its proof says chain 1337 (the embedded chain): an anvil node cannot judge it
    code, _, err = _cli(capfd, "verify", str(path), "--network", "anvil", "--rpc-url", anvil.url)
    assert code == 7 and "the proof says chain 1337" in err and "chain 31337" in err
    copy = tmp_path / "copy.json"  # without its proof: only the configured registry is asked
    copy.write_text(path.read_text())
    code, _, err = _cli(capfd, "verify", str(copy), "--network", "anvil", "--rpc-url", anvil.url,
                        "--contract", anvil.accounts[6].address)
    assert code == 7 and "no contract at" in err
    code, _, err = _cli(capfd, "verify", str(copy), "--network", "sepolia",
                        "--rpc-url", anvil.url)
    assert code == 7 and "chain 31337" in err


def test_deploy_local(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capfd, "deploy")
    assert code == 0 and "MRVRegistry deployed at 0x" in out and "deployment.json" in out


def test_example_verify_mrv_exit_codes(tmp_path: Path) -> None:
    store, path = _anchored()
    mrv_id = path.name[:-5]
    bad = _tampered(path, tmp_path)
    script = str(REPO / "examples" / "verify_mrv.py")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                              timeout=120)

    ok = run(mrv_id, str(path))
    assert ok.returncode == 0 and "✅ VALID - Hashes match!" in ok.stdout
    assert "CO2e: 12.3 g CO2e" in ok.stdout and "Timestamp:" in ok.stdout
    assert run(mrv_id, str(bad)).returncode == 1
    assert run("MRV-00000000-0000-0000-0000-000000000000", str(path)).returncode == 2
    missing = run(mrv_id, str(tmp_path / "none.json"))
    assert missing.returncode == 3 and "Traceback" not in missing.stderr
