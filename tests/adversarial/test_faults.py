"""Fault suite: ``mrv run``, the tracker, ``mrv anchor`` and ``mrv anchor --batch`` killed
with SIGKILL at random points, seeded and bounded, and every record must end anchored
exactly once.

Per operation and chain, one store lives through the whole campaign (what one user's data
directory goes through): an unharmed baseline run (it measures the calls of each kill point
and the window in which the process does its work: from its first look at the store, or
for a run from storing its record, to its exit), then one trial per seed, alternately

- **by name**: a kill point drawn from the seed among the functions the baseline called
  (``tests/support/faults.py``: ``TARGETS``), just before or just after its N-th call;
- **by time**: the real ``mrv`` command (or tracker script) killed whole (its process
  group) after a delay drawn within the measured window.

Anchoring trials first store two or three new records (at least as many as the baseline
had, so the calls it counted happen); half the trials (drawn) store one more between the
kill and the recovery (another run finishing meanwhile). Recovery is what a user does:
``mrv anchor`` and ``mrv anchor --batch`` in a drawn order (run in this process through
the real entry point), then both again, which must find nothing to do.
After each trial:

- every record file is a valid record, byte for byte what it was when first seen (before
  the kill, and after the recovery);
- a killed run leaves at most its own record (none only if killed before it was stored:
  counted as "runs killed before their record"); an anchoring run creates none;
- every record is anchored, and EXACTLY ONCE on the chain itself: the ``MRVRegistered``
  events of its ID plus the anchored ``BatchAnchored`` roots whose leaves (from the batch
  journal; a root without one is a finding) hold its fingerprint; its proof names that
  anchoring; no registration names an ID the store does not hold;
- ``mrv verify --json`` says VALID for every record whose record or proof changed in the
  trial, and for the whole store (``mrv verify <store>``) at the campaign's end.

The focused tests at the end are the campaigns' findings, each killed at its point in this
process (fast) on the embedded chain and on anvil.

Figures (trials, kills, records, double anchors...) are in every assertion message and in
one printed summary line per campaign (``pytest -s``). ``MRV_FAULT_TRIALS=N`` runs N trials
per campaign instead of the defaults (:data:`TRIALS`, :data:`ANVIL_TRIALS`).
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.anchoring.single import may_be_registered
from mrv_ml.config import load_settings
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.schema import load_record_file
from mrv_ml.storage.store import RecordStore
from tests.support.cli import run_mrv
from tests.support.faults import (
    Calibration,
    Child,
    Kill,
    Killed,
    anchorings,
    calibrate,
    chain_anchors,
    kill_in_process,
    start_named,
    start_timed,
)
from tests.support.records import make_sample_record

#: Trials per campaign (each one a killed process, ~2 s; ~4 s for run and tracker, whose
#: CodeCarbon start is joined when the run stops), seeds SEED_BASE + 1, 2, ...
TRIALS = {"run": 2, "tracker": 2, "anchor": 3, "batch": 3}
ANVIL_TRIALS = 2
SEED_BASE = {"embedded": 1100, "anvil": 2100}


def _seeds(chain: str, default: int) -> tuple[int, ...]:
    n = int(os.environ.get("MRV_FAULT_TRIALS", "0") or 0) or default
    return tuple(SEED_BASE[chain] + i for i in range(1, n + 1))


@dataclass
class Figures:
    chain: str
    operation: str
    trials: int = 0
    named: int = 0
    timed: int = 0
    kills: int = 0
    finished: int = 0  # ran to its end before the kill point or delay
    runs_without_record: int = 0
    records: int = 0
    anchorings_checked: int = 0
    verified: int = 0  # verdicts of mrv verify read
    temp_files: int = 0  # hidden temporary files a killed writer left (harmless)
    seconds: float = 0.0
    double: dict[str, str] = field(default_factory=dict)
    unanchored: dict[str, str] = field(default_factory=dict)
    findings: dict[str, str] = field(default_factory=dict)  # key -> first message
    log: list[str] = field(default_factory=list)  # one line per run

    def summary(self) -> str:
        return (f"faults[{self.chain}/{self.operation}]: {self.trials} trials "
                f"({self.named} by name, {self.timed} by time), {self.kills} kills, "
                f"{self.finished} finished first, {self.records} records "
                f"({self.runs_without_record} runs killed before their record), "
                f"{self.anchorings_checked} anchorings checked on chain, "
                f"{self.verified} verdicts, "
                f"{len(self.double)} double anchors, {len(self.unanchored)} not anchored, "
                f"{len(self.findings)} findings, {self.temp_files} stray temp files, "
                f"{self.seconds:.1f} s")

    def find(self, key: str, message: str) -> None:
        self.findings.setdefault(key, message)


def _record_files(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(data_dir.glob("MRV-*.json"))
            if not p.name.endswith(".proof.json")}


class Campaign:
    def __init__(self, operation: str, chain: str, data_dir: Path, scratch: Path) -> None:
        self.operation = operation
        self.embedded = chain == "embedded"
        self.data_dir = data_dir
        self.store = RecordStore(data_dir)
        self.scratch = scratch
        self.figures = Figures(chain, operation)
        self.calibration: Calibration | None = None
        self._verified: dict[str, bytes] = {}  # record and proof files as last verified
        self._records: dict[str, bytes] = {}  # every record file seen, as first seen

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def run(self, seeds: tuple[int, ...]) -> Figures:
        began = time.monotonic()
        if self.embedded:
            code, out, err = run_mrv("deploy")  # the chain exists, as after a first use
            assert code == 0, out + err
        if self.operation in ("anchor", "batch"):
            self._store_records(2)
        before = _record_files(self.data_dir)
        self.calibration = calibrate(self.operation, embedded=self.embedded, env=self.env,
                                     scratch=self.scratch)
        low, high = self.calibration.window
        self.figures.log.append(
            f"baseline: {self.calibration.child.seconds:.2f} s, works {low:.2f}-{high:.2f} s, "
            f"calls {sorted((t.partition(':')[2], n) for t, n in self.calibration.calls.items())}")
        self._after(f"baseline ({self.calibration.child.what})", self.calibration.child,
                    before, random.Random(0), recover=False)
        for index, seed in enumerate(seeds):
            self._trial(index, seed)
        self._audit("the end", whole=True)
        self.figures.records = len(_record_files(self.data_dir))
        self.figures.temp_files = len(list(self.data_dir.rglob(".*.tmp")))
        self.figures.seconds = time.monotonic() - began
        return self.figures

    def _store_records(self, n: int) -> None:
        for _ in range(n):
            self.store.save(make_sample_record())

    def _trial(self, index: int, seed: int) -> None:
        assert self.calibration is not None
        rng = random.Random(f"{self.figures.chain}/{self.operation}/{seed}")
        if self.operation in ("anchor", "batch"):
            self._store_records(rng.randint(2, 3))
        before = _record_files(self.data_dir)
        if index % 2 == 0:
            calls = self.calibration.calls
            target = rng.choice(sorted(t for t, n in calls.items() if n > 0))
            kill = Kill(target, rng.randint(1, calls[target]), rng.choice(["before", "after"]))
            child = start_named(self.operation, kill, embedded=self.embedded, env=self.env,
                                scratch=self.scratch)
            self.figures.named += 1
        else:
            low, high = self.calibration.window
            child = start_timed(self.operation, rng.uniform(low, high), env=self.env)
            self.figures.timed += 1
        self.figures.trials += 1
        if child.killed:
            self.figures.kills += 1
        else:
            self.figures.finished += 1
        self.figures.log.append(f"seed {seed}: {child.what}: "
                                f"{'killed' if child.killed else f'exit {child.returncode}'} "
                                f"after {child.seconds:.2f} s")
        self._after(f"trial {seed} ({child.what})", child, before, rng, recover=True)

    def _after(self, label: str, child: Child, before: dict[str, bytes], rng: random.Random,
               *, recover: bool) -> None:
        f = self.figures
        if not child.killed and child.returncode != 0:
            f.find(f"exit:{label}", f"{label}: exited {child.returncode}: {child.tail()}")
        if "Traceback" in child.stderr and not child.killed:
            f.find(f"traceback:{label}", f"{label}: {child.tail()}")
        now = _record_files(self.data_dir)
        for name, data in before.items():
            if now.get(name) != data:
                f.find(f"changed:{name}", f"{label}: record file {name} changed or vanished")
        new = sorted(set(now) - set(before))
        if self.operation in ("run", "tracker"):
            if len(new) > 1:
                f.find(f"many:{label}", f"{label}: one run wrote {len(new)} records: {new}")
            if not new:
                if child.killed:
                    f.runs_without_record += 1
                else:
                    f.find(f"norecord:{label}", f"{label}: finished without a record")
        elif new:
            f.find(f"new:{label}", f"{label}: anchoring created record files {new}")
        if recover:
            if rng.random() < 0.5:
                self._store_records(1)  # another run finished meanwhile
            order = rng.choice([("anchor", "batch"), ("batch", "anchor")])
            for step in order:
                self._recover(label, step, first_pass=True)
            for step in order:
                self._recover(label, step, first_pass=False)
        self._audit(label)

    def _recover(self, label: str, step: str, *, first_pass: bool) -> None:
        args = ["anchor"] if step == "anchor" else ["anchor", "--batch"]
        code, out, err = run_mrv(*args)
        text = out + err
        what = f"{label}: recovery `mrv {' '.join(args)}`" + ("" if first_pass else " (again)")
        if "Traceback" in text:
            self.figures.find(f"tb:{what}", f"{what}: {text[-600:]}")
        if first_pass:
            # `mrv anchor` leaves what an unfinished batch holds to `mrv anchor --batch`
            if code != 0 and not (step == "anchor" and code == 8 and
                                  all("unfinished batch" in line for line in out.splitlines()
                                      if "still pending" in line)):
                self.figures.find(f"exit:{what}", f"{what} exited {code}: {text[-600:]}")
        elif code != 0 or "Nothing to anchor" not in out:
            self.figures.find(f"again:{what}", f"{what} had work left ({code}): {text[-600:]}")

    def _audit(self, label: str, *, whole: bool = False) -> None:
        f = self.figures
        files = _record_files(self.data_dir)
        for name, data in self._records.items():
            if files.get(name) != data:
                f.find(f"changed:{name}", f"{label}: record file {name} changed or vanished")
        self._records.update({n: d for n, d in files.items() if n not in self._records})
        anchors = chain_anchors(load_settings(), self.data_dir)
        for root in anchors.roots_without_journal:
            f.find(f"nojournal:{root}", f"{label}: root {root} anchored without a journal")
        ids = set()
        for name in files:
            mrv_id = name.removesuffix(".json")
            ids.add(mrv_id)
            try:
                record = load_record_file(self.data_dir / name)
                assert record["mrv_id"] == mrv_id, "the file name is another ID"
            except Exception as e:  # noqa: BLE001 - a finding, named
                f.find(f"bad:{name}", f"{label}: {name} is no valid record: {e}")
                continue
            digest = compute_hash(record)
            found = anchorings(anchors, mrv_id, digest)
            f.anchorings_checked += 1
            if len(found) > 1:
                f.double.setdefault(mrv_id, f"{label}: {mrv_id} anchored {len(found)} times: "
                                            f"{found}")
            proof = self.store.load_proof(mrv_id)
            if proof is None or proof.anchor is None or not found:
                f.unanchored.setdefault(mrv_id, f"{label}: {mrv_id} not anchored (proof "
                                                f"{proof.status if proof else None}, "
                                                f"chain {found})")
                continue
            a = proof.anchor
            named = (f"batch {a.merkle.root}" if a.merkle is not None
                     else f"single {a.tx_hash}")
            if (a.merkle is not None or a.tx_hash is not None) and named not in found:
                f.find(f"proof:{mrv_id}", f"{label}: {mrv_id}'s proof names {named}, "
                                          f"the chain holds {found}")
        for mrv_id in set(anchors.registrations) - ids:
            f.find(f"orphan:{mrv_id}", f"{label}: {mrv_id} registered, but no such record")
        self._verify(label, whole=whole)

    def _verify(self, label: str, *, whole: bool) -> None:
        """``mrv verify --json``: the whole store, or the records whose record or proof
        changed since the last check (the whole store is checked at the campaign's end)."""
        state = {p.name: p.read_bytes() for p in self.data_dir.glob("MRV-*.json")}
        changed = sorted(n for n in state if not n.endswith(".proof.json") and (
            whole or state[n] != self._verified.get(n) or
            state.get(n[:-5] + ".proof.json") != self._verified.get(n[:-5] + ".proof.json")))
        self._verified = state
        if not changed:
            return
        paths = [str(self.data_dir)] if whole else [str(self.data_dir / n) for n in changed]
        code, out, err = run_mrv("verify", *paths, "--json")
        try:
            verdicts = json.loads(out)
        except ValueError:
            verdicts = []
        verdicts = verdicts if isinstance(verdicts, list) else [verdicts]
        statuses = {Path(v.get("file", "?")).name: v.get("status") for v in verdicts}
        self.figures.verified += len(verdicts)
        if code != 0 or sorted(statuses) != changed or set(statuses.values()) - {"VALID"}:
            bad = {k: v for k, v in statuses.items() if v != "VALID"}
            self.figures.find(f"verify:{sorted(bad)}",
                              f"{label}: mrv verify exited {code} for {len(changed)} records: "
                              f"not VALID {bad} {err[-300:]}")


def _check(figures: Figures) -> None:
    print("\n  ".join(["", *figures.log]))
    print(figures.summary())
    problems = [*figures.double.values(), *figures.unanchored.values(),
                *figures.findings.values()]
    assert not problems, figures.summary() + "\n" + "\n".join(problems[:12])
    assert figures.kills >= 1, figures.summary()  # the campaign did kill something


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["run", "tracker", "anchor", "batch"])
def test_killed_anywhere_every_record_ends_anchored_exactly_once(
        operation: str, data_dir: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "faults"
    scratch.mkdir()
    _check(Campaign(operation, "embedded", data_dir, scratch).run(
        _seeds("embedded", TRIALS[operation])))


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.parametrize("operation", ["anchor", "batch"])
def test_killed_anywhere_on_anvil_every_record_ends_anchored_exactly_once(
        operation: str, data_dir: Path, tmp_path: Path, anvil: Any, anvil_registry: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETWORK", "anvil")
    monkeypatch.setenv("BLOCKCHAIN_RPC_URL", anvil.url)
    monkeypatch.setenv("CONTRACT_ADDRESS", anvil_registry)
    scratch = tmp_path / "faults"
    scratch.mkdir()
    _check(Campaign(operation, "anvil", data_dir, scratch).run(_seeds("anvil", ANVIL_TRIALS)))


# --- what the campaigns found, each a focused regression test --------------------------
# In this process, fast: `Killed` is raised where the child above dies (the `finally`
# blocks on the way out still run; nothing else does).


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The chain records are anchored on: the embedded one (created), or anvil's registry."""
    if request.param == "anvil":
        monkeypatch.setenv("NETWORK", "anvil")
        monkeypatch.setenv("BLOCKCHAIN_RPC_URL", request.getfixturevalue("anvil").url)
        monkeypatch.setenv("CONTRACT_ADDRESS", request.getfixturevalue("anvil_registry"))
    else:
        assert run_mrv("deploy").exit_code == 0
    return str(request.param)


def _anchored_once(store: RecordStore, ids: list[str]) -> dict[str, str]:
    """Each record's one anchoring on the chain (asserted: exactly one, named by its proof)
    and a VALID verdict for each."""
    anchors = chain_anchors(load_settings(), store.root)
    once = {}
    for mrv_id in ids:
        found = anchorings(anchors, mrv_id, compute_hash(store.load(mrv_id)))
        assert len(found) == 1, (mrv_id, found)
        proof = store.load_proof(mrv_id)
        assert proof is not None and proof.anchor is not None, mrv_id
        a = proof.anchor
        assert found[0] == (f"batch {a.merkle.root}" if a.merkle else f"single {a.tx_hash}")
        once[mrv_id] = found[0]
    code, out, err = run_mrv("verify", str(store.root), "--json")
    assert code == 0 and {v["status"] for v in json.loads(out)} == {"VALID"}, out + err
    return once


def _killed(monkeypatch: pytest.MonkeyPatch, kill: Kill, *args: str) -> None:
    with monkeypatch.context() as patched:
        kill_in_process(patched, kill)
        with pytest.raises(Killed):
            run_mrv(*args)


def test_a_record_registered_alone_by_a_killed_run_is_not_batched_as_well(
        chain: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `mrv anchor` killed once its registration is sent, before the proof is written; the
    # user then anchors what is pending with `mrv anchor --batch`. It used to batch the
    # record too: registered alone AND a leaf of an anchored root.
    store = RecordStore(data_dir)
    mrv_id = store.save(make_sample_record()).stem
    _killed(monkeypatch, Kill("mrv_ml.chain.connection:ChainConnection._sign_and_send", 1, "after"),
            "anchor")
    proof = store.load_proof(mrv_id)  # marked before sending: the batch path asks the chain
    assert store.pending_ids() == [mrv_id] and proof is not None and may_be_registered(proof)
    code, out, err = run_mrv("anchor", "--batch")
    assert code == 0 and f"{mrv_id} anchored" in out, out + err
    assert _anchored_once(store, [mrv_id])[mrv_id].startswith("single ")
    assert chain_anchors(load_settings(), data_dir).roots == {}  # no batch was sent
    assert run_mrv("anchor", "--batch").stdout.startswith("Nothing to anchor")


@pytest.mark.parametrize("journal_names_chain", [True, False], ids=["journal", "old-journal"])
def test_a_batch_killed_once_sent_is_completed_not_batched_again_with_newer_records(
        chain: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        journal_names_chain: bool) -> None:
    # `mrv anchor --batch` killed after its journal says "sent" (the transaction is on the
    # chain), and another run stores a record before the rerun. The "sent" journal named no
    # chain, so the rerun skipped it as another chain's and batched its records again with
    # the new one: two anchored roots held them. A journal written before journals named
    # their chain ("old-journal") is matched by its transaction.
    from mrv_ml.storage.journal import unfinished_journals, write_journal

    store = RecordStore(data_dir)
    ids = [store.save(make_sample_record()).stem for _ in range(2)]
    _killed(monkeypatch, Kill("mrv_ml.anchoring.batch:write_journal", 2, "after"), "anchor", "--batch")
    (path, journal), = unfinished_journals(store)
    assert journal["status"] == "sent" and journal["tx_hash"]
    if not journal_names_chain:
        for key in ("chain_id", "contract_address", "submitter"):
            journal.pop(key, None)
        write_journal(path, journal)
    newer = store.save(make_sample_record()).stem
    code, out, err = run_mrv("anchor", "--batch")
    assert code == 0 and all(f"{i} anchored" in out for i in [*ids, newer]), out + err
    once = _anchored_once(store, [*ids, newer])
    assert once[ids[0]] == once[ids[1]] == f"batch {journal['root']}" != once[newer]
    assert unfinished_journals(store) == []
