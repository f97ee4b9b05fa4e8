"""``mrv anchor`` (by the route ``anchoring.publish`` chooses) and ``mrv deploy``.

Library errors propagate to :func:`mrv_ml.cli.main` (one line, their exit code). Heavy
modules (web3) are imported inside the commands so that ``mrv --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mrv_ml.cli._app import app, console
from mrv_ml.cli._core import _safe
from mrv_ml.cli._options import (
    ConfirmationsOption,
    ContractOption,
    DataDirOption,
    NetworkOption,
    RpcOption,
    _settings,
)
from mrv_ml.errors import EXIT_TRANSACTION
from mrv_ml.networks import is_dev_address

if TYPE_CHECKING:
    from mrv_ml.anchoring.single import AnchorOutcome

DEV_KEY_NOTE = "(well-known development key, local chain only)"


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
    from mrv_ml.chain.deploy import deploy

    settings = _settings(network, rpc_url, None, data_dir, confirmations)
    done = deploy(settings)
    console.print(f"MRVRegistry deployed at {done.address}", markup=False)
    console.print(f"Recorded in {done.recorded_in}", markup=False)
    if done.replaced:
        console.print(f"It replaces {done.replaced} as this chain's registry for new anchors; "
                      "that one is kept in the file's history, and records anchored there "
                      "still verify (their proofs name it).", markup=False)
