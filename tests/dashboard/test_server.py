"""mrv serve without a browser: RPC allowlist, static files, store API, limits."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.storage.store import RecordStore
from tests.support.browser import ServedDashboard
from tests.support.cli import MRV
from tests.support.records import make_sample_record


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = ServedDashboard(tmp_path_factory.mktemp("srv") / "mrv_data")
    yield s
    s.close()


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _rpc(served: ServedDashboard, payload: Any, raw: bytes | None = None) -> tuple[int, Any]:
    body = raw if raw is not None else json.dumps(payload).encode()
    req = urllib.request.Request(served.url + "rpc", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_allowed_read_methods_answer(served: ServedDashboard) -> None:
    status, out = _rpc(served, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    assert status == 200 and out["result"] == hex(1337) and out["id"] == 1


@pytest.mark.parametrize("method", ["eth_sendTransaction", "eth_sendRawTransaction",
                                    "eth_accounts", "eth_sign", "personal_sign",
                                    "eth_signTypedData_v4", "evm_mine"])
def test_write_and_key_methods_refused(served: ServedDashboard, method: str) -> None:
    status, out = _rpc(served, {"jsonrpc": "2.0", "id": 7, "method": method, "params": []})
    assert status == 200
    assert out["error"]["code"] == -32601 and "result" not in out and out["id"] == 7


def test_batch_mixes_answers_and_refusals(served: ServedDashboard) -> None:
    _, out = _rpc(served, [{"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                           {"jsonrpc": "2.0", "id": 2, "method": "eth_accounts", "params": []}])
    assert [o["id"] for o in out] == [1, 2]
    assert "result" in out[0] and out[1]["error"]["code"] == -32601


def test_bad_rpc_bodies(served: ServedDashboard) -> None:
    assert _rpc(served, None, raw=b"{not json")[1]["error"]["code"] == -32700
    assert _rpc(served, {"id": 1})[1]["error"]["code"] == -32600
    assert _rpc(served, [])[1]["error"]["code"] == -32600


def test_oversize_request_refused(served: ServedDashboard) -> None:
    status, out = _rpc(served, None, raw=b" " * (300 * 1024))
    assert status == 413 and out["error"]["code"] == -32600


@pytest.mark.parametrize("path", ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/serve/local.py",
                                  "vendor/../../serve/local.py", "nope.js"])
def test_traversal_and_missing_files_refused(served: ServedDashboard, path: str) -> None:
    status, _, body = _get(served.url + path)
    assert status == 404 and b"root:" not in body and b"import" not in body


@pytest.mark.parametrize(("path", "mime"), [("", "text/html"), ("app.js", "text/javascript"),
                                            ("vendor/ethers.min.js", "text/javascript"),
                                            ("styles.css", "text/css")])
def test_static_mime_types_and_csp(served: ServedDashboard, path: str, mime: str) -> None:
    status, headers, _ = _get(served.url + path)
    assert status == 200 and headers["Content-Type"].startswith(mime)
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp


def test_config_and_record_endpoints(served: ServedDashboard) -> None:
    status, _, body = _get(served.url + "api/config")
    cfg = json.loads(body)
    assert status == 200 and cfg["chain_id"] == 1337 and cfg["rpc_path"] == "/rpc"
    assert cfg["registry_address"].startswith("0x")
    record = make_sample_record()
    RecordStore(served.data_dir).save(record)
    status, _, body = _get(served.url + f"api/records/{record['mrv_id']}")
    assert status == 200 and json.loads(body) == record
    listing = json.loads(_get(served.url + "api/records")[2])
    assert record["mrv_id"] in [s["mrv_id"] for s in listing]
    assert _get(served.url + f"api/records/{record['mrv_id']}/proof")[0] == 404
    assert _get(served.url + "api/records/MRV-../../etc")[0] == 404
    assert _get(served.url + "api/records/MRV-0000")[0] == 422  # malformed ID


def test_vendored_ethers_matches_node_modules() -> None:
    root = Path(__file__).resolve().parents[2]
    node_copy = root / "node_modules" / "ethers" / "dist" / "ethers.min.js"
    if not node_copy.exists():
        pytest.skip("node_modules/ethers is not installed")
    vendored = root / "src" / "mrv_ml" / "dashboard" / "vendor" / "ethers.min.js"
    assert vendored.read_bytes() == node_copy.read_bytes()


def test_cli_refuses_remote_host_and_exports(mrv: MRV, tmp_path: Path) -> None:
    assert mrv("serve", "--host", "0.0.0.0").exit_code == 7
    assert mrv("serve", "--export", tmp_path / "site").exit_code == 0
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "vendor" / "ethers.min.js").is_file()


def test_rpc_network_endpoint_stays_on_the_server(tmp_path: Path) -> None:
    from mrv_ml.config import Settings
    from mrv_ml.serve.local import make_server

    key = "abcdef0123456789abcdef0123456789"
    settings = Settings(data_dir=tmp_path, network="sepolia",
                        rpc_url=f"http://127.0.0.1:9/v3/{key}",
                        contract_address="0x" + "ab" * 20)
    httpd = make_server(settings, "127.0.0.1", 0)
    try:
        cfg = httpd.config
        # the page asks through the bridge; the endpoint and its key never reach it
        assert cfg["bridge"] is True and cfg["rpc_url"] is None and cfg["rpc_path"] == "/rpc"
        assert cfg["chain_id"] == 11155111
        assert cfg["explorer_url"] == "https://sepolia.etherscan.io"
        answer = httpd.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        assert answer["error"] and key not in json.dumps(answer)
        assert key not in json.dumps(cfg)
    finally:
        httpd.server_close()


@pytest.mark.anvil
def test_the_bridge_forwards_reads_to_an_rpc_network(anvil: Any, tmp_path: Path) -> None:
    from mrv_ml.config import Settings
    from mrv_ml.serve.local import make_server

    anvil.ensure_running()
    httpd = make_server(Settings(data_dir=tmp_path, network="anvil", rpc_url=anvil.url),
                        "127.0.0.1", 0)
    try:
        assert httpd.rpc({"jsonrpc": "2.0", "id": 5, "method": "eth_chainId"}) == \
            {"jsonrpc": "2.0", "id": 5, "result": hex(31337)}
        refused = httpd.rpc({"jsonrpc": "2.0", "id": 6, "method": "eth_sendTransaction"})
        assert refused["error"]["code"] == -32601  # the allowlist holds for remote nodes too
    finally:
        httpd.server_close()


def test_only_loopback_names_are_answered(served: ServedDashboard) -> None:
    # DNS rebinding: a page of attacker.example resolving to 127.0.0.1 must get nothing
    for path in ("api/config", "api/records"):
        req = urllib.request.Request(served.url + path, headers={"Host": "attacker.example"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("answered a foreign Host")
        except urllib.error.HTTPError as e:
            assert e.code == 421
    req = urllib.request.Request(served.url + "rpc", data=b"{}",
                                 headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 421
    assert _get(served.url + "api/config")[0] == 200


def test_unknown_network_is_a_config_error(tmp_path: Path) -> None:
    from mrv_ml.config import Settings
    from mrv_ml.errors import ConfigError
    from mrv_ml.serve.local import make_server

    with pytest.raises(ConfigError, match="unknown network"):
        make_server(Settings(data_dir=tmp_path, network="nonesuch"), "127.0.0.1", 0)


def test_deeply_nested_body_is_refused_and_the_server_survives(tmp_path: Path) -> None:
    """200 KB of '[' would overflow the C stack of a server thread if the interpreter's
    recursion limit stayed where py-evm puts it: a separate process, so a crash shows."""
    import os
    import subprocess
    import sys
    import time

    from tests.support.anvil import free_port
    from tests.support.cli import mrv_command

    port = free_port()
    env = dict(os.environ, MRV_DATA_DIR=str(tmp_path / "mrv_data"), MRV_NO_DOTENV="1")
    proc = subprocess.Popen([*mrv_command(), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/rpc"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url.replace("/rpc", "/api/config"), timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        deep = b"[" * 100_000 + b"]" * 100_000
        req = urllib.request.Request(url, data=deep, headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.loads(r.read())
        assert out["error"]["code"] == -32700 and "too_deep" in out["error"]["message"]
        ok = urllib.request.Request(url, data=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode())
        with urllib.request.urlopen(ok, timeout=30) as r:
            assert json.loads(r.read())["result"] == hex(1337)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    done = subprocess.run([sys.executable, "-c", "import sys, mrv_ml.chain.localchain; "
                           "print(sys.getrecursionlimit())"], capture_output=True, text=True)
    assert done.stdout.strip() == "1000"  # py-evm's 12,288 is put back


def test_a_nul_in_the_path_and_an_unknown_id_reveal_nothing(served: ServedDashboard) -> None:
    status, _, body = _get(served.url + "bad%00path")
    assert status == 400
    status, _, body = _get(served.url + "api/records/MRV-00000000-0000-4000-8000-000000000000")
    assert status == 404 and str(served.data_dir) not in body.decode()
