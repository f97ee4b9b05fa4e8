"""The dashboard in real headless Chromium against `mrv serve` on the embedded chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from mrv_ml.chain.contract import registry_contract
from mrv_ml.chain.localchain import LocalChain
from mrv_ml.record.hashing import compute_hash, hash_to_bytes32
from mrv_ml.storage.store import RecordStore
from tests.support.browser import ServedDashboard, screenshot
from tests.support.records import make_sample_record

pytestmark = pytest.mark.browser


def _anchor(served: ServedDashboard, record: dict[str, Any], sender: int = 0,
            digest: bytes | None = None) -> str:
    """Register the record's hash (or ``digest``) on the local chain from dev account
    ``sender``; returns the sender's address."""
    chain = LocalChain.for_data_dir(served.data_dir)
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        value = digest if digest is not None else hash_to_bytes32(compute_hash(record))
        tx = reg.functions.registerMRV(record["mrv_id"], value)
        account = w3.eth.accounts[sender]
        w3.eth.wait_for_transaction_receipt(tx.transact({"from": account}))
        return str(account)


def _leaf(record: dict[str, Any]) -> bytes:
    """OpenZeppelin standard Merkle leaf of a bytes32 record hash."""
    return bytes(keccak(keccak(hash_to_bytes32(compute_hash(record)))))


def _registry(served: ServedDashboard) -> str:
    chain = LocalChain.for_data_dir(served.data_dir)
    with chain.session() as w3:
        return chain.registry_address(w3)


def _sidecar(record: dict[str, Any], submitter: str, registry: str, **anchor: Any
             ) -> dict[str, Any]:
    return {"proof_version": "1.0", "mrv_id": record["mrv_id"], "status": "anchored",
            "record_hash": {"algorithm": "sha256-jcs", "digest": compute_hash(record)},
            "anchor": {"mode": "single", "network": "local", "chain_id": 1337,
                       "contract_address": registry, "submitter": submitter, **anchor}}


def _open(page: Any, served: ServedDashboard, query: str = "") -> None:
    page.goto(served.url + query)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)


def _drop_file(page: Any, tmp_path: Path, data: dict[str, Any] | str, name: str = "r.json") -> None:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    page.set_input_files("#file", str(path))


def _verdict(page: Any) -> str:
    page.wait_for_selector("#verdict:not([hidden])", timeout=60000)
    return str(page.get_attribute("#verdict", "data-verdict"))


def test_valid_tampered_and_not_found(page: Any, dashboard_server: ServedDashboard,
                                      tmp_path: Path) -> None:
    record = make_sample_record()
    _anchor(dashboard_server, record)
    _open(page, dashboard_server)
    assert "chain id 1337" in page.inner_text("#status")
    _drop_file(page, tmp_path, record)
    assert _verdict(page) == "VALID"
    assert "VALID" in page.inner_text("#verdict-title")
    assert compute_hash(record) in page.inner_text("#evidence")
    assert "123 mWh" in page.inner_text("#summary")  # through units.js, not 0.000123 kWh
    screenshot(page, "valid")

    tampered = dict(record, energy_emissions=dict(record["energy_emissions"], co2_kg=0.0))
    _drop_file(page, tmp_path, tampered, "t.json")
    page.locator("#verdict[data-verdict='TAMPERED']").wait_for()
    assert "TAMPERED" in page.inner_text("#verdict-title")
    screenshot(page, "tampered")

    # never anchored, no proof: it could be in a batch, so the page asks for the proof file
    _drop_file(page, tmp_path, make_sample_record(), "n.json")
    page.locator("#error[data-key='proof_needed']").wait_for()
    assert "n.proof.json" in page.inner_text("#error") and page.is_hidden("#verdict")
    screenshot(page, "proof_needed")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "invalid JSON"),
    (json.dumps({"schema_version": "9.9", "mrv_id": "MRV-x"}), "is not known"),
    (json.dumps([1, 2]), "not an MRV record: the JSON is an array"),
    (json.dumps(make_sample_record(mrv_id="MRV-1")), "mrv_id"),
    (" " * (5 * 1024 * 1024 + 1), "larger than 5 MB"),
])
def test_malformed_file_shows_error(page: Any, dashboard_server: ServedDashboard, tmp_path: Path,
                                    content: str, message: str) -> None:
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, content)
    page.wait_for_selector("#error:not([hidden])")
    assert message in page.inner_text("#error")
    assert page.is_hidden("#verdict")
    screenshot(page, "malformed")


def test_html_injection_is_displayed_literally(page: Any, dashboard_server: ServedDashboard,
                                               tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    record = make_sample_record(experiment__name=evil, experiment__model_name=evil)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    _anchor(dashboard_server, record)
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, record)
    _verdict(page)
    assert evil in page.inner_text("#run") and evil not in page.inner_html("#run")
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    assert dialogs == []
    screenshot(page, "injection")


def test_deep_link_opens_stored_record(page: Any, dashboard_server: ServedDashboard) -> None:
    record = make_sample_record()
    RecordStore(dashboard_server.data_dir).save(record)
    _anchor(dashboard_server, record)
    _open(page, dashboard_server, f"?id={record['mrv_id']}&network=local")
    assert _verdict(page) == "VALID"
    assert page.input_value("#mrv-id") == record["mrv_id"]


def test_keyboard_only_drop_zone(page: Any, dashboard_server: ServedDashboard,
                                 tmp_path: Path) -> None:
    record = make_sample_record()
    path = tmp_path / "k.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    # Listen before the page loads: Playwright turns on file-chooser interception without
    # waiting for it, and a key press that wins that race opens a real (headless, never
    # closing) picker that blocks every later one.
    choosers: list[Any] = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    _open(page, dashboard_server)
    for _ in range(12):  # Tab from the top of the page until the drop zone has focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "drop":
            break
    assert page.evaluate("document.activeElement.id") == "drop"

    def press_until_picker(key: str) -> Any:
        before = len(choosers)
        page.keyboard.press(key)
        for _ in range(300):  # up to 30 s on a busy machine
            if len(choosers) > before:
                return choosers[-1]
            page.wait_for_timeout(100)
        raise AssertionError(f"{key!r} on the drop zone did not open the file picker")

    press_until_picker("Enter").set_files(str(path))
    page.locator("#error[data-key='proof_needed']").wait_for()
    page.focus("#drop")
    press_until_picker(" ")  # Space, as for any role=button


def test_phone_width_has_no_horizontal_scroll(browser: Any, dashboard_server: ServedDashboard,
                                              tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        record = make_sample_record()
        _anchor(dashboard_server, record)
        _open(page, dashboard_server)
        _drop_file(page, tmp_path, record)
        _verdict(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        screenshot(page, "phone")
    finally:
        context.close()


def _set_proof(page: Any, tmp_path: Path, proof: dict[str, Any],
               name: str = "p.proof.json") -> None:
    path = tmp_path / name  # a file of another name each time: the input's change fires
    path.write_text(json.dumps(proof), encoding="utf-8")
    page.set_input_files("#proof-file", str(path))


def test_squatter_first_does_not_hide_valid_record(page: Any, dashboard_server: ServedDashboard,
                                                   tmp_path: Path) -> None:
    record = make_sample_record()
    _anchor(dashboard_server, record, sender=1, digest=b"\x01" * 32)  # squatter, other hash
    honest = _anchor(dashboard_server, record, sender=0)
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, record)
    assert _verdict(page) == "VALID"  # found through the MRVRegistered logs
    assert honest in page.inner_text("#evidence")
    _set_proof(page, tmp_path, _sidecar(record, honest, _registry(dashboard_server)))
    page.locator("#verdict[data-reason='registered_by_submitter']").wait_for()
    assert page.get_attribute("#verdict", "data-verdict") == "VALID"


def test_submitter_mismatch_with_sidecar(page: Any, dashboard_server: ServedDashboard,
                                         tmp_path: Path) -> None:
    record = make_sample_record()
    _anchor(dashboard_server, record, sender=2)  # a front-runner copied the hash
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, record)
    assert _verdict(page) == "VALID"
    expected = LocalChain.for_data_dir(dashboard_server.data_dir)
    with expected.session() as w3:
        honest = str(w3.eth.accounts[0])
    _set_proof(page, tmp_path, _sidecar(record, honest, _registry(dashboard_server)))
    page.locator("#verdict[data-verdict='SUBMITTER_MISMATCH']").wait_for()
    assert "SUBMITTER MISMATCH" in page.inner_text("#verdict-title")
    screenshot(page, "submitter_mismatch")
    # A squatter with another hash is not a mismatch: the expected submitter never registered.
    squatted = make_sample_record()
    _anchor(dashboard_server, squatted, sender=2, digest=b"\x02" * 32)
    _drop_file(page, tmp_path, squatted, "s.json")
    page.locator("#verdict[data-verdict='TAMPERED']").wait_for()  # no sidecar: first registrant
    _set_proof(page, tmp_path, _sidecar(squatted, honest, _registry(dashboard_server)))
    page.locator("#verdict[data-verdict='NOT_FOUND']").wait_for()


def test_batch_anchored_by_someone_else_is_a_mismatch(page: Any, dashboard_server: ServedDashboard,
                                                      tmp_path: Path) -> None:
    record = make_sample_record()
    root = _leaf(record)  # a batch of one: the root is the leaf, the proof is empty
    chain = LocalChain.for_data_dir(dashboard_server.data_dir)
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        honest, other = str(w3.eth.accounts[0]), str(w3.eth.accounts[3])
        w3.eth.wait_for_transaction_receipt(
            reg.functions.anchorBatch(root, 1).transact({"from": other}))
    merkle = {"format": "openzeppelin-standard-merkle-tree-v1", "leaf_encoding": ["bytes32"],
              "root": "0x" + root.hex(), "proof": [], "leaf_index": 0, "leaf_count": 1}
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, record)
    page.locator("#error[data-key='proof_needed']").wait_for()
    _set_proof(page, tmp_path, _sidecar(record, honest, _registry(dashboard_server),
                                        mode="batch", merkle=merkle))
    page.locator("#verdict[data-verdict='SUBMITTER_MISMATCH']").wait_for()
    assert other in page.inner_text("#evidence")


def test_batch_proof_valid_and_tampered(page: Any, dashboard_server: ServedDashboard,
                                        tmp_path: Path) -> None:
    first, second = make_sample_record(), make_sample_record()
    a, b = sorted([_leaf(first), _leaf(second)])
    root = bytes(keccak(a + b))
    chain = LocalChain.for_data_dir(dashboard_server.data_dir)
    with chain.session() as w3:
        reg = registry_contract(w3, chain.registry_address(w3))
        submitter = str(w3.eth.accounts[0])
        w3.eth.wait_for_transaction_receipt(
            reg.functions.anchorBatch(root, 2).transact({"from": submitter}))
    merkle = {"format": "openzeppelin-standard-merkle-tree-v1", "leaf_encoding": ["bytes32"],
              "root": "0x" + root.hex(), "proof": ["0x" + _leaf(second).hex()],
              "leaf_index": 0, "leaf_count": 2}
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, first)
    # no single registration: only the batch has it, and only its proof can show that
    page.locator("#error[data-key='proof_needed']").wait_for()
    sidecar = _sidecar(first, submitter, _registry(dashboard_server), mode="batch", merkle=merkle)
    _set_proof(page, tmp_path, sidecar)
    page.locator("#verdict[data-verdict='VALID']").wait_for()
    assert "batch" in page.inner_text("#verdict")
    tampered = dict(first, training=dict(first["training"], epochs=99))
    _drop_file(page, tmp_path, tampered, "t.json")  # same ID: the proof already there is its own
    page.locator("#verdict[data-verdict='TAMPERED']").wait_for()
    assert "(untrusted)" in page.inner_text("#summary")
    other = make_sample_record()
    _drop_file(page, tmp_path, other, "o.json")  # another ID: that proof is not taken for it
    page.locator("#error[data-key='proof_needed']").wait_for()


def test_rpc_unreachable_and_no_contract_messages(page: Any, dashboard_server: ServedDashboard
                                                  ) -> None:
    _open(page, dashboard_server, "?rpc=http://127.0.0.1:9/&contract=" + "0x" + "11" * 20)
    assert "RPC unreachable" in page.inner_text("#status")
    _open(page, dashboard_server,
          f"?rpc={dashboard_server.url}rpc&contract=0x{'22' * 20}")
    assert "no contract at" in page.inner_text("#status")


# An EIP-1193 provider as a wallet extension injects it; it forwards to the read-only bridge.
_WALLET_SHIM = """
window.ethereum = {
  isShim: true,
  async request({ method, params }) {
    const r = await fetch('/rpc', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: params || [] }) });
    const out = await r.json();
    if (out.error) { const e = new Error(out.error.message); e.code = out.error.code; throw e; }
    return out.result;
  },
  on() {}, removeListener() {},
};
"""


def test_injected_wallet_mode(page: Any, dashboard_server: ServedDashboard, tmp_path: Path) -> None:
    record = make_sample_record()
    _anchor(dashboard_server, record)
    page.add_init_script(_WALLET_SHIM)
    _open(page, dashboard_server)
    address = page.evaluate("fetch('/api/config').then(r => r.json()).then(c => c.registry_address)")
    page.click("#conn > summary")  # connected through the bridge: the settings are folded away
    page.select_option("#conn-mode", "wallet")
    page.fill("#contract", address)
    page.click("#connect")
    page.locator("#status:has-text('wallet')").wait_for()
    assert "chain id 1337" in page.inner_text("#status")
    _drop_file(page, tmp_path, record)
    assert _verdict(page) == "VALID"
