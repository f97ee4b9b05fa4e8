"""``mrv verify --require``: the language (pure), the one composition rule (pure, over each
anchor's own result), and the requirement end to end against a real timestamp authority
(tests/support/tsa.py) and the embedded chain."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mrv_ml.errors import ConfigError
from mrv_ml.record.trust import Trust
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.model import Verdict
from mrv_ml.verification.requirement import (
    AllOf,
    Anchors,
    AnyOf,
    ChainTerm,
    KeyTerm,
    SignerTerm,
    TsaTerm,
    decide,
    default_requirement,
    parse_requirement,
    terms,
)
from mrv_ml.verification.timestamp import StampStatus, TimestampCheck
from mrv_ml.verification.verdict import VerdictStatus
from tests.support.cli import MRV
from tests.support.records import make_sample_record
from tests.support.tsa import LocalTSA

ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _parse(text: str) -> Any:
    return parse_requirement(text, load_roots=lambda names: [],
                             load_key=lambda path: SimpleNamespace(keyid=f"id-{path}"))


# --- the language --------------------------------------------------------------------------


def test_terms_and_combinations_parse_as_written() -> None:
    r = _parse(f" all-of( any-of(chain:public, tsa:root.pem), signer:{ALICE.lower()} ) ")
    assert isinstance(r, AllOf) and isinstance(r.parts[0], AnyOf)
    assert [type(t) for t in terms(r)] == [ChainTerm, TsaTerm, SignerTerm]
    assert terms(r)[2].address == ALICE  # checksummed
    assert r.text == f"all-of(any-of(chain:public, tsa:root.pem), signer:{ALICE.lower()})"
    chain = _parse("chain:31337")
    assert isinstance(chain, ChainTerm) and chain.chain_id == 31337 and not chain.public
    assert isinstance(_parse("all-of(chain:any, key:cosign.pub)").parts[1], KeyTerm)


def test_a_requirement_file_is_read_with_its_comments(tmp_path: Path) -> None:
    f = tmp_path / "policy.txt"
    f.write_text("# what our journal accepts\nany-of(\n  chain:public,  # mainnet or L2\n"
                 "  tsa:root.pem\n)\n")
    r = _parse(f"@{f}")
    assert isinstance(r, AnyOf) and [t.text for t in terms(r)] == ["chain:public",
                                                                   "tsa:root.pem"]


@pytest.mark.parametrize(("text", "says"), [
    ("", "ends where a term was expected"),
    ("chain", "is not a term"),
    ("chain:", "is not a term"),
    ("chain:mainnet", "a chain is 'public', 'any' or a chain ID"),
    ("chain:-1", "a chain is 'public', 'any' or a chain ID"),
    ("chain:٣", "a chain is 'public', 'any' or a chain ID"),  # a non-ASCII digit
    ("gpg:key.asc", "unknown term"),
    ("any-of(chain:any", "is not closed"),
    ("any-of(chain:any,)", "where a term was expected"),
    ("chain:any)", "after the end"),
    ("chain:any chain:31337", "after the end"),
    ("not(chain:any)", "is outside the language"),
    (f"signer:{ALICE}", "say who vouches"),
    (f"any-of(chain:any, signer:{ALICE})", "say who vouches"),
    ("any-of(" * 20 + "chain:any" + ")" * 20, "nested more than"),
    ("any-of(" + ", ".join(["chain:any"] * 65) + ")", "more than 64 terms"),
    ("chain:any" + " " * 5000, "longer than"),
])
def test_a_bad_requirement_is_a_configuration_error_saying_why(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        _parse(text)
    assert says in str(e.value) and e.value.key == "bad_requirement" and e.value.exit_code == 7


def test_a_bad_signer_or_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _parse("all-of(chain:any, signer:0x1234)")
    with pytest.raises(ConfigError, match="cannot read it"):
        _parse(f"@{tmp_path / 'missing.txt'}")


def test_signer_terms_beside_an_anchor_are_accepted() -> None:
    r = _parse(f"all-of(tsa:root.pem, signer:{ALICE})")
    assert isinstance(r, AllOf)


# --- the composition rule --------------------------------------------------------------------

ROOT_A, ROOT_B = "aa" * 32, "bb" * 32
TSA_A = TsaTerm("tsa:a.pem", (), frozenset({ROOT_A}))
PUBLIC, LOCAL31337 = ChainTerm("chain:public", public=True), ChainTerm("chain:31337",
                                                                       chain_id=31337)


def _chain(status: VerdictStatus, trust: Trust = Trust.LOCAL, chain_id: int = 31337
           ) -> Verdict:
    return Verdict(status=status, reason="x", mrv_id="mrv-1", record_hash="00" * 32,
                   chain_id=chain_id, trust=trust.value)


def _stamp(status: StampStatus, *roots: str) -> TimestampCheck:
    return TimestampCheck(status, "http://tsa.example", f"stamp {status.value}",
                          roots_sha256=roots)


EITHER = AnyOf((PUBLIC, TSA_A))


@pytest.mark.parametrize(("requirement", "anchors", "status", "basis", "unmet"), [
    # either evidence suffices, neither does not
    (EITHER, Anchors(_chain(VerdictStatus.VALID, Trust.PUBLIC, 1)), "VALID", "chain", False),
    (EITHER, Anchors(None, (_stamp(StampStatus.VALID, ROOT_A),)), "VALID", 0, False),
    (EITHER, Anchors(_chain(VerdictStatus.VALID)), None, None, True),  # local chain only
    (EITHER, Anchors(None, (_stamp(StampStatus.VALID, ROOT_B),)), None, None, True),
    (EITHER, Anchors(None, (_stamp(StampStatus.UNTRUSTED),)), None, None, True),
    (EITHER, Anchors(None), None, None, True),
    # a VALID local chain beside the timestamp that met it: the verdict stands on the stamp
    (EITHER, Anchors(_chain(VerdictStatus.VALID), (_stamp(StampStatus.UNTRUSTED),
                                                   _stamp(StampStatus.VALID, ROOT_A))),
     "VALID", 1, False),
    # chain IDs
    (LOCAL31337, Anchors(_chain(VerdictStatus.VALID)), "VALID", "chain", False),
    (LOCAL31337, Anchors(_chain(VerdictStatus.VALID, chain_id=1)), None, None, True),
    (ChainTerm("chain:any"), Anchors(_chain(VerdictStatus.NOT_FOUND)), None, None, True),
    # all-of needs each
    (AllOf((LOCAL31337, TSA_A)), Anchors(_chain(VerdictStatus.VALID)), None, None, True),
    (AllOf((LOCAL31337, TSA_A)), Anchors(_chain(VerdictStatus.VALID),
                                         (_stamp(StampStatus.VALID, ROOT_A),)),
     "VALID", "chain", False),
    (AllOf((TSA_A, SignerTerm(f"signer:{ALICE}", ALICE))),
     Anchors(None, (_stamp(StampStatus.VALID, ROOT_A),)), None, None, True),
    (AllOf((TSA_A, SignerTerm(f"signer:{ALICE}", ALICE))),
     Anchors(None, (_stamp(StampStatus.VALID, ROOT_A),), signers=frozenset({ALICE.lower()})),
     "VALID", 0, False),
    # evidence of change is never outvoted
    (EITHER, Anchors(_chain(VerdictStatus.TAMPERED)), "TAMPERED", "chain", False),
    (EITHER, Anchors(None, (_stamp(StampStatus.TAMPERED, ROOT_A),)), "TAMPERED", 0, False),
    (LOCAL31337, Anchors(_chain(VerdictStatus.TAMPERED),
                         (_stamp(StampStatus.VALID, ROOT_A),)), "TAMPERED", "chain", False),
])
def test_one_rule_composes_each_anchors_result(requirement: Any, anchors: Anchors,
                                               status: str | None, basis: object,
                                               unmet: bool) -> None:
    d = decide(requirement, anchors)
    assert (d.status.value if d.status else None, d.basis, d.unmet) == (status, basis, unmet)
    assert d.conflict is None
    assert [t for t, _, _ in d.terms] == [t.text for t in terms(requirement)]


def test_evidence_of_change_beside_a_met_requirement_is_a_conflict() -> None:
    d = decide(EITHER, Anchors(_chain(VerdictStatus.VALID, Trust.PUBLIC, 1),
                               (_stamp(StampStatus.TAMPERED, ROOT_A),)))
    assert d.status is None and d.conflict == "stamp TAMPERED"
    d = decide(TSA_A, Anchors(_chain(VerdictStatus.TAMPERED),
                              (_stamp(StampStatus.VALID, ROOT_A),)))
    assert d.status is None and d.conflict == "the chain says TAMPERED"


def test_each_term_says_why_it_did_not_hold() -> None:
    d = decide(EITHER, Anchors(_chain(VerdictStatus.VALID)))
    why = dict((t, w) for t, _, w in d.terms)
    assert "not public" in why["chain:public"]
    assert why["tsa:a.pem"] == "the proof holds no RFC 3161 timestamp"


def test_without_require_the_chain_or_any_named_root_and_only_the_chain_when_pinned(
) -> None:
    assert default_requirement([], pinned=False).text == "chain:any"
    assert default_requirement(["cert"], pinned=True).text == "chain:any"


# --- end to end --------------------------------------------------------------------------------


EMPTY = {"MRV_DATA_DIR": "/nonexistent/empty-store"}


def _reviewer_copy(store: RecordStore, mrv_id: str, tmp_path: Path, name: str) -> Path:
    reviewer = tmp_path / name
    reviewer.mkdir()
    shutil.copy(store.path_for(mrv_id), reviewer)
    shutil.copy(store.proof_path_for(mrv_id), reviewer)
    return reviewer / f"{mrv_id}.json"


def test_either_evidence_meets_any_of_and_neither_does_not(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV, tmp_path: Path) -> None:
    ours, other = authorities
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    stamped, chained = make_sample_record(), make_sample_record()
    store.save(stamped)
    store.save(chained)
    assert mrv("timestamp", stamped["mrv_id"], "--tsa", ours.url)[0] == 0
    assert mrv("anchor", chained["mrv_id"])[0] == 0  # the embedded, local chain
    either = f"any-of(chain:public, tsa:{ours.root_pem})"

    # a timestamp only, in an empty directory: met by the tsa: term
    copy = _reviewer_copy(store, stamped["mrv_id"], tmp_path, "stamped")
    code, out, err = mrv("verify", str(copy), "--require", either, "--json", env=EMPTY)
    verdict = json.loads(out)
    assert code == 0 and verdict["status"] == "VALID", out + err
    assert verdict["mode"] == "rfc3161" and verdict["trust"] == "timestamp authority"
    assert verdict["requirement"]["met"] is True
    assert [(t["term"], t["held"]) for t in verdict["requirement"]["terms"]] == [
        ("chain:public", False), (f"tsa:{ours.root_pem}", True)]
    assert [a["kind"] for a in verdict["anchors"]] == ["chain", "rfc3161"]
    assert verdict["anchors"][1]["status"] == "VALID"

    # the local chain only: neither evidence this reviewer accepts; exit 13 naming each term
    code, out, err = mrv("verify", str(store.path_for(chained["mrv_id"])), "--require",
                         either)
    assert code == 13, out + err
    assert "chain:public: anchored on chain" in err and "not public" in err
    assert f"tsa:{ours.root_pem}: the proof holds no RFC 3161 timestamp" in err

    # the same chain anchor meets a requirement naming its chain
    code, out, err = mrv("verify", str(store.path_for(chained["mrv_id"])), "--require",
                         "chain:1337", "--json")
    assert code == 0 and json.loads(out)["mode"] == "single", out + err

    # a token of an authority outside the named roots does not meet tsa:
    code, out, err = mrv("verify", str(copy), "--require", f"tsa:{other.root_pem}", env=EMPTY)
    assert code == 13 and "no timestamp of the proof chains to it" in err, out + err

    # a changed record: TAMPERED under the root named in the requirement
    record = json.loads(copy.read_text())
    record["energy_emissions"]["co2_kg"] *= 2
    copy.write_text(json.dumps(record))
    code, out, err = mrv("verify", str(copy), "--require", either, "--json", env=EMPTY)
    assert code == 1 and json.loads(out)["status"] == "TAMPERED", out + err


def test_all_of_a_timestamp_and_the_proofs_signer(authorities: tuple[LocalTSA, LocalTSA],
                                                  mrv: MRV, tmp_path: Path) -> None:
    ours, _ = authorities
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    record = make_sample_record()
    store.save(record)
    mrv_id = record["mrv_id"]
    assert mrv("timestamp", mrv_id, "--tsa", ours.url)[0] == 0
    copy = _reviewer_copy(store, mrv_id, tmp_path, "unsigned")
    both = f"all-of(tsa:{ours.root_pem}, signer:{ALICE})"
    code, out, err = mrv("verify", str(copy), "--require", both, env=EMPTY)
    assert code == 13 and f"signer:{ALICE}: no signature by it checks" in err, out + err


def test_require_is_checked_before_any_chain_is_read(mrv: MRV, tmp_path: Path) -> None:
    code, out, err = mrv("verify", str(tmp_path / "r.json"), "--require", "any-of(chain:any")
    assert code == 7 and "is not closed" in err and "Traceback" not in err
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = tmp_path / "k.pub"
    pub.write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    # key: checks an attestation's signature; a record's proof has none of that kind
    code, out, err = mrv("verify", str(tmp_path / "r.json"), "--require",
                         f"all-of(chain:any, key:{pub})")
    assert code == 64 and "--attestation" in err and "Traceback" not in err, out + err


def test_the_text_verdict_names_the_requirement_and_the_chains_word(
        authorities: tuple[LocalTSA, LocalTSA], mrv: MRV, tmp_path: Path) -> None:
    ours, _ = authorities
    store = RecordStore(os.environ["MRV_DATA_DIR"])
    record = make_sample_record()
    store.save(record)
    assert mrv("timestamp", record["mrv_id"], "--tsa", ours.url)[0] == 0
    copy = _reviewer_copy(store, record["mrv_id"], tmp_path, "text")
    code, out, err = mrv("verify", str(copy), "--require",
                         f"any-of(chain:public, tsa:{ours.root_pem})", env=EMPTY)
    assert code == 0, out + err
    assert "Required:" in out and "(met)" in out
    assert "chain:public:" in out and "did not hold" in out
    assert "Chain anchor:" in out  # what the chain said, beside the timestamp's VALID


@pytest.mark.anvil
def test_chain_public_is_met_by_a_public_chains_anchor(authorities: tuple[LocalTSA, LocalTSA],
                                                       mrv: MRV, tmp_path: Path) -> None:
    """chain:public with a real node: anvil standing in for Sepolia (chain 11155111), the
    record anchored by a key that is not a development key; the reviewer's node is named
    with --rpc-url, as for any public chain."""
    from eth_account import Account

    from mrv_ml.anchoring.single import anchor_record
    from mrv_ml.config import Secret, Settings
    from tests.support.anvil import AnvilNode, anvil_executable, rpc

    executable = anvil_executable()
    if executable is None:
        pytest.skip("anvil is not installed")
    ours, _ = authorities
    researcher = Account.create()
    with AnvilNode(executable, chain_id=11155111) as sepolia:
        rpc(sepolia.url, "anvil_setBalance", [researcher.address, hex(10**18)])
        registry = sepolia.deploy_registry()
        settings = Settings(data_dir=tmp_path / "author", network="sepolia",
                            network_chosen=True, rpc_url=sepolia.url,
                            contract_address=registry,
                            private_key=Secret(researcher.key.hex()), confirmations=0)
        store = RecordStore(settings.data_dir)
        record = make_sample_record()
        store.save(record)
        assert anchor_record(store, record["mrv_id"], settings=settings).anchored
        copy = _reviewer_copy(store, record["mrv_id"], tmp_path, "public")
        either = f"any-of(chain:public, tsa:{ours.root_pem})"
        code, out, err = mrv("verify", str(copy), "--rpc-url", sepolia.url, "--require",
                             either, "--json", env=EMPTY)
        verdict = json.loads(out)
        assert code == 0 and verdict["trust"] == "public", out + err
        assert verdict["mode"] == "single" and verdict["chain_id"] == 11155111
        assert [t["held"] for t in verdict["requirement"]["terms"]] == [True, False]
