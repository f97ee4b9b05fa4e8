"""selection.RecordFilter over store summaries and records; summaries carry tags and trust;
`mrv list`'s filters."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.errors import RecordError
from mrv_ml.record.proof import Proof
from mrv_ml.record.trust import Trust
from mrv_ml.storage.selection import RecordFilter, parse_time, parse_trust
from mrv_ml.storage.store import INDEX_FILE, RecordStore
from tests.support.cli import MRV
from tests.support.records import make_sample_record

PUBLIC_CHAIN = 11155111  # Sepolia, a public preset
SOMEONE = "0x" + "22" * 20  # not a well-known development key


def _proof(record: dict[str, Any], chain_id: int | None, network: str = "local",
           submitter: str = SOMEONE) -> Proof:
    from mrv_ml.record.hashing import compute_hash

    data: dict[str, Any] = {"proof_version": "1.0", "mrv_id": record["mrv_id"],
                            "record_hash": {"algorithm": "sha256-jcs",
                                            "digest": compute_hash(record)}}
    if chain_id is None:
        data.update(status="pending", pending_reason="chain unreachable")
    else:
        data.update(status="anchored", anchor={
            "mode": "single", "network": network, "chain_id": chain_id,
            "contract_address": "0x" + "11" * 20, "submitter": submitter,
            "tx_hash": "0x" + "ab" * 32, "block_number": 7})
    return Proof.from_dict(data)


@pytest.fixture
def populated(data_dir: Path) -> tuple[RecordStore, dict[str, dict[str, Any]]]:
    store = RecordStore(data_dir)
    records = {
        "local": make_sample_record(experiment__name="sweep", experiment__tags={
            "team": "nlp", "seed": 3}, timestamps__start_time="2026-11-24T20:00:00Z"),
        "public": make_sample_record(experiment__name="sweep", experiment__tags={
            "team": "vision"}, timestamps__start_time="2026-11-25T09:30:00Z"),
        "pending": make_sample_record(experiment__name="other", experiment__tags={},
                                      outcome__status="failed",
                                      timestamps__start_time="2026-11-26T00:00:00Z"),
        "none": make_sample_record(experiment__name="other", experiment__tags={},
                                   outcome__status="interrupted",
                                   timestamps__start_time="2026-11-27T12:00:00+02:00"),
    }
    for record in records.values():
        store.save(record)
    store.save_proof(_proof(records["local"], 1337))
    store.save_proof(_proof(records["public"], PUBLIC_CHAIN, network="sepolia"))
    store.save_proof(_proof(records["pending"], None))
    return store, records


def _names(store: RecordStore, records: dict[str, dict[str, Any]], f: RecordFilter) -> set[str]:
    by_id = {r["mrv_id"]: name for name, r in records.items()}
    return {by_id[s.mrv_id] for s in store.list() if f.matches(s)}


def test_summaries_carry_tags_and_trust(populated: Any) -> None:
    store, records = populated
    summaries = {s.mrv_id: s for s in store.list()}
    local = summaries[records["local"]["mrv_id"]]
    assert local.tags == {"team": "nlp", "seed": 3} and local.trust == "local only"
    assert summaries[records["public"]["mrv_id"]].trust == "public"
    assert summaries[records["pending"]["mrv_id"]].trust is None
    assert local.to_dict()["tags"] == {"team": "nlp", "seed": 3}
    # the cached listing gives the same summaries
    assert {s.mrv_id: s for s in store.list()} == summaries


def test_an_index_of_the_previous_format_is_rebuilt(populated: Any) -> None:
    store, records = populated
    store.list()
    index = store.root / INDEX_FILE
    header, _, body = index.read_bytes().partition(b"\n")
    old = json.loads(header)
    assert old["version"] == 3
    entries = json.loads(body)
    for entry in entries.values():  # as version 2 wrote them: no tags, no trust
        del entry[2][9:]
        if entry[3] is not None:
            del entry[3][3:]
    import hashlib

    old_body = json.dumps(entries, separators=(",", ":")).encode()
    old.update(version=2, sha256=hashlib.sha256(old_body).hexdigest())
    index.write_bytes(json.dumps(old).encode() + b"\n" + old_body)
    summaries = {s.mrv_id: s for s in store.list()}
    assert summaries[records["local"]["mrv_id"]].tags == {"team": "nlp", "seed": 3}
    assert summaries[records["public"]["mrv_id"]].trust == "public"


def test_each_condition(populated: Any) -> None:
    store, records = populated

    def names(**conditions: Any) -> set[str]:
        return _names(store, records, RecordFilter(**conditions))

    assert names() == set(records)
    assert names(experiment="sweep") == {"local", "public"}
    assert names(experiment="swee") == set()
    assert names(tags=(("team", None),)) == {"local", "public"}
    assert names(tags=(("team", "nlp"),)) == {"local"}
    assert names(tags=(("seed", "3"),)) == {"local"}  # values compare as text
    assert names(tags=(("team", "nlp"), ("seed", "4"))) == set()  # every tag must hold
    assert names(since=parse_time("2026-11-25")) == {"public", "pending", "none"}
    assert names(until=parse_time("2026-11-26")) == {"local", "public"}  # started before
    assert names(since=parse_time("2026-11-25T09:30:00Z"),
                 until=parse_time("2026-11-27T10:00:00Z")) == {"public", "pending"}
    assert names(status="failed") == {"pending"}
    assert names(status="interrupted") == {"none"}
    assert names(anchor_state="anchored") == {"local", "public"}
    assert names(anchor_state="pending") == {"pending"}
    assert names(anchor_state="none") == {"none"}
    assert names(anchor_state="unanchored") == {"pending", "none"}
    assert names(trust=Trust.LOCAL) == {"local"}
    assert names(trust=Trust.PUBLIC) == {"public"}
    assert names(trust=Trust.PRIVATE) == set()
    assert names(experiment="sweep", trust=Trust.PUBLIC, tags=(("team", "vision"),)) == {
        "public"}


def test_a_record_is_judged_like_its_summary(populated: Any) -> None:
    store, records = populated
    for f in (RecordFilter(experiment="sweep", tags=(("team", "nlp"),)),
              RecordFilter(since=parse_time("2026-11-25"), status="failed"),
              RecordFilter(anchor_state="unanchored"), RecordFilter(trust=Trust.LOCAL)):
        by_summary = {s.mrv_id for s in store.list() if f.matches(s)}
        by_record = {r["mrv_id"] for r in records.values()
                     if f.matches(r, store.load_proof(r["mrv_id"]))}
        assert by_summary == by_record, f


def test_from_query_as_the_explorer_sends_it() -> None:
    f = RecordFilter.from_query({"experiment": "sweep", "tag": "team=nlp",
                                 "since": "2026-11-24T00:00:00Z", "until": "2026-11-30",
                                 "status": "completed", "anchor_state": "anchored",
                                 "trust": "local only", "unused": ""} | {})
    assert f == RecordFilter(experiment="sweep", tags=(("team", "nlp"),),
                             since=datetime(2026, 11, 24, tzinfo=timezone.utc),
                             until=datetime(2026, 11, 30, tzinfo=timezone.utc),
                             status="completed", anchor_state="anchored", trust=Trust.LOCAL)
    assert RecordFilter.from_query({"experiment": ""}).empty
    for query, words in [({"colour": "red"}, "unknown filter"),
                         ({"since": "yesterday"}, "not a date"),
                         ({"status": "done"}, "status is one of"),
                         ({"anchor_state": "maybe"}, "anchor_state is one of"),
                         ({"trust": "total"}, "trust is one of"),
                         ({"tag": "=x"}, "KEY or KEY=VALUE")]:
        with pytest.raises(RecordError, match=words):
            RecordFilter.from_query(query)


def test_times_and_trust_names() -> None:
    assert parse_time("2026-11-24") == datetime(2026, 11, 24, tzinfo=timezone.utc)
    assert parse_time("2026-11-24T10:00:00+02:00") == datetime(2026, 11, 24, 8,
                                                               tzinfo=timezone.utc)
    assert parse_time("2026-11-24T10:00") == datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    assert RecordFilter(since=datetime(2026, 1, 1)).since == datetime(2026, 1, 1,
                                                                      tzinfo=timezone.utc)
    assert parse_trust("private") is Trust.PRIVATE and parse_trust("Public") is Trust.PUBLIC
    assert parse_trust("private network") is Trust.PRIVATE


# -- mrv list ---------------------------------------------------------------------------------


def _listed(mrv: MRV, *args: str) -> list[str]:
    code, out, err = mrv("list", "--json", *args)
    assert code == 0, err
    return [r["mrv_id"] for r in json.loads(out)]


def test_mrv_list_filters(mrv: MRV, populated: Any) -> None:
    _, records = populated
    ids = {name: r["mrv_id"] for name, r in records.items()}
    assert _listed(mrv, "--experiment", "sweep") == [ids["local"], ids["public"]]
    assert _listed(mrv, "--tag", "team") == [ids["local"], ids["public"]]
    assert _listed(mrv, "--tag", "team=nlp", "--tag", "seed=3") == [ids["local"]]
    assert _listed(mrv, "--since", "2026-11-25", "--until", "2026-11-27") == [
        ids["public"], ids["pending"]]
    assert _listed(mrv, "--status", "interrupted") == [ids["none"]]
    assert _listed(mrv, "--pending") == [ids["pending"], ids["none"]]
    assert _listed(mrv, "--anchored") == [ids["local"], ids["public"]]
    assert _listed(mrv, "--trust", "public") == [ids["public"]]
    assert _listed(mrv, "--trust", "local", "--experiment", "sweep") == [ids["local"]]
    assert _listed(mrv, "-e", "sweep", "--limit", "1") == [ids["public"]]
    code, out, _ = mrv("list", "--experiment", "nothing-like-it")
    assert code == 0 and out.startswith("No records matching the filters in ")
    code, out, _ = mrv("list", "--experiment", "sweep")
    assert "2 record(s); " in out


def test_mrv_list_bad_filters_are_usage_errors(mrv: MRV, populated: Any) -> None:
    for args, words in [(["--since", "last week"], "is not a date"),
                        (["--until", "2026-13-01"], "is not a date"),
                        (["--status", "done"], "is not one of completed, failed, interrupted"),
                        (["--trust", "total"], "is not one of local, private, public"),
                        (["--tag", "=x"], "is not KEY or KEY=VALUE"),
                        (["--pending", "--anchored"], "exclude each other")]:
        code, out, err = mrv("list", *args)
        assert code == 64, (args, err)
        assert words in err and len(err.strip().splitlines()) == 1, (args, err)
        assert out == "" and "Traceback" not in err
