#!/usr/bin/env python3
"""Regenerate ``src/mrv_ml/data/verdict_cases.json``: the verdict table shared by Python's
``verify``, ``mrv verify`` and the dashboard (tests/unit/verification/test_verdict_cases.py runs the first two
on the embedded chain and anvil, tests/dashboard/test_dashboard_cases.py the page in Chromium).

Each case gives the record (``record``, or the raw file text ``record_text`` for the
strict-reading cases), its proof sidecar (or ``null``), an expected submitter to pin
(``pin``, or ``null``), what the chain holds (``chain``: single registrations and batch
roots, each with its sender) and the expected outcome: a verdict ``status`` with the
``reason`` key, or an ``error`` class with its ``key``; always the ``exit_code``.

Strings starting with ``$`` are placeholders the test harness fills in for the chain it
runs on: ``$registry`` (the registry it deployed), ``$chain_id`` (an integer), ``$dev0``
and ``$dev1`` (two funded development accounts), ``$impostor`` (a contract that answers
every call with ``chain.impostor_answers``, as a fake registry would). Records and roots are fixed, so the
cases run on any chain.

Usage:  python scripts/make_verdict_cases.py [--check]
  --check  exit 1 if the committed file differs from what would be generated.
"""

from __future__ import annotations

import copy
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _generated import write_or_check  # noqa: E402
from make_hash_vectors import REALISTIC_RECORD  # noqa: E402

from mrv_ml.chain.keys import _from_key  # noqa: E402
from mrv_ml.chain.signing import SIGNATURE_SCHEME, sign  # noqa: E402
from mrv_ml.config import Secret  # noqa: E402
from mrv_ml.record.hashing import compute_hash  # noqa: E402
from mrv_ml.record.merkle import StandardMerkleTree, keccak  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "src" / "mrv_ml" / "data" / "verdict_cases.json"
OTHER_CHAIN_ID = 11155111  # Sepolia: never the chain a test runs on
NO_CODE = "0x00000000000000000000000000000000DeaDBeef"  # nothing deployed there on a dev chain


# Researchers' signing keys: fixed, and no chain account (a signing key needs no funds).
RESEARCHER_A = _from_key(Secret(keccak(b"mrv-ml verdict case researcher A").hex()))
RESEARCHER_B = _from_key(Secret(keccak(b"mrv-ml verdict case researcher B").hex()))


def _id(name: str) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"mrv-ml verdict case {name}").bytes
    return f"MRV-{uuid.UUID(bytes=digest, version=4)}"


def record(name: str) -> dict[str, Any]:
    data = copy.deepcopy(REALISTIC_RECORD)
    data["mrv_id"] = _id(name)
    data["experiment"]["name"] = f"verdict case {name}"
    return data


def edited(data: dict[str, Any]) -> dict[str, Any]:
    """The same record with its CO2 figure forged."""
    forged = copy.deepcopy(data)
    forged["energy_emissions"]["co2_kg"] = 4.44e-08
    return forged


def single_proof(data: dict[str, Any], submitter: str = "$dev0", **anchor: Any) -> dict[str, Any]:
    return {"proof_version": "1.0", "mrv_id": data["mrv_id"], "status": "anchored",
            "record_hash": {"algorithm": "sha256-jcs", "digest": compute_hash(data)},
            "attempts": [],
            "anchor": {"mode": "single", "network": "test", "chain_id": "$chain_id",
                       "contract_address": "$registry", "submitter": submitter,
                       "tx_hash": None, "block_number": None, **anchor}}


def batch_proofs(records: list[dict[str, Any]], submitter: str = "$dev0"
                 ) -> tuple[str, list[dict[str, Any]]]:
    leaves = sorted("0x" + compute_hash(r) for r in records)
    tree = StandardMerkleTree.of(leaves)
    proofs = []
    for r in records:
        n = leaves.index("0x" + compute_hash(r))
        proof = single_proof(r, submitter)
        proof["anchor"].update(mode="batch", merkle={
            "format": "openzeppelin-standard-merkle-tree-v1", "leaf_encoding": ["bytes32"],
            "root": tree.root, "proof": tree.get_proof(n), "leaf_index": n,
            "leaf_count": len(leaves)})
        proofs.append(proof)
    return tree.root, proofs


def signed(proof: dict[str, Any], data: dict[str, Any], by: Any = RESEARCHER_A,
           claimed: Any = None) -> dict[str, Any]:
    """The proof with a signature over ``data`` made by ``by`` (claimed to be ``claimed``'s)."""
    out = copy.deepcopy(proof)
    out["signature"] = {"scheme": SIGNATURE_SCHEME, "signer": (claimed or by).address,
                        "signature": sign(by, data["mrv_id"], compute_hash(data))}
    return out


def with_anchor(proof: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(proof)
    changed["anchor"].update(changes)
    return changed


def reg(sender: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"from": sender, "mrv_id": data["mrv_id"], "hash": compute_hash(data)}


def verdict(status: str, reason: str) -> dict[str, Any]:
    codes = {"VALID": 0, "TAMPERED": 1, "NOT_FOUND": 2, "SUBMITTER_MISMATCH": 5}
    return {"status": status, "reason": reason, "exit_code": codes[status]}


def error(cls: str, key: str, exit_code: int) -> dict[str, Any]:
    return {"error": cls, "key": key, "exit_code": exit_code}


def case(name: str, about: str, data: dict[str, Any] | str, proof: dict[str, Any] | None,
         expect: dict[str, Any], *, registrations: Sequence[dict[str, Any]] = (),
         batches: Sequence[dict[str, Any]] = (), pin: str | None = None,
         signer_pin: str | None = None, impostor: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "about": about}
    item["record_text" if isinstance(data, str) else "record"] = data
    chain: dict[str, Any] = {"registrations": list(registrations), "batches": list(batches)}
    if impostor is not None:
        chain["impostor_answers"] = impostor  # what $impostor's every call returns
    item.update(proof=proof, pin=pin, signer_pin=signer_pin, chain=chain, expect=expect)
    return item


def build() -> dict[str, Any]:
    cases = []
    # --- anchored alone (registerMRV) -------------------------------------------------
    s1, s2, s3, s4 = record("s1"), record("s2"), record("s3"), record("s4")
    s5, s6, s7, s10 = record("s5"), record("s6"), record("s7"), record("s10")
    s11, s12 = record("s11"), record("s12")
    on_s1 = [reg("$dev0", s1)]
    cases += [
        case("single_valid", "anchored alone by the proof's submitter, unchanged", s1,
             single_proof(s1), verdict("VALID", "registered_by_submitter"),
             registrations=on_s1),
        case("single_tampered", "the CO2 figure was edited after anchoring", edited(s2),
             single_proof(s2), verdict("TAMPERED", "hash_differs"),
             registrations=[reg("$dev0", s2)]),
        case("single_unknown_id", "the proof claims a registration the chain does not hold",
             s3, single_proof(s3), verdict("NOT_FOUND", "submitter_never_registered")),
        case("single_registered_by_another", "only another address registered this hash", s4,
             single_proof(s4), verdict("SUBMITTER_MISMATCH", "hash_registered_by_other"),
             registrations=[reg("$dev1", s4)]),
        case("single_pinned_to_another", "the reviewer pins an address that never registered",
             s1, single_proof(s1), verdict("SUBMITTER_MISMATCH", "hash_registered_by_other"),
             registrations=on_s1, pin="$dev1"),
        case("single_no_proof_valid", "anchored alone; verified from the record alone", s5,
             None, verdict("VALID", "registered"), registrations=[reg("$dev0", s5)]),
        case("unknown_id_no_proof", "never anchored, no proof: it could be in a batch", s6,
             None, error("ProofNeededError", "proof_needed", 9)),
        case("single_proof_of_another_record", "the proof file belongs to another record", s7,
             single_proof(s1), error("ProofMismatchError", "proof_of_another_record", 3),
             registrations=on_s1),
        case("single_proof_on_another_chain", "the proof names another chain id", s1,
             with_anchor(single_proof(s1), chain_id=OTHER_CHAIN_ID),
             error("ChainIdMismatchError", "proof_chain_mismatch", 7), registrations=on_s1),
        case("single_proof_contract_without_code", "the proof names a registry with no code",
             s1, with_anchor(single_proof(s1), contract_address=NO_CODE),
             error("NoContractError", "no_contract", 7), registrations=on_s1),
        case("single_proof_registry_impostor", "the proof names a contract that answers "
             "'registered' to everything but is no MRVRegistry", s1,
             with_anchor(single_proof(s1), contract_address="$impostor"),
             error("NotARegistryError", "not_a_registry", 7), registrations=on_s1,
             impostor=compute_hash(s1)),
        case("single_squatted_no_proof", "a squatter registered the ID first with garbage",
             s10, None, verdict("VALID", "registered_by_later_submitter"),
             registrations=[{"from": "$dev1", "mrv_id": s10["mrv_id"], "hash": "ab" * 32},
                            reg("$dev0", s10)]),
        case("single_tampered_no_proof", "edited after anchoring, verified without proof",
             edited(s11), None, verdict("TAMPERED", "hash_differs"),
             registrations=[reg("$dev0", s11)]),
        case("pending_proof", "the proof says anchoring is still pending", s12,
             {"proof_version": "1.0", "mrv_id": s12["mrv_id"], "status": "pending",
              "record_hash": {"algorithm": "sha256-jcs", "digest": compute_hash(s12)},
              "pending_reason": "auto_anchor is off", "attempts": []},
             verdict("NOT_FOUND", "not_anchored_yet")),
    ]
    # --- anchored in a Merkle batch (anchorBatch) ----------------------------------------
    a1, a2, a3, a4 = record("a1"), record("a2"), record("a3"), record("a4")
    root_a, (p1, p2, _p3, p4) = batch_proofs([a1, a2, a3, a4])
    on_a = [{"from": "$dev0", "root": root_a, "leaf_count": 4}]
    b1, b2 = record("b1"), record("b2")
    root_b, (q1, _q2) = batch_proofs([b1, b2])
    c1, c2 = record("c1"), record("c2")
    _root_c, (r1, _r2) = batch_proofs([c1, c2])
    sibling_path = copy.deepcopy(p1)
    sibling_path["anchor"]["merkle"]["proof"] = p4["anchor"]["merkle"]["proof"]
    bad_root = copy.deepcopy(p1)
    bad_root["anchor"]["merkle"]["root"] = "0x1234"
    cases += [
        case("batch_valid", "a leaf of a root the proof's submitter anchored", a1, p1,
             verdict("VALID", "in_anchored_batch"), batches=on_a),
        case("batch_tampered", "edited after its batch was anchored", edited(a2), p2,
             verdict("TAMPERED", "not_in_batch"), batches=on_a),
        case("batch_proof_missing", "batched, but verified without its proof", a3, None,
             error("ProofNeededError", "proof_needed", 9), batches=on_a),
        case("batch_proof_of_another_record", "the proof file is a sibling's", a1, p4,
             error("ProofMismatchError", "proof_of_another_record", 3), batches=on_a),
        case("batch_proof_path_of_sibling", "the Merkle path was swapped for a sibling's", a1,
             sibling_path, verdict("TAMPERED", "not_in_batch"), batches=on_a),
        case("batch_root_never_anchored", "the proof's root is not on chain", c1, r1,
             verdict("NOT_FOUND", "root_not_anchored")),
        case("batch_root_anchored_by_another", "only another address anchored the root", b1,
             q1, verdict("SUBMITTER_MISMATCH", "root_anchored_by_other"),
             batches=[{"from": "$dev1", "root": root_b, "leaf_count": 2}]),
        case("batch_proof_on_another_chain", "the proof names another chain id", a1,
             with_anchor(p1, chain_id=OTHER_CHAIN_ID),
             error("ChainIdMismatchError", "proof_chain_mismatch", 7), batches=on_a),
        case("batch_proof_contract_without_code", "the proof names a registry with no code",
             a1, with_anchor(p1, contract_address=NO_CODE),
             error("NoContractError", "no_contract", 7), batches=on_a),
        case("batch_proof_malformed", "the proof's Merkle root is not 32 bytes", a1, bad_root,
             error("MalformedProofError", "malformed_proof", 3), batches=on_a),
    ]
    # --- who vouches: the researcher's signature over the fingerprint ---------------------
    g1, g2, g3 = record("g1"), record("g2"), record("g3")
    root_g, (h1, h2, h3) = batch_proofs([g1, g2, g3])
    on_g = [{"from": "$dev0", "root": root_g, "leaf_count": 3}]
    a, b = RESEARCHER_A.address, RESEARCHER_B.address
    cases += [
        case("signed_valid", "anchored in a batch and signed by the researcher", g1,
             signed(h1, g1), verdict("VALID", "in_anchored_batch"), batches=on_g),
        case("signed_signer_pinned", "the reviewer pins the researcher who signed", g1,
             signed(h1, g1), verdict("VALID", "in_anchored_batch"), batches=on_g,
             signer_pin=a),
        case("signed_by_another_than_pinned", "signed, but not by the pinned researcher", g1,
             signed(h1, g1), verdict("SUBMITTER_MISMATCH", "signed_by_other"), batches=on_g,
             signer_pin=b),
        case("unsigned_signer_pinned", "a signer is pinned, the proof carries no signature",
             g2, h2, verdict("SUBMITTER_MISMATCH", "unsigned"), batches=on_g, signer_pin=a),
        case("signature_not_by_claimed_signer", "the proof claims A signed; B's key made it",
             g1, signed(h1, g1, by=RESEARCHER_B, claimed=RESEARCHER_A),
             error("EvidenceConflictError", "bad_signature", 12), batches=on_g),
        case("signature_of_another_record", "a signature moved over from a sibling record",
             g3, signed(h3, g2), error("EvidenceConflictError", "bad_signature", 12),
             batches=on_g),
        case("signed_single_valid", "anchored alone and signed", s1, signed(single_proof(s1), s1),
             verdict("VALID", "registered_by_submitter"), registrations=on_s1, signer_pin=a),
        case("signed_but_tampered", "a signed record edited after anchoring: TAMPERED first",
             edited(g2), signed(h2, g2), verdict("TAMPERED", "not_in_batch"), batches=on_g,
             signer_pin=a),
    ]
    # --- files a strict reader refuses (the browser's JSON.parse would accept most) -------
    x = record("x1")
    text = json.dumps(x, indent=2, sort_keys=True, ensure_ascii=False)
    co2 = json.dumps(x["energy_emissions"]["co2_kg"])
    assert text.count(f'"co2_kg": {co2}') == 1 and text.count('"epochs": ') == 1
    cases += [
        case("strict_duplicate_key", "co2_kg twice: JSON.parse would keep the last",
             text.replace(f'"co2_kg": {co2}', f'"co2_kg": 999.0, "co2_kg": {co2}'), None,
             error("NotJSONError", "duplicate_key", 3)),
        case("strict_byte_order_mark", "a UTF-8 byte-order mark before the JSON",
             "\ufeff" + text, None, error("NotJSONError", "bom", 3)),
        case("strict_lone_surrogate", "a string holding an unpaired UTF-16 surrogate",
             text.replace('"name": "verdict case x1"', '"name": "verdict case \\ud800"'), None,
             error("SchemaValidationError", "lone_surrogate", 3)),
        case("strict_nan", "NaN is not JSON", text.replace(f'"co2_kg": {co2}', '"co2_kg": NaN'),
             None, error("NotJSONError", "non_finite", 3)),
        case("strict_integer_beyond_2_53", "an integer JavaScript cannot hold exactly",
             text.replace(f'"epochs": {x["training"]["epochs"]}', '"epochs": 9007199254740993'),
             None, error("SchemaValidationError", "unsafe_integer", 3)),
        case("proof_given_as_record", "a proof file where the record is expected",
             json.dumps(single_proof(s1), indent=2), None,
             error("NotARecordError", "is_proof_file", 3)),
    ]
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names))
    return {"format": "mrv-ml verdict cases", "version": 1,
            "placeholders": {"$registry": "the registry the test deployed",
                             "$chain_id": "the chain id of the node (an integer)",
                             "$dev0": "a funded development account (anchors by default)",
                             "$dev1": "another funded development account",
                             "$impostor": "a contract that answers every call with "
                                          "(impostor_answers, 1, $dev0): no MRVRegistry"},
            "cases": cases}


def main(argv: list[str]) -> int:
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    return write_or_check(OUT, text.encode("utf-8"), argv, "scripts/make_verdict_cases.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
