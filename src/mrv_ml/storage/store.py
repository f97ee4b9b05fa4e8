"""The local record store: one directory of record files and their proof sidecars.

Layout (``mrv_data/`` by default)::

    MRV-<uuid>.json          the record; written once, never overwritten
    MRV-<uuid>.proof.json    its proof sidecar; replaced atomically as anchoring progresses
    .index.json              listing cache; the JSON files above remain the source of truth

Writes go through :mod:`mrv_ml.storage.atomicfile`: records are created with ``os.link`` (never
replaced), sidecars with ``os.replace``; a failed write leaves nothing half-written.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mrv_ml.errors import (
    RecordError,
    RecordExistsError,
    RecordNotFoundError,
    StoreError,
)
from mrv_ml.record.proof import PROOF_SUFFIX, Proof, read_proof_file
from mrv_ml.record.schema import (
    check_record_header,
    dump_record_bytes,
    load_record_file,
    summarize,
    validate_record,
)
from mrv_ml.record.strictjson import dump_json_bytes, parse_json_strict, read_file_bytes
from mrv_ml.record.trust import proof_trust
from mrv_ml.storage import atomicfile

DEFAULT_DATA_DIR = "mrv_data"
INDEX_FILE = ".index.json"
_INDEX_FORMAT = "mrv-ml store index"
_INDEX_VERSION = 3  # 3: tags and trust (a cache of another version is rebuilt)
# Cached record fields, in order: experiment, model_name, status, start_time, duration_s,
# energy_kwh, co2_kg, error, sort timestamp, tags. Proof fields: state, mode, error, trust.

# Store file names accept any UUID version (records written by other tools), lowercase.
_ID = r"MRV-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ID_RE = re.compile(rf"^{_ID}$")
_RECORD_FILE_RE = re.compile(rf"^({_ID})\.json$")
_PREFIX_RE = re.compile(r"^MRV-[0-9a-f-]+$")

#: ``RecordSummary.status`` of a record file that cannot be read or is not a record.
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class RecordSummary:
    """One line of ``mrv list``.

    ``status`` is the run's outcome (``completed``/``failed``/``interrupted``) or
    ``"unreadable"`` for a record file that cannot be used (``error`` says why).
    ``anchor_state`` is ``"none"`` (no sidecar), ``"pending"``, ``"anchored"`` or
    ``"unreadable"`` (the sidecar is corrupt; ``error`` says why). ``tags`` are the
    record's ``experiment.tags``; ``trust`` is what an anchored proof is worth before any
    verification (``verdict.proof_trust``: ``"public"``, ``"private network"``,
    ``"local only"``), ``None`` when not anchored.
    """

    mrv_id: str
    path: Path
    experiment: str | None
    model_name: str | None
    status: str
    start_time: str | None
    duration_s: float | None
    energy_kwh: float | None
    co2_kg: float | None
    anchor_state: str
    anchor_mode: str | None
    error: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    trust: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``path`` as a string)."""
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def _time_key(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _proof_info(proof: Proof) -> tuple[str, str | None]:
    """(anchor_state, anchor_mode) of a sidecar."""
    return proof.status, proof.mode


class RecordStore:
    """Record files and proof sidecars in one directory (created on first write)."""

    def __init__(self, root: str | Path = DEFAULT_DATA_DIR) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RecordStore({str(self.root)!r})"

    # --- paths -----------------------------------------------------------------------

    def path_for(self, mrv_id: str) -> Path:
        """Where the record ``mrv_id`` lives (whether or not it exists)."""
        return self.root / f"{self._checked_id(mrv_id)}.json"

    def proof_path_for(self, mrv_id: str) -> Path:
        """Where the proof sidecar of ``mrv_id`` lives (whether or not it exists)."""
        return self.root / f"{self._checked_id(mrv_id)}{PROOF_SUFFIX}"

    @staticmethod
    def _checked_id(mrv_id: str) -> str:
        # The ID becomes a file name: refuse anything that could leave the directory.
        if not isinstance(mrv_id, str) or not _ID_RE.match(mrv_id):
            raise RecordError(f"{mrv_id!r} is not an MRV ID (expected MRV-<uuid>)")
        return mrv_id

    # --- records ---------------------------------------------------------------------

    def save(self, record: Mapping[str, Any]) -> Path:
        """Validate and write a new record; returns its path.

        Raises :class:`RecordExistsError` if a record with that ID is already stored
        (records are never overwritten) and :class:`StoreError` when the directory
        cannot be written (read-only, full disk, permissions...).
        """
        validate_record(record)
        final = self.path_for(record["mrv_id"])
        data = dump_record_bytes(record)
        self._ensure_root()
        try:
            return atomicfile.write_bytes(final, data, overwrite=False, what="the record")
        except RecordExistsError:
            raise RecordExistsError(f"{final}: a record with this ID already exists; "
                                    "records are never overwritten") from None

    def load(self, mrv_id: str) -> dict[str, Any]:
        """The validated record ``mrv_id``; :class:`RecordNotFoundError` if not stored."""
        path = self.path_for(mrv_id)
        if not path.is_file():
            raise RecordNotFoundError(f"no record {mrv_id} in {self.root}")
        record = load_record_file(path)
        if record["mrv_id"] != mrv_id:
            raise RecordError(f"{path}: the file name says {mrv_id} but the record's mrv_id "
                              f"is {record['mrv_id']}")
        return record

    # --- proofs ----------------------------------------------------------------------

    def load_proof(self, mrv_id: str) -> Proof | None:
        """The proof sidecar of ``mrv_id``, or ``None`` when it has none yet."""
        return read_proof_file(self.proof_path_for(mrv_id))

    def save_proof(self, proof: Proof) -> Path:
        """Write (or atomically replace) the proof sidecar of ``proof.mrv_id``."""
        if not isinstance(proof, Proof):
            raise RecordError("a proof sidecar must be a Proof")
        final = self.proof_path_for(proof.mrv_id)
        data = dump_json_bytes(proof.to_dict())
        self._ensure_root()
        return atomicfile.write_bytes(final, data, what="the proof")

    # --- listing ---------------------------------------------------------------------

    def list(self) -> list[RecordSummary]:
        """Every stored record, oldest ``start_time`` first.

        Files whose size, mtime and inode match the ``.index.json`` cache are not
        re-read, so listing a large store is fast. Record files that cannot be read
        are listed with ``status="unreadable"`` and the reason in ``error``.
        Listing reads records strictly as JSON but does not run the full schema
        (``mrv validate`` / ``verify`` do): that would make a cold listing slow.
        """
        entries = self._scan()
        index = self._read_index()
        fresh: dict[str, builtins.list[Any]] = {}
        reused = 0
        keyed: builtins.list[tuple[tuple[bool, float, str], RecordSummary]] = []
        for name, entry in entries.items():
            match = _RECORD_FILE_RE.match(name)
            if match is None:
                continue
            record_key = self._stat_key(entry)
            if record_key is None:
                continue  # vanished since the scan, or not a regular file
            mrv_id = match.group(1)
            proof_name = mrv_id + PROOF_SUFFIX
            proof_entry = entries.get(proof_name)
            proof_key = self._stat_key(proof_entry) if proof_entry is not None else None
            cached = index.get(name)
            if cached is not None and cached[0] == record_key and cached[1] == proof_key:
                fresh[name] = cached
                reused += 1
            else:
                if cached is not None and cached[0] == record_key:
                    rec = cached[2]
                else:
                    rec = self._read_record_info(self.root / name, mrv_id)
                if cached is not None and cached[1] == proof_key:
                    proof = cached[3]
                else:
                    proof = self._read_proof_info(self.root / proof_name, proof_key)
                fresh[name] = [record_key, proof_key, rec, proof]
            summary, sort_ts = self._summary(mrv_id, self.root / name, fresh[name])
            keyed.append(((sort_ts is None, sort_ts or 0.0, mrv_id), summary))
        if reused != len(fresh) or len(index) != len(fresh):
            self._write_index(fresh)
        keyed.sort(key=lambda pair: pair[0])
        return [summary for _, summary in keyed]

    def pending_ids(self) -> builtins.list[str]:
        """IDs of readable records not anchored yet (no sidecar, or status pending)."""
        return [s.mrv_id for s in self.list()
                if s.status != UNREADABLE and s.anchor_state in ("none", "pending")]

    def resolve(self, ref: str | Path) -> Path:
        """The record file meant by ``ref``: a full ID, a unique ID prefix, or a path.

        Raises :class:`RecordNotFoundError` for an ID (or prefix) with no record and
        :class:`RecordError` for an ambiguous prefix or a path that is not a file.
        """
        text = str(ref).strip()
        if _ID_RE.match(text):
            path = self.path_for(text)
            if path.is_file():
                return path
            raise RecordNotFoundError(f"no record {text} in {self.root}")
        candidate = Path(text).expanduser()
        if isinstance(ref, Path) or os.sep in text or text.endswith(".json") or candidate.exists():
            if candidate.is_file():
                return candidate
            if candidate.is_dir():
                raise RecordError(f"{candidate}: is a directory, not a record file")
            if candidate.exists():  # a device or a FIFO: never read
                raise RecordError(f"{candidate}: not a regular file")
            raise RecordError(f"{candidate}: no such file")
        prefix = text if text[:4].upper() == "MRV-" else f"MRV-{text}"
        prefix = "MRV-" + prefix[4:].lower()
        if not _PREFIX_RE.match(prefix):
            raise RecordError(f"{text!r} is neither a record file nor an MRV ID (MRV-<uuid>)")
        names = sorted(n for n in self._scan() if _RECORD_FILE_RE.match(n) and n.startswith(prefix))
        if not names:
            raise RecordNotFoundError(f"no record matching {text!r} in {self.root}")
        if len(names) > 1:
            shown = ", ".join(n[:-len(".json")] for n in names[:3])
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            raise RecordError(f"{text!r} matches {len(names)} records ({shown}{more}); "
                              "give more characters of the ID")
        return self.root / names[0]

    def stored_id(self, ref: str | Path) -> str:
        """The ID of a record *in this store* meant by ``ref`` (an ID, a prefix, or the path
        of the stored file). A file elsewhere is refused even if it is named like a stored
        record: acting on the store's copy instead would report on a file never read."""
        path = self.resolve(ref)
        match = _RECORD_FILE_RE.match(path.name)
        if match is None or path.resolve() != self.path_for(match.group(1)).resolve():
            raise RecordError(f"{path} is not a record of the store {self.root}: anchoring "
                              "acts on stored records (give its ID, or --data-dir)")
        return match.group(1)

    # --- internals -------------------------------------------------------------------

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError as e:
            raise StoreError(f"data directory {self.root} exists and is not a directory") from e
        except OSError as e:
            raise StoreError(f"cannot create the data directory {self.root}: {atomicfile.reason(e)}") from e

    def _scan(self) -> dict[str, os.DirEntry[str]]:
        try:
            with os.scandir(self.root) as it:
                return {entry.name: entry for entry in it}
        except FileNotFoundError:
            return {}
        except NotADirectoryError as e:
            raise StoreError(f"data directory {self.root} is not a directory") from e
        except OSError as e:
            raise StoreError(f"cannot read the data directory {self.root}: {atomicfile.reason(e)}") from e

    @staticmethod
    def _stat_key(entry: os.DirEntry[str]) -> builtins.list[int] | None:
        try:
            st = entry.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        # Inode too: os.replace within one mtime tick can keep size and mtime.
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    @staticmethod
    def _read_record_info(path: Path, mrv_id: str) -> builtins.list[Any]:
        """The cached form of a record's listing figures (see ``_REC_FIELDS``)."""
        try:
            # Duplicate keys are left to `mrv validate`/verify: checking them needs the
            # pure-Python object hook, which would double the cost of a cold listing.
            value = parse_json_strict(read_file_bytes(path), str(path), check_duplicates=False)
            try:
                check_record_header(value)
            except RecordError as e:
                raise e.with_prefix(str(path)) from e
            if value["mrv_id"] != mrv_id:
                raise RecordError(f"{path}: the file name says {mrv_id} but the record's "
                                  f"mrv_id is {value['mrv_id']!r}")
        except RecordError as e:
            return [None, None, UNREADABLE, None, None, None, None, str(e), None, {}]
        info = summarize(value)
        return [info["experiment"], info["model_name"], info["status"] or "unknown",
                info["start_time"], info["duration_s"], info["energy_kwh"], info["co2_kg"],
                None, _time_key(info["start_time"]), info["tags"]]

    @staticmethod
    def _read_proof_info(path: Path, key: builtins.list[int] | None
                         ) -> builtins.list[Any] | None:
        """The cached form of a sidecar's state: [state, mode, error, trust] or None."""
        if key is None:
            return None
        try:
            proof = read_proof_file(path)
            if proof is None:
                return None
            state, mode = _proof_info(proof)
        except RecordError as e:
            message = str(e)
            if not message.startswith(str(path)):
                message = f"{path}: {message}"
            return [UNREADABLE, None, message, None]
        trust = proof_trust(proof)
        return [state, mode, None, trust.value if trust is not None else None]

    @staticmethod
    def _summary(mrv_id: str, path: Path, entry: builtins.list[Any]
                 ) -> tuple[RecordSummary, float | None]:
        rec, proof = entry[2], entry[3]
        error = rec[7] or (proof[2] if proof else None)
        summary = RecordSummary(
            mrv_id=mrv_id, path=path, experiment=rec[0], model_name=rec[1], status=rec[2],
            start_time=rec[3], duration_s=rec[4], energy_kwh=rec[5], co2_kg=rec[6],
            anchor_state=proof[0] if proof else "none",
            anchor_mode=proof[1] if proof else None, error=error, tags=dict(rec[9]),
            trust=proof[3] if proof else None)
        return summary, rec[8]

    def _read_index(self) -> dict[str, builtins.list[Any]]:
        """The listing cache; anything odd about it means "no cache" (it is rebuilt).

        The file is a header line (format, version, SHA-256 of the body) and the body.
        The checksum stands in for checking the type of every cached field: a cache
        we wrote ourselves is trusted, anything else (truncated, edited, another
        version) is discarded whole.
        """
        try:
            data = (self.root / INDEX_FILE).read_bytes()
            header_bytes, _, body = data.partition(b"\n")
            header = json.loads(header_bytes)
            if (not isinstance(header, dict) or header.get("format") != _INDEX_FORMAT
                    or header.get("version") != _INDEX_VERSION
                    or header.get("sha256") != hashlib.sha256(body).hexdigest()):
                return {}
            entries = json.loads(body)
        except (OSError, ValueError, RecursionError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def _write_index(self, entries: dict[str, builtins.list[Any]]) -> None:
        """Replace the cache atomically; failures are ignored (the files are the truth)."""
        if not self.root.is_dir():
            return
        try:
            body = json.dumps(entries, separators=(",", ":"), allow_nan=False).encode("utf-8")
            header = json.dumps({"format": _INDEX_FORMAT, "version": _INDEX_VERSION,
                                 "sha256": hashlib.sha256(body).hexdigest()}).encode()
            atomicfile.write_bytes(self.root / INDEX_FILE, header + b"\n" + body)
        except (StoreError, ValueError):
            pass
