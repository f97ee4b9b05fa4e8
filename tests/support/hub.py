"""A local stand-in for the Hugging Face Hub's HTTP API: only what ``HfApi.upload_file``
of a small ``README.md`` asks for (read from huggingface_hub 2.4's ``hf_api.py`` and
``_commit_api.py``, and seen on the wire):

- ``POST /api/validate-yaml`` ``{"content", "repoType"}`` -> ``{"errors": [], "warnings": []}``
  (400 with errors when the card's metadata is not a YAML mapping, as the Hub answers);
- ``POST /api/models/<owner>/<name>/preupload/<revision>`` ``{"files": [{"path", "sample",
  "size"}]}`` -> every file ``"uploadMode": "regular"`` (small text goes inline, no LFS);
- ``POST /api/models/<owner>/<name>/commit/<revision>``: NDJSON, a ``header`` line and one
  ``file`` line per file (``content`` base64) -> ``{"commitUrl", "commitOid"}``.

Every request must carry ``Authorization: Bearer <token>``; ``fail_with`` makes the commit
answer that HTTP status instead. Commits are kept in ``commits`` for the test to read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_REPO = r"/api/models/(?P<repo>[^/]+/[^/]+)"
_PREUPLOAD = re.compile(_REPO + r"/preupload/(?P<rev>[^/]+)$")
_COMMIT = re.compile(_REPO + r"/commit/(?P<rev>[^/]+)$")


@dataclass
class Commit:
    repo_id: str
    revision: str
    summary: str
    files: dict[str, bytes]


@dataclass
class FakeHub:
    token: str
    url: str = ""
    repos: set[str] = field(default_factory=set)
    commits: list[Commit] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    fail_with: int | None = None


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            hub.requests.append(f"POST {self.path}")
            if self.headers.get("authorization") != f"Bearer {hub.token}":
                self._answer(401, {"error": "Invalid credentials in Authorization header"})
                return
            if self.path == "/api/validate-yaml":
                self._validate(json.loads(body))
                return
            match = _PREUPLOAD.match(self.path) or _COMMIT.match(self.path)
            if match is None:
                self._answer(404, {"error": "Not Found"})
                return
            if match["repo"] not in hub.repos:
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            if match.re is _PREUPLOAD:
                files = json.loads(body)["files"]
                self._answer(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                              "shouldIgnore": False} for f in files],
                                   "commitOid": "0" * 40})
                return
            if hub.fail_with is not None:
                self._answer(hub.fail_with, {"error": "the stand-in was told to fail"})
                return
            lines = [json.loads(line) for line in body.decode().splitlines() if line]
            header = next(x["value"] for x in lines if x["key"] == "header")
            files = {x["value"]["path"]: base64.b64decode(x["value"]["content"])
                     for x in lines if x["key"] == "file"}
            hub.commits.append(Commit(match["repo"], match["rev"], header["summary"], files))
            oid = hashlib.sha1(body).hexdigest()  # noqa: S324 - a commit id, not security
            self._answer(200, {"commitUrl": f"{hub.url}/{match['repo']}/commit/{oid}",
                               "commitOid": oid, "pullRequestUrl": None})

        def _validate(self, body: dict[str, Any]) -> None:
            import yaml
            from huggingface_hub.repocard import REGEX_YAML_BLOCK

            match = REGEX_YAML_BLOCK.search(body["content"])
            try:
                data = yaml.safe_load(match.group(2)) if match else {}
            except yaml.YAMLError:
                data = None
            if not isinstance(data, dict):
                self._answer(400, {"errors": [{"message": "metadata is not a YAML mapping"}],
                                   "warnings": []})
                return
            self._answer(200, {"errors": [], "warnings": []})

    return Handler


@contextlib.contextmanager
def running_hub() -> Iterator[FakeHub]:
    """A stand-in Hub on 127.0.0.1 with one model repository, ``researcher/tiny-model``,
    and the token ``hf_test_token_not_a_secret``."""
    hub = FakeHub(token="hf_test_token_not_a_secret", repos={"researcher/tiny-model"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
