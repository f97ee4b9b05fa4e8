"""`mrv export --format hf-model-card`: the record as a Hugging Face model card's metadata,
read back by huggingface_hub's own parser; bad cards refused with nothing written; the
push tested against a local stand-in for the Hub (tests/support/hub.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_optional

pytestmark = [pytest.mark.hub]
require_optional(pytestmark)

from huggingface_hub import ModelCard, metadata_load  # noqa: E402

from mrv_ml.record.hashing import compute_hash  # noqa: E402
from mrv_ml.reporting import modelcard  # noqa: E402
from mrv_ml.storage.store import RecordStore  # noqa: E402
from tests.support.cli import MRV  # noqa: E402
from tests.support.hub import FakeHub, running_hub  # noqa: E402
from tests.support.records import make_sample_record  # noqa: E402

DASHBOARD = "https://mrv.example.org/"


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    with running_hub() as hub:
        yield hub


def _store(data_dir: Path, *, anchored: str | None = "sepolia", **overrides: Any
           ) -> tuple[dict[str, Any], Path]:
    """A record in the store, with a proof anchored on ``anchored`` (None: no proof)."""
    from mrv_ml.record.proof import Proof

    record = make_sample_record(**overrides)
    store = RecordStore(data_dir)
    path = store.save(record)
    if anchored is not None:
        chain_id = {"sepolia": 11155111, "local": 1337}[anchored]
        store.save_proof(Proof.from_dict({
            "proof_version": "1.0", "mrv_id": record["mrv_id"],
            "record_hash": {"algorithm": "sha256-jcs", "digest": compute_hash(record)},
            "status": "anchored",
            "anchor": {"mode": "single", "network": anchored, "chain_id": chain_id,
                       "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20,
                       "tx_hash": "0x" + "ab" * 32, "block_number": 3}}))
    return record, path


def _one_line_error(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


EXISTING = """\
---
language: en
license: apache-2.0  # the author's comment stays
tags:
- text-classification
- text-classification
library_name: transformers
model-index:
- name: tiny-bert
  results:
  - task:
      type: text-classification
    dataset:
      name: imdb
      type: imdb
    metrics:
    - type: accuracy
      value: 0.91
widget:
  - text: "I 'loved' it: {braces} & more"
---

# tiny-bert

A model card with a body, a horizontal rule and YAML-looking text:

---
co2_eq_emissions: 12
---
"""


def test_new_card_round_trips_through_huggingface_hub(data_dir: Path, tmp_path: Path,
                                                      mrv: MRV) -> None:
    record, _ = _store(data_dir, hardware__gpu_count=2,
                       hardware__gpus=[{"index": 0, "name": "NVIDIA A100", "memory_gb": 80.0},
                                       {"index": 1, "name": "NVIDIA A100", "memory_gb": 80.0}],
                       energy_emissions__co2_kg=0.000123, energy_emissions__region="quebec",
                       energy_emissions__country_iso_code="CAN",
                       energy_emissions__location_source="configured")
    out = tmp_path / "README.md"
    result = mrv("export", record["mrv_id"][:12], "--format", "hf-model-card", "-o", out,
                 "--training-type", "fine-tuning", "--dashboard-url", DASHBOARD)
    assert result.exit_code == 0, result.stderr
    card = ModelCard.load(out)  # the Hub library's own parser
    co2 = card.data.to_dict()["co2_eq_emissions"]
    assert co2 == {"emissions": 0.123,  # grams, as Hugging Face defines it
                   "source": co2["source"], "training_type": "fine-tuning",
                   "geographical_location": "quebec, CAN",
                   "hardware_used": "2 x NVIDIA A100, Intel(R) Xeon(R) CPU @ 2.20GHz "
                                    "(2 logical cores)"}
    assert co2["source"].startswith("CodeCarbon 3.3.2")
    block = metadata_load(out)["mrv"]
    assert block["mrv_id"] == record["mrv_id"]
    assert block["fingerprint"] == "sha256-jcs:" + compute_hash(record)
    assert block["status"] == "anchored" and block["trust"] == "public"
    assert "not verified" in block["trust_note"]
    assert block["verification_url"] == (f"{DASHBOARD}?id={record['mrv_id']}&network=sepolia")
    assert "## Environmental impact" in card.text and "123 mg" in card.text
    # huggingface_hub writes it back with the same metadata
    again = ModelCard(str(card))
    assert again.data.to_dict() == card.data.to_dict()


def test_update_leaves_the_rest_of_the_card_as_it_was(data_dir: Path, tmp_path: Path,
                                                      mrv: MRV) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    path.write_text(EXISTING, encoding="utf-8")
    before, old = ModelCard.load(path), metadata_load(path)
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # updated in place
    text = path.read_text(encoding="utf-8")
    # every line before ours is there byte for byte, comment included; the body too
    head = EXISTING.split("---\n")[1]
    assert text.startswith("---\n" + head)
    assert text.endswith(EXISTING[EXISTING.index("\n---\n", 4) + 1:])
    after = ModelCard.load(path)
    assert after.text == before.text
    new = metadata_load(path)  # the block as YAML, in its order
    assert list(new) == [*old, "co2_eq_emissions", "mrv"]  # order kept, ours last
    assert {k: new[k] for k in old} == old  # model-index, widget, duplicated tags untouched
    assert after.data.to_dict()["model-index"] == before.data.to_dict()["model-index"]
    assert new["co2_eq_emissions"]["emissions"] == pytest.approx(45.1e-3)
    # a second export replaces our blocks in place: the card stays the same size
    again = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path)
    assert again.exit_code == 0, again.stderr
    assert path.read_text(encoding="utf-8") == text


def test_update_keeps_the_authors_keys_inside_co2_and_crlf(data_dir: Path,
                                                          tmp_path: Path) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    original = ("---\r\nlicense: mit\r\nco2_eq_emissions:\r\n  emissions: 250\r\n"
                "  training_type: pre-training\r\n  training_time: 5 h\r\n"
                "pipeline_tag: text-generation\r\n---\r\nBody\r\n")
    path.write_bytes(original.encode())
    result = modelcard.export(record["mrv_id"], card=path)
    assert "\n" not in result.text.replace("\r\n", "")  # the card's line endings
    (tmp_path / "out.md").write_bytes(result.text.encode())
    data = metadata_load(tmp_path / "out.md")
    assert list(data) == ["license", "co2_eq_emissions", "pipeline_tag", "mrv"]
    co2 = data["co2_eq_emissions"]
    assert co2["training_type"] == "pre-training" and co2["training_time"] == "5 h"
    assert co2["emissions"] == pytest.approx(0.0451)
    assert result.text.endswith("---\r\nBody\r\n")
    assert path.read_bytes() == original.encode()  # export() writes nothing


def test_card_without_metadata_gets_a_block(data_dir: Path, tmp_path: Path, mrv: MRV) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    body = "# A card with no metadata\n\nSome text.\n"
    path.write_text(body, encoding="utf-8")
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path)
    assert result.exit_code == 0, result.stderr
    text = path.read_text(encoding="utf-8")
    assert text.endswith("---\n" + body)
    card = ModelCard.load(path)
    assert card.text == body and card.data.to_dict()["mrv"]["mrv_id"] == record["mrv_id"]


def test_nesting_is_bounded_whatever_the_recursion_limit(data_dir: Path, tmp_path: Path,
                                                        mrv: MRV) -> None:
    # some libraries raise the recursion limit; the bound must not depend on it
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    path.write_text("---\nx: " + "[" * 5000 + "\n---\n", encoding="utf-8")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path)
    finally:
        sys.setrecursionlimit(limit)
    assert result.exit_code == 3 and "nested too deeply" in _one_line_error(result)


@pytest.mark.parametrize("content, expected", [
    ("---\nlicense: mit\ntags: [a, b\n---\n# body\n", "not valid YAML"),
    ("---\nlicense: mit\n  bad: indent\n---\n# body\n", "not valid YAML"),
    ("---\n- a list\n- not a mapping\n---\n# body\n", "not a mapping"),
    ("---\nco2_eq_emissions: 250\n---\n# body\n", "co2_eq_emissions is already set to a "
                                                    "number (250)"),
    ("---\nco2_eq_emissions:\n- 1\n- 2\n---\n", "already set to a list ([1, 2])"),
    ("---\nco2_eq_emissions: 49 g\n---\n", "already set to a string ('49 g')"),
    ("---\nmrv: yes\n---\n", "mrv is already set to a boolean (True)"),
    ("---\nco2_eq_emissions: {}\nco2_eq_emissions: {}\n---\n", "appears twice"),
    ("---\nx: " + "[" * 5000 + "\n---\n", "nested too deeply"),
    ("---\nx: " + "[" * 65 + "]" * 65 + "\n---\n", "nested too deeply"),
])
def test_bad_cards_are_refused_and_left_unchanged(data_dir: Path, tmp_path: Path, mrv: MRV,
                                                  content: str, expected: str) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    path.write_text(content, encoding="utf-8")
    stat = path.stat()
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path)
    assert result.exit_code == 3
    line = _one_line_error(result)
    assert expected in line and "nothing written" in line
    assert path.read_text(encoding="utf-8") == content
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "home", "mrv_data",
                                                          "work"]  # no temporary file left


def test_malformed_yaml_names_the_line(data_dir: Path, tmp_path: Path, mrv: MRV) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    path.write_text("---\nlicense: mit\nlanguage: en\ntags: [a\n---\n", encoding="utf-8")
    line = _one_line_error(mrv("export", record["mrv_id"], "-f", "hf-model-card",
                               "--model-card", path))
    assert "line 4" in line  # the card's own line numbers (`tags: [a`), the `---` counted


@pytest.mark.parametrize("content", ["---\nco2_eq_emissions: 250\nlicense: mit\n---\nBody\n",
                                     "---\nco2_eq_emissions: [1, 2]\n---\nBody\n"])
def test_replace_overwrites_another_shape(data_dir: Path, tmp_path: Path, mrv: MRV,
                                          content: str) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "new.md"
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path,
                 "--replace", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert path.read_text(encoding="utf-8") == content  # -o: the card itself unchanged
    data = metadata_load(out)
    assert isinstance(data["co2_eq_emissions"], dict)
    assert data["co2_eq_emissions"]["emissions"] == pytest.approx(0.0451)
    assert ModelCard.load(out).text == "Body\n"


@pytest.mark.parametrize("raw, expected", [
    ("---\nlicense: mit\n---\nCaf\xe9\n".encode("latin-1"), "not UTF-8"),
    ("---\nlicense: mit\n---\n".encode("utf-16"), "not UTF-8"),
    (b"\xef\xbb\xbf---\nlicense: mit\n---\n", "byte-order mark"),
])
def test_a_card_that_is_not_utf8_is_refused(data_dir: Path, tmp_path: Path, mrv: MRV,
                                            raw: bytes, expected: str) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    path.write_bytes(raw)
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path)
    assert result.exit_code == 3
    assert expected in _one_line_error(result)
    assert path.read_bytes() == raw


def test_unanchored_record_is_refused_unless_allowed(data_dir: Path, tmp_path: Path,
                                                     mrv: MRV) -> None:
    record, _ = _store(data_dir, anchored=None)
    out = tmp_path / "README.md"
    refused = mrv("export", record["mrv_id"], "-f", "hf-model-card", "-o", out,
                  "--dashboard-url", DASHBOARD)
    assert refused.exit_code == 9
    assert "not anchored" in _one_line_error(refused) and not out.exists()
    allowed = mrv("export", record["mrv_id"], "-f", "hf-model-card", "-o", out,
                  "--allow-unanchored", "--dashboard-url", DASHBOARD)
    assert allowed.exit_code == 0, allowed.stderr
    block = metadata_load(out)["mrv"]
    assert block["status"] == "not anchored" and block["trust"] == "none"
    assert "nothing on this card can be checked" in block["trust_note"]
    assert "verification_url" not in block  # no link to a check that cannot succeed
    assert "not anchored on any chain" in ModelCard.load(out).text


def test_failed_measurement_has_nothing_to_export(data_dir: Path, mrv: MRV) -> None:
    record, _ = _store(data_dir, energy_emissions__measurement_status="failed",
                       energy_emissions__measurement_error="RAPL unreadable",
                       energy_emissions__energy_kwh=None, energy_emissions__co2_kg=None,
                       energy_emissions__cpu_energy_kwh=None,
                       energy_emissions__gpu_energy_kwh=None,
                       energy_emissions__ram_energy_kwh=None,
                       energy_emissions__power_series=None)
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card")
    assert result.exit_code == 3 and result.stdout == ""
    assert "measurement failed (RAPL unreadable)" in _one_line_error(result)


def test_edited_record_is_never_exported(data_dir: Path, mrv: MRV) -> None:
    record, path = _store(data_dir)
    edited = dict(record, experiment={**record["experiment"], "name": "changed"})
    path.chmod(0o644)
    path.write_text(json.dumps(edited), encoding="utf-8")
    result = mrv("export", str(path), "-f", "hf-model-card", "--allow-unanchored")
    assert result.exit_code == 3 and result.stdout == ""
    assert "changed since it was anchored" in _one_line_error(result)


def test_unknown_record_exits_2(data_dir: Path, mrv: MRV) -> None:
    result = mrv("export", "MRV-" + "0" * 8, "-f", "hf-model-card")
    assert result.exit_code == 2
    _one_line_error(result)


@pytest.mark.slow
def test_real_run_local_chain_verified_and_tampered(data_dir: Path, tmp_path: Path,
                                                    mrv: MRV) -> None:
    """A real tracked run anchored on the embedded chain: refused (exit 11) by default; with
    --allow-unanchored --verify the card says verified, and what that is worth (local only);
    after an edit, --verify exits 1 and writes nothing."""
    from mrv_ml import MRVTracker

    with MRVTracker(experiment_name="card_run", quiet=True) as tracker:
        sum(range(10_000))
    assert tracker.tx_hash is not None
    out = tmp_path / "README.md"
    refused = mrv("export", tracker.mrv_id, "-f", "hf-model-card", "-o", out)
    assert refused.exit_code == 11 and "embedded chain" in _one_line_error(refused)
    ok = mrv("export", tracker.mrv_id, "-f", "hf-model-card", "-o", out, "--verify",
             "--allow-unanchored", "--dashboard-url", DASHBOARD)
    assert ok.exit_code == 0, ok.stderr
    block = metadata_load(out)["mrv"]
    assert block["status"] == "verified" and block["trust"] == "local only"
    assert "no evidence for anyone else" in block["trust_note"]
    assert "verification_url" not in block and block["verified_at"].endswith("Z")
    path = Path(tracker.record_path)
    edited = json.loads(path.read_text())
    edited["energy_emissions"]["co2_kg"] = 0.0
    path.write_text(json.dumps(edited))
    out2 = tmp_path / "tampered.md"
    bad = mrv("export", str(path), "-f", "hf-model-card", "-o", out2, "--verify",
              "--allow-unanchored")
    assert bad.exit_code == 1 and not out2.exists()  # TAMPERED decides
    assert "TAMPERED" in _one_line_error(bad)
    # without --verify the proof of another fingerprint is enough to refuse
    assert mrv("export", str(path), "-f", "hf-model-card", "-o", out2,
               "--allow-unanchored").exit_code == 3 and not out2.exists()


def test_push_uploads_the_exact_card_to_the_hub(data_dir: Path, tmp_path: Path, mrv: MRV,
                                                fake_hub: FakeHub) -> None:
    record, _ = _store(data_dir)
    path = tmp_path / "README.md"
    path.write_text(EXISTING, encoding="utf-8")
    env = {"HF_ENDPOINT": fake_hub.url, "HF_TOKEN": fake_hub.token}
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--model-card", path,
                 "--push", "researcher/tiny-model", env=env)
    assert result.exit_code == 0, result.stderr
    [commit] = fake_hub.commits
    assert commit.repo_id == "researcher/tiny-model" and commit.revision == "main"
    assert commit.files == {"README.md": path.read_bytes()}
    assert ModelCard(commit.files["README.md"].decode()).data.to_dict()["mrv"]["mrv_id"] \
        == record["mrv_id"]
    assert fake_hub.requests == ["POST /api/validate-yaml",
                                 "POST /api/models/researcher/tiny-model/preupload/main",
                                 "POST /api/models/researcher/tiny-model/commit/main"]
    assert "pushed the card to researcher/tiny-model" in result.stderr
    assert fake_hub.token not in result.stdout + result.stderr


@pytest.mark.parametrize("case, code, expected", [
    ("wrong token", 7, "refused the token"),
    ("no token", 7, "no Hugging Face token"),
    ("no repo", 7, "no model repository researcher/other"),
    ("server error", 4, "did not take the card"),
    ("unreachable", 4, "cannot reach the Hub"),
])
def test_push_failures_are_one_line(data_dir: Path, mrv: MRV, fake_hub: FakeHub,
                                    case: str, code: int, expected: str) -> None:
    record, _ = _store(data_dir)
    env: dict[str, str | None] = {"HF_ENDPOINT": fake_hub.url, "HF_TOKEN": fake_hub.token}
    repo = "researcher/tiny-model"
    if case == "wrong token":
        env["HF_TOKEN"] = "hf_wrong_token_zzz"
    elif case == "no token":
        env["HF_TOKEN"] = None
    elif case == "no repo":
        repo = "researcher/other"
    elif case == "server error":
        fake_hub.fail_with = 400 + 100  # a 5xx: the Hub is down
    elif case == "unreachable":
        env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # discard port: nothing listens
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card", "--push", repo, env=env)
    assert result.exit_code == code, result.stderr
    line = _one_line_error(result)
    assert expected in line
    for secret in (fake_hub.token, "hf_wrong_token_zzz"):
        assert secret not in result.stdout + result.stderr
    assert fake_hub.commits == []


def test_missing_extra_is_a_clear_message(data_dir: Path, mrv: MRV,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    record, _ = _store(data_dir)
    for name in ("yaml", "huggingface_hub", "huggingface_hub.repocard"):
        monkeypatch.setitem(__import__("sys").modules, name, None)
    result = mrv("export", record["mrv_id"], "-f", "hf-model-card")
    assert result.exit_code == 7
    assert "pip install 'mrv-ml[hub]'" in _one_line_error(result)

