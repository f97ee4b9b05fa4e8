"""A record verified without its proof file, read by ID: the verdict still names the
transaction, its block and confirmations, found from the entry's timestamp through a
provider that limits log ranges to 500 blocks; where the node refuses logs, the verdict
says so in its detail and keeps its status."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.anchoring.single import anchor_record
from mrv_ml.config import load_settings
from mrv_ml.storage.store import RecordStore
from mrv_ml.verification.verdict import VerdictStatus
from mrv_ml.verification.verifier import verify
from tests.support.anvil import AnvilNode, anvil_executable, rpc
from tests.support.cli import MRV
from tests.support.provider import ProviderProxy
from tests.support.records import make_sample_record

LOG_LIMIT = 500


def _anchored_copy(tmp_path: Path) -> tuple[Path, Any]:
    """Anchor a record on the configured chain (single mode); copy the record alone, with
    no proof, into an empty directory."""
    settings = load_settings()
    store = RecordStore(settings.data_dir)
    record = make_sample_record()
    store.save(record)
    outcome = anchor_record(store, record["mrv_id"], settings=settings)
    assert outcome.anchored, outcome.error
    reviewer = tmp_path / "reviewer"
    reviewer.mkdir()
    copy = reviewer / f"{record['mrv_id']}.json"
    shutil.copy(store.path_for(record["mrv_id"]), copy)
    return copy, outcome


def test_the_embedded_chain_finds_the_transaction_without_a_proof(tmp_path: Path) -> None:
    copy, outcome = _anchored_copy(tmp_path)
    verdict = verify(copy)
    assert verdict.status is VerdictStatus.VALID
    assert verdict.tx_hash == outcome.tx_hash and verdict.block_number is not None
    assert verdict.confirmations is not None and verdict.confirmations >= 1


@pytest.fixture
def spaced_anvil(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnvilNode]:
    """A node of its own whose blocks are 12 s apart, as on Ethereum (the session's anvil
    mines many blocks per second, and its clock must not move for other tests)."""
    executable = anvil_executable()
    if executable is None:
        pytest.skip("anvil is not installed (run npm ci)")
    with AnvilNode(executable) as node:
        registry = node.deploy_registry()
        rpc(node.url, "anvil_mine", [hex(300), hex(12)], timeout_s=60)
        rpc(node.url, "anvil_setBlockTimestampInterval", [12])
        monkeypatch.setenv("NETWORK", "anvil")
        monkeypatch.setenv("BLOCKCHAIN_RPC_URL", node.url)
        monkeypatch.setenv("CONTRACT_ADDRESS", registry)
        yield node


@pytest.mark.anvil
def test_through_a_provider_limiting_log_ranges_to_500_blocks(
        spaced_anvil: AnvilNode, mrv: MRV, tmp_path: Path) -> None:
    copy, outcome = _anchored_copy(tmp_path)
    # the registration is now 1,500 blocks back: a scan from genesis would ask four ranges
    # of 500 here, and on a public chain's history tens of thousands
    rpc(spaced_anvil.url, "anvil_mine", [hex(1_500), hex(12)], timeout_s=60)
    with ProviderProxy(spaced_anvil.url, max_log_range=LOG_LIMIT) as proxy:
        code, out, err = mrv("verify", str(copy), "--json", "--rpc-url", proxy.url,
                             env={"MRV_DATA_DIR": str(tmp_path / "empty")})
        verdict = json.loads(out)
        assert code == 0 and verdict["status"] == "VALID", out + err
        assert verdict["tx_hash"] == outcome.tx_hash
        assert verdict["block_number"] == outcome.proof.anchor.block_number
        assert verdict["confirmations"] >= 1_500
        # one log query over the registration's own block, found by bisecting headers
        assert len(proxy.log_ranges) == 1 and proxy.refused_ranges == 0
        low, high = proxy.log_ranges[0]
        assert low <= verdict["block_number"] <= high and high - low + 1 <= LOG_LIMIT
        assert proxy.requests < 60
        code, out, err = mrv("verify", str(copy), "--rpc-url", proxy.url,
                             env={"MRV_DATA_DIR": str(tmp_path / "empty")})
    assert code == 0 and outcome.tx_hash in out and "Confirmations:" in out, out + err


@pytest.mark.anvil
def test_a_node_refusing_logs_keeps_the_status_and_says_so(
        anvil: Any, anvil_registry: str, mrv: MRV, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETWORK", "anvil")
    monkeypatch.setenv("BLOCKCHAIN_RPC_URL", anvil.url)
    monkeypatch.setenv("CONTRACT_ADDRESS", anvil_registry)
    copy, _ = _anchored_copy(tmp_path)
    with ProviderProxy(anvil.url, max_log_range=0) as proxy:  # refuses every log query
        code, out, err = mrv("verify", str(copy), "--json", "--rpc-url", proxy.url,
                             env={"MRV_DATA_DIR": str(tmp_path / "empty")})
    verdict = json.loads(out)
    assert code == 0 and verdict["status"] == "VALID", out + err
    assert verdict["tx_hash"] is None and verdict["confirmations"] is None
    assert "the node refused" in verdict["detail"] and proxy.refused_ranges > 0


class _Headers:
    """Block timestamps only: what :func:`blocks_at` reads."""

    def __init__(self, timestamps: list[int]) -> None:
        self.timestamps = timestamps
        self.reads = 0

    def block_timestamp(self, number: int) -> int:
        self.reads += 1
        return self.timestamps[number]


@pytest.mark.parametrize(("timestamps", "wanted", "window"), [
    ([10, 12, 12, 12, 15, 20], 12, (1, 3)),  # several blocks in one second
    ([10, 12, 12, 12, 15, 20], 10, (0, 0)),  # the first block
    ([10, 12, 12, 12, 15, 20], 20, (5, 5)),  # the last
    ([10, 12, 12, 12, 15, 20], 13, None),  # no block of that second
    ([10, 12, 12, 12, 15, 20], 9, None),  # before the range
    ([10, 12, 12, 12, 15, 20], 21, None),  # after it
])
def test_the_blocks_of_a_timestamp_are_found_by_bisection(
        timestamps: list[int], wanted: int, window: tuple[int, int] | None) -> None:
    from mrv_ml.chain.events import blocks_at

    headers = _Headers(timestamps)
    assert blocks_at(headers, wanted, 0, len(timestamps) - 1) == window
    assert headers.reads <= 2 * (len(timestamps).bit_length() + 1)


def test_a_million_blocks_take_some_forty_header_reads() -> None:
    from mrv_ml.chain.events import blocks_at

    headers = _Headers([1_700_000_000 + 12 * n for n in range(1_000_000)])
    assert blocks_at(headers, 1_700_000_000 + 12 * 654_321, 0, 999_999) == (654_321, 654_321)
    assert headers.reads <= 42
