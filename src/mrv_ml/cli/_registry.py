"""Commands ``mrv registry serve`` (run a registry service) and ``mrv publish`` (submit
records to one). See :mod:`mrv_ml.registry_service`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrv_ml.cli._anchor import print_outcomes
from mrv_ml.cli._app import HELP_OPTIONS, app, console
from mrv_ml.cli._options import (
    ContractOption,
    DataDirOption,
    NetworkOption,
    RpcOption,
    _settings,
)
from mrv_ml.errors import ConfigError

registry_app = typer.Typer(help="Run a registry service: many researchers, one anchoring key.",
                           no_args_is_help=True,
                           context_settings=HELP_OPTIONS)
app.add_typer(registry_app, name="registry")


@registry_app.command("serve")
def registry_serve(
    database: Annotated[str | None, typer.Option(
        "--database", help="SQLite file or postgresql://… URL (default: "
                           "<data dir>/registry.sqlite). Migrated on start.", metavar="URL")] = None,
    network: NetworkOption = None, rpc_url: RpcOption = None, contract: ContractOption = None,
    data_dir: DataDirOption = None,
    interval: Annotated[float, typer.Option(
        "--interval", min=1, help="Seconds between anchored batches.", metavar="SECONDS")] = 600.0,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, metavar="PORT")] = 8700,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", help="How researchers reach this service (written into receipts); "
                             "default http://HOST:PORT.", metavar="URL")] = None,
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", help="Write tokens, one 'NAME TOKEN' per line.", metavar="FILE")] = None,
    require_token: Annotated[bool, typer.Option(
        "--require-token", help="Refuse submissions without a token from --token-file.")] = False,
    max_record_kb: Annotated[int, typer.Option(
        "--max-record-kb", min=1, help="Largest record accepted for publishing.", metavar="KB")] = 1024,
    rate_limit: Annotated[float, typer.Option(
        "--rate-limit", min=0, help="Submissions per second per client (0: no limit).", metavar="PER_S")] = 50.0,
    no_anchoring: Annotated[bool, typer.Option(
        "--no-anchoring", help="Serve (submissions and reads) but never anchor: another "
                               "process sharing the database does.")] = False,
) -> None:
    """Serve the registry API and anchor one Merkle root of all submissions per interval
    with the operator's key (PRIVATE_KEY or keystore). Several processes may share one
    PostgreSQL database: one anchors at a time, all serve."""
    from mrv_ml.registry_service.service import build, read_token_file, serve

    if host not in ("127.0.0.1", "localhost", "::1") and public_url is None:
        raise ConfigError("listening on another address than loopback needs --public-url "
                          "(the URL researchers use, written into their receipts)")
    settings = _settings(network, rpc_url, contract, data_dir)
    tokens = read_token_file(token_file) if token_file is not None else {}
    service = build(settings, database=database, interval_s=interval,
                    base_url=public_url or f"http://{host}:{port}", tokens=tokens,
                    require_token=require_token, max_record_bytes=max_record_kb * 1024,
                    rate_per_second=rate_limit or None, anchoring=not no_anchoring)
    facts = service.state.facts
    console.print(f"mrv registry on {service.state.config.base_url}: {facts.network} (chain "
                  f"{facts.chain_id}), registry {facts.contract_address}, operator "
                  f"{facts.operator or '-'}, database {service.db.shown_url}, every "
                  f"{interval:g} s", markup=False)
    serve(service, host, port)


@app.command("publish")
def publish_command(
    ids: Annotated[list[str] | None, typer.Argument(
        metavar="[ID|FILE...]", help="Records of the store (default: every pending one).")] = None,
    registry: Annotated[str | None, typer.Option(
        "--registry", help="Registry URL (default: MRV_REGISTRY_URL / registry_url).", metavar="URL")] = None,
    with_record: Annotated[bool, typer.Option(
        "--record", help="Publish the record itself too (searchable), not only its "
                         "fingerprint.")] = False,
    sign: Annotated[bool, typer.Option(
        "--sign", help="Sign each fingerprint with your key (PRIVATE_KEY or keystore).")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Submit records to a registry service: it anchors them in its next batch; `mrv anchor
    --upgrade` then fetches each complete proof. Exit 0 when every record was accepted."""
    from mrv_ml.anchoring.publish import Route, publish
    from mrv_ml.storage.store import RecordStore

    settings = _settings(data_dir=data_dir)
    store = RecordStore(settings.data_dir)
    signer = None
    if sign:
        from mrv_ml.chain.keys import load_signer

        signer = load_signer(settings)
        if signer is None:
            raise ConfigError("--sign needs your key: set PRIVATE_KEY or create a keystore "
                              "(mrv account new)")
    mrv_ids = [store.stored_id(i) for i in ids] if ids else None
    outcomes = publish(store, settings, mrv_ids, route=Route.REGISTRY, with_record=with_record,
                       signer=signer, registry_url=registry)
    if not outcomes:
        console.print("Nothing to publish: no pending records.", markup=False)
        return
    print_outcomes(outcomes)
