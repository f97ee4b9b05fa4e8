"""``mrv verify``, ``mrv anchor``, ``mrv deploy``, ``mrv account``: the chain commands.

Library errors propagate to :func:`mrv_ml.cli.main` (one line, their exit code). Heavy
modules (web3) are imported inside the commands so that ``mrv --help`` stays fast.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mrv_ml.cli._app import HELP_OPTIONS, app, console, console_err
from mrv_ml.cli._core import _print_json, _safe
from mrv_ml.errors import EXIT_TRANSACTION, KeyConfigError, RecordError
from mrv_ml.networks import is_dev_address
from mrv_ml.units import format_co2_kg

if TYPE_CHECKING:
    from mrv_ml.anchoring.single import AnchorOutcome
    from mrv_ml.config import Settings
    from mrv_ml.verification.verifier import FileVerdict, Verdict

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
DEV_KEY_NOTE = "(well-known development key, local chain only)"


def _settings(network: str | None = None, rpc_url: str | None = None,
              contract: str | None = None, data_dir: Path | None = None,
              confirmations: int | None = None) -> Settings:
    from mrv_ml.config import load_settings

    return load_settings({"network": network, "rpc_url": rpc_url, "contract_address": contract,
                          "data_dir": str(data_dir) if data_dir is not None else None,
                          "confirmations": confirmations})


def _record_paths(refs: list[str], settings: Settings) -> list[Path]:
    """Directories as given; anything else a file or an ID (prefix) in the store."""
    from mrv_ml.storage.store import RecordStore

    store = RecordStore(settings.data_dir)
    if any(not ref.strip() for ref in refs):  # Path("") is ".": never "every file here"
        raise RecordError("an empty name is not a record file, a directory or an ID")
    return [Path(ref).expanduser() if Path(ref).expanduser().is_dir() else store.resolve(ref)
            for ref in refs]


def _print_verdict(v: Verdict, source: str) -> None:
    from mrv_ml.reporting.one_record import verdict_headline, verdict_rows

    console.print(verdict_headline(v), markup=False)
    for label, value in verdict_rows(v, source):
        console.print(f"  {label + ':':<20}{_safe(value)}", markup=False)


def _result_json(r: FileVerdict) -> dict[str, Any]:
    if r.verdict is not None:
        return dict(r.verdict.to_dict(), file=str(r.path))
    assert r.error is not None
    return {"file": str(r.path), "status": "ERROR", "error_key": r.error.key,
            "error": str(r.error), "exit_code": r.error.exit_code}


@app.command("verify")
def verify_command(
    records: Annotated[list[str] | None, typer.Argument(
        metavar="RECORD...", help="Record files, directories of records, or MRV IDs in the "
                                  "store; with --attestation: [RECORD] [SUBJECT FILE...].")]
    = None,
    attestation: Annotated[Path | None, typer.Option(
        "--attestation", metavar="FILE", help="Verify this in-toto attestation (mrv export "
                                              "--format in-toto) instead; --signer pins who "
                                              "signed it.")] = None,
    mrv_id: Annotated[str | None, typer.Option(
        "--mrv-id", metavar="ID", help="Compare against the registry entry of this ID.")] = None,
    submitter: Annotated[str | None, typer.Option(
        "--submitter", metavar="ADDR", help="Address expected to have registered the record.")]
    = None,
    signer: Annotated[str | None, typer.Option(
        "--signer", metavar="ADDR", help="Researcher expected to have signed the record's "
                                         "fingerprint (mrv publish --sign).")] = None,
    network: NetworkOption = None,
    rpc_urls: Annotated[list[str] | None, typer.Option(
        "--rpc-url", metavar="URL",
        help="Endpoint of the chain the proof names (same as BLOCKCHAIN_RPC_URL); give it "
             "twice for two independent providers that must agree.")] = None,
    contract: ContractOption = None, data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check records against the chain their proof names; each record's proof is read
    from beside it. Nothing is written.

    Exit 0 VALID, 1 TAMPERED, 2 NOT FOUND, 5 SUBMITTER MISMATCH (several records: the
    worst), 3 unusable input, 4 chain unreachable, 7 configuration or untrusted evidence,
    9 proof file needed, 11 anchored on its author's local chain only, 12 the endpoints
    disagree (or an attestation's signature is not its signer's).
    """
    from mrv_ml.verification.verifier import iter_verify_files

    urls = rpc_urls or []
    if len(urls) > 2:
        raise typer.BadParameter("at most two endpoints (--rpc-url twice)")
    settings = _settings(network, urls[0] if urls else None, contract, data_dir)
    if attestation is not None:
        from mrv_ml.cli._attest import verify_attestation_command

        if mrv_id is not None:
            raise typer.BadParameter("--mrv-id: an attestation names its record's ID")
        raise typer.Exit(verify_attestation_command(
            attestation, records or [], signer, submitter, urls[1] if len(urls) == 2 else None,
            settings, as_json))
    if not records:
        raise typer.BadParameter("give RECORD... (or --attestation FILE)")
    paths = _record_paths(records, settings)
    results = iter_verify_files(paths, settings=settings, expected_submitter=submitter,
                                expected_signer=signer, mrv_id=mrv_id,
                                witness_rpc_url=urls[1] if len(urls) == 2 else None)
    if len(paths) == 1 and not paths[0].is_dir():
        (result,) = results
        if as_json:
            _print_json(_result_json(result))
        elif result.error is not None:
            raise result.error
        else:
            assert result.verdict is not None
            _print_verdict(result.verdict, str(result.path))
        worst = result.exit_code
    else:
        worst = _print_many(results, as_json)
    if worst:
        raise typer.Exit(worst)


def _print_many(results: Iterator[FileVerdict], as_json: bool) -> int:
    """One line (or JSON item) per record as it is verified, then the summary: a directory
    of any size is streamed, never held. Returns the worst exit code."""
    from mrv_ml.verification.verifier import worse

    counts: dict[str, int] = {}
    worst = 0
    if as_json:
        sys.stdout.write("[")
    for n, r in enumerate(results):
        worst = worse(worst, r.exit_code)
        v = r.verdict
        key = v.status.value if v is not None else "NOT VERIFIED"
        counts[key] = counts.get(key, 0) + 1
        if as_json:
            sys.stdout.write(("," if n else "") + "\n  " + json.dumps(
                _result_json(r), ensure_ascii=False, allow_nan=False))
            continue
        status = _ICONS[v.status.value] if v is not None else "❌ NOT VERIFIED"
        extra = (f"{format_co2_kg(v.co2_kg)}  {v.trust}  tx {v.tx_hash or '-'}"
                 if v is not None else str(r.error))
        console.print(f"{status:<24} {_safe(r.path.name)}  {_safe(extra)}", markup=False)
    if as_json:
        sys.stdout.write("\n]\n")
        sys.stdout.flush()
    else:
        console.print(f"{sum(counts.values())} record(s): "
                      + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), markup=False)
    return worst


@app.command("anchor")
def anchor_command(
    ids: Annotated[list[str] | None, typer.Argument(
        metavar="[ID...]", help="Records to anchor (default: every pending record).")] = None,
    batch: Annotated[bool, typer.Option(
        "--batch", help="Anchor them together as one Merkle batch (one transaction).")] = False,
    upgrade: Annotated[bool, typer.Option(
        "--upgrade", help="Fetch the complete proofs of records submitted to a registry "
                          "(mrv publish).")] = False,
    network: NetworkOption = None, rpc_url: RpcOption = None, contract: ContractOption = None,
    data_dir: DataDirOption = None, confirmations: ConfirmationsOption = None,
) -> None:
    """Anchor pending records (through the registry service when MRV_REGISTRY_URL is set).
    Exit 0 when all are anchored, else the first failure's code."""
    from mrv_ml.anchoring.publish import publish
    from mrv_ml.storage.store import RecordStore

    settings = _settings(network, rpc_url, contract, data_dir, confirmations)
    store = RecordStore(settings.data_dir)
    mrv_ids = [store.stored_id(i) for i in ids] if ids else None
    outcomes = publish(store, settings, mrv_ids, batch=batch, upgrade=upgrade)
    if not outcomes:
        console.print("Nothing to anchor: no pending records.", markup=False)
        return
    print_outcomes(outcomes)


def print_outcomes(outcomes: list[AnchorOutcome]) -> None:
    """One line per record; exit with the first failure's code. A record a registry service
    took, pending there until its next batch, is no failure."""
    first_error: int | None = None
    dev_note = False
    signer = None
    for o in outcomes:
        anchor = o.proof.anchor if o.proof is not None else None
        if o.anchored and anchor is not None:
            where = anchor.explorer_url or f"block {anchor.block_number}"
            console.print(f"✅ {o.mrv_id} anchored in tx {o.tx_hash} ({where})", markup=False)
            signer = anchor.submitter
            dev_note = dev_note or is_dev_address(anchor.submitter)
        elif o.status == "pending" and o.error_exit_code is None:
            console.print(f"📨 {o.mrv_id} {_safe(o.error)}", markup=False)
        else:
            icon, what = (("❌", "cannot be anchored") if o.status == "unusable"
                          else ("⏳", "still pending"))
            console.print(f"{icon} {o.mrv_id} {what}: {_safe(o.error)}", markup=False)
            if first_error is None:
                first_error = o.error_exit_code or EXIT_TRANSACTION
    if dev_note:
        console.print(f"Signed by {signer} {DEV_KEY_NOTE}", markup=False)
    if first_error:
        raise typer.Exit(first_error)


@app.command("deploy")
def deploy_command(
    network: NetworkOption = None, rpc_url: RpcOption = None, data_dir: DataDirOption = None,
    confirmations: ConfirmationsOption = None,
) -> None:
    """Deploy the MRVRegistry contract and record its address for this chain."""
    from mrv_ml.chain.connection import deploy

    settings = _settings(network, rpc_url, None, data_dir, confirmations)
    done = deploy(settings)
    console.print(f"MRVRegistry deployed at {done.address}", markup=False)
    console.print(f"Recorded in {done.recorded_in}", markup=False)
    if done.replaced:
        console.print(f"It replaces {done.replaced} as this chain's registry for new anchors; "
                      "that one is kept in the file's history, and records anchored there "
                      "still verify (their proofs name it).", markup=False)


account_app = typer.Typer(help="Encrypted keystores for signing anchors.", no_args_is_help=True,
                          context_settings=HELP_OPTIONS)
app.add_typer(account_app, name="account")


@account_app.command("new")
def account_new(data_dir: DataDirOption = None) -> None:
    """Create a new key in an encrypted keystore (password: MRV_KEYSTORE_PASSWORD or prompt)."""
    from mrv_ml.chain.keys import save_keystore

    address, path = save_keystore(_settings(data_dir=data_dir))
    console.print(f"New account {address}", markup=False)
    console.print(f"Keystore: {path}", markup=False)


@account_app.command("import")
def account_import(data_dir: DataDirOption = None) -> None:
    """Import a private key (hidden prompt, or one line on standard input) into a keystore."""
    from mrv_ml.chain.keys import save_keystore
    from mrv_ml.config import Secret

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
    from mrv_ml.chain.keys import list_keystores

    found = list_keystores(_settings(data_dir=data_dir))
    if as_json:
        _print_json([{"address": a, "path": str(p)} for a, p in found])
        return
    if not found:
        console_err.print("No keystores (create one with `mrv account new`).", markup=False)
    for address, path in found:
        console.print(f"{address}  {_safe(path)}", markup=False)


