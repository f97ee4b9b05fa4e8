"""`mrv bundle`: a static verification site, opened from file:// and over http in real
Chromium, verified against a real anvil node with only its endpoint; and the author's side:
what is refused (an --out in use, unanchored or local-only proofs, secrets), atomically.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mrv_ml.anchoring.batch import anchor_batch
from mrv_ml.anchoring.single import anchor_record
from mrv_ml.chain.deploy import deploy
from mrv_ml.chain.localchain import anvil_dev_accounts
from mrv_ml.config import Secret, Settings
from mrv_ml.errors import ConfigError, LocalOnlyError, ProofNeededError, RecordError
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import Anchor, Proof, proof_path
from mrv_ml.reporting.bundle import CONTENT_SECURITY_POLICY, build_bundle
from mrv_ml.storage.store import RecordStore
from tests.support.anvil import AnvilNode, anvil_executable
from tests.support.browser import screenshot
from tests.support.records import make_sample_record, make_sample_record_1_0

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "scripts" / "build_page.mjs"
KEY0 = Secret(anvil_dev_accounts()[0].key.hex())
ZERO_TX = "0x" + "ab" * 32


def _power_series() -> dict[str, Any]:
    return {"source": "CodeCarbon periodic measurements (every 2 s)",
            "start_offset_s": [0.0, 2.0], "duration_s": [2.0, 2.0],
            "cpu_power_w": [40.0, 42.5], "gpu_power_w": [0.0, 0.0], "ram_power_w": [5.0, 5.0],
            "measured": [False, True], "points_measured": 2, "downsampled": False}


class Authored:
    """An author's store on anvil: three anchored records, one alone (schema 1.1 with a
    power series) and two in one Merkle batch (1.0 and 1.1), plus the settings used."""

    def __init__(self, data_dir: Path, url: str) -> None:
        self.data_dir = data_dir
        self.settings = Settings(data_dir=data_dir, network="anvil", rpc_url=url,
                                 private_key=KEY0)
        deploy(self.settings)
        self.store = RecordStore(data_dir)
        self.ids = [self.anchored(make_sample_record(
                        experiment__name="bundle-run-1.1",
                        energy_emissions__power_series=_power_series())),
                    *self.batched(make_sample_record_1_0(experiment__name="batched-1.0"),
                                  make_sample_record(experiment__name="batched-1.1"))]

    def anchored(self, record: dict[str, Any]) -> str:
        path = self.store.save(record)
        outcome = anchor_record(self.store, path.stem, settings=self.settings)
        assert outcome.anchored, outcome.error
        return path.stem

    def batched(self, *records: dict[str, Any]) -> list[str]:
        ids = [self.store.save(r).stem for r in records]
        outcomes = anchor_batch(self.store, ids, settings=self.settings)
        assert all(o.anchored for o in outcomes), [o.error for o in outcomes]
        return ids


@pytest.fixture(scope="module")
def authored(anvil: AnvilNode, tmp_path_factory: pytest.TempPathFactory) -> Authored:
    anvil.ensure_running()
    return Authored(tmp_path_factory.mktemp("author") / "mrv_data", anvil.url)


@pytest.fixture(scope="module")
def site(authored: Authored, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "bundle"
    build_bundle(authored.ids, out, data_dir=authored.data_dir)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _bundle_data(site: Path) -> dict[str, Any]:
    text = (site / "bundle-data.js").read_text(encoding="ascii")
    start = text.index("window.MRV_BUNDLE = ") + len("window.MRV_BUNDLE = ")
    return json.loads(text[start:].rstrip().rstrip(";"))


def _open(page: Any, url: str) -> list[str]:
    """Open the site; returns the console errors (a CSP violation is one) as they come."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    return errors


def _verdict_of(page: Any, mrv_id: str) -> str:
    """Open one record from the bundle's list and wait for its verdict (or an error)."""
    page.click(f"#bundle-records li[data-mrv-id='{mrv_id}'] button")
    page.wait_for_function(
        """(id) => {
             const v = document.getElementById('verdict'), e = document.getElementById('error');
             const ev = document.querySelector('#evidence dd');
             return (!e.hidden && e.textContent) || (!v.hidden && ev && ev.textContent === id);
           }""", arg=mrv_id, timeout=60000)
    if not page.locator("#error").is_hidden():
        return "ERROR:" + str(page.get_attribute("#error", "data-key"))
    return str(page.get_attribute("#verdict", "data-verdict"))


# --- the author's side -----------------------------------------------------------------


@pytest.mark.anvil
def test_site_layout_manifest_and_no_private_paths(site: Path, authored: Authored) -> None:
    files = _files(site)
    ids = authored.ids
    assert set(files) == {"index.html", "page.js", "styles.css", "bundle-data.js",
                          "manifest.json", "README.txt",
                          *(f"records/{i}.json" for i in ids),
                          *(f"records/{i}.proof.json" for i in ids)}
    for mrv_id in ids:  # byte for byte what the author has
        assert files[f"records/{mrv_id}.json"] == authored.store.path_for(mrv_id).read_bytes()
        assert files[f"records/{mrv_id}.proof.json"] == \
            proof_path(authored.store.path_for(mrv_id)).read_bytes()
    manifest = json.loads(files["manifest.json"])
    assert [r["mrv_id"] for r in manifest["records"]] == ids
    for entry in manifest["records"]:
        assert entry["fingerprint"] == {"algorithm": "sha256-jcs",
                                        "digest": compute_hash(authored.store.load(entry["mrv_id"]))}
        assert entry["chain_id"] == 31337 and entry["suggested_rpc"] is None  # a dev chain
    assert [r["mode"] for r in manifest["records"]] == ["single", "batch", "batch"]
    data = _bundle_data(site)
    assert [r["record_text"].encode() for r in data["records"]] == \
        [files[f"records/{i}.json"] for i in ids]
    html = files["index.html"].decode()
    assert 'type="module"' not in html and '<script defer src="page.js"></script>' in html
    assert f'content="{CONTENT_SECURITY_POLICY}"' in html
    assert b"import " not in files["page.js"][:2000] and files["page.js"] == \
        (REPO / "src/mrv_ml/dashboard/classic/page.js").read_bytes()
    for name, content in files.items():  # the author's machine stays out of it
        assert str(authored.data_dir).encode() not in content, name
        assert str(authored.data_dir.parent).encode() not in content, name
    assert not [p for p in site.parent.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.anvil
def test_same_records_same_bytes(site: Path, authored: Authored, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_bundle(authored.ids, again, data_dir=authored.data_dir)
    assert _files(again) == _files(site)
    # a directory of records, and an ID prefix, name the same records
    by_dir = build_bundle([str(authored.data_dir)], tmp_path / "by-dir",
                          data_dir=authored.data_dir)
    assert sorted(r.mrv_id for r in by_dir.records) == sorted(authored.ids)
    by_prefix = build_bundle([authored.ids[0][:12]], tmp_path / "by-prefix",
                             data_dir=authored.data_dir)
    assert [r.mrv_id for r in by_prefix.records] == authored.ids[:1]


def test_page_build_is_current_and_check_sees_a_change(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "esbuild").is_dir():
        pytest.skip("node or node_modules/esbuild missing: run npm ci")
    done = subprocess.run([node, str(BUILD_SCRIPT), "--check"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (
        f"{done.stderr.strip()}\nThe committed classic build of the page is not what "
        "app.js and its imports build to: run `node scripts/build_page.mjs` and commit "
        "src/mrv_ml/dashboard/classic/page.js")
    # A copy of the repository's layout, app.js changed: --check must fail there.
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(BUILD_SCRIPT, copy / "scripts" / BUILD_SCRIPT.name)
    shutil.copytree(REPO / "src" / "mrv_ml" / "dashboard", copy / "src" / "mrv_ml" / "dashboard")
    os.symlink(REPO / "node_modules", copy / "node_modules")
    script = copy / "scripts" / BUILD_SCRIPT.name
    assert subprocess.run([node, str(script), "--check"], capture_output=True,
                          timeout=120).returncode == 0
    app = copy / "src" / "mrv_ml" / "dashboard" / "app.js"
    app.write_text(app.read_text(encoding="utf-8") + "\nconsole.log('changed');\n",
                   encoding="utf-8")
    done = subprocess.run([node, str(script), "--check"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "out of date" in done.stderr


@pytest.mark.anvil
def test_out_in_use_is_refused_and_nothing_written(authored: Authored, tmp_path: Path,
                                                   mrv: Any) -> None:
    out = tmp_path / "paper-site"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError) as info:
        build_bundle(authored.ids, out, data_dir=authored.data_dir)
    assert info.value.exit_code == 7 and "not empty" in str(info.value)
    assert _files(out) == {"notes.txt": b"mine\n"}
    code, _, err = mrv("bundle", *authored.ids, "--out", out,
                       env={"MRV_DATA_DIR": str(authored.data_dir)})
    assert code == 7 and "not empty" in err and "Traceback" not in err
    assert _files(out) == {"notes.txt": b"mine\n"}
    (tmp_path / "a-file").write_text("x")
    code, _, err = mrv("bundle", *authored.ids, "--out", tmp_path / "a-file",
                       env={"MRV_DATA_DIR": str(authored.data_dir)})
    assert code == 7 and "not a directory" in err
    # an empty directory is fine, and the CLI says where to open it
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out_text, err = mrv("bundle", authored.ids[0], "--out", empty,
                              env={"MRV_DATA_DIR": str(authored.data_dir)})
    assert code == 0, err
    assert "1 record(s)" in out_text and "index.html?rpc=" in out_text
    assert "not a public chain" in err  # anvil: only readers of that node can verify
    assert sorted(_files(empty)) == sorted(["README.txt", "bundle-data.js", "index.html",
                                            "manifest.json", "page.js", "styles.css",
                                            f"records/{authored.ids[0]}.json",
                                            f"records/{authored.ids[0]}.proof.json"])


@pytest.mark.anvil
def test_unanchored_records_are_refused_or_left_out(authored: Authored, tmp_path: Path,
                                                    mrv: Any) -> None:
    no_proof_path = authored.store.save(make_sample_record(experiment__name="no proof"))
    no_proof = no_proof_path.stem
    record = make_sample_record(experiment__name="pending")
    pending_path = authored.store.save(record)
    pending = pending_path.stem
    authored.store.save_proof(Proof.new(pending, compute_hash(record)).pending(
        "chain unreachable: connection refused", at="2026-12-01T00:00:00Z"))
    out = tmp_path / "site"
    with pytest.raises(ProofNeededError) as info:
        build_bundle([*authored.ids, no_proof, pending], out, data_dir=authored.data_dir)
    assert info.value.exit_code == 9
    assert f"{no_proof} ({no_proof_path}): no proof file" in str(info.value)
    assert f"{pending} ({pending_path}): proof pending (chain unreachable" in str(info.value)
    assert not out.exists()
    result = build_bundle([*authored.ids, no_proof, pending], out, data_dir=authored.data_dir,
                          allow_pending=True)
    assert [r.mrv_id for r in result.records] == authored.ids
    assert [m for m, _ in result.left_out] == [no_proof, pending]
    assert pending not in (out / "bundle-data.js").read_text()
    code, _, err = mrv("bundle", pending, "--out", tmp_path / "none", "--allow-pending",
                       env={"MRV_DATA_DIR": str(authored.data_dir)})
    assert code == 9 and "no record with an anchored proof" in err
    for path in (no_proof_path, pending_path, proof_path(pending_path)):
        path.unlink()


def _save_with_proof(store: RecordStore, proof_changes: dict[str, Any] | None = None,
                     anchor: Anchor | None = None) -> str:
    record = make_sample_record()
    path = store.save(record)
    anchor = anchor or Anchor(mode="single", chain_id=31337, network="anvil",
                              contract_address="0x" + "11" * 20, submitter="0x" + "22" * 20,
                              tx_hash=ZERO_TX, block_number=1)
    proof = Proof.new(record["mrv_id"], compute_hash(record)).anchored(anchor, compute_hash(record))
    data = {**proof.to_dict(), **(proof_changes or {})}
    proof_path(path).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path.stem


def test_local_only_proofs_are_refused_unless_allowed(data_dir: Path, tmp_path: Path) -> None:
    store = RecordStore(data_dir)
    local = _save_with_proof(store, anchor=Anchor(
        mode="single", chain_id=1337, network="local", contract_address="0x" + "11" * 20,
        submitter="0x" + "22" * 20, tx_hash=ZERO_TX, block_number=1))
    with pytest.raises(LocalOnlyError) as info:
        build_bundle([local], tmp_path / "site", data_dir=data_dir)
    assert info.value.exit_code == 11 and not (tmp_path / "site").exists()
    result = build_bundle([local], tmp_path / "site", data_dir=data_dir, allow_local=True)
    assert any("embedded chain" in w for w in result.warnings)


@pytest.mark.parametrize(("changes", "words"), [
    ({"private_key": "0x" + "5" * 64}, "looks like a secret"),
    ({"registries": [{"url": "https://user:pw@registry.example/api",
                      "received_at": "2026-12-01T00:00:00Z"}]}, "credentials"),
    ({"note": "written from {store}/MRV-x.json"}, "path on your machine"),
])
def test_proofs_holding_secrets_or_paths_are_refused(data_dir: Path, tmp_path: Path,
                                                     changes: dict[str, Any], words: str) -> None:
    store = RecordStore(data_dir)
    text = json.dumps(changes).replace("{store}", str(data_dir.resolve()))
    mrv_id = _save_with_proof(store, json.loads(text))
    with pytest.raises(RecordError) as info:
        build_bundle([mrv_id], tmp_path / "site", data_dir=data_dir)
    assert words in str(info.value) and "nothing written" in str(info.value)
    assert not (tmp_path / "site").exists()


def test_suggested_endpoint_with_a_key_is_refused(data_dir: Path, tmp_path: Path) -> None:
    mrv_id = _save_with_proof(RecordStore(data_dir))
    with pytest.raises(ConfigError):
        build_bundle([mrv_id], tmp_path / "site", data_dir=data_dir,
                     suggest_rpc={31337: "https://rpc.example/v3/0123456789abcdef0123456789abcdef"})
    assert not (tmp_path / "site").exists()


# --- the reader's side: Chromium, file:// and http ------------------------------------


@pytest.mark.anvil
@pytest.mark.browser
def test_file_url_site_verifies_every_record_with_only_an_endpoint(
        site: Path, authored: Authored, anvil: AnvilNode, page: Any) -> None:
    errors = _open(page, f"{(site / 'index.html').as_uri()}?rpc={anvil.url}")
    assert page.get_attribute("body", "data-bundle") == "3"
    assert page.locator("#bundle-records li").count() == 3
    # back to the list keeps the reader's endpoint
    assert f"rpc={quote(anvil.url, safe='')}" in (page.get_attribute("#nav-verify", "href") or "")
    for mrv_id in authored.ids:
        assert _verdict_of(page, mrv_id) == "VALID", mrv_id
        assert page.get_attribute("#verdict", "data-trust") == "private network"
    screenshot(page, "bundle-file-valid")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    # the bundle's Content-Security-Policy holds on file:// too: no inline script runs
    assert page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.inlineRan = true'; document.head.append(s);
        return window.inlineRan === true; }""") is False


@pytest.mark.anvil
@pytest.mark.browser
def test_tampered_record_in_the_bundle_reads_tampered(
        site: Path, authored: Authored, anvil: AnvilNode, page: Any, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(site, copy)
    data = _bundle_data(copy)
    for entry in (data["records"][0], data["records"][2]):  # the single one, one batched
        record = json.loads(entry["record_text"])
        record["energy_emissions"]["co2_kg"] = record["energy_emissions"]["co2_kg"] / 10
        entry["record_text"] = json.dumps(record, indent=2, sort_keys=True) + "\n"
    (copy / "bundle-data.js").write_text(
        f"window.MRV_BUNDLE = {json.dumps(data)};\n", encoding="utf-8")
    _open(page, f"{(copy / 'index.html').as_uri()}?rpc={anvil.url}")
    assert _verdict_of(page, authored.ids[0]) == "TAMPERED"
    screenshot(page, "bundle-file-tampered")
    assert _verdict_of(page, authored.ids[2]) == "TAMPERED"
    assert page.get_attribute("#verdict", "data-reason") == "not_in_batch"
    assert _verdict_of(page, authored.ids[1]) == "VALID"  # the other one is untouched


@pytest.fixture
def other_chain() -> Iterator[AnvilNode]:
    executable = anvil_executable()
    if executable is None:
        pytest.skip("anvil is not installed")
    node = AnvilNode(executable, chain_id=31338)
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.mark.anvil
@pytest.mark.browser
def test_endpoint_of_another_chain_is_an_error_not_a_verdict(
        site: Path, authored: Authored, other_chain: AnvilNode, page: Any) -> None:
    _open(page, f"{(site / 'index.html').as_uri()}?rpc={other_chain.url}")
    assert _verdict_of(page, authored.ids[0]) == "ERROR:proof_chain_mismatch"
    assert page.locator("#verdict").is_hidden()
    assert "chain 31337" in page.text_content("#error")


@pytest.fixture
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@pytest.mark.anvil
@pytest.mark.browser
def test_site_served_over_http_opens_the_linked_record(
        served: str, authored: Authored, anvil: AnvilNode, page: Any) -> None:
    errors = _open(page, f"{served}/index.html?rpc={anvil.url}&id={authored.ids[1]}")
    page.wait_for_selector("#verdict:not([hidden])", timeout=60000)
    assert page.get_attribute("#verdict", "data-verdict") == "VALID"
    assert page.text_content("#evidence dd") == authored.ids[1]
    assert not [e for e in errors if "Content Security Policy" in e], errors


@pytest.mark.anvil
@pytest.mark.browser
def test_a_suggested_endpoint_is_used_only_once_the_reader_chooses_it(
        authored: Authored, anvil: AnvilNode, page: Any, tmp_path: Path) -> None:
    out = tmp_path / "suggesting"
    build_bundle(authored.ids[:1], out, data_dir=authored.data_dir,
                 suggest_rpc={31337: anvil.url})
    _open(page, (out / "index.html").as_uri())
    # one record: opened at once, but with no endpoint chosen there is no verdict
    assert page.locator("#verdict").is_hidden()
    assert anvil.url in page.text_content("#bundle-suggestion")
    page.click("#bundle-use-suggested")
    page.wait_for_selector("#verdict:not([hidden])", timeout=60000)
    assert page.get_attribute("#verdict", "data-verdict") == "VALID"
