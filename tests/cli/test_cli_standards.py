"""``mrv export --format boamps | cyclonedx | spdx-ai | sci | ai-act`` end to end: one tracked and
anchored record, each export naming the MRV ID and the fingerprint that ``mrv verify``
checks, written atomically with -o or to standard output; misuse is one line and exit 64."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mrv_ml.anchoring.single import anchor_record
from mrv_ml.config import load_settings
from mrv_ml.record.hashing import compute_hash
from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV
from tests.support.records import make_sample_record


@pytest.fixture
def anchored() -> dict:
    settings = load_settings()
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    record = make_sample_record()
    store.save(record)
    assert anchor_record(store, record["mrv_id"], settings=settings).anchored
    return record


@pytest.mark.parametrize(("fmt", "extra"), [
    ("boamps", ["--task-family", "imageClassification"]),
    pytest.param("cyclonedx", [], marks=pytest.mark.standards),
    pytest.param("spdx-ai", [], marks=pytest.mark.standards),
    ("sci", ["--functional-unit", "epoch", "--embodied-kg", "0"]),
    ("ai-act", ["--training-flops", "1.2e15"]),
])
def test_each_export_names_the_record_and_its_fingerprint(fmt: str, extra: list[str],
                                                          anchored: dict, mrv: MRV,
                                                          tmp_path: Path) -> None:
    mrv_id, fingerprint = anchored["mrv_id"], compute_hash(anchored)
    code, out, err = mrv("export", mrv_id[:13], "-f", fmt, *extra)
    assert code == 0, err
    assert mrv_id in out and fingerprint in out
    target = tmp_path / "out" / f"export.{fmt}"
    code, said, err = mrv("export", mrv_id, "-f", fmt, *extra, "-o", str(target))
    assert code == 0 and f"wrote {target}" in err, said + err
    assert target.read_text() == out or fmt == "boamps"  # BoAmps states its export time
    if fmt != "ai-act":
        json.loads(target.read_text())
    # the record the export names verifies
    code, out, err = mrv("verify", mrv_id)
    assert code == 0, out + err


def test_misuse_is_one_line_and_nothing_is_written(anchored: dict, mrv: MRV,
                                                   tmp_path: Path) -> None:
    mrv_id = anchored["mrv_id"]
    target = tmp_path / "x.json"
    cases = [
        (["-f", "sci", "--functional-unit", "epoch"], "--embodied-kg"),
        (["-f", "boamps", "--functional-unit", "epoch"], "--functional-unit is for --format sci"),
        (["-f", "in-toto", "--task-family", "x"], "--task-family is for --format boamps"),
        (["-f", "ai-act", "--model-card", "README.md"], "own options only"),
        (["-f", "hf-model-card", mrv_id], "exports one record"),
        (["-f", "ai-act", "--parameters", "7e9"], "both --parameters and --tokens"),
        (["-f", "sci", "--functional-unit", "tokens", "--embodied-kg", "0"], "LABEL=N"),
    ]
    for args, said in cases:
        code, out, err = mrv("export", mrv_id, *args, "-o", str(target))
        assert code in (3, 64) and said in err, (args, out, err)
        assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err
        assert not target.exists()


def test_a_changed_record_is_not_exported(anchored: dict, mrv: MRV, tmp_path: Path) -> None:
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    changed = tmp_path / "changed.json"
    record = dict(anchored, energy_emissions=dict(anchored["energy_emissions"], co2_kg=0.0))
    changed.write_text(json.dumps(record))
    (tmp_path / "changed.proof.json").write_bytes(
        store.proof_path_for(anchored["mrv_id"]).read_bytes())
    code, out, err = mrv("export", str(changed), "-f", "ai-act")
    assert code == 3 and "changed since it was anchored" in err and out == ""


def test_a_signed_boamps_export_and_key_misuse(anchored: dict, mrv: MRV, tmp_path: Path
                                               ) -> None:
    from tests.support.keys import key_pair

    private, _ = key_pair(tmp_path, "ed25519")
    code, out, err = mrv("export", anchored["mrv_id"], "-f", "boamps", "--key", str(private))
    assert code == 0, err
    report = json.loads(out)
    assert report["$hash"]["cryptographicAlgorithm"] == "EDDSA"
    assert "BEGIN PUBLIC KEY" in report["header"]["publisher"]["publicKey"]
    code, out, err = mrv("export", anchored["mrv_id"], "-f", "sci", "--key", str(private),
                         "--functional-unit", "epoch", "--embodied-kg", "0")
    assert code == 64 and "--key signs" in err
