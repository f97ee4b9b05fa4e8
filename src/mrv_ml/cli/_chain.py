"""``mrv verify``, ``mrv anchor``, ``mrv deploy``, ``mrv account``: the chain commands.

Library errors propagate to :func:`mrv_ml.cli.main` (one line, their exit code). Heavy
modules (web3) are imported inside the commands so that ``mrv --help`` stays fast.
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mrv_ml.cli._app import app, console, console_err
from mrv_ml.cli._core import _print_json, _safe
from mrv_ml.errors import EXIT_BAD_INPUT, KeyConfigError, RecordError

if TYPE_CHECKING:
    from mrv_ml.config import Settings
    from mrv_ml.verify import Verdict

NetworkOption = Annotated[str | None, typer.Option(
    "--network", metavar="NAME", help="Network preset (local, anvil, sepolia, ..., custom).")]
RpcOption = Annotated[str | None, typer.Option(
    "--rpc-url", metavar="URL", help="JSON-RPC URL (same as BLOCKCHAIN_RPC_URL).")]
ContractOption = Annotated[str | None, typer.Option(
    "--contract", metavar="ADDR", help="Registry address (same as CONTRACT_ADDRESS).")]
DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", metavar="DIR", help="Record store directory (default: MRV_DATA_DIR or ./mrv_data).")]
ConfirmationsOption = Annotated[int | None, typer.Option(
    "--confirmations", min=0, metavar="N", help="Blocks to wait for after mining.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

_ICONS = {"VALID": "✅ VALID", "TAMPERED": "❌ TAMPERED", "NOT_FOUND": "⚠️ NOT FOUND",
          "SUBMITTER_MISMATCH": "⚠️ SUBMITTER MISMATCH"}
# Worst first decides the exit status of a multi-record run.
_SEVERITY = {0: 0, 2: 1, 5: 2, 1: 3, EXIT_BAD_INPUT: 4}
DEV_KEY_NOTE = "(well-known development key, local chain only)"


def _settings(network: str | None = None, rpc_url: str | None = None,
              contract: str | None = None, data_dir: Path | None = None,
              confirmations: int | None = None) -> Settings:
    from mrv_ml.config import load_settings

    return load_settings({"network": network, "rpc_url": rpc_url, "contract_address": contract,
                          "data_dir": str(data_dir) if data_dir is not None else None,
                          "confirmations": confirmations})


def _utc(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.6g} {unit}"


def _record_files(refs: list[str], settings: Settings) -> list[Path]:
    from mrv_ml.store import PROOF_SUFFIX, RecordStore

    store = RecordStore(settings.data_dir)
    files: list[Path] = []
    for ref in refs:
        path = Path(ref).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json")
                           if not p.name.endswith(PROOF_SUFFIX) and not p.name.startswith("."))
            if not found:
                raise RecordError(f"{path}: no record files in this directory")
            files.extend(found)
        else:
            files.append(store.resolve(ref))
    return files


def _print_verdict(v: Verdict, source: str) -> None:
    console.print(f"{_ICONS[v.status.value]}"
                  + (" - Hashes match!" if v.status.value == "VALID" else ""), markup=False)
    rows = [("Record", source), ("MRV ID", v.mrv_id), ("CO2", _num(v.co2_kg, "kg")),
            ("Energy", _num(v.energy_kwh, "kWh")), ("Timestamp", _utc(v.timestamp)),
            ("Submitter", v.submitter or "-")]
    if v.expected_submitter and v.expected_submitter != v.submitter:
        rows.append(("Expected submitter", v.expected_submitter))
    rows += [("Local hash", v.local_hash), ("On-chain hash", v.onchain_hash or "-"),
             ("Tx", v.tx_hash or "-")]
    if v.explorer_url:
        rows.append(("Explorer", v.explorer_url))
    rows += [("Block", "-" if v.block_number is None else str(v.block_number)),
             ("Network", f"{v.network} (chain {v.chain_id}), registry {v.contract_address}")]
    if v.detail:
        rows.append(("Detail", v.detail))
    for label, value in rows:
        console.print(f"  {label + ':':<20}{_safe(value)}", markup=False)


@app.command("verify")
def verify_command(
    records: Annotated[list[str], typer.Argument(
        metavar="RECORD...", help="Record files, directories of records, or MRV IDs in the store.")],
    mrv_id: Annotated[str | None, typer.Option(
        "--mrv-id", metavar="ID", help="Compare against the registry entry of this ID.")] = None,
    submitter: Annotated[str | None, typer.Option(
        "--submitter", metavar="ADDR", help="Address expected to have registered the record.")]
    = None,
    network: NetworkOption = None, rpc_url: RpcOption = None, contract: ContractOption = None,
    data_dir: DataDirOption = None, as_json: JsonOption = False,
) -> None:
    """Check records against the on-chain registry.

    Exit 0 VALID, 1 TAMPERED, 2 NOT FOUND, 5 SUBMITTER MISMATCH (several records: the
    worst), 3 unusable input, 4 chain unreachable, 7 configuration.
    """
    from mrv_ml.verify import verify

    settings = _settings(network, rpc_url, contract, data_dir)
    files = _record_files(records, settings)
    if mrv_id is not None and len(files) > 1:
        raise RecordError("--mrv-id applies to one record only")
    # Note: a Verdict is falsy unless VALID, so test it with `is not None`.
    results: list[tuple[Path, Verdict | None, str | None]] = []
    if len(files) > 1 and mrv_id is None:
        # Many records: one connection, each batch root read once from the chain.
        from mrv_ml.batch import verify_many

        try:
            verdicts = verify_many(files, settings=settings, expected_submitter=submitter)
            results = [(p, v, None) for p, v in zip(files, verdicts, strict=True)]
        except RecordError:
            results = []  # an unusable file among them: go one by one to report each
    for path in files if not results else []:
        try:
            results.append((path, verify(path, mrv_id=mrv_id, expected_submitter=submitter,
                                         settings=settings), None))
        except RecordError as e:
            if len(files) == 1:
                raise
            results.append((path, None, str(e)))
    codes = [v.exit_code if v is not None else EXIT_BAD_INPUT for _, v, _ in results]
    worst = max(codes, key=lambda c: _SEVERITY.get(c, 9))
    if as_json:
        items = [dict(v.to_dict(), file=str(p)) if v is not None else
                 {"file": str(p), "status": "UNUSABLE", "error": err, "exit_code": EXIT_BAD_INPUT}
                 for p, v, err in results]
        _print_json(items[0] if len(items) == 1 else items)
    elif len(results) == 1 and results[0][1] is not None:
        _print_verdict(results[0][1], str(results[0][0]))
    else:
        for path, v, err in results:
            status = _ICONS[v.status.value] if v is not None else "❌ UNUSABLE"
            extra = (f"{_num(v.co2_kg, 'kg CO2')}  tx {v.tx_hash or '-'}" if v is not None else err)
            console.print(f"{status:<24} {_safe(path.name)}  {_safe(extra)}", markup=False)
        counts: dict[str, int] = {}
        for _, v, _ in results:
            key = v.status.value if v is not None else "UNUSABLE"
            counts[key] = counts.get(key, 0) + 1
        console.print(f"{len(results)} record(s): "
                      + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), markup=False)
    if worst:
        raise typer.Exit(worst)


def _is_dev_address(address: str | None) -> bool:
    from mrv_ml.localchain import anvil_dev_accounts, dev_accounts

    return bool(address) and any(a.address == address
                                 for a in [*dev_accounts(), *anvil_dev_accounts()])


@app.command("anchor")
def anchor_command(
    ids: Annotated[list[str] | None, typer.Argument(
        metavar="[ID...]", help="Records to anchor (default: every pending record).")] = None,
    batch: Annotated[bool, typer.Option(
        "--batch", help="Anchor them together as one Merkle batch (one transaction).")] = False,
    network: NetworkOption = None, rpc_url: RpcOption = None, contract: ContractOption = None,
    data_dir: DataDirOption = None, confirmations: ConfirmationsOption = None,
) -> None:
    """Anchor pending records. Exit 0 when all are anchored, else the first failure's code."""
    from mrv_ml.anchor import anchor_pending
    from mrv_ml.store import RecordStore

    settings = _settings(network, rpc_url, contract, data_dir, confirmations)
    store = RecordStore(settings.data_dir)
    mrv_ids = None
    if ids:
        mrv_ids = [store.resolve(i).name.removesuffix(".json") for i in ids]
    if batch:
        from mrv_ml import batch as batch_module  # type: ignore[attr-defined,unused-ignore]

        outcomes = batch_module.anchor_batch(store, mrv_ids if mrv_ids is not None
                                             else store.pending_ids(), settings=settings)
    else:
        outcomes = anchor_pending(store, settings=settings, mrv_ids=mrv_ids)
    if not outcomes:
        console.print("Nothing to anchor: no pending records.", markup=False)
        return
    first_error: int | None = None
    dev_note = False
    for o in outcomes:
        if o.anchored:
            anchor = o.proof.get("anchor", {})
            where = anchor.get("explorer_url") or f"block {anchor.get('block_number')}"
            console.print(f"✅ {o.mrv_id} anchored in tx {o.tx_hash} ({where})", markup=False)
            dev_note = dev_note or _is_dev_address(anchor.get("submitter"))
        else:
            console.print(f"⏳ {o.mrv_id} still pending: {_safe(o.error)}", markup=False)
            if first_error is None:
                first_error = o.error_exit_code or 8
    if dev_note:
        console.print(f"Signed by {outcomes[0].proof.get('anchor', {}).get('submitter')} "
                      f"{DEV_KEY_NOTE}", markup=False)
    if first_error:
        raise typer.Exit(first_error)


@app.command("deploy")
def deploy_command(
    network: NetworkOption = None, rpc_url: RpcOption = None, data_dir: DataDirOption = None,
    confirmations: ConfirmationsOption = None,
) -> None:
    """Deploy the MRVRegistry contract and record its address for this chain."""
    from mrv_ml.chain import deploy

    settings = _settings(network, rpc_url, None, data_dir, confirmations)
    address, path = deploy(settings)
    console.print(f"MRVRegistry deployed at {address}", markup=False)
    console.print(f"Recorded in {path}", markup=False)


account_app = typer.Typer(help="Encrypted keystores for signing anchors.", no_args_is_help=True)
app.add_typer(account_app, name="account")


@account_app.command("new")
def account_new(data_dir: DataDirOption = None) -> None:
    """Create a new key in an encrypted keystore (password: MRV_KEYSTORE_PASSWORD or prompt)."""
    from mrv_ml.keys import save_keystore

    address, path = save_keystore(_settings(data_dir=data_dir))
    console.print(f"New account {address}", markup=False)
    console.print(f"Keystore: {path}", markup=False)


@account_app.command("import")
def account_import(data_dir: DataDirOption = None) -> None:
    """Import a private key (hidden prompt, or one line on standard input) into a keystore."""
    from mrv_ml.config import Secret
    from mrv_ml.keys import save_keystore

    # Never from argv: it would sit in shell history and the process list.
    text = getpass.getpass("Private key (hidden): ") if sys.stdin.isatty() else sys.stdin.readline()
    if not text.strip():
        raise KeyConfigError("no private key given on standard input")
    address, path = save_keystore(_settings(data_dir=data_dir), Secret(text.strip()))
    console.print(f"Imported account {address}", markup=False)
    console.print(f"Keystore: {path}", markup=False)


@account_app.command("list")
def account_list(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """List the keystores (addresses only)."""
    from mrv_ml.keys import list_keystores

    found = list_keystores(_settings(data_dir=data_dir))
    if as_json:
        _print_json([{"address": a, "path": str(p)} for a, p in found])
        return
    if not found:
        console_err.print("No keystores (create one with `mrv account new`).", markup=False)
    for address, path in found:
        console.print(f"{address}  {_safe(path)}", markup=False)


