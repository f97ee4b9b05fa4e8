"""The shared verdict table (``src/mrv_ml/data/verdict_cases.json``) made concrete on a chain.

:func:`load_cases` reads the table; :class:`CaseChain` holds a chain on which every case's
holdings were put (:func:`prepare_chain`: each registration and batch root sent once, by
the account its case names, in the table's order) and the values of the placeholders;
:meth:`CaseChain.write` writes a case's record (and its proof beside it, as
``<stem>.proof.json``) into a directory, as a reviewer would receive them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mrv_ml.config import Secret, Settings
from mrv_ml.hashing import hash_to_bytes32
from mrv_ml.proof import proof_path


def load_cases() -> list[dict[str, Any]]:
    table = json.loads((resources.files("mrv_ml") / "data" / "verdict_cases.json")
                       .read_text(encoding="utf-8"))
    assert table["format"] == "mrv-ml verdict cases" and table["version"] == 1
    cases: list[dict[str, Any]] = table["cases"]
    return cases


CASES = load_cases()
CASE_IDS = [c["name"] for c in CASES]


def substitute(value: Any, mapping: dict[str, Any]) -> Any:
    """``value`` with every string equal to a placeholder replaced by its value."""
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, list):
        return [substitute(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, mapping) for k, v in value.items()}
    return value


@dataclass
class CaseChain:
    """A chain holding every case's registrations, and how to reach it."""

    settings: Settings  # no key: what a reviewer has
    mapping: dict[str, Any]  # placeholder -> value
    cli_args: list[str]  # the same, as `mrv verify` options

    def write(self, case: dict[str, Any], folder: Path) -> Path:
        """The case's record file (proof beside it, if any), in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{case['name']}.json"
        if "record_text" in case:
            text = case["record_text"]
            for name, value in self.mapping.items():  # a proof given as the record has them
                text = text.replace(json.dumps(name), json.dumps(value))
            path.write_bytes(text.encode("utf-8"))
        else:
            path.write_text(json.dumps(case["record"], indent=2), encoding="utf-8")
        if case["proof"] is not None:
            proof_path(path).write_text(json.dumps(substitute(case["proof"], self.mapping)),
                                        encoding="utf-8")
        return path

    def pin(self, case: dict[str, Any]) -> str | None:
        pin = case["pin"]
        return None if pin is None else str(self.mapping[pin])


def prepare_chain(settings: Settings, accounts: dict[str, Any], registry: str) -> CaseChain:
    """Put every case's holdings on the chain ``settings`` reach (its registry already
    deployed at ``registry``), sent by ``accounts`` (placeholder -> LocalAccount)."""
    from mrv_ml.chain import connect

    mapping: dict[str, Any] = {name: account.address for name, account in accounts.items()}
    with connect(settings) as conn:
        mapping.update({"$registry": conn.registry_address, "$chain_id": conn.chain_id})
    assert mapping["$registry"].lower() == registry.lower()
    sent: set[tuple[str, ...]] = set()
    for case in CASES:
        for item in case["chain"]["registrations"] + case["chain"]["batches"]:
            key = (item["from"], item.get("mrv_id", ""), item.get("hash", item.get("root", "")))
            if key in sent:
                continue
            sent.add(key)
            signer = settings.replace(private_key=Secret(accounts[item["from"]].key.hex()))
            with connect(signer, need_signer=True) as conn:
                if "root" in item:
                    call = conn.registry.functions.anchorBatch(
                        hash_to_bytes32(item["root"]), item["leaf_count"])
                else:
                    call = conn.registry.functions.registerMRV(
                        item["mrv_id"], hash_to_bytes32(item["hash"]))
                conn.send(call)
    args = ["--data-dir", str(settings.data_dir), "--network", settings.network]
    if settings.rpc_url:
        args += ["--rpc-url", settings.rpc_url]
    return CaseChain(settings=settings, mapping=mapping, cli_args=args)
