"""The record store: atomic never-overwrite writes, proof sidecars, the listing cache."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import (
    EXIT_NOT_FOUND,
    EXIT_STORE,
    NotJSONError,
    RecordError,
    RecordExistsError,
    RecordNotFoundError,
    SchemaValidationError,
    StoreError,
)
from mrv_ml.record.proof import Proof
from mrv_ml.record.schema import dump_record_bytes, load_record_file
from mrv_ml.record.strictjson import dump_json_bytes
from mrv_ml.storage.store import INDEX_FILE, RecordStore, RecordSummary
from tests.support.records import make_sample_record


def _proof(mrv_id: str, status: str = "pending", mode: str | None = None) -> Proof:
    data: dict[str, Any] = {"proof_version": "1.0", "mrv_id": mrv_id, "status": status,
                            "record_hash": {"algorithm": "sha256-jcs", "digest": "ab" * 32}}
    if mode:
        data["anchor"] = {"mode": mode, "network": "local", "chain_id": 1337,
                          "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20}
        if mode == "batch":
            data["anchor"]["merkle"] = {"root": "0x" + "33" * 32, "proof": []}
    return Proof.from_dict(data)


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "mrv_data")


def _files(store: RecordStore) -> set[str]:
    return set(os.listdir(store.root)) if store.root.exists() else set()


# --- saving -------------------------------------------------------------------------------


def test_save_writes_the_record_and_nothing_else(store: RecordStore) -> None:
    record = make_sample_record()
    path = store.save(record)
    assert path == store.root / f"{record['mrv_id']}.json"
    assert path.read_bytes() == dump_record_bytes(record)
    assert load_record_file(path) == record
    assert store.load(record["mrv_id"]) == record
    assert _files(store) == {path.name}  # no stray temp file


def test_default_root_is_mrv_data_in_the_working_directory() -> None:
    assert RecordStore().root == Path("mrv_data")


def test_save_validates_first(store: RecordStore) -> None:
    with pytest.raises(SchemaValidationError, match="energy_emissions.co2_kg"):
        store.save(make_sample_record(energy_emissions__co2_kg=-1))
    assert _files(store) == set()


def test_existing_record_is_never_overwritten(store: RecordStore) -> None:
    record = make_sample_record()
    path = store.save(record)
    before = path.read_bytes()
    altered = dict(record, experiment=dict(record["experiment"], name="forged"))
    with pytest.raises(RecordExistsError, match="never overwritten") as info:
        store.save(altered)
    assert info.value.exit_code == EXIT_STORE
    assert path.read_bytes() == before
    assert _files(store) == {path.name}


def test_link_race_loses_cleanly(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process creates the same file between our existence check and os.link.
    record = make_sample_record()
    store.root.mkdir(parents=True)
    final = store.path_for(record["mrv_id"])
    real_link = os.link

    def racing_link(src: Any, dst: Any) -> None:
        Path(dst).write_text("theirs")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(RecordExistsError):
        store.save(record)
    assert final.read_text() == "theirs"
    assert _files(store) == {final.name}


def test_filesystem_without_hard_links_still_never_overwrites(
        store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: Any, dst: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    record = make_sample_record()
    path = store.save(record)
    assert load_record_file(path) == record
    with pytest.raises(RecordExistsError):
        store.save(record)
    assert _files(store) == {path.name}


def test_no_hard_links_and_a_failing_rename_leave_nothing(
        store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: Any, dst: Any) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreError, match="input/output error"):
        store.save(make_sample_record())
    monkeypatch.undo()
    assert _files(store) == set()


@pytest.mark.parametrize(("target", "code", "reason"), [
    ("fsync", errno.ENOSPC, "no space left on device"),
    ("link", errno.EROFS, "read-only file system"),
    ("write", errno.EDQUOT, "disk quota exceeded"),
])
def test_failed_write_leaves_no_partial_file_and_existing_records_intact(
        store: RecordStore, monkeypatch: pytest.MonkeyPatch, target: str, code: int,
        reason: str) -> None:
    kept = make_sample_record()
    kept_path = store.save(kept)
    kept_bytes = kept_path.read_bytes()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, target, fail)
    with pytest.raises(StoreError) as info:
        store.save(make_sample_record())
    message = str(info.value)
    assert message == f"cannot write the record to {store.root}: {reason}"
    assert info.value.exit_code == EXIT_STORE
    monkeypatch.undo()
    assert _files(store) == {kept_path.name}
    assert kept_path.read_bytes() == kept_bytes


def test_data_dir_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=f"cannot create the data directory {blocker}/data"):
        RecordStore(blocker / "data").save(make_sample_record())
    with pytest.raises(StoreError, match="exists and is not a directory"):
        RecordStore(blocker).save(make_sample_record())
    with pytest.raises(StoreError, match="is not a directory"):
        RecordStore(blocker).list()


def test_read_only_directory_is_a_store_error(store: RecordStore, tmp_path: Path) -> None:
    """Root ignores permissions: the store is made read-only by a read-only mount in a
    private namespace (tests/support/confined.py) when running as root, by chmod otherwise."""
    import sys

    from tests.conftest import REPO_ROOT
    from tests.support.confined import Confined, confinement_unavailable

    kept_path = store.save(make_sample_record())
    script = ("import json, sys; from mrv_ml.storage.store import RecordStore; "
              "from mrv_ml.errors import StoreError; "
              "from tests.support.records import make_sample_record as m; "
              f"s = RecordStore({str(store.root)!r})\n"
              "try:\n    s.save(m()); print('saved')\n"
              "except StoreError as e:\n    print('error:', e)\n"
              "print(json.dumps([x.mrv_id for x in s.list()]))")
    argv = [sys.executable, "-c", script]
    env = {"PYTHONPATH": str(REPO_ROOT)}
    if os.geteuid() == 0:
        reason = confinement_unavailable()
        if reason is not None:
            pytest.skip(reason)
        [(code, out, err)] = Confined(tmp_path / "out").read_only(store.root).run(argv) \
            .execute(env=env)
        expected = "read-only file system"
    else:
        store.root.chmod(0o555)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                  env=dict(os.environ, **env))
        finally:
            store.root.chmod(0o755)
        code, out, err = done.returncode, done.stdout, done.stderr
        expected = "permission denied"
    first, listing = out.strip().splitlines()
    assert code == 0 and first.startswith("error:") and expected in first.lower(), out + err
    assert json.loads(listing) == [kept_path.stem]  # listing still works
    assert _files(store) == {kept_path.name}


# --- ids, loading, resolving -------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../../etc/passwd", "MRV-1", "", "MRV-../x",
                                 "MRV-FC25BA52-F439-4834-BE2B-2DBAE1E03437"])
def test_ids_that_could_escape_the_directory_are_refused(store: RecordStore, bad: str) -> None:
    with pytest.raises(RecordError, match="is not an MRV ID"):
        store.path_for(bad)
    with pytest.raises(RecordError):
        store.proof_path_for(bad)


def test_load_unknown_id_is_not_found(store: RecordStore) -> None:
    record = make_sample_record()
    with pytest.raises(RecordNotFoundError, match=f"no record {record['mrv_id']} in ") as info:
        store.load(record["mrv_id"])
    assert info.value.exit_code == EXIT_NOT_FOUND


def test_load_detects_a_record_filed_under_another_id(store: RecordStore) -> None:
    record = make_sample_record()
    other = make_sample_record()["mrv_id"]
    store.root.mkdir(parents=True)
    store.path_for(other).write_bytes(dump_record_bytes(record))
    with pytest.raises(RecordError, match="the file name says"):
        store.load(other)


def test_resolve_by_id_prefix_and_path(store: RecordStore, tmp_path: Path) -> None:
    record = make_sample_record(mrv_id="MRV-aaaa1111-0000-4000-8000-000000000001")
    other = make_sample_record(mrv_id="MRV-aaaa2222-0000-4000-8000-000000000002")
    path = store.save(record)
    store.save(other)
    assert store.resolve(record["mrv_id"]) == path
    assert store.resolve("MRV-aaaa1") == path
    assert store.resolve("aaaa1") == path
    assert store.resolve("AAAA1") == path
    assert store.resolve(str(path)) == path
    assert store.resolve(path) == path
    with pytest.raises(RecordError, match="matches 2 records"):
        store.resolve("aaaa")
    with pytest.raises(RecordNotFoundError):
        store.resolve("MRV-bbbb")
    with pytest.raises(RecordNotFoundError):
        store.resolve("MRV-bbbb1111-0000-4000-8000-000000000001")
    with pytest.raises(RecordError, match="no such file"):
        store.resolve(str(tmp_path / "missing.json"))
    with pytest.raises(RecordError, match="neither a record file nor an MRV ID"):
        store.resolve("hello world")


# --- proofs -------------------------------------------------------------------------------


def test_proofs_are_saved_replaced_and_loaded(store: RecordStore) -> None:
    record = make_sample_record()
    mrv_id = record["mrv_id"]
    store.save(record)
    assert store.load_proof(mrv_id) is None
    store.save_proof(_proof(mrv_id))
    assert store.load_proof(mrv_id) == _proof(mrv_id)
    store.save_proof(_proof(mrv_id, "anchored", "single"))
    assert store.load_proof(mrv_id) == _proof(mrv_id, "anchored", "single")
    assert _files(store) == {f"{mrv_id}.json", f"{mrv_id}.proof.json"}


def test_failed_proof_write_keeps_the_previous_proof(
        store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    mrv_id = make_sample_record()["mrv_id"]
    store.save_proof(_proof(mrv_id))

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreError, match="cannot write the proof to .*: no space left on device"):
        store.save_proof(_proof(mrv_id, "anchored", "single"))
    monkeypatch.undo()
    assert store.load_proof(mrv_id) == _proof(mrv_id)
    assert _files(store) == {f"{mrv_id}.proof.json"}


def test_corrupt_proof_is_an_error_not_absent(store: RecordStore) -> None:
    mrv_id = make_sample_record()["mrv_id"]
    store.root.mkdir(parents=True)
    store.proof_path_for(mrv_id).write_text('{"status": "anch')
    with pytest.raises(NotJSONError, match=r"\.proof\.json: truncated"):
        store.load_proof(mrv_id)


# --- listing and its cache ---------------------------------------------------------------


def _save_at(store: RecordStore, start: str, **overrides: Any) -> dict[str, Any]:
    record = make_sample_record(timestamps__start_time=start, **overrides)
    store.save(record)
    return record


def test_list_of_a_missing_store_is_empty(store: RecordStore) -> None:
    assert store.list() == []
    assert store.pending_ids() == []
    assert not store.root.exists()  # listing creates nothing


def test_list_sorted_by_start_time_with_anchor_state(store: RecordStore) -> None:
    late = _save_at(store, "2026-11-24T23:00:00Z", experiment__name="late")
    early = _save_at(store, "2026-11-24T21:00:00Z", experiment__name="early")
    # 22:30 UTC, written with an offset: sorting must compare instants, not text.
    middle = _save_at(store, "2026-11-24T23:30:00+01:00", experiment__name="middle")
    store.save_proof(_proof(early["mrv_id"], "anchored", "batch"))
    store.save_proof(_proof(middle["mrv_id"], "pending"))
    (store.root / "notes.txt").write_text("ignored")
    (store.root / "MRV-other.json").write_text("ignored: not an ID")

    listed = store.list()
    assert [s.experiment for s in listed] == ["early", "middle", "late"]
    first = listed[0]
    assert isinstance(first, RecordSummary)
    assert (first.anchor_state, first.anchor_mode) == ("anchored", "batch")
    assert (listed[1].anchor_state, listed[2].anchor_state) == ("pending", "none")
    assert first.model_name == "SimpleCNN" and first.status == "completed"
    assert first.duration_s == 12.5 and first.energy_kwh == 0.000123
    assert first.co2_kg == 0.0000451 and first.error is None
    assert first.path == store.path_for(early["mrv_id"])
    assert store.pending_ids() == [middle["mrv_id"], late["mrv_id"]]
    assert json.loads(json.dumps(first.to_dict()))["path"] == str(first.path)


def test_cache_follows_added_removed_modified_files(store: RecordStore) -> None:
    a = _save_at(store, "2026-11-24T21:00:00Z")
    b = _save_at(store, "2026-11-24T22:00:00Z")
    assert len(store.list()) == 2
    assert (store.root / INDEX_FILE).is_file()

    c = _save_at(store, "2026-11-24T23:00:00Z")  # added
    assert [s.mrv_id for s in store.list()] == [a["mrv_id"], b["mrv_id"], c["mrv_id"]]

    store.path_for(b["mrv_id"]).unlink()  # removed
    assert [s.mrv_id for s in store.list()] == [a["mrv_id"], c["mrv_id"]]
    assert set(_index_entries(store)) == {f"{a['mrv_id']}.json", f"{c['mrv_id']}.json"}

    # Modified in place (same size, same mtime): the inode/size/mtime key still changes
    # once the file is replaced, so the cache must not serve the old figures.
    changed = dict(a, energy_emissions=dict(a["energy_emissions"], co2_kg=0.999999))
    path = store.path_for(a["mrv_id"])
    stat_before = path.stat()
    tmp = path.with_suffix(".swap")
    tmp.write_bytes(dump_record_bytes(changed))
    os.replace(tmp, path)
    os.utime(path, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    assert path.stat().st_size == stat_before.st_size
    assert store.list()[0].co2_kg == 0.999999

    # A proof appears, then changes: only the proof is re-read.
    store.save_proof(_proof(c["mrv_id"]))
    assert store.list()[1].anchor_state == "pending"
    store.save_proof(_proof(c["mrv_id"], "anchored", "single"))
    assert (store.list()[1].anchor_state, store.list()[1].anchor_mode) == ("anchored", "single")
    store.proof_path_for(c["mrv_id"]).unlink()
    assert store.list()[1].anchor_state == "none"


def test_warm_listing_reads_only_changed_files(store: RecordStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    records = [_save_at(store, f"2026-11-24T2{i}:00:00Z") for i in range(4)]
    store.list()
    import mrv_ml.storage.store as store_module

    reads: list[str] = []
    real = store_module.read_file_bytes

    def counting(path: Any) -> bytes:
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(store_module, "read_file_bytes", counting)
    assert len(store.list()) == 4
    assert reads == []
    path = store.path_for(records[2]["mrv_id"])
    path.write_bytes(path.read_bytes() + b"\n")  # size changes
    store.list()
    assert reads == [path.name]


def _index_entries(store: RecordStore) -> dict[str, Any]:
    header, _, body = (store.root / INDEX_FILE).read_bytes().partition(b"\n")
    assert json.loads(header)["sha256"] == hashlib.sha256(body).hexdigest()
    entries: dict[str, Any] = json.loads(body)
    return entries


def test_corrupt_cache_is_rebuilt_silently(store: RecordStore) -> None:
    a = _save_at(store, "2026-11-24T21:00:00Z")
    store.list()
    index = store.root / INDEX_FILE
    good = index.read_bytes()
    header, _, body = good.partition(b"\n")
    # The cached figures edited without fixing the checksum: must not be believed.
    edited = header + b"\n" + body.replace(b"4.51e-05", b"9.99e-05")
    assert edited != good
    old_format = json.dumps({"version": 1, "entries": {}}).encode()
    for garbage in (b"{not json", b"[]", b"", good[: len(good) // 2], edited, old_format,
                    b"\xff\xfe", header + b"\n[1, 2]"):
        index.write_bytes(garbage)
        listed = store.list()
        assert [s.mrv_id for s in listed] == [a["mrv_id"]]
        assert listed[0].co2_kg == a["energy_emissions"]["co2_kg"]
        assert index.read_bytes() == good  # rebuilt


def test_unwritable_cache_is_ignored(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _save_at(store, "2026-11-24T21:00:00Z")
    import mrv_ml.storage.store as store_module

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(store_module.os, "replace", refuse)
    assert len(store.list()) == 1
    monkeypatch.undo()
    assert not (store.root / INDEX_FILE).exists()
    assert not [n for n in os.listdir(store.root) if n.endswith(".tmp")]


@pytest.mark.parametrize(("content", "fragment"), [
    (b'{"schema_version": "1.0", "mrv_id": "MRV-', "truncated"),
    (b"", "empty"),
    (b"[1]", "not an MRV record"),
    (b'{"schema_version": "7.0", "mrv_id": "x"}', "upgrade mrv-ml"),
    (b'{"a": NaN}', "NaN"),
])
def test_corrupt_record_is_listed_as_unreadable_not_skipped(
        store: RecordStore, content: bytes, fragment: str) -> None:
    good = _save_at(store, "2026-11-24T21:00:00Z")
    bad_id = make_sample_record()["mrv_id"]
    store.path_for(bad_id).write_bytes(content)
    for _ in range(2):  # cold, then from the cache
        listed = {s.mrv_id: s for s in store.list()}
        assert listed[good["mrv_id"]].status == "completed"
        bad = listed[bad_id]
        assert bad.status == "unreadable"
        assert bad.error is not None and fragment in bad.error
        assert str(store.path_for(bad_id)) in bad.error
    assert store.pending_ids() == [good["mrv_id"]]


def test_record_under_the_wrong_file_name_is_unreadable(store: RecordStore) -> None:
    record = make_sample_record()
    other_id = make_sample_record()["mrv_id"]
    store.root.mkdir(parents=True)
    store.path_for(other_id).write_bytes(dump_record_bytes(record))
    (listed,) = store.list()
    assert listed.status == "unreadable" and "file name says" in (listed.error or "")


def test_corrupt_proof_is_listed_and_not_pending(store: RecordStore) -> None:
    record = _save_at(store, "2026-11-24T21:00:00Z")
    store.proof_path_for(record["mrv_id"]).write_text("{oops")
    (listed,) = store.list()
    assert listed.status == "completed"
    assert listed.anchor_state == "unreadable"
    assert listed.error and ".proof.json" in listed.error
    assert store.pending_ids() == []  # never re-anchor over a proof we cannot read


def test_concurrent_writers_in_one_directory(store: RecordStore) -> None:
    # Two stores on the same directory (two processes) both see every record.
    other = RecordStore(store.root)
    ids = {store.save(make_sample_record()).stem, other.save(make_sample_record()).stem}
    assert {s.mrv_id for s in store.list()} == ids == {s.mrv_id for s in other.list()}


def test_mtime_granularity_does_not_hide_a_proof_update(store: RecordStore) -> None:
    record = _save_at(store, "2026-11-24T21:00:00Z")
    mrv_id = record["mrv_id"]
    # Same size (a pending reason padded to the anchored sidecar's length), same mtime:
    # only the inode tells the cache that os.replace put a new file there.
    anchored = _proof(mrv_id, "anchored", "batch")
    pending = replace(_proof(mrv_id), pending_reason="")
    padding = len(dump_json_bytes(anchored.to_dict())) - len(dump_json_bytes(pending.to_dict()))
    store.save_proof(replace(pending, pending_reason="x" * padding))
    first = store.proof_path_for(mrv_id).stat()
    store.list()
    store.save_proof(anchored)
    second = store.proof_path_for(mrv_id).stat()
    assert second.st_size == first.st_size
    os.utime(store.proof_path_for(mrv_id), ns=(first.st_atime_ns, first.st_mtime_ns))
    assert store.list()[0].anchor_state == "anchored"
