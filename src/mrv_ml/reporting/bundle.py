"""``mrv bundle``: a static verification site for a paper (records, proofs and the page).

The site works from any static host and straight from a ``file://`` URL, where Chromium
refuses ES modules and ``fetch()``: the page is the classic build of the dashboard
(``dashboard/classic/page.js``, made by ``scripts/build_page.mjs``) and the records come in
``bundle-data.js`` (``window.MRV_BUNDLE``: each record's and proof's exact file text, so the
page hashes the bytes the author anchored after its own strict reading). The reader gives
only a JSON-RPC endpoint of the proof's chain; the bundle may suggest one, never decide.

Layout of the site::

    index.html        the dashboard's page, classic scripts, a Content-Security-Policy
    page.js           dashboard/classic/page.js
    styles.css        the dashboard's stylesheet
    bundle-data.js    window.MRV_BUNDLE = {"format": "mrv-bundle-1", "records": [...]}
    manifest.json     each record's ID, fingerprint, files and anchor (for people, scripts)
    records/          MRV-<uuid>.json and MRV-<uuid>.proof.json, byte for byte
    README.txt        how to verify, in the browser or with `mrv verify`

Only anchored proofs go in: a reader can verify nothing else. A local-only proof (the
author's embedded chain) is refused unless ``allow_local``: no reader can reach that chain,
so it is evidence for nobody, and a site for a paper must not look as if it were. Nothing
is redacted silently: a proof or record holding a credential or the author's store path is
refused, naming the field. The site is written in a temporary directory beside ``out`` and
renamed at the end: there is never half a bundle.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrv_ml.config import may_hold_credentials, redact_url, text_may_hold_credentials
from mrv_ml.errors import (
    ConfigError,
    LocalOnlyError,
    MRVError,
    ProofNeededError,
    RecordError,
    StoreError,
)
from mrv_ml.networks import preset_for_chain
from mrv_ml.record.hashing import HASH_ALGORITHM
from mrv_ml.record.proof import PROOF_SUFFIX, Proof, find_proof_file
from mrv_ml.storage import atomicfile

BUNDLE_FORMAT = "mrv-bundle-1"
DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
CLASSIC_BUILD = DASHBOARD / "classic" / "page.js"
_MODULE_SCRIPT = '<script type="module" src="app.js"></script>'
# Scripts only from the bundle's own files; the chain only over http(s) (the reader's
# endpoint); nothing else is fetched, framed, or posted anywhere.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src http: https:; base-uri 'none'; "
                           "form-action 'none'")
_SECRET_KEY = re.compile(r"(private|secret|password|passwd|token|api[_-]?key|mnemonic)",
                         re.IGNORECASE)


@dataclass(frozen=True)
class BundledRecord:
    """One record in the bundle and where its proof says it is anchored."""

    mrv_id: str
    fingerprint: str  # sha256-jcs hex digest of the record
    source: Path  # the record file it was read from (never written into the bundle)
    chain_id: int
    network: str | None
    mode: str
    contract_address: str
    tx_hash: str | None
    suggested_rpc: str | None

    def manifest(self) -> dict[str, Any]:
        return {"mrv_id": self.mrv_id,
                "fingerprint": {"algorithm": HASH_ALGORITHM, "digest": self.fingerprint},
                "record_file": f"records/{self.mrv_id}.json",
                "proof_file": f"records/{self.mrv_id}{PROOF_SUFFIX}",
                "chain_id": self.chain_id, "network": self.network, "mode": self.mode,
                "contract_address": self.contract_address, "tx_hash": self.tx_hash,
                "suggested_rpc": self.suggested_rpc}


@dataclass(frozen=True)
class BundleResult:
    """What was written, what was left out (and why), and what the author should know."""

    out: Path
    records: tuple[BundledRecord, ...]
    left_out: tuple[tuple[str, str], ...] = ()  # (record, reason)
    warnings: tuple[str, ...] = ()
    files: tuple[str, ...] = field(default_factory=tuple)  # relative paths, sorted


@dataclass(frozen=True)
class _Item:
    record: BundledRecord
    record_bytes: bytes
    proof_bytes: bytes
    record_value: dict[str, Any]


def build_bundle(refs: Sequence[str], out: str | Path, *, data_dir: str | Path,
                 allow_pending: bool = False, allow_local: bool = False,
                 suggest_rpc: Mapping[int, str] | None = None) -> BundleResult:
    """Write the verification site for the records ``refs`` (files, directories, IDs or
    prefixes in the store at ``data_dir``) into ``out``, which must not exist or be empty.

    Raises :class:`ConfigError` (exit 7) for an ``out`` in use or a bad suggested endpoint,
    :class:`ProofNeededError` (9) for records without an anchored proof (unless
    ``allow_pending``: they are then left out and listed), :class:`LocalOnlyError` (11) for
    local-only proofs (unless ``allow_local``), :class:`RecordError` (3) for an unusable
    record or proof, or one holding a credential or the author's paths. Nothing is written
    unless the whole bundle is.
    """
    from mrv_ml.storage.selection import select
    from mrv_ml.storage.store import RecordStore

    target = Path(out)
    _check_out(target)
    if not CLASSIC_BUILD.is_file():
        raise ConfigError(f"the page's classic build {CLASSIC_BUILD} is missing; run "
                          "node scripts/build_page.mjs")
    suggestions = {int(k): _checked_endpoint(v) for k, v in (suggest_rpc or {}).items()}
    store = RecordStore(data_dir)
    private = _private_paths(store.root)
    items: list[_Item] = []
    left_out: list[tuple[str, str]] = []
    warnings: list[str] = []
    unanchored: list[str] = []
    for chosen in select(list(refs), store):
        mrv_id = str(chosen.record["mrv_id"])
        if chosen.proof_error:
            raise RecordError(f"{chosen.path}: its proof cannot be used: {chosen.proof_error}")
        proof_file = find_proof_file(chosen.path, mrv_id, [store.root])
        if chosen.proof is None or proof_file is None:
            unanchored.append(f"{mrv_id} ({chosen.path}): no proof file")
            continue
        if chosen.proof.status != "anchored" or chosen.proof.anchor is None:
            unanchored.append(f"{mrv_id} ({chosen.path}): proof pending"
                              + (f" ({chosen.proof.pending_reason})"
                                 if chosen.proof.pending_reason else ""))
            continue
        item = _item(chosen.path, chosen.record, chosen.proof, proof_file, suggestions, private)
        if chosen.proof.anchor.local_only:
            if not allow_local:
                raise LocalOnlyError(
                    f"{mrv_id} is anchored only on its author's embedded chain: no reader can "
                    "verify it; publish it first (mrv anchor --network ...), or give "
                    "--allow-local to include it anyway; nothing written")
            warnings.append(f"{mrv_id}: anchored only on your embedded chain; readers will "
                            "be told it cannot be verified anywhere else")
        elif (preset := preset_for_chain(item.record.chain_id)) is None or preset.is_dev:
            warnings.append(f"{mrv_id}: chain {item.record.chain_id} is not a public chain: "
                            "only readers who can reach a node of that very chain can verify")
        warnings.extend(_record_warnings(item.record_value, mrv_id, private))
        if any(i.record.mrv_id == mrv_id for i in items):
            raise RecordError(f"two different records are named {mrv_id} ({chosen.path} and "
                              f"{next(i.record.source for i in items if i.record.mrv_id == mrv_id)}"
                              "); a bundle holds one record per ID")
        items.append(item)
    if unanchored:
        if not allow_pending:
            raise ProofNeededError(
                f"{len(unanchored)} record(s) have no anchored proof, so no reader could "
                f"verify them: {'; '.join(unanchored[:5])}"
                + (f" and {len(unanchored) - 5} more" if len(unanchored) > 5 else "")
                + "; anchor them first, or give --allow-pending to leave them out; "
                "nothing written")
        left_out.extend((u.split(" ", 1)[0], u.split(" ", 1)[1]) for u in unanchored)
    if not items:
        raise ProofNeededError("no record with an anchored proof to bundle; nothing written")
    files = _write_site(target, items)
    return BundleResult(target, tuple(i.record for i in items), tuple(left_out),
                        tuple(warnings), files)


# --- checks ------------------------------------------------------------------------------


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"--out {out}: exists and is not a directory; nothing written")
    if out.is_dir():
        try:
            in_use = any(out.iterdir())
        except OSError as e:
            raise ConfigError(f"--out {out}: cannot be read: {atomicfile.reason(e)}") from e
        if in_use:
            raise ConfigError(f"--out {out}: exists and is not empty; a bundle never "
                              "overwrites or mixes with other files; nothing written")


def _checked_endpoint(url: str) -> str:
    if not re.match(r"^https?://[^\s]+$", url):
        raise ConfigError(f"suggested endpoint {url[:60]!r}: not an http(s) URL")
    if may_hold_credentials(url):
        # A key in the URL would be published with the site: the reader brings their own.
        raise ConfigError(f"suggested endpoint {redact_url(url)}: holds credentials or an API "
                          "key (user:password, a query, a key-like path); suggest a public "
                          "endpoint without one")
    return url


def _private_paths(store_root: Path) -> tuple[str, ...]:
    """Absolute paths that would tell readers about the author's machine."""
    paths = {str(store_root.resolve())}
    home = os.path.expanduser("~")
    if home not in ("", "/", "~"):
        paths.add(home)
    return tuple(sorted(paths, key=len, reverse=True))


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str, str]]:
    """(field path, key, string) for every string in a JSON value, keys included."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            yield path, str(k), str(k)
            yield from _strings(v, path) if not isinstance(v, str) else [(path, str(k), v)]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, "", value


def _refuse_secrets(value: Any, what: str, private: Sequence[str]) -> None:
    # The sidecar is written with endpoints redacted and never holds a key: a proof that
    # does is refused (naming the field), never quietly cleaned.
    for where, key, text in _strings(value):
        if text_may_hold_credentials(text):
            raise RecordError(f"{what}: field {where} holds an endpoint URL with credentials "
                              "or an API key; a bundle is public, so nothing written")
        if key and _SECRET_KEY.search(key) and text and text != key:
            raise RecordError(f"{what}: field {where} looks like a secret ({key}); a bundle "
                              "is public, so nothing written")
        if any(p in text for p in private):
            raise RecordError(f"{what}: field {where} names a path on your machine (your "
                              "store or home directory); a bundle is public, so nothing "
                              "written (the proof is no part of the record's fingerprint: "
                              "take the field out of it and run again)")


def _record_warnings(record: Mapping[str, Any], mrv_id: str,
                     private: Sequence[str]) -> list[str]:
    # The record is anchored: it cannot change without reading TAMPERED, so it is published
    # as it is, and the author is told what it shows.
    out = []
    checks = (("paths on your machine", lambda t: any(p in t for p in private)),
              ("URLs that may carry credentials", text_may_hold_credentials))
    for what, hit in checks:
        fields = [where for where, _, text in _strings(record) if hit(text)]
        if fields:
            shown = ", ".join(fields[:3]) + (f" and {len(fields) - 3} more"
                                             if len(fields) > 3 else "")
            out.append(f"{mrv_id}: the record names {what} ({shown}); they are part of the "
                       "anchored record and will be public")
    return out


def _item(path: Path, record: dict[str, Any], proof: Proof, proof_file: Path,
          suggestions: Mapping[int, str], private: Sequence[str]) -> _Item:
    from mrv_ml.record.hashing import compute_hash
    from mrv_ml.record.strictjson import parse_json_strict, read_file_bytes

    mrv_id = str(record["mrv_id"])
    anchor = proof.anchor
    assert anchor is not None  # only anchored proofs get here
    record_bytes = read_file_bytes(path)
    proof_bytes = read_file_bytes(proof_file)
    fingerprint = compute_hash(record)
    if proof.record_digest != fingerprint:
        raise RecordError(f"{mrv_id}: the record ({path}) is not the one its proof was "
                          "written for (its fingerprint differs): it would read TAMPERED; "
                          "nothing written")
    proof_value = parse_json_strict(proof_bytes, str(proof_file))
    _refuse_secrets(proof_value, f"{proof_file}", private)
    for text, name in ((record_bytes, path), (proof_bytes, proof_file)):
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as e:  # strict reading already refused this; be sure
            raise RecordError(f"{name}: not UTF-8") from e
    suggested = suggestions.get(anchor.chain_id)
    if suggested is None:
        preset = preset_for_chain(anchor.chain_id)
        suggested = preset.public_rpc_url if preset is not None and not preset.is_dev else None
    bundled = BundledRecord(mrv_id, fingerprint, path, anchor.chain_id, anchor.network,
                            anchor.mode, anchor.contract_address, anchor.tx_hash, suggested)
    return _Item(bundled, record_bytes, proof_bytes, record)


# --- the site ----------------------------------------------------------------------------


def _index_html() -> bytes:
    text = (DASHBOARD / "index.html").read_text(encoding="utf-8")
    if text.count(_MODULE_SCRIPT) != 1:
        raise MRVError(f"dashboard/index.html no longer loads {_MODULE_SCRIPT}: "
                       "mrv_ml.reporting.bundle must learn the page's new entry point")
    classic = (f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
               '<script defer src="bundle-data.js"></script>\n'
               '<script defer src="page.js"></script>')
    return text.replace(_MODULE_SCRIPT, classic).encode("utf-8")


def _data_js(items: Sequence[_Item]) -> bytes:
    data = {"format": BUNDLE_FORMAT, "records": [
        {**i.record.manifest(), "record_text": i.record_bytes.decode("utf-8"),
         "proof_text": i.proof_bytes.decode("utf-8")} for i in items]}
    # ASCII: the strings read the same whatever encoding a host labels the file with.
    text = json.dumps(data, ensure_ascii=True, sort_keys=True, allow_nan=False)
    return ("// Written by mrv bundle: the records and proofs of this site, as their exact "
            "file text.\nwindow.MRV_BUNDLE = " + text + ";\n").encode("ascii")


def _manifest(items: Sequence[_Item]) -> bytes:
    from mrv_ml._version import __version__

    data = {"format": BUNDLE_FORMAT, "generator": f"mrv-ml {__version__}",
            "records": [i.record.manifest() for i in items]}
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _readme(items: Sequence[_Item]) -> bytes:
    chains = sorted({i.record.chain_id for i in items})
    lines = [
        "MRV verification site (written by mrv bundle)",
        "",
        "Open index.html in a browser, here or on any static host; add ?rpc=<URL> with a",
        "JSON-RPC endpoint of the proofs' chain (" + ", ".join(map(str, chains)) + ").",
        "Each record is verified in your browser against that chain; no other server is asked.",
        "",
        "Or on the command line, with the files under records/:",
        "",
    ]
    lines += [f"  mrv verify records/{i.record.mrv_id}.json --rpc-url <URL of chain "
              f"{i.record.chain_id}>" for i in items]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _site_files(items: Sequence[_Item]) -> dict[str, bytes]:
    files = {"index.html": _index_html(), "page.js": CLASSIC_BUILD.read_bytes(),
             "styles.css": (DASHBOARD / "styles.css").read_bytes(),
             "bundle-data.js": _data_js(items), "manifest.json": _manifest(items),
             "README.txt": _readme(items)}
    for i in items:
        files[f"records/{i.record.mrv_id}.json"] = i.record_bytes
        files[f"records/{i.record.mrv_id}{PROOF_SUFFIX}"] = i.proof_bytes
    return files


def _write_site(out: Path, items: Sequence[_Item]) -> tuple[str, ...]:
    files = _site_files(items)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create {parent}: {atomicfile.reason(e)}") from e
    tmp = parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        tmp.mkdir()
        for name, data in sorted(files.items()):
            atomicfile.write_bytes(tmp / name, data, overwrite=False, what=name)
        atomicfile.fsync_dir(tmp / "records")
        # One step: `out` appears complete, or (gone or filled meanwhile) not at all.
        os.rename(tmp, out)
    except OSError as e:
        raise StoreError(f"cannot write the bundle to {out}: {atomicfile.reason(e)}; "
                         "nothing written") from e
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                shutil.rmtree(tmp)
    atomicfile.fsync_dir(parent)
    return tuple(sorted(files))
