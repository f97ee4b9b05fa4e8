"""The options several commands share (network, endpoint, registry, store, output) and the
settings they make: each flag spelled and explained once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mrv_ml.errors import RecordError

if TYPE_CHECKING:
    from mrv_ml.config import Settings

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
