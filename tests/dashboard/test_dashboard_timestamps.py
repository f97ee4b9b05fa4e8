"""The page and a proof's RFC 3161 timestamps (real tokens, tests/support/tsa.py), in
headless Chromium: each is listed with its authority and stated time and said to be not
checked here; none changes or makes the chain verdict; a malformed one makes the proof
unusable, as it does in Python."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.anchoring.timestamp import request_timestamp
from mrv_ml.record.hashing import compute_hash
from tests.dashboard.test_dashboard import (
    _anchor,
    _drop_file,
    _open,
    _registry,
    _set_proof,
    _sidecar,
    _verdict,
)
from tests.support.browser import ServedDashboard
from tests.support.records import make_sample_record
from tests.support.tsa import LocalTSA

pytestmark = pytest.mark.browser


def _stamped(proof: dict[str, Any], record: dict[str, Any], tsa: LocalTSA) -> dict[str, Any]:
    return dict(proof, timestamps=[request_timestamp(record, tsa.url).to_dict()])


def test_timestamps_are_listed_not_counted(page: Any, dashboard_server: ServedDashboard,
                                           tmp_path: Path) -> None:
    record = make_sample_record()
    honest = _anchor(dashboard_server, record)
    with LocalTSA(tmp_path / "tsa") as tsa:
        proof = _stamped(_sidecar(record, honest, _registry(dashboard_server)), record, tsa)
        unanchored = make_sample_record()
        pending = _stamped({"proof_version": "1.0", "mrv_id": unanchored["mrv_id"],
                            "status": "pending", "record_hash": {
                                "algorithm": "sha256-jcs",
                                "digest": compute_hash(unanchored)}}, unanchored, tsa)
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, record)
    assert _verdict(page) == "VALID"
    assert page.is_hidden("#anchors")  # found through the logs: no proof, nothing listed
    _set_proof(page, tmp_path, proof)
    page.locator("#anchors[data-count='1']:not([hidden])").wait_for()
    listed = page.inner_text("#anchors")
    assert "RFC 3161 timestamp 1" in listed and "mrv test TSA" in listed
    assert proof["timestamps"][0]["gen_time"] in listed and "not checked here" in listed
    assert "--tsa-root ROOT.pem" in listed and "the chain anchor's alone" in listed
    assert page.get_attribute("#verdict", "data-verdict") == "VALID"

    # the same stamp beside a changed record: the chain says TAMPERED, and so does the page
    changed = dict(record, energy_emissions=dict(record["energy_emissions"], co2_kg=9.0))
    _drop_file(page, tmp_path, changed, "changed.json")
    page.locator("#verdict[data-verdict='TAMPERED']").wait_for()
    assert not page.is_hidden("#anchors")

    # a record only timestamped: the chain never saw it (NOT FOUND, as mrv verify says),
    # and its stamp does not make it anything more. (This waited for an error once, and
    # passed when the verification of the record alone, overtaken by the proof's, landed
    # last: the page now drops a verification that a newer input overtook.)
    _drop_file(page, tmp_path, unanchored, "r2.json")
    _set_proof(page, tmp_path, pending, "pending.proof.json")
    page.locator("#verdict[data-verdict='NOT_FOUND']:not([hidden])").wait_for()
    assert "still pending; it was never anchored" in page.inner_text("#verdict")
    assert page.is_hidden("#error") and page.get_attribute("#anchors", "data-count") == "1"


@pytest.mark.parametrize(("field", "value"), [
    ("tsr", "not base64!"), ("tsr", "QUJD"[:3]), ("tsa_url", "file:///etc/passwd"),
    ("kind", "opentimestamps"), ("certificates", ["x" * 20000]),
])
def test_a_malformed_timestamp_makes_the_proof_unusable(
        page: Any, dashboard_server: ServedDashboard, tmp_path: Path, field: str,
        value: object) -> None:
    record = make_sample_record()
    honest = _anchor(dashboard_server, record)
    stamp = {"kind": "rfc3161", "tsa_url": "http://tsa.example/tsr",
             "tsr": base64.b64encode(b"\x30\x03\x02\x01\x00").decode(), field: value}
    proof = dict(_sidecar(record, honest, _registry(dashboard_server)), timestamps=[stamp])
    _open(page, dashboard_server)
    _drop_file(page, tmp_path, record)
    assert _verdict(page) == "VALID"
    _set_proof(page, tmp_path, proof)
    page.locator("#error[data-key='malformed_proof']").wait_for()
    assert "timestamps[0]" in page.inner_text("#error")
    assert page.is_hidden("#verdict")  # no earlier verdict beside an unusable proof
