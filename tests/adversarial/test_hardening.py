"""Hardening (issue 11): bad input and hostile conditions that once crashed, hung or lied,
each a one-line error with its documented exit code, or a clean outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mrv_ml.chain.keys import _from_key
from mrv_ml.config import Secret
from mrv_ml.errors import KeyConfigError
from mrv_ml.run.tracker import MRVTracker
from mrv_ml.storage.store import RecordStore
from tests.conftest import REPO_ROOT
from tests.support.cli import MRV, mrv_command
from tests.support.confined import Confined, confinement_unavailable
from tests.support.records import make_sample_record, store_bytes


def test_a_63_digit_key_is_refused_not_padded_into_another_account() -> None:
    with pytest.raises(KeyConfigError, match="64 hex characters") as info:
        _from_key(Secret("0x" + "ab" * 31 + "c"))
    assert "abab" not in str(info.value)


@pytest.mark.parametrize("url", ["ftp://example.org/rpc", "file:///etc/passwd"])
def test_a_non_http_endpoint_is_a_configuration_error(mrv: MRV, url: str) -> None:
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    path = store.save(make_sample_record())
    for args in (["verify", str(path)], ["anchor"]):
        code, out, err = mrv(*args, env={"BLOCKCHAIN_RPC_URL": url})
        assert code == 7 and "http:// or https://" in out + err, (args, out, err)
        assert "Traceback" not in out + err


def test_an_empty_name_is_not_every_file_here(mrv: MRV) -> None:
    code, out, err = mrv("verify", "")
    assert code == 3 and "empty name" in err and out == ""


def test_a_reader_that_goes_away_is_no_verdict(tmp_path: Path) -> None:
    with MRVTracker("piped", storage_dir=str(tmp_path / "mrv_data"), quiet=True) as tracker:
        pass
    proc = subprocess.Popen([*mrv_command(), "verify", str(tracker.record_path),
                             "--data-dir", str(tmp_path / "mrv_data")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, MRV_NO_DOTENV="1"))
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: gone before the verdict is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_a_terminal_that_cannot_show_the_icons_gets_escapes(tmp_path: Path) -> None:
    data_dir = tmp_path / "mrv_data"
    with MRVTracker("ascii-日本", storage_dir=str(data_dir), quiet=True) as tracker:
        pass
    env = dict(os.environ, PYTHONIOENCODING="ascii", MRV_NO_DOTENV="1",
               MRV_DATA_DIR=str(data_dir))
    for args in (["verify", str(tracker.record_path)], ["list"], ["show", str(tracker.mrv_id)]):
        done = subprocess.run([*mrv_command(), *args], env=env, capture_output=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert b"Traceback" not in done.stderr and done.stdout.isascii()


def test_an_endpoints_key_never_reaches_output_or_sidecars(mrv: MRV) -> None:
    key = "abcdef0123456789abcdef0123456789"
    url = f"http://127.0.0.1:9/v3/{key}?apikey=SECRETQUERY"
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    path = store.save(make_sample_record())
    env = {"BLOCKCHAIN_RPC_URL": url, "NETWORK": "sepolia", "PRIVATE_KEY": "0x" + "12" * 32}
    for args in (["anchor"], ["verify", str(path)]):
        code, out, err = mrv(*args, env=env)
        assert code in (4, 7, 9) and "127.0.0.1" in out + err, (args, out, err)
        assert key not in out + err and "SECRETQUERY" not in out + err
    proof_text = store.proof_path_for(path.stem).read_text()
    assert "pending" in proof_text and key not in proof_text and "SECRETQUERY" not in proof_text


def test_devices_and_fifos_are_refused_not_read(mrv: MRV, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for target in ("/dev/zero", str(fifo)):
        for command in ("hash", "validate", "verify"):
            code, out, err = mrv(command, target)  # would exhaust memory, or hang
            assert code == 3 and "not a regular file" in err, (command, target, err)


def test_an_id_with_a_trailing_newline_is_not_an_id(mrv: MRV, tmp_path: Path) -> None:
    import json

    record = make_sample_record()
    record["mrv_id"] += "\n"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    code, _, err = mrv("validate", str(path))
    assert code == 3 and "mrv_id" in err


def test_escape_sequences_in_a_record_never_reach_the_terminal(mrv: MRV, tmp_path: Path
                                                              ) -> None:
    import json

    evil = "\x1b[2J\x1b]0;pwned\x07model"  # clear the screen, set the window title
    record = make_sample_record(experiment__model_name=evil, experiment__name=evil)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    for fmt in ("text", "citation", "latex"):
        code, out, err = mrv("report", str(path), "-f", fmt)
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out and "x1b" in out  # shown, escaped


def test_show_clips_a_huge_field(mrv: MRV) -> None:
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    record = make_sample_record(experiment__description="x" * 3_000_000)
    store.save(record)
    code, out, err = mrv("show", record["mrv_id"])
    assert code == 0, err
    assert "2,998,000 more characters" in out and len(out) < 20_000


def test_anchor_refuses_a_file_outside_the_store(mrv: MRV, tmp_path: Path) -> None:
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    stored = store.save(make_sample_record())
    elsewhere = tmp_path / "elsewhere" / stored.name
    elsewhere.parent.mkdir()
    elsewhere.write_text("")  # empty, or another content: not what the store holds
    code, out, err = mrv("anchor", str(elsewhere))
    assert code == 3 and "is not a record of the store" in err and "✅" not in out
    assert store.load_proof(stored.stem) is None
    code, out, _ = mrv("anchor", str(stored))  # the stored file itself is fine
    assert code == 0 and f"{stored.stem} anchored" in out


def test_a_lost_local_chain_is_noticed_and_its_records_anchored_again(mrv: MRV) -> None:
    import shutil

    data_dir = Path(os.environ["MRV_DATA_DIR"])
    with MRVTracker("lost-chain", quiet=True) as tracker:
        pass
    assert tracker.proof is not None and tracker.proof.anchor is not None
    before = tracker.proof.anchor
    shutil.rmtree(data_dir / "chain")  # a stale "anchored" sidecar, a chain that never was
    code, out, err = mrv("anchor")
    assert code == 0 and f"{tracker.mrv_id} anchored" in out, out + err
    proof = RecordStore(data_dir).load_proof(str(tracker.mrv_id))
    assert proof is not None and proof.anchor is not None and before in proof.history
    assert any("local chain was lost" in a.error for a in proof.attempts)
    code, out, _ = mrv("verify", str(tracker.record_path))
    assert code == 0 and "VALID" in out
    code, out, _ = mrv("anchor")  # and once is enough
    assert code == 0 and "Nothing to anchor" in out


@pytest.fixture
def confined(tmp_path: Path) -> Confined:
    reason = confinement_unavailable()
    if reason is not None:
        pytest.skip(reason)
    return Confined(tmp_path / "confined-output")


def test_a_read_only_store_still_verifies_and_refuses_to_anchor(confined: Confined) -> None:
    data_dir = Path(os.environ["MRV_DATA_DIR"])
    with MRVTracker("read-only", quiet=True) as tracker:
        pass
    pending = RecordStore(data_dir).save(make_sample_record())
    before = store_bytes(data_dir)
    results = (confined.read_only(data_dir)
               .run([*mrv_command(), "verify", str(tracker.record_path)])
               .run([*mrv_command(), "verify", str(data_dir)])
               .run([*mrv_command(), "list"])
               .run([*mrv_command(), "anchor"])
               .run([*mrv_command(), "anchor", "--batch"])
               .execute())
    (verify, _, err), (verify_dir, out_dir, _), (listing, _, _), *anchors = results
    assert verify == 0, err  # was exit 8: "cannot lock local chain"
    assert verify_dir == 9 and "1 VALID" in out_dir and pending.name in out_dir  # not anchored yet
    assert listing == 0
    for code, out, err in anchors:
        assert code == 6 and "read-only file system" in err.lower(), (out, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert store_bytes(data_dir) == before


@pytest.mark.slow
def test_a_full_disk_while_anchoring_is_a_store_error_and_nothing_is_lost(confined: Confined
                                                                          ) -> None:
    disk = Path(os.environ["MRV_DATA_DIR"]).parent / "small-disk"
    data_dir = disk / "mrv_data"
    env = {"MRV_DATA_DIR": str(data_dir)}
    make = ("from mrv_ml.storage.store import RecordStore; from tests.support.records import "
            f"make_sample_record as m; [RecordStore({str(data_dir)!r}).save(m()) for _ in range(3)]")
    save_three = [sys.executable, "-c", make]
    confined.tmpfs(disk, "3m").run(save_three).run([*mrv_command(), "anchor"]).run(save_three)
    for free_kib in (48, 32, 16, 4):  # the chain's block or the proof finds no room
        confined.fill(disk, free_kib).run([*mrv_command(), "anchor"])
    confined.unfill(disk).run([*mrv_command(), "anchor"]).run([*mrv_command(), "anchor"])
    confined.run([*mrv_command(), "verify", str(data_dir), "--json"])
    results = confined.execute(env=dict(env, PYTHONPATH=str(REPO_ROOT)))
    assert results[1][0] == 0
    full = results[3:7]
    for code, out, err in full:  # some room may be enough for one more record: fine
        assert code == 0 or (code == 6 and "no space left" in err), (code, out, err)  # was 10
        assert len(err.strip().splitlines()) <= 1 and "Traceback" not in err
    assert sum(code == 6 for code, _, _ in full) >= 2
    assert results[7][0] == 0, results[7]
    assert results[8][0] == 0 and "Nothing to anchor" in results[8][1]
    code, out, err = results[9]
    verdicts = json.loads(out)
    assert code == 0, err  # every record anchored once: a second registration would revert
    assert len(verdicts) == 6 and {v["status"] for v in verdicts} == {"VALID"}
