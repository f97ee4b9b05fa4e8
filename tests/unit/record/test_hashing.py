"""The fingerprint: RFC 8785 canonical bytes and SHA-256, checked against the shared
vectors file, the RFC's own examples, and an independent JavaScript canonicalizer."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrv_ml.errors import NonFiniteNumberError, RecordError
from mrv_ml.record.hashing import HASH_ALGORITHM, canonical_bytes, compute_hash, hash_to_bytes32
from tests.support.records import make_sample_record

REPO = Path(__file__).resolve().parents[3]


def _vectors() -> list[dict[str, Any]]:
    text = (resources.files("mrv_ml") / "data" / "hash_vectors.json").read_text("utf-8")
    vectors: list[dict[str, Any]] = json.loads(text)
    return vectors


VECTORS = _vectors()


def test_vectors_file_has_the_shared_format() -> None:
    assert len(VECTORS) >= 15
    assert all(set(v) == {"name", "value", "canonical", "sha256"} for v in VECTORS)
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)
    assert all(len(v["sha256"]) == 64 and int(v["sha256"], 16) >= 0 for v in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_round_trip(vector: dict[str, Any]) -> None:
    canonical = canonical_bytes(vector["value"])
    assert canonical == vector["canonical"].encode("utf-8")
    assert hashlib.sha256(canonical).hexdigest() == vector["sha256"]
    # Canonical text is itself JSON that parses back to the same value.
    assert json.loads(canonical) == vector["value"]


def test_realistic_record_vector_is_a_valid_record_and_hashes_alike() -> None:
    from mrv_ml.record.schema import validate_record

    vector = next(v for v in VECTORS if v["name"] == "full realistic MRV record")
    validate_record(vector["value"])
    assert compute_hash(vector["value"]) == vector["sha256"]


def test_vectors_file_is_what_the_script_generates() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_hash_vectors.py"),
                             "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# RFC 8785 Appendix B: IEEE 754 bit patterns and their required serialization.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), RFC8785_NUMBERS)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_bytes({"n": value}) == f'{{"n":{expected}}}'.encode()


def test_rfc8785_section_3_2_2_example() -> None:
    source = r'''{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }'''
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,'
                '1e-27],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert canonical_bytes(json.loads(source)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_key_order_by_utf16_code_units() -> None:
    source = r'''{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew",
                  "1": "One", "\ud83d\ude00": "Emoji", "\u0080": "Control",
                  "\u00f6": "o"}'''
    keys = list(json.loads(canonical_bytes(json.loads(source))))
    # The emoji (U+1F600, surrogates D83D DE00) sorts BEFORE U+FB33: code units, not points.
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_vectors_agree_with_an_independent_javascript_canonicalizer() -> None:
    # JSON.stringify formats numbers and strings exactly as RFC 8785 requires and
    # Array.prototype.sort compares UTF-16 code units: a second implementation.
    script = r"""
const fs = require('fs'); const crypto = require('crypto');
function jcs(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(jcs).join(',') + ']';
  return '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + jcs(v[k])).join(',') + '}';
}
const vectors = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
const out = vectors.map(x => {
  const c = jcs(x.value);
  return {name: x.name, canonical: c, sha256: crypto.createHash('sha256').update(c, 'utf8').digest('hex')};
});
process.stdout.write(JSON.stringify(out));
"""
    path = resources.files("mrv_ml") / "data" / "hash_vectors.json"
    result = subprocess.run(["node", "-e", script, str(path)], capture_output=True, text=True,
                            timeout=60, check=True)
    js = {v["name"]: v for v in json.loads(result.stdout)}
    for vector in VECTORS:
        assert js[vector["name"]]["canonical"] == vector["canonical"], vector["name"]
        assert js[vector["name"]]["sha256"] == vector["sha256"], vector["name"]


@pytest.mark.parametrize(("record", "field"), [
    ({"energy_emissions": {"co2_kg": float("nan")}}, "energy_emissions.co2_kg"),
    ({"a": [1.0, float("inf")]}, "a[1]"),
    ({"deep": {"list": [{"x": float("-inf")}]}}, "deep.list[0].x"),
])
def test_non_finite_numbers_are_rejected_naming_the_field(record: dict[str, Any],
                                                          field: str) -> None:
    with pytest.raises(NonFiniteNumberError) as info:
        compute_hash(record)
    assert str(info.value).startswith(f"{field}:")


@pytest.mark.parametrize("number", [2**53, -(2**53), 10**30])
def test_integers_beyond_the_safe_range_are_rejected_naming_the_field(number: int) -> None:
    with pytest.raises(RecordError, match=r"^training\.epochs: integer"):
        compute_hash({"training": {"epochs": number}})


@pytest.mark.parametrize("value", [{"k": {1, 2}}, {"k": b"bytes"}, {1: "non-string key"}])
def test_values_json_cannot_hold_are_rejected(value: dict[Any, Any]) -> None:
    with pytest.raises(RecordError):
        compute_hash(value)


def test_hash_is_independent_of_key_insertion_order() -> None:
    record = make_sample_record()
    reordered = {key: record[key] for key in reversed(list(record))}
    reordered["energy_emissions"] = dict(reversed(list(record["energy_emissions"].items())))
    assert list(reordered) != list(record)
    assert compute_hash(reordered) == compute_hash(record)


def test_any_change_changes_the_hash() -> None:
    record = make_sample_record()
    changed = json.loads(json.dumps(record))
    changed["energy_emissions"]["co2_kg"] = record["energy_emissions"]["co2_kg"] + 1e-12
    assert compute_hash(changed) != compute_hash(record)


def test_non_ascii_is_hashed_as_raw_utf8_not_escapes() -> None:
    record = {"name": "é日本語🌱", "e\u0301": 1}
    assert canonical_bytes(record) == '{"e\u0301":1,"name":"é日本語🌱"}'.encode()
    # NFC and NFD spellings are different text, hence different fingerprints.
    assert compute_hash({"k": "\u00e9"}) != compute_hash({"k": "e\u0301"})


def test_hash_is_not_json_dumps() -> None:
    record = {"n": 1e21, "s": "é"}
    naive = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    assert compute_hash(record) != naive
    assert canonical_bytes(record) == '{"n":1e+21,"s":"é"}'.encode()


def _reparses_as_safe_number(x: float) -> bool:
    # JCS prints an integral double below 1e21 without exponent, which JSON readers
    # then take as an integer; beyond 2**53 such an integer is (rightly) refused.
    return not (x.is_integer() and 2**53 <= abs(x) < 1e21)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).filter(_reparses_as_safe_number)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_canonical_form_round_trips_and_ignores_order(value: dict[str, Any]) -> None:
    canonical = canonical_bytes(value)
    assert json.loads(canonical) == value
    assert canonical_bytes(dict(reversed(list(value.items())))) == canonical
    assert canonical_bytes(json.loads(canonical)) == canonical  # idempotent


def test_hash_to_bytes32() -> None:
    digest = compute_hash({"a": 1})
    assert HASH_ALGORITHM == "sha256-jcs"
    assert hash_to_bytes32(digest) == bytes.fromhex(digest)
    assert hash_to_bytes32("0x" + digest) == bytes.fromhex(digest)
    for bad in ("abc", "zz" * 32, "0x" + "0" * 62):
        with pytest.raises(RecordError):
            hash_to_bytes32(bad)
