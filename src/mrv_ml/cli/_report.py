"""``mrv report``: summary, citation (plain text or LaTeX) and SVG badge for one record."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from mrv_ml import atomicfile
from mrv_ml.cli._app import app, console_err


class ReportFormat(str, enum.Enum):
    text = "text"
    citation = "citation"
    latex = "latex"
    badge = "badge"


@app.command("report")
def report_command(
    ref: Annotated[str, typer.Argument(
        metavar="RECORD", help="A record file, or an MRV ID (or unique prefix) in the store.")],
    fmt: Annotated[ReportFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="text: summary; citation: sentence for a paper; latex: the same in LaTeX; "
             "badge: SVG badge linking to the dashboard.")] = ReportFormat.text,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output.")] = None,
    dashboard_url: Annotated[str | None, typer.Option(
        "--dashboard-url", envvar="MRV_DASHBOARD_URL",
        help="Dashboard the links point to (default: the local `mrv serve` page).")] = None,
    network: Annotated[str | None, typer.Option(
        "--network", help="Network for the deep link when the record has no proof file.")] = None,
    run_verify: Annotated[bool, typer.Option(
        "--verify", help="Verify against the chain first; only a VALID result makes the "
                         "badge say 'verified'. Exits with the verdict's code.")] = False,
) -> None:
    """Summary, citation (plain text or LaTeX) or SVG badge for one record."""
    from mrv_ml import report
    from mrv_ml.config import load_settings
    from mrv_ml.record import load_record_file
    from mrv_ml.store import RecordStore

    settings = load_settings({"network": network} if network else None)
    record_file = RecordStore(settings.data_dir).resolve(ref)
    record = load_record_file(record_file)
    mrv_id = record.get("mrv_id") if isinstance(record.get("mrv_id"), str) else None
    proof, proof_error = report.find_proof(record_file, mrv_id, settings.data_dir)
    verdict = None
    if run_verify:
        from mrv_ml.verify import verify

        verdict = verify(record_file)
    text = report.render(record, fmt.value, proof=proof, proof_error=proof_error, verdict=verdict,
                         dashboard_url=dashboard_url or report.DEFAULT_DASHBOARD_URL,
                         network=settings.network)
    if output is None:
        sys.stdout.write(text)  # exact bytes: a badge or LaTeX must not be re-wrapped
        sys.stdout.flush()
    else:
        atomicfile.write_bytes(output, text.encode("utf-8"), what="the report")
        console_err.print(f"wrote {output}", highlight=False)
    if verdict is not None and not verdict:
        raise typer.Exit(verdict.exit_code)


