"""An endpoint's credential never leaves memory: keys of 8, 13 and 40 characters, in the
URL's path and in its query, through a node that refuses the connection, one that answers
503, and one that works (a provider-like proxy in front of anvil). No line printed and no
byte under ``mrv_data/`` holds the key; only scheme, host and port are ever shown."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mrv_ml.chain.localchain import anvil_dev_accounts
from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV
from tests.support.provider import ProviderProxy
from tests.support.records import make_sample_record

KEYS = ("S3cr3t88", "SECRETKEY4242", "Ab1" * 13 + "Z")
PLACES = {"path": "/v3/{key}", "query": "/?apikey={key}", "both": "/{key}/rpc?token={key}"}
RESEARCHER_KEY = anvil_dev_accounts()[8].key.hex()


def _leaks(key: str, data_dir: Path, *outputs: str) -> list[str]:
    found = [f"output {n}" for n, text in enumerate(outputs) if key in text]
    for path in data_dir.rglob("*"):
        if path.is_file() and key.encode() in path.read_bytes():
            found.append(str(path.relative_to(data_dir)))
    return found


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k)}-chars")
@pytest.mark.parametrize("place", ["path", "query"])
def test_a_refused_endpoint_never_shows_its_key(mrv: MRV, key: str, place: str) -> None:
    data_dir = Path(os.environ["MRV_DATA_DIR"])
    url = "http://127.0.0.1:9" + PLACES[place].format(key=key)
    env = {"BLOCKCHAIN_RPC_URL": url, "NETWORK": "sepolia", "PRIVATE_KEY": "0x" + "12" * 32}
    path = RecordStore(data_dir).save(make_sample_record())
    outputs = []
    for args in (["anchor"], ["verify", str(path)], ["anchor", "--batch"], ["deploy"]):
        code, out, err = mrv(*args, env=env)
        assert code != 0 and "127.0.0.1:9" in out + err, (args, out, err)
        outputs += [out, err]
    assert _leaks(key, data_dir, *outputs) == []


@pytest.mark.anvil
@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k)}-chars")
@pytest.mark.parametrize("place", ["both"])
def test_a_provider_endpoint_never_shows_its_key(mrv: MRV, anvil: Any, anvil_registry: str,
                                                  key: str, place: str) -> None:
    data_dir = Path(os.environ["MRV_DATA_DIR"])
    with ProviderProxy(anvil.url) as proxy:
        url = proxy.url + PLACES[place].format(key=key)
        env = {"BLOCKCHAIN_RPC_URL": url, "NETWORK": "anvil", "CONTRACT_ADDRESS":
               anvil_registry, "PRIVATE_KEY": RESEARCHER_KEY}
        outputs = []
        proxy.down = True  # 503 with a body: the HTTP error names the URL it asked
        code, out, err = mrv("run", "--", "python3", "-c", "pass", env=env)
        assert code == 0 and "pending" in out + err, out + err
        outputs += [out, err]
        code, out, err = mrv("anchor", env=env)
        assert code != 0 and "pending" in out + err, out + err
        outputs += [out, err]
        proxy.down = False
        code, out, err = mrv("anchor", env=env)
        assert code == 0 and "✅" in out, out + err
        outputs += [out, err]
        code, out, err = mrv("verify", str(data_dir), env=env)
        assert code == 0 and "VALID" in out, out + err
        outputs += [out, err]
    assert proxy.requests > 0
    assert _leaks(key, data_dir, *outputs) == []
