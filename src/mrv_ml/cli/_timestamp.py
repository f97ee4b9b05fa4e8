"""``mrv timestamp``: RFC 3161 timestamps of stored records from the authorities named.

Library errors propagate to :func:`mrv_ml.cli.main` (one line, their exit code).
"""

from __future__ import annotations

from typing import Annotated

import typer

from mrv_ml.cli._app import app, console
from mrv_ml.cli._core import _safe
from mrv_ml.cli._options import DataDirOption, _settings
from mrv_ml.errors import ConfigError

# str, not Path: Path("./sigstore") would print as "sigstore", the preset's name
TsaRootOption = Annotated[list[str] | None, typer.Option(
    "--tsa-root", metavar="FILE|NAME",
    help="A root certificate whose RFC 3161 timestamps you trust, repeatable: a PEM file, or "
         "a preset's built-in root (sigstore, digicert; a file of such a name: ./NAME). "
         "mrv timestamp, when none is named: each --tsa preset's built-in root.")]


@app.command("timestamp")
def timestamp_command(
    ids: Annotated[list[str], typer.Argument(
        metavar="ID|FILE...", help="Stored records (IDs, prefixes or their files).")],
    tsa: Annotated[list[str] | None, typer.Option(
        "--tsa", metavar="URL|NAME",
        help="A timestamp authority (URL, or sigstore, digicert, freetsa); repeatable; "
             "default MRV_TSA_URL.")] = None,
    tsa_roots: TsaRootOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Ask each authority for a signed RFC 3161 timestamp of each record's fingerprint,
    check the answer (against the --tsa-root named, else a preset's built-in root), and add
    it to the record's proof file. No authority is contacted unless named. Exit 0 when every
    record was timestamped, else the failure's code."""
    from mrv_ml.anchoring.timestamp import authorities, timestamp_stored
    from mrv_ml.storage.store import RecordStore

    settings = _settings(None, None, None, data_dir)
    named = tsa or list(settings.tsa)
    if not named:
        raise ConfigError("no timestamp authority: give --tsa URL (or set MRV_TSA_URL)")
    asked = authorities(named, tsa_roots)
    store = RecordStore(settings.data_dir)
    for ref in ids:
        mrv_id = store.stored_id(ref)
        for stamped in timestamp_stored(store, mrv_id, asked):
            t = stamped.timestamp
            console.print(_safe(f"🕰  {mrv_id} timestamped at {t.gen_time} by {t.tsa_name}"),
                          markup=False)
