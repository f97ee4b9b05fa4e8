"""The reviewer's story: a record and its proof copied to another machine (an empty
directory, a fresh HOME, no configuration), verified with nothing but an endpoint.

Also what a reviewer must not be fooled by: another instance of the same chain id, a
registry that is not one, an unknown chain; and a provider's limits (log ranges on a long
chain, 429 and 503 answers) through tests/support/provider.py in front of a real anvil.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.anchoring.single import anchor_record
from mrv_ml.chain.connection import connect
from mrv_ml.chain.deploy import deploy
from mrv_ml.chain.localchain import anvil_dev_accounts
from mrv_ml.config import Secret, Settings
from mrv_ml.errors import EvidenceConflictError, MalformedProofError
from mrv_ml.record.hashing import compute_hash, hash_to_bytes32
from mrv_ml.record.proof import Proof, proof_path
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.verifier import verify
from tests.support.anvil import AnvilNode, anvil_executable, rpc
from tests.support.cli import mrv_command
from tests.support.provider import ProviderProxy
from tests.support.records import make_sample_record

KEY0 = Secret(anvil_dev_accounts()[0].key.hex())
KEY1 = Secret(anvil_dev_accounts()[1].key.hex())


def _author(url: str, data_dir: Path, **record: Any) -> Path:
    """The author's side: deploy (`mrv deploy`), store and anchor one record on the node."""
    settings = Settings(data_dir=data_dir, network="anvil", rpc_url=url, private_key=KEY0)
    if not (data_dir / "deployments.json").exists():
        deploy(settings)
    store = RecordStore(data_dir)
    path = store.save(make_sample_record(**record))
    outcome = anchor_record(store, path.stem, settings=settings)
    assert outcome.anchored, outcome.error
    return path


def _hand_over(record: Path, to: Path) -> Path:
    """Copy the record and its proof, as a reviewer receives them."""
    to.mkdir(parents=True, exist_ok=True)
    shutil.copy(record, to / "record.json")
    shutil.copy(proof_path(record), to / "record.proof.json")
    return to / "record.json"


def _reviewer(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`mrv ARGS` in ``cwd`` with a fresh HOME and none of the author's configuration."""
    home = cwd.parent / "reviewer-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MRV_", "BLOCKCHAIN_"))
           and k not in ("CONTRACT_ADDRESS", "PRIVATE_KEY", "NETWORK")}
    env.update(HOME=str(home), MRV_NO_DOTENV="1")
    return subprocess.run([*mrv_command(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.anvil
def test_anvil_record_verifies_with_only_an_endpoint(anvil: Any, tmp_path: Path) -> None:
    anvil.ensure_running()
    record = _author(anvil.url, tmp_path / "author" / "mrv_data")
    review = tmp_path / "review"
    _hand_over(record, review)
    before = _tree(review)
    done = _reviewer(review, "verify", "record.json", "--rpc-url", anvil.url)
    assert done.returncode == 0, done.stderr
    assert "✅ VALID" in done.stdout and "private network" in done.stdout
    assert "evidence only for those who trust that node" in done.stdout
    assert "well-known development key" in done.stdout  # anvil's account 0 anchored it
    assert _tree(review) == before  # verifying wrote nothing
    assert not any((tmp_path / "reviewer-home").iterdir())
    as_json = json.loads(_reviewer(review, "verify", "record.json", "--rpc-url", anvil.url,
                                   "--json").stdout)
    assert as_json["trust"] == "private network" and as_json["confirmations"] >= 1
    # the author's whole store (deployments.json beside the records is not a record)
    done = _reviewer(review, "verify", str(record.parent), "--rpc-url", anvil.url)
    assert done.returncode == 0 and "1 record(s): 1 VALID" in done.stdout, done.stdout
    # no endpoint at all: a development chain has no public default, so ask for one
    done = _reviewer(review, "verify", "record.json")
    assert done.returncode == 7 and "--rpc-url" in done.stderr and "Traceback" not in done.stderr
    # the reviewer's report of what they checked, with the same endpoint only
    done = _reviewer(review, "report", "record.json", "-f", "json", "--verify",
                     "--rpc-url", anvil.url)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["records"]
    assert (row["verification"], row["trust"]) == ("verified (private)", "private network")
    assert _tree(review) == before


def test_embedded_chain_record_is_local_only_elsewhere(tmp_path: Path) -> None:
    from mrv_ml.run.tracker import MRVTracker

    author = tmp_path / "author"
    author.mkdir()
    with MRVTracker("local-run", storage_dir=str(author / "mrv_data"), quiet=True) as tracker:
        pass
    assert tracker.record_path is not None and tracker.tx_hash is not None
    # On the author's machine: VALID, and it says what that is worth.
    v = verify(tracker.record_path, settings=Settings(data_dir=author / "mrv_data"))
    assert v and v.trust == "local only" and "no evidence for anyone else" in v.trust_note
    review = tmp_path / "review"
    _hand_over(tracker.record_path, review)
    before = _tree(review)
    done = _reviewer(review, "verify", "record.json")
    assert done.returncode == 11, done.stdout + done.stderr
    assert "private local chain" in done.stderr and "publicly anchored proof" in done.stderr
    assert "NOT FOUND" not in done.stdout + done.stderr
    assert _tree(review) == before  # no mrv_data/ created
    # A reviewer who has an embedded chain of their own: still not that chain.
    mine = tmp_path / "mine"
    with MRVTracker("reviewer-run", storage_dir=str(mine), quiet=True):
        pass
    with pytest.raises(Exception) as info:
        verify(review / "record.json", settings=Settings(data_dir=mine))
    assert getattr(info.value, "key", None) == "local_only_elsewhere"


@pytest.fixture
def twin_nodes() -> Iterator[tuple[AnvilNode, AnvilNode]]:
    """Two fresh anvil nodes: the same chain id, the same accounts, different chains."""
    executable = anvil_executable()
    if executable is None:
        pytest.skip("anvil is not installed")
    nodes = (AnvilNode(executable), AnvilNode(executable))
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


@pytest.mark.anvil
def test_another_instance_of_the_chain_is_no_evidence(twin_nodes: tuple[AnvilNode, AnvilNode],
                                                       tmp_path: Path) -> None:
    first, second = twin_nodes
    record = _author(first.url, tmp_path / "author")
    # The same chain id, the registry at the same address (deployed from the same key and
    # nonce), but not the chain the proof was anchored on: without a check it would say
    # NOT FOUND, a false verdict.
    proof = Proof.from_dict(json.loads(proof_path(record).read_text()))
    assert proof.anchor is not None and proof.anchor.block_hash is not None
    assert second.deploy_registry() == proof.anchor.contract_address
    with pytest.raises(Exception) as info:
        verify(record, settings=Settings(rpc_url=second.url))
    assert getattr(info.value, "key", None) == "anchor_not_on_chain"
    assert info.value.exit_code == 7  # type: ignore[attr-defined]
    assert verify(record, settings=Settings(rpc_url=first.url))  # its own chain: VALID


def test_unknown_chain_needs_an_endpoint_and_bad_deployment_block_is_refused(
        tmp_path: Path) -> None:
    record = make_sample_record()
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    anchor = {"mode": "single", "network": "elsewhere", "chain_id": 999_999,
              "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20,
              "tx_hash": "0x" + "33" * 32, "block_number": 5, "registry_block": 2}
    proof = {"proof_version": "1.0", "mrv_id": record["mrv_id"], "status": "anchored",
             "record_hash": {"algorithm": "sha256-jcs", "digest": compute_hash(record)},
             "anchor": anchor}
    proof_path(path).write_text(json.dumps(proof))
    with pytest.raises(Exception) as info:
        verify(path, settings=Settings(data_dir=tmp_path / "none"))
    assert getattr(info.value, "key", None) == "endpoint_needed"
    assert not (tmp_path / "none").exists()
    anchor["registry_block"] = 9  # deployed after the transaction that used it: a forgery
    with pytest.raises(MalformedProofError, match="later than the anchoring block"):
        Proof.from_dict(proof)


# --- a provider's limits --------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An anvil chain whose registry was deployed early, then 2,000 empty blocks, then a
    record registered only by a copier (account 1) whose proof names account 0.

    2,000, not 100,000: anvil_mine slows down with the chain's length here (1,000 blocks in
    1 s, the fifth 1,000 in 9 s, 10,000 at once in 122 s); the provider's range limit is
    scaled down with it, so the client still has to split its queries many times."""
    executable = anvil_executable()
    if executable is None:
        pytest.skip("anvil is not installed")
    node = AnvilNode(executable)
    node.start()
    try:
        data_dir = tmp_path_factory.mktemp("long") / "mrv_data"
        settings = Settings(data_dir=data_dir, network="anvil", rpc_url=node.url)
        deploy(settings.replace(private_key=KEY0))
        for _ in range(2):
            rpc(node.url, "anvil_mine", [hex(1_000)], timeout_s=120)
        record = make_sample_record()
        with connect(settings.replace(private_key=KEY1), need_signer=True) as conn:
            receipt = conn.send(conn.registry.functions.registerMRV(
                record["mrv_id"], hash_to_bytes32(compute_hash(record))))
            registry, registry_block = conn.registry_address, conn.registry_block
        assert registry_block is not None and receipt.block_number > 2_000
        folder = tmp_path_factory.mktemp("long-review")
        path = folder / "record.json"
        path.write_text(json.dumps(record))
        proof = {"proof_version": "1.0", "mrv_id": record["mrv_id"], "status": "anchored",
                 "record_hash": {"algorithm": "sha256-jcs", "digest": compute_hash(record)},
                 "anchor": {"mode": "single", "network": "anvil", "chain_id": 31337,
                            "contract_address": registry,
                            "submitter": anvil_dev_accounts()[0].address,
                            "registry_block": registry_block}}
        proof_path(path).write_text(json.dumps(proof))
        yield {"node": node, "record": path, "registry_block": registry_block,
               "head": receipt.block_number}
    finally:
        node.kill()


@pytest.mark.anvil
@pytest.mark.parametrize("limit", [1_000, 300])
def test_log_queries_start_at_deployment_and_fit_the_provider_range(
        long_chain: dict[str, Any], limit: int) -> None:
    with ProviderProxy(long_chain["node"].url, max_log_range=limit) as proxy:
        v = verify(long_chain["record"], settings=Settings(rpc_url=proxy.url))
    # the proof names account 0; only account 1 registered this hash: found in the logs
    assert v.status.value == "SUBMITTER_MISMATCH" and v.reason == "hash_registered_by_other"
    accepted = [r for r in proxy.log_ranges if r[1] - r[0] + 1 <= limit]
    assert accepted and min(low for low, _ in accepted) == long_chain["registry_block"]
    assert max(high for _, high in accepted) >= long_chain["head"]
    span = long_chain["head"] - long_chain["registry_block"] + 1
    assert sum(high - low + 1 for low, high in accepted) >= span
    # The client starts with 10,000-block ranges: too wide here, so halved until the
    # provider accepts, then the whole span is covered in ranges it accepts.
    assert proxy.refused_ranges >= 1
    assert len(accepted) >= span // limit


@pytest.mark.anvil
def test_rate_limits_and_transient_errors_are_retried(anvil: Any, tmp_path: Path) -> None:
    anvil.ensure_running()
    record = _author(anvil.url, tmp_path / "author")
    with ProviderProxy(anvil.url, rate_limited=2, unavailable_every=5) as proxy:
        v = verify(record, settings=Settings(rpc_url=proxy.url))
        assert v.status.value == "VALID" and proxy.requests > 5
        proxy.down = True  # never recovers: a bounded wait, then "unreachable" (exit 4)
        with pytest.raises(Exception) as info:
            verify(record, settings=Settings(rpc_url=proxy.url))
    assert getattr(info.value, "exit_code", None) == 4


@pytest.mark.anvil
def test_two_endpoints_must_agree(anvil: Any, tmp_path: Path) -> None:
    anvil.ensure_running()
    record = _author(anvil.url, tmp_path / "author")

    def lie(method: str, params: list[Any], result: Any) -> Any:
        return "0x" + "00" * 64 if method == "eth_call" else result  # "nothing registered"

    with ProviderProxy(anvil.url) as honest, ProviderProxy(anvil.url, rewrite=lie) as liar:
        alone = verify(record, settings=Settings(rpc_url=liar.url))
        assert alone.status.value == "NOT_FOUND"  # one endpoint alone can always lie
        assert verify(record, settings=Settings(rpc_url=honest.url),
                      witness_rpc_url=honest.url).status.value == "VALID"
        with pytest.raises(EvidenceConflictError, match="disagree") as info:
            verify(record, settings=Settings(rpc_url=honest.url), witness_rpc_url=liar.url)
        assert info.value.exit_code == 12 and info.value.key == "endpoints_disagree"
        review = tmp_path / "review"
        _hand_over(record, review)
        done = _reviewer(review, "verify", "record.json", "--rpc-url", liar.url,
                         "--rpc-url", honest.url)
        assert done.returncode == 12 and "disagree" in done.stderr
        assert "NOT FOUND" not in done.stdout


@pytest.mark.anvil
def test_local_only_record_is_published_later_with_mrv_anchor_network(
        twin_nodes: tuple[AnvilNode, AnvilNode], tmp_path: Path) -> None:
    from mrv_ml.run.tracker import MRVTracker
    from tests.support.cli import run_mrv

    node = twin_nodes[0]
    data_dir = tmp_path / "author" / "mrv_data"
    with MRVTracker("first-locally", storage_dir=str(data_dir), quiet=True) as tracker:
        pass
    assert tracker.proof is not None and tracker.proof.anchor is not None
    local_anchor = tracker.proof.anchor
    deploy(Settings(data_dir=data_dir, network="anvil", rpc_url=node.url, private_key=KEY0))
    args = ["anchor", "--network", "anvil", "--rpc-url", node.url, "--data-dir", str(data_dir)]
    code, out, err = run_mrv(*args, env={"PRIVATE_KEY": KEY0.reveal()})
    assert code == 0, err
    assert f"{tracker.mrv_id} anchored" in out
    proof = RecordStore(data_dir).load_proof(str(tracker.mrv_id))
    assert proof is not None and proof.anchor is not None
    assert proof.anchor.chain_id == 31337 and proof.history == (local_anchor,)
    review = tmp_path / "review"
    _hand_over(Path(str(tracker.record_path)), review)
    done = _reviewer(review, "verify", "record.json", "--rpc-url", node.url)
    assert done.returncode == 0 and "private network" in done.stdout, done.stderr
    # published once: a second run has nothing to do
    code, out, _ = run_mrv(*args, env={"PRIVATE_KEY": KEY0.reveal()})
    assert code == 0 and "Nothing to anchor" in out


@pytest.mark.anvil
def test_a_reorg_that_drops_the_anchor_returns_the_record_to_pending_and_reanchors(
        twin_nodes: tuple[AnvilNode, AnvilNode], tmp_path: Path) -> None:
    from mrv_ml.anchoring.single import anchor_pending

    node = twin_nodes[0]
    data_dir = tmp_path / "author"
    settings = Settings(data_dir=data_dir, network="anvil", rpc_url=node.url, private_key=KEY0)
    deploy(settings)
    snapshot = rpc(node.url, "evm_snapshot")
    record = _author(node.url, data_dir)
    before = Proof.from_dict(json.loads(proof_path(record).read_text()))
    assert before.anchor is not None
    rpc(node.url, "evm_revert", [snapshot])  # the anchoring block is gone...
    rpc(node.url, "anvil_mine", [hex(3)])  # ...and other blocks took its height
    outcomes = anchor_pending(RecordStore(data_dir), settings=settings)
    assert [o.mrv_id for o in outcomes] == [record.stem] and outcomes[0].anchored
    after = RecordStore(data_dir).load_proof(record.stem)
    assert after is not None and after.anchor is not None
    assert after.anchor.tx_hash != before.anchor.tx_hash
    assert after.history == (before.anchor,)  # the lost anchor is kept, not erased
    assert any("reorg" in a.error for a in after.attempts)
    assert verify(record, settings=Settings(rpc_url=node.url))
