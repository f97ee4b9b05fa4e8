"""Many processes anchoring with one key: the nonce lock keeps them from colliding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.config import load_settings
from mrv_ml.storage.store import RecordStore
from tests.support.records import make_sample_record

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 8

_CHILD = """
import sys
from mrv_ml.anchoring.single import anchor_record
from mrv_ml.config import load_settings
from mrv_ml.storage.store import RecordStore
settings = load_settings()
outcome = anchor_record(RecordStore(settings.data_dir), sys.argv[1], settings=settings)
print(outcome.status, outcome.tx_hash, outcome.error)
sys.exit(0 if outcome.anchored else 1)
"""


@pytest.mark.anvil
@pytest.mark.slow
def test_eight_processes_one_key(anvil: Any, anvil_registry: str) -> None:
    key_account = anvil.accounts[8]
    env = dict(os.environ, NETWORK="anvil", BLOCKCHAIN_RPC_URL=anvil.url,
               CONTRACT_ADDRESS=anvil_registry, PRIVATE_KEY=key_account.key.hex())
    store = RecordStore(load_settings().data_dir)
    ids = []
    for _ in range(PROCESSES):
        record = make_sample_record()
        store.save(record)
        ids.append(record["mrv_id"])
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, mrv_id], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for mrv_id in ids]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, results
    w3 = anvil.w3()
    nonces = set()
    for mrv_id in ids:
        proof = store.load_proof(mrv_id)
        assert proof is not None and proof.anchor is not None
        tx = w3.eth.get_transaction(proof.anchor.tx_hash)
        assert tx["from"] == key_account.address
        nonces.add(tx["nonce"])
    assert len(nonces) == PROCESSES
