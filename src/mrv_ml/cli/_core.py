"""``mrv hash``, ``mrv validate``, ``mrv list``, ``mrv show``: records and the local store.

Thin layer: parse the arguments, call :mod:`mrv_ml.record.schema` / :mod:`mrv_ml.storage.store`,
print. Library errors propagate to :func:`mrv_ml.cli.main`, which prints them on one
line and exits with their code. Heavy modules are imported inside the commands so
that ``mrv --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.cells import cell_len, set_cell_size
from rich.table import Table
from rich.text import Text

from mrv_ml.cli._app import app, console, console_err
from mrv_ml.errors import EXIT_BAD_INPUT, RecordError
from mrv_ml.reporting.text import printable
from mrv_ml.units import format_datetime, format_duration_s, format_energy_kwh, format_mass_kg

if TYPE_CHECKING:
    from datetime import datetime

    from mrv_ml.storage.store import RecordStore, RecordSummary

DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", metavar="DIR",
    help="Record store directory (default: MRV_DATA_DIR, the config file, or ./mrv_data).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _safe(value: Any) -> str:
    """Printable text for a terminal, whatever a record contains."""
    return "-" if value is None else printable(value)


MAX_SHOWN_CHARS = 2000  # of one field: a 10-million-character field took 23 s to lay out


def _safe_lines(value: str) -> str:
    """:func:`_safe` for each line of a multi-line value, clipped to what a person reads."""
    if len(value) > MAX_SHOWN_CHARS:
        value = (f"{value[:MAX_SHOWN_CHARS]}… ({len(value) - MAX_SHOWN_CHARS:,} more "
                 "characters; --json shows all)")
    return "\n".join(_safe(line) for line in value.split("\n"))


_TONES = {"": "", "good": "green", "bad": "bold red", "warn": "yellow", "dim": "dim"}


def _store(data_dir: Path | None) -> RecordStore:
    from mrv_ml.config import load_settings
    from mrv_ml.storage.store import RecordStore

    settings = load_settings({"data_dir": str(data_dir)} if data_dir is not None else None)
    return RecordStore(settings.data_dir)


def _print_json(value: Any) -> None:
    # Straight to stdout: rich would measure every character of a large document.
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    sys.stdout.flush()


def _read_input(file: str) -> tuple[bytes, str]:
    """Bytes and display name of FILE ("-" is standard input)."""
    from mrv_ml.record.strictjson import read_file_bytes

    if file == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    return read_file_bytes(file), file


# --- mrv hash -----------------------------------------------------------------------------


@app.command("hash")
def hash_command(
    file: Annotated[str, typer.Argument(metavar="FILE",
                                        help="Record file (JSON); '-' reads standard input.")],
    as_json: JsonOption = False,
    no_validate: Annotated[bool, typer.Option(
        "--no-validate",
        help="Hash any strict JSON object without checking it against the record schema.")]
    = False,
) -> None:
    """Print the fingerprint of a record: SHA-256 over its RFC 8785 canonical JSON.

    The digest is what `mrv anchor` registers on chain and what `mrv verify` and the
    dashboard recompute. It does not depend on key order, indentation or how numbers
    were written in the file. Exit 3 if FILE is not a valid record.
    """
    from mrv_ml.record.hashing import HASH_ALGORITHM, compute_hash
    from mrv_ml.record.schema import parse_record_bytes
    from mrv_ml.record.strictjson import parse_json_strict

    data, source = _read_input(file)
    if no_validate:
        value = parse_json_strict(data, source)
        if not isinstance(value, dict):
            raise RecordError(f"{source}: not a JSON object")
        record: dict[str, Any] = value
    else:
        record = parse_record_bytes(data, source)
    digest = compute_hash(record)
    if as_json:
        mrv_id = record.get("mrv_id")
        _print_json({"algorithm": HASH_ALGORITHM, "digest": digest,
                     "mrv_id": mrv_id if isinstance(mrv_id, str) else None})
    else:
        console.out(digest, highlight=False)


# --- mrv validate -------------------------------------------------------------------------


@app.command("validate")
def validate_command(
    files: Annotated[list[str], typer.Argument(metavar="FILE...",
                                               help="Record files to check.")],
    as_json: JsonOption = False,
) -> None:
    """Check record files: strict JSON, a known schema version, and the JSON Schema.

    Prints "OK <file> (<MRV ID>, schema <version>)" for each valid file and a one-line
    reason for each invalid one. Exit 0 when all are valid, 3 when any is not.
    """
    from mrv_ml.record.schema import load_record_file

    results: list[dict[str, Any]] = []
    for file in files:
        try:
            record = load_record_file(file)
        except RecordError as e:
            results.append({"file": file, "valid": False, "mrv_id": None,
                            "schema_version": None, "error": str(e)})
            if not as_json:
                console_err.print(Text.assemble(("INVALID ", "bold red"), _safe(e)))
            continue
        results.append({"file": file, "valid": True, "mrv_id": record["mrv_id"],
                        "schema_version": record["schema_version"], "error": None})
        if not as_json:
            console.print(Text.assemble(
                ("OK ", "bold green"),
                f"{_safe(file)} ({record['mrv_id']}, schema {record['schema_version']})"))
    if as_json:
        _print_json(results)
    if not all(r["valid"] for r in results):
        raise typer.Exit(EXIT_BAD_INPUT)


# --- mrv list -----------------------------------------------------------------------------

_ANCHOR_STYLE = {"anchored": "green", "pending": "yellow", "none": "dim", "unreadable": "red"}
_STATUS_STYLE = {"completed": "green", "failed": "red", "interrupted": "yellow",
                 "unreadable": "bold red"}
_EXPERIMENT_MAX_CELLS = 32
_COLUMNS = ("ID", "Experiment", "Status", "Start", "Duration", "Energy", "CO2e",
            "Anchoring")
_RIGHT_ALIGNED = {4, 5, 6}


def _row(s: RecordSummary) -> list[tuple[str, str]]:
    """The cells of one listing line as (text, style)."""
    anchor = s.anchor_state
    if anchor == "anchored" and s.anchor_mode:
        anchor = f"anchored/{s.anchor_mode}"
    anchor_cell = (_safe(anchor), _ANCHOR_STYLE.get(s.anchor_state, ""))
    if s.status == "unreadable":
        return [(s.mrv_id[:12], "red"), ("(unreadable)", "red"), ("unreadable", "bold red"),
                ("-", ""), ("-", ""), ("-", ""), ("-", ""), anchor_cell]
    experiment = _safe(s.experiment)
    if cell_len(experiment) > _EXPERIMENT_MAX_CELLS:
        experiment = set_cell_size(experiment, _EXPERIMENT_MAX_CELLS - 1) + "…"
    return [(s.mrv_id[:12], ""), (experiment, ""),
            (_safe(s.status), _STATUS_STYLE.get(s.status, "")),
            (format_datetime(s.start_time), ""), (format_duration_s(s.duration_s), ""),
            (format_energy_kwh(s.energy_kwh), ""), (format_mass_kg(s.co2_kg), ""), anchor_cell]


def _render_listing(summaries: list[RecordSummary]) -> Text:
    """A fixed-width listing: fast for tens of thousands of rows, unlike rich's Table,
    which measures and wraps every cell (seconds for 10,000 records)."""
    rows = [_row(s) for s in summaries]
    widths = [max([cell_len(name)] + [cell_len(row[i][0]) for row in rows])
              for i, name in enumerate(_COLUMNS)]
    text = Text()

    def line(cells: list[tuple[str, str]], bold: bool = False) -> None:
        for i, (value, style) in enumerate(cells):
            if i:
                text.append("  ")
            pad = " " * (widths[i] - cell_len(value))
            if i in _RIGHT_ALIGNED:
                text.append(pad)
            text.append(value, style="bold" if bold else style)
            if i not in _RIGHT_ALIGNED and i < len(cells) - 1:
                text.append(pad)
        text.append("\n")

    line([(name, "") for name in _COLUMNS], bold=True)
    text.append("  ".join("─" * w for w in widths) + "\n", style="dim")
    for row in rows:
        line(row)
    return text


def _instant(name: str) -> Any:
    """A typer callback: DATE or ISO 8601 date and time text -> aware datetime."""
    def parse(value: str | None) -> datetime | None:
        from mrv_ml.storage.selection import parse_time

        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint=f"'--{name}'") from None
    return parse


def _one_of(name: str, choices: tuple[str, ...]) -> Any:
    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}",
                                     param_hint=f"'--{name}'")
        return value
    return check


def _record_filter(experiment: str | None, tags: list[str] | None, since: Any, until: Any,
                   status: str | None, pending: bool, anchored: bool,
                   trust: str | None) -> Any:
    from mrv_ml.storage.selection import TRUST_NAMES, RecordFilter

    if pending and anchored:
        raise typer.BadParameter("--pending and --anchored exclude each other",
                                 param_hint="'--anchored'")
    parsed_tags = []
    for text in tags or []:
        key, eq, value = text.partition("=")
        if not key:
            raise typer.BadParameter(f"{text!r} is not KEY or KEY=VALUE", param_hint="'--tag'")
        parsed_tags.append((key, value if eq else None))
    return RecordFilter(
        experiment=experiment, tags=tuple(parsed_tags), since=since, until=until,
        status=status,
        anchor_state="unanchored" if pending else ("anchored" if anchored else None),
        trust=TRUST_NAMES[trust] if trust is not None else None)


@app.command("list")
def list_command(
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", "-e", metavar="NAME", help="Only this experiment (its exact name).")]
    = None,
    tags: Annotated[list[str] | None, typer.Option(
        "--tag", metavar="KEY[=VALUE]",
        help="Only records with this tag (any value, or this one); repeatable: all must "
             "hold.")] = None,
    since: Annotated[Any, typer.Option(
        "--since", metavar="DATE", parser=_instant("since"),
        help="Only runs started at or after DATE (YYYY-MM-DD, midnight UTC, or an ISO 8601 "
             "date and time).")] = None,
    until: Annotated[Any, typer.Option(
        "--until", metavar="DATE", parser=_instant("until"),
        help="Only runs started before DATE (the same forms as --since).")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", metavar="completed|failed|interrupted",
        callback=_one_of("status", ("completed", "failed", "interrupted")),
        help="Only runs with this outcome.")] = None,
    pending: Annotated[bool, typer.Option(
        "--pending", help="Only records not anchored yet (what `mrv anchor` would send).")]
    = False,
    anchored: Annotated[bool, typer.Option(
        "--anchored", help="Only anchored records (single transaction or batch).")] = False,
    trust: Annotated[str | None, typer.Option(
        "--trust", metavar="local|private|public",
        callback=_one_of("trust", ("local", "private", "public")),
        help="Only records anchored with this trust: local (this machine's own chain), "
             "private (a private or development network), public.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", "-n", min=1, metavar="N", help="Only the N most recent records.")] = None,
) -> None:
    """List the records in the store, oldest first, with their anchoring state.

    Anchoring state: none (no proof file), pending (anchoring was attempted or queued),
    anchored (single transaction or Merkle batch). A record file that cannot be read is
    listed in red as "unreadable", with the reason. The filters combine (all must hold);
    the totals line sums the records shown.
    """
    record_filter = _record_filter(experiment, tags, since, until, status, pending,
                                   anchored, trust)
    store = _store(data_dir)
    summaries = store.list()
    if not record_filter.empty:
        summaries = [s for s in summaries if record_filter.matches(s)]
    total = len(summaries)
    if limit is not None:
        summaries = summaries[-limit:]
    if as_json:
        _print_json([s.to_dict() for s in summaries])
        return
    if not summaries:
        if record_filter.empty:
            what = "records"
        elif record_filter == type(record_filter)(anchor_state="unanchored"):
            what = "pending records"
        else:
            what = "records matching the filters"
        console.print(f"No {what} in {_safe(store.root)}.", markup=False)
        return
    # IDs are shown as their first 12 characters: a prefix `mrv show` accepts, and
    # what lets the listing fit a normal terminal (--json has the full IDs).
    console.print(f"Records in {_safe(store.root)}", markup=False, style="italic")
    console.print(_render_listing(summaries), end="", soft_wrap=True)
    unreadable = [s for s in summaries if "unreadable" in (s.status, s.anchor_state)]
    from mrv_ml.reporting.many_records import totals_text
    from mrv_ml.storage.selection import totals

    sums = totals(summaries)
    shown = f"{len(summaries)} of {total}" if len(summaries) < total else f"{total}"
    console.print(f"{shown} record(s); {totals_text(sums)}", markup=False)
    for s in unreadable:
        console_err.print(Text.assemble(("unreadable: ", "bold red"), _safe(s.error)))


# --- mrv show -----------------------------------------------------------------------------


@app.command("show")
def show_command(
    ref: Annotated[str, typer.Argument(
        metavar="ID|FILE", help="A record ID, a unique prefix of one (MRV-fc25, fc25), "
                                "or a record file path.")],
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one record: what was measured, how, and its anchoring state.

    --json prints the record itself (as stored: sorted keys, 2-space indent).
    Exit 2 if no record matches, 3 if the file is not a valid record.
    """
    from mrv_ml.record.proof import find_proof
    from mrv_ml.record.schema import dump_record_bytes, load_record_file
    from mrv_ml.reporting.one_record import summary_rows

    store = _store(data_dir)
    path = store.resolve(ref)
    record = load_record_file(path)
    if as_json:
        sys.stdout.write(dump_record_bytes(record).decode("utf-8"))
        sys.stdout.flush()
        return
    proof, proof_error = find_proof(path, record["mrv_id"], store.root)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for row in summary_rows(record, path=path, proof=proof, proof_error=proof_error):
        grid.add_row(row.label, Text(_safe_lines(row.value), style=_TONES[row.tone]))
    console.print(Text(record["mrv_id"], style="bold"))
    console.print(grid)
