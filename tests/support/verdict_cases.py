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
from mrv_ml.record.hashing import hash_to_bytes32
from mrv_ml.record.proof import proof_path


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


def impostor_bytecode(answer_hex: str, submitter: str) -> bytes:
    """Creation code of a 70-byte contract that answers every call with 96 bytes:
    ``answer`` (32 bytes), 1, ``submitter``; to any getter of the registry ABI that reads
    "registered with exactly this hash": what a fake registry would say."""
    runtime = (b"\x7f" + bytes.fromhex(answer_hex) + b"\x60\x00\x52"  # mstore(0, answer)
               + b"\x60\x01\x60\x20\x52"                                # mstore(32, 1)
               + b"\x73" + bytes.fromhex(submitter[2:]) + b"\x60\x40\x52"  # mstore(64, who)
               + b"\x60\x60\x60\x00\xf3")                               # return(0, 96)
    size = len(runtime)
    creation = bytes([0x60, size, 0x60, 12, 0x60, 0, 0x39, 0x60, size, 0x60, 0, 0xF3])
    return creation + runtime


def prepare_chain(settings: Settings, accounts: dict[str, Any], registry: str) -> CaseChain:
    """Put every case's holdings on the chain ``settings`` reach (its registry already
    deployed at ``registry``), sent by ``accounts`` (placeholder -> LocalAccount)."""
    from mrv_ml.chain.connection import connect

    mapping: dict[str, Any] = {name: account.address for name, account in accounts.items()}
    with connect(settings) as conn:
        mapping.update({"$registry": conn.registry_address, "$chain_id": conn.chain_id})
    assert mapping["$registry"].lower() == registry.lower()
    answers = {c["chain"]["impostor_answers"] for c in CASES if "impostor_answers" in c["chain"]}
    assert len(answers) <= 1, "one $impostor per table"
    for answer in answers:
        signer = settings.replace(private_key=Secret(accounts["$dev0"].key.hex()))
        with connect(signer, need_signer=True, deploying=True) as conn:
            w3 = conn.w3
            tx = {"from": conn.signer_address, "data": impostor_bytecode(
                answer, accounts["$dev0"].address), "chainId": conn.chain_id,
                "nonce": w3.eth.get_transaction_count(conn.signer_address), "gas": 200_000,
                "gasPrice": w3.eth.gas_price}
            signed = conn.signer.sign_transaction(tx)  # type: ignore[union-attr]
            receipt = w3.eth.wait_for_transaction_receipt(
                w3.eth.send_raw_transaction(signed.raw_transaction))
            mapping["$impostor"] = receipt["contractAddress"]
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
