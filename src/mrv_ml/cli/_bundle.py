"""``mrv bundle``: a static verification site for a paper (see :mod:`mrv_ml.reporting.bundle`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrv_ml.cli._app import app, console, console_err
from mrv_ml.errors import ConfigError


def _suggestions(values: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for value in values:
        chain, sep, url = value.partition("=")
        if not sep or not chain.strip().isdigit():
            raise ConfigError(f"--suggest-rpc {value[:60]!r}: expected CHAIN_ID=URL "
                              "(e.g. 11155111=https://...)")
        out[int(chain)] = url.strip()
    return out


@app.command("bundle")
def bundle_command(
    records: Annotated[list[str], typer.Argument(
        metavar="RECORD",
        help="Record files, directories of records, or MRV IDs (or unique prefixes) in the "
             "store.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Directory to write the site into; must not exist or be empty.", metavar="DIR")],
    allow_pending: Annotated[bool, typer.Option(
        "--allow-pending", help="Leave out records without an anchored proof (listed) "
                                "instead of refusing.")] = False,
    allow_local: Annotated[bool, typer.Option(
        "--allow-local", help="Include proofs anchored only on your embedded chain; readers "
                              "are told they cannot be verified elsewhere.")] = False,
    suggest_rpc: Annotated[list[str] | None, typer.Option(
        "--suggest-rpc", metavar="CHAIN_ID=URL",
        help="An endpoint the page suggests for that chain (the reader confirms it); "
             "public chains get their public endpoint by default.")] = None,
) -> None:
    """A static verification site for the records (for a paper): open its index.html from
    any static host or a file:// URL; it verifies in the reader's browser against the chain."""
    from mrv_ml.config import load_settings
    from mrv_ml.reporting.bundle import build_bundle

    settings = load_settings()
    result = build_bundle(records, out, data_dir=settings.data_dir,
                          allow_pending=allow_pending, allow_local=allow_local,
                          suggest_rpc=_suggestions(suggest_rpc or []))
    for warning in result.warnings:
        console_err.print(f"warning: {warning}", highlight=False, markup=False)
    for mrv_id, why in result.left_out:
        console_err.print(f"left out: {mrv_id} {why}", highlight=False, markup=False)
    console.print(f"wrote {result.out}: {len(result.records)} record(s)", markup=False)
    for r in result.records:
        console.print(f"  {r.mrv_id}  {r.mode}  chain {r.chain_id} ({r.network or 'custom'})",
                      markup=False)
    chains = sorted({r.chain_id for r in result.records})
    console.print(f"open {result.out.resolve() / 'index.html'}?rpc=<endpoint of chain "
                  f"{', '.join(map(str, chains))}>", markup=False)
