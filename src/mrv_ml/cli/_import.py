"""``mrv import``: records from measurements mrv-ml did not take (CodeCarbon's CSV, BoAmps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrv_ml.cli._anchor import print_outcomes
from mrv_ml.cli._app import HELP_OPTIONS, app, console, console_err
from mrv_ml.cli._core import _print_json, _safe
from mrv_ml.cli._options import (
    ContractOption,
    DataDirOption,
    JsonOption,
    NetworkOption,
    RpcOption,
    _settings,
)

import_app = typer.Typer(help="Make records from other tools' output (CodeCarbon's "
                                "emissions.csv, BoAmps reports).",
                         no_args_is_help=True, context_settings=HELP_OPTIONS)
app.add_typer(import_app, name="import")


@import_app.command("codecarbon")
def import_codecarbon_command(
    csv_file: Annotated[Path, typer.Argument(
        metavar="EMISSIONS_CSV", help="CodeCarbon's emissions.csv (any CodeCarbon version).")],
    experiment: Annotated[str | None, typer.Option(
        "--experiment", metavar="NAME",
        help="Experiment name of the records (default: the row's project_name).")] = None,
    anchor: Annotated[bool, typer.Option(
        "--anchor/--no-anchor",
        help="Anchor the new records now, one transaction each (default: leave them pending "
             "for mrv anchor --batch: one transaction for all).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check every row and say what would be imported; write nothing.")] = False,
    skip_bad_rows: Annotated[bool, typer.Option(
        "--skip-bad-rows", help="Import the good rows and list the bad ones (default: a bad "
                                "row stops the import, nothing written).")] = False,
    encoding: Annotated[str | None, typer.Option(
        "--encoding", metavar="CODEC",
        help="The file's encoding (default: UTF-8, or UTF-8/UTF-16 with a byte order mark).")
    ] = None,
    time_zone: Annotated[str, typer.Option(
        "--timezone", metavar="ZONE",
        help="Zone of CodeCarbon's timestamps, which carry none: local (this machine's), "
             "UTC or an offset like +02:00.")] = "local",
    network: NetworkOption = None, rpc_url: RpcOption = None, contract: ContractOption = None,
    data_dir: DataDirOption = None, as_json: JsonOption = False,
) -> None:
    """One record per row of CodeCarbon's emissions.csv, marked as imported (CodeCarbon
    measured it; mrv-ml did not watch the run). Rows imported before are skipped."""
    from mrv_ml.importers.codecarbon import import_codecarbon
    from mrv_ml.storage.store import RecordStore

    settings = _settings(network, rpc_url, contract, data_dir)
    result = import_codecarbon(csv_file, RecordStore(settings.data_dir), experiment=experiment,
                               anchor=anchor, settings=settings, dry_run=dry_run,
                               encoding=encoding, time_zone=time_zone,
                               skip_bad_rows=skip_bad_rows)
    if as_json:
        _print_json({"file": str(csv_file), "source_file_sha256": result.source.sha256,
                     "encoding": result.source.encoding, "dry_run": dry_run,
                     "imported": [{"row": n, "mrv_id": i} for n, i in result.imported],
                     "duplicates": [{"row": n, "mrv_id": i} for n, i in result.duplicates],
                     "bad_rows": result.source.bad_rows,
                     "anchored": [o.mrv_id for o in result.outcomes if o.anchored]})
    else:
        verb = "would import" if dry_run else "imported"
        for n, mrv_id in result.imported:
            console.print(f"{'·' if dry_run else '📥'} row {n}: {verb} as {mrv_id}", markup=False)
        for n, mrv_id in result.duplicates:
            console.print(f"= row {n}: already imported as {mrv_id}", markup=False)
        for problem in result.source.bad_rows:
            console_err.print(f"skipped: {_safe(problem)}", markup=False)
        total = len(result.source.rows) + len(result.source.bad_rows)
        console.print(f"{len(result.imported)} of {total} rows {verb} from "
                      f"{_safe(result.source.name)} (sha256 {result.source.sha256[:16]}...), "
                      f"{len(result.duplicates)} already imported, "
                      f"{len(result.source.bad_rows)} bad", markup=False)
        if result.imported and not dry_run and not anchor:
            console.print("Pending: mrv anchor --batch anchors them in one transaction.",
                          markup=False)
    if result.outcomes and not as_json:
        print_outcomes(result.outcomes)
    elif result.outcomes:
        failed = [o for o in result.outcomes
                  if not o.anchored and o.error_exit_code is not None]
        if failed:
            raise typer.Exit(failed[0].error_exit_code or 8)


@import_app.command("boamps")
def import_boamps_command(
    report_file: Annotated[Path, typer.Argument(
        metavar="REPORT_JSON", help="A BoAmps report (Boavizta's AI energy-report format).")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check the report and say what would be imported; write "
                          "nothing.")] = False,
    data_dir: DataDirOption = None, as_json: JsonOption = False,
) -> None:
    """One record from a BoAmps report, marked as imported (its tool measured it; mrv-ml
    did not watch the run), left pending for mrv anchor. A report imported before is not
    imported again. Exit 3 for a report that is not valid BoAmps (nothing is written)."""
    from mrv_ml.importers.boamps import import_boamps
    from mrv_ml.storage.store import RecordStore

    settings = _settings(None, None, None, data_dir)
    result = import_boamps(report_file, RecordStore(settings.data_dir), dry_run=dry_run)
    if as_json:
        _print_json({"file": str(report_file), "mrv_id": result.mrv_id,
                     "duplicate": result.duplicate, "dry_run": dry_run})
    elif result.duplicate:
        console.print(f"= already imported as {result.mrv_id}", markup=False)
    else:
        verb = "would import" if dry_run else "imported"
        console.print(_safe(f"📥 {report_file.name}: {verb} as {result.mrv_id}"),
                      markup=False)
        if not dry_run:
            console.print("Pending: mrv anchor anchors it.", markup=False)
