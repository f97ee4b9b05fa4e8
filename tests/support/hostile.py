"""The hostile-input corpus: files, proofs, names and settings an attacker (or bad luck)
hands mrv-ml, each with the outcome every entry point must give.

Plain data and file builders, no mrv-ml imports beyond the sample record, so the corpus
can also be run against an older checkout (``scripts/hostile_corpus.py``) to count what
failed before a fix. ``tests/adversarial/test_hostile_corpus.py`` runs it against every entry point.

Each :class:`Kind` writes its input into a directory and says what it is:

- ``expect="bad_input"``: no usable record. Every command that reads it exits 3 with one
  line on stderr and nothing on stdout; Python ``verify`` raises ``RecordError``; the page
  shows an error, never a verdict.
- ``expect="valid"``: strange but a usable record (escape sequences, scripts, bidi marks
  in its text...). It is read, and shown escaped: no control character reaches a terminal.
- ``expect="no_file"``: the name is not a readable regular file (missing, a directory, a
  device, a FIFO, a symlink loop): exit 3, one line, and never a read or a hang.

Proof kinds are a valid record beside a hostile ``.proof.json`` sidecar: the record is
fine, the proof is unusable (exit 3, ``malformed_proof`` or ``proof_of_another_record``).
"""

from __future__ import annotations

import copy
import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.support.records import make_sample_record

Builder = Callable[[Path], Path]


@dataclass(frozen=True)
class Kind:
    name: str
    build: Builder
    expect: str  # "bad_input" | "valid" | "no_file" | "bad_proof"


def _text(content: str | bytes, name: str = "record.json") -> Builder:
    def build(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(content.encode("utf-8", "surrogatepass")
                         if isinstance(content, str) else content)
        return path
    return build


def _record(mutate: Callable[[dict[str, Any]], Any], *, raw: Callable[[str], str] | None = None
            ) -> Builder:
    """A sample record changed by ``mutate`` (in place), dumped, then ``raw`` on the text."""
    def build(directory: Path) -> Path:
        record = make_sample_record()
        mutate(record)
        text = json.dumps(record, ensure_ascii=False, allow_nan=True)
        if raw is not None:
            changed = raw(text)
            # a change that finds nothing to change would test a valid record
            assert changed != text, "the hostile change matched nothing in the sample record"
            text = changed
        path = directory / "record.json"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        return path
    return build


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def mutate(record: dict[str, Any]) -> None:
        node = record
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def mutate(record: dict[str, Any]) -> None:
        node = record
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return mutate


def _special(make: Callable[[Path], None], name: str = "special.json") -> Builder:
    def build(directory: Path) -> Path:
        path = directory / name
        make(path)
        return path
    return build


def _symlink_loop(path: Path) -> None:
    os.symlink(path.name, path)


def _oversize(path: Path) -> None:
    with path.open("wb") as f:  # sparse: 65 MiB on paper, nothing on disk
        f.truncate(65 * 1024 * 1024)


def _device(path: Path) -> None:
    os.symlink("/dev/zero", path)


def _proof(make: Callable[[dict[str, Any], dict[str, Any]], Any]) -> Builder:
    """A valid record and a sidecar built by ``make(record, proof)`` from a plausible proof."""
    def build(directory: Path) -> Path:
        record = make_sample_record()
        path = directory / f"{record['mrv_id']}.json"
        path.write_text(json.dumps(record))
        proof: dict[str, Any] = {
            "mrv_id": record["mrv_id"], "record_hash": "ab" * 32,
            "hash_algorithm": "sha256-jcs",
            "anchor": {"chain_id": 31337, "network": "anvil",
                       "contract_address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                       "submitter": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                       "tx_hash": "0x" + "11" * 32, "block_number": 5,
                       "anchored_at": "2026-11-27T10:00:00Z"},
        }
        made = make(record, proof)
        text = made if isinstance(made, str) else json.dumps(proof, allow_nan=True)
        (directory / f"{record['mrv_id']}.proof.json").write_text(text)
        return path
    return build


def _merkle(part: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def make(record: dict[str, Any], proof: dict[str, Any]) -> None:
        proof["mode"] = "batch"
        proof["merkle"] = part
    return make


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


_VALID_MERKLE = {"format": "openzeppelin-standard-merkle-tree-v1", "leaf_encoding": ["bytes32"],
                 "root": "0x" + "22" * 32, "proof": ["0x" + "33" * 32], "leaf_count": 2}


def _merkle_with(**changes: Any) -> dict[str, Any]:
    part = copy.deepcopy(_VALID_MERKLE)
    part.update(changes)
    return part


def _gzip(directory: Path) -> Path:
    path = directory / "record.json"
    path.write_bytes(gzip.compress(json.dumps(make_sample_record()).encode()))
    return path


def _proof_as(directory: Path) -> Path:
    record = make_sample_record()
    path = directory / "record.json"
    path.write_text(json.dumps({"mrv_id": record["mrv_id"], "record_hash": "ab" * 32,
                                "hash_algorithm": "sha256-jcs", "anchor": None}))
    return path


def _utf16(directory: Path) -> Path:
    path = directory / "record.json"
    path.write_bytes(json.dumps(make_sample_record()).encode("utf-16"))
    return path



_ESC = "\x1b[2J\x1b]0;pwned\x07"

RECORD_KINDS: list[Kind] = [
    Kind("empty file", _text(""), "bad_input"),
    Kind("whitespace only", _text(" \n\t\r\n"), "bad_input"),
    Kind("json null", _text("null"), "bad_input"),
    Kind("json array", _text("[]"), "bad_input"),
    Kind("json string", _text('"MRV-record"'), "bad_input"),
    Kind("json number", _text("42"), "bad_input"),
    Kind("empty object", _text("{}"), "bad_input"),
    Kind("truncated", _record(lambda r: None, raw=lambda t: t[: len(t) // 2]), "bad_input"),
    Kind("invalid utf-8", _text(b'{"schema_version": "1.0", "x": "\xff\xfe\xfa"}'), "bad_input"),
    Kind("utf-16 with bom", _utf16, "bad_input"),
    Kind("utf-8 bom", _record(lambda r: None, raw=lambda t: "\ufeff" + t), "bad_input"),
    Kind("duplicate key", _record(lambda r: None, raw=lambda t: t.replace(
        '"mrv_id": ', '"mrv_id": "MRV-x", "mrv_id": ', 1)),
        "bad_input"),
    Kind("NaN literal", _record(_set("energy_emissions.co2_kg", float("nan"))), "bad_input"),
    Kind("Infinity literal", _record(_set("energy_emissions.energy_kwh", float("inf"))),
         "bad_input"),
    Kind("-Infinity literal", _record(_set("training.details.loss", float("-inf"))),
         "bad_input"),
    Kind("integer beyond 2^53", _record(_set("training.details.steps", 2**53 + 1)), "bad_input"),
    Kind("float overflow 1e400", _record(lambda r: None, raw=lambda t: t.replace(
        '"learning_rate": 0.001', '"learning_rate": 1e400', 1)), "bad_input"),
    Kind("deep array nesting", _text(_nested(100_000)), "bad_input"),
    Kind("deep object nesting", _text('{"a":' * 20_000 + "1" + "}" * 20_000), "bad_input"),
    Kind("deep nesting inside a record", _record(_set("training.details.deep", 0),
                                                 raw=lambda t: t.replace('"deep": 0',
                                                                         '"deep": ' + _nested(5000), 1)),
         "bad_input"),
    Kind("lone surrogate", _record(_set("experiment.description", "\ud800")), "bad_input"),
    Kind("raw control character", _record(lambda r: None, raw=lambda t: t.replace(
        '"MNIST"', '"MN\x01IST"', 1)), "bad_input"),
    Kind("raw newline in a string", _record(lambda r: None, raw=lambda t: t.replace(
        '"MNIST"', '"MN\nIST"', 1)), "bad_input"),
    Kind("id with trailing newline", _record(lambda r: r.update(mrv_id=r["mrv_id"] + "\n")),
         "bad_input"),
    Kind("id with path traversal", _record(_set("mrv_id", "../../../etc/passwd")), "bad_input"),
    Kind("id in upper case", _record(lambda r: r.update(mrv_id=r["mrv_id"].upper()
                                                        .replace("MRV-", "MRV-", 1))),
         "bad_input"),
    Kind("id too short", _record(_set("mrv_id", "MRV-1")), "bad_input"),
    Kind("id not a string", _record(_set("mrv_id", 12345)), "bad_input"),
    Kind("unknown schema version", _record(_set("schema_version", "9.9")), "bad_input"),
    Kind("schema version missing", _record(_delete("schema_version")), "bad_input"),
    Kind("schema version a number", _record(_set("schema_version", 1.0)), "bad_input"),
    Kind("energy negative", _record(_set("energy_emissions.energy_kwh", -1.0)), "bad_input"),
    Kind("energy a string", _record(_set("energy_emissions.energy_kwh", "0.5")), "bad_input"),
    Kind("co2 missing", _record(_delete("energy_emissions.co2_kg")), "bad_input"),
    Kind("tags a list", _record(_set("experiment.tags", ["a", "b"])), "bad_input"),
    Kind("experiment a string", _record(_set("experiment", "resnet")), "bad_input"),
    Kind("unknown top-level field", _record(_set("injected", {"admin": True})), "bad_input"),
    Kind("bad timestamp", _record(_set("timestamps.start_time", "2026-13-45T99:99:99Z")),
         "bad_input"),
    Kind("status outside the enum", _record(_set("outcome.status", "owned")), "bad_input"),
    Kind("trailing garbage", _record(lambda r: None, raw=lambda t: t + " trailing"), "bad_input"),
    Kind("two documents", _record(lambda r: None, raw=lambda t: t + "\n" + t), "bad_input"),
    Kind("comment", _record(lambda r: None, raw=lambda t: "// note\n" + t), "bad_input"),
    Kind("single quotes", _text("{'schema_version': '1.0'}"), "bad_input"),
    Kind("trailing comma", _record(lambda r: None, raw=lambda t: t[:-1] + ",}"), "bad_input"),
    Kind("record inside an array", _record(lambda r: None, raw=lambda t: "[" + t + "]"),
         "bad_input"),
    Kind("gzip compressed", _gzip, "bad_input"),
    Kind("a proof given as the record", _proof_as, "bad_input"),
    Kind("wide object (100,000 keys)", _record(_set("training.details", {
        f"k{i}": i for i in range(100_000)})), "valid"),
    Kind("huge string (8 MB)", _record(_set("experiment.description", "x" * 8_000_000)),
         "valid"),
    Kind("escape sequences in text", _record(lambda r: r["experiment"].update(
        name=_ESC + "exp", model_name=_ESC + "model", description=_ESC)), "valid"),
    Kind("html and script in text", _record(lambda r: r["experiment"].update(
        name="<img src=x onerror=alert(1)>", description="<script>window.__pwned=1</script>",
        model_name="</title><script>window.__pwned=1</script>")), "valid"),
    Kind("bidi override in text", _record(_set("experiment.name", "gpt\u202egnp.exe")), "valid"),
    Kind("NUL character escaped in text", _record(_set("experiment.description", "a\u0000b")),
         "valid"),
    Kind("__proto__ key in tags", _record(lambda r: None, raw=lambda t: t.replace(
        '"tags": {', '"tags": {"__proto__": "polluted", "constructor": "x", ', 1)), "valid"),
    Kind("emoji and combining marks", _record(_set("experiment.name", "e\u0301\U0001F525" * 50)),
         "valid"),
    Kind("crlf line endings", _record(lambda r: None,
                                      raw=lambda t: json.dumps(json.loads(t), indent=2)
                                      .replace("\n", "\r\n")), "valid"),
]


FILE_KINDS: list[Kind] = [
    Kind("missing file", lambda d: d / "missing.json", "no_file"),
    Kind("a directory", _special(lambda p: p.mkdir(), "dir.json"), "no_file"),
    Kind("/dev/zero", _special(_device, "zero.json"), "no_file"),
    Kind("a fifo", _special(lambda p: os.mkfifo(p), "fifo.json"), "no_file"),
    Kind("symlink loop", _special(_symlink_loop, "loop.json"), "no_file"),
    Kind("over the size cap (65 MiB)", _special(_oversize, "big.json"), "bad_input"),
    Kind("name with a newline", _special(lambda p: p.write_text("{}"), "new\nline.json"),
         "bad_input"),
    Kind("name starting with a dash", _special(lambda p: p.write_text("null"), "-rf.json"),
         "bad_input"),
]

PROOF_KINDS: list[Kind] = [
    Kind("proof not json", _proof(lambda r, p: "not json"), "bad_proof"),
    Kind("proof empty", _proof(lambda r, p: ""), "bad_proof"),
    Kind("proof an array", _proof(lambda r, p: "[]"), "bad_proof"),
    Kind("proof duplicate key", _proof(lambda r, p: json.dumps(p).replace(
        '"mrv_id"', '"mrv_id": "x", "mrv_id"', 1)), "bad_proof"),
    Kind("proof of another record", _proof(lambda r, p: p.update(
        mrv_id="MRV-00000000-0000-4000-8000-000000000000")), "bad_proof"),
    Kind("proof chain id a string", _proof(lambda r, p: p["anchor"].update(chain_id="1")),
         "bad_proof"),
    Kind("proof chain id negative", _proof(lambda r, p: p["anchor"].update(chain_id=-1)),
         "bad_proof"),
    Kind("proof chain id beyond 2^53", _proof(lambda r, p: p["anchor"].update(chain_id=2**60)),
         "bad_proof"),
    Kind("proof address not an address", _proof(lambda r, p: p["anchor"].update(
        contract_address="0xnothex")), "bad_proof"),
    Kind("proof tx hash short", _proof(lambda r, p: p["anchor"].update(tx_hash="0x12")),
         "bad_proof"),
    Kind("proof block negative", _proof(lambda r, p: p["anchor"].update(block_number=-5)),
         "bad_proof"),
    Kind("proof NaN", _proof(lambda r, p: p["anchor"].update(block_number=float("nan"))),
         "bad_proof"),
    Kind("proof deeply nested", _proof(lambda r, p: json.dumps(p)[:-1] + ', "x": '
                                       + _nested(50_000) + "}"), "bad_proof"),
    Kind("merkle part null", _proof(_merkle(None)), "bad_proof"),
    Kind("merkle leaf encoding 5", _proof(_merkle(_merkle_with(leaf_encoding=5))), "bad_proof"),
    Kind("merkle proof of 200,000 steps", _proof(_merkle(_merkle_with(
        proof=["0x" + "33" * 32] * 200_000))), "bad_proof"),
    Kind("merkle proof step not hex", _proof(_merkle(_merkle_with(proof=["0xzz"]))),
         "bad_proof"),
    Kind("merkle root short", _proof(_merkle(_merkle_with(root="0x22"))), "bad_proof"),
    Kind("merkle format unknown", _proof(_merkle(_merkle_with(format="my-own-tree"))),
         "bad_proof"),
    Kind("merkle leaf count zero", _proof(_merkle(_merkle_with(leaf_count=0))), "bad_proof"),
]

ALL_KINDS: list[Kind] = RECORD_KINDS + FILE_KINDS + PROOF_KINDS

# Settings an attacker or a typo sets: each must be a one-line configuration error (exit 7)
# before anything runs, whatever the command.
HOSTILE_SETTINGS: list[tuple[str, dict[str, str]]] = [
    ("PUE nan", {"MRV_PUE": "nan"}),
    ("PUE inf", {"MRV_PUE": "inf"}),
    ("PUE 1e308", {"MRV_PUE": "1e308"}),
    ("PUE negative", {"MRV_PUE": "-1"}),
    ("PUE text", {"MRV_PUE": "high"}),
    ("tx timeout nan", {"MRV_TX_TIMEOUT": "nan"}),
    ("tx timeout negative", {"MRV_TX_TIMEOUT": "-3"}),
    ("confirmations negative", {"MRV_CONFIRMATIONS": "-1"}),
    ("confirmations text", {"MRV_CONFIRMATIONS": "many"}),
    ("rpc url ftp", {"BLOCKCHAIN_RPC_URL": "ftp://example.org/rpc"}),
    ("rpc url file", {"BLOCKCHAIN_RPC_URL": "file:///etc/passwd"}),
    ("rpc url not a url", {"BLOCKCHAIN_RPC_URL": "not a url"}),
    ("unknown network", {"NETWORK": "moonbase-omega"}),
    ("contract address invalid", {"CONTRACT_ADDRESS": "0x1234"}),
    ("private key 63 digits", {"PRIVATE_KEY": "0x" + "ab" * 31 + "c"}),
    ("private key not hex", {"PRIVATE_KEY": "0x" + "zz" * 32}),
    ("config file malformed", {"MRV_CONFIG": "@malformed-toml"}),
]


# --- running the corpus through the command line ------------------------------------------

FILE_COMMANDS = ("hash", "validate", "verify", "report", "show")

# The exit code each command gives, by what the input is.
EXPECTED_EXIT: dict[str, dict[str, int]] = {
    "bad_input": dict.fromkeys(FILE_COMMANDS, 3),
    "no_file": dict.fromkeys(FILE_COMMANDS, 3),
    "valid": {"hash": 0, "validate": 0, "verify": 9, "report": 0, "show": 0},
    # the record is fine and is shown; its anchoring line says the proof is unusable
    "bad_proof": {"hash": 0, "validate": 0, "verify": 3, "report": 0, "show": 0},
}


@dataclass(frozen=True)
class Outcome:
    kind: str
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    problems: tuple[str, ...]


def judge(kind: str, argv: tuple[str, ...], expected: int, code: int, out: str, err: str
          ) -> Outcome:
    """The invocation, with every way it fell short of the corpus's rules."""
    problems = []
    if code != expected:
        problems.append(f"exit {code}, expected {expected}")
    if "Traceback" in out + err:
        problems.append("traceback")
    if code != 0 and len(err.strip().splitlines()) != 1:
        problems.append(f"{len(err.strip().splitlines())} lines on stderr")
    if any(c in out + err for c in "\x1b\x07\x9b"):
        problems.append("a terminal control character in the output")
    if "internal error" in err:
        problems.append("reported as an internal error")
    return Outcome(kind, argv, code, out, err, tuple(problems))


def run_cli(main: Callable[[list[str]], None], argv: list[str]) -> tuple[int, str, str]:
    """``mrv ARGV`` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io
    import sys

    out, err = io.TextIOWrapper(io.BytesIO(), "utf-8"), io.TextIOWrapper(io.BytesIO(), "utf-8")
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # noqa: BLE001 - an escaped exception is what we look for
            code = -1
            print(f"Traceback (escaped): {type(e).__name__}: {e}", file=sys.stderr)
    values = []
    for stream in (out, err):
        stream.flush()
        values.append(stream.buffer.getvalue().decode("utf-8", "replace"))  # type: ignore[attr-defined]
    return code, values[0], values[1]


def run_file_kind(main: Callable[[list[str]], None], kind: Kind, directory: Path
                  ) -> list[Outcome]:
    """Every file-reading command on the kind's input (built in ``directory``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = kind.build(directory)
    outcomes = []
    for command in FILE_COMMANDS:
        argv = [command, "--", str(path)] if command != "show" else [command, str(path)]
        code, out, err = run_cli(main, argv)
        outcome = judge(kind.name, tuple(argv), EXPECTED_EXIT[kind.expect][command],
                        code, out, err)
        if kind.expect == "bad_proof" and command in ("report", "show") and (
                "unreadable proof" not in " ".join(out.split())):
            outcome = replace(outcome, problems=(*outcome.problems,
                                                 "an unusable proof not reported as such"))
        outcomes.append(outcome)
    return outcomes
