"""``mrv account new|import|list``: encrypted keystores for signing anchors; a key is
read hidden from the terminal or standard input and never printed."""

from __future__ import annotations

import getpass
import sys

import typer

from mrv_ml.cli._app import HELP_OPTIONS, app, console, console_err
from mrv_ml.cli._core import _print_json, _safe
from mrv_ml.cli._options import DataDirOption, JsonOption, _settings
from mrv_ml.errors import KeyConfigError

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
