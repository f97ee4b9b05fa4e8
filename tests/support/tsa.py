"""A real RFC 3161 timestamp authority for the tests: OpenSSL's ``openssl ts -reply`` behind
a small HTTP front (``POST`` ``application/timestamp-query``, answered
``application/timestamp-reply``), with a test CA of its own made by ``openssl req``/``x509``.

``LocalTSA(directory, name)`` makes the CA (an ECDSA P-256 root) and the authority's
certificate (critical extended key usage ``timeStamping``), then serves on a free loopback
port; ``url``, ``root_pem`` (the root to name with ``--tsa-root``), ``tsa_pem``. Two
instances have two unrelated roots: a token of one does not chain to the other's root.
``verify_with_openssl(tsr, data)`` is the independent check: ``openssl ts -verify``.
Skipped when ``openssl`` is missing (Debian's ``openssl``, installed by bootstrap).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.9.1
other_policies = 1.3.6.1.4.1.57264.9.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

_TSA_EXTENSIONS = """
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.skip("openssl is not installed (Debian's openssl: scripts/bootstrap.sh test)")
    return found


def _run(*args: str, cwd: Path) -> None:
    done = subprocess.run([openssl(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-300:]}")


class LocalTSA:
    def __init__(self, directory: Path, name: str = "mrv test TSA") -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.root_pem, self.tsa_pem = directory / "root.pem", directory / "tsa.pem"
        self.name = name
        self.requests = 0
        self.answer_with: bytes | None = None  # a test may make it answer anything
        self._make_keys()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, body = tsa._answer(query, self.headers.get("Content-Type", ""))
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsr"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._lock = threading.Lock()

    def _make_keys(self) -> None:
        d = self.dir
        (d / "serial").write_text("01\n")
        (d / "tsa.cnf").write_text(_CONFIG.format(dir=d))
        (d / "ext.cnf").write_text(_TSA_EXTENSIONS)
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "root.key", "-out", "root.pem", "-days", "3650", "-subj",
             f"/O=mrv-ml tests/CN={self.name} root", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/O=mrv-ml tests/CN={self.name}",
             cwd=d)
        _run("x509", "-req", "-in", "tsa.csr", "-CA", "root.pem", "-CAkey", "root.key",
             "-CAcreateserial", "-out", "tsa.pem", "-days", "3650", "-extfile", "ext.cnf",
             cwd=d)

    def _answer(self, query: bytes, content_type: str) -> tuple[int, bytes]:
        with self._lock:
            self.requests += 1
            if self.answer_with is not None:
                return 200, self.answer_with
            if content_type != "application/timestamp-query":
                return 415, b""
            (self.dir / "query.tsq").write_bytes(query)
            try:
                _run("ts", "-reply", "-config", "tsa.cnf", "-queryfile", "query.tsq",
                     "-out", "reply.tsr", cwd=self.dir)
            except RuntimeError:
                return 400, b""
            return 200, (self.dir / "reply.tsr").read_bytes()

    def verify_with_openssl(self, tsr: bytes, data: bytes) -> tuple[bool, str]:
        """``openssl ts -verify`` of the answer ``tsr`` over ``data``, against this root."""
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "r.tsr").write_bytes(tsr)
            (Path(tmp) / "data").write_bytes(data)
            done = subprocess.run([openssl(), "ts", "-verify", "-in", "r.tsr", "-data", "data",
                                   "-CAfile", str(self.root_pem), "-untrusted",
                                   str(self.tsa_pem)], cwd=tmp, capture_output=True,
                                  text=True, timeout=60)
        return done.returncode == 0 and "Verification: OK" in done.stdout, \
            (done.stdout + done.stderr).strip()

    def __enter__(self) -> LocalTSA:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
