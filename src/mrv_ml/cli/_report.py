"""``mrv report``: one record (summary, citation, badge) or many (LaTeX table and paragraph,
CSV, JSON, HTML, text table); the renderings are :mod:`mrv_ml.reporting.one_record` and
:mod:`mrv_ml.reporting.many_records`, the choice of records :mod:`mrv_ml.storage.selection`."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from mrv_ml.cli._app import app, console, console_err
from mrv_ml.cli._options import RpcOption
from mrv_ml.storage import atomicfile


class GroupBy(str, enum.Enum):
    slurm_job = "slurm_job"


class ReportFormat(str, enum.Enum):
    text = "text"
    citation = "citation"
    latex = "latex"
    badge = "badge"
    csv = "csv"
    json = "json"
    html = "html"


_ONE_RECORD_ONLY = {ReportFormat.citation, ReportFormat.badge}


@app.command("report")
def report_command(
    refs: Annotated[list[str] | None, typer.Argument(
        metavar="[RECORD|ID|DIR]...",
        help="Record files, MRV IDs (or unique prefixes) in the store, directories of "
             "records; none: every record of the store.")] = None,
    fmt: Annotated[ReportFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="text: summary (a table for several records); citation: sentence for a paper; "
             "latex: the sentence in LaTeX (a booktabs table and paragraph for several "
             "records, or with --table); badge: SVG badge linking to the dashboard; csv, "
             "json: one row / object per record, raw values; html: one self-contained "
             "page.", metavar="text|citation|latex|badge|csv|json|html")] = ReportFormat.text,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", metavar="NAME", help="Only records of this experiment.")] = None,
    tags: Annotated[list[str] | None, typer.Option(
        "--tag", metavar="KEY[=VALUE]",
        help="Only records with this tag (and value); repeat to require several.")] = None,
    group_by: Annotated[GroupBy | None, typer.Option(
        "--group-by", case_sensitive=False, metavar="FIELD",
        help="slurm_job: one row per SLURM job (an array's tasks together), a node "
             "measured twice at the same time counted once; -f text, csv or json.")] = None,
    table: Annotated[bool, typer.Option(
        "--table", help="-f latex for one record: the table and paragraph, not the "
                        "sentence.")] = False,
    link: Annotated[str | None, typer.Option(
        "--link", metavar="URL",
        help="The verification link of a LaTeX or HTML report (a bundle's URL; default: "
             "the dashboard link of the first publicly anchored record).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", metavar="DIR",
        help="Record store directory (default: MRV_DATA_DIR, the config file, or "
             "./mrv_data).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output (never "
                               "overwrites an existing file partly).", metavar="FILE")] = None,
    dashboard_url: Annotated[str | None, typer.Option(
        "--dashboard-url", envvar="MRV_DASHBOARD_URL",
        help="Dashboard the links point to (default: the local `mrv serve` page).", metavar="URL")] = None,
    network: Annotated[str | None, typer.Option(
        "--network", help="Network for the deep link when the record has no proof file.", metavar="NAME")] = None,
    run_verify: Annotated[bool, typer.Option(
        "--verify", help="Verify against the chain first; only a VALID result makes a "
                         "record 'verified'. Exits with the worst verdict's code.")] = False,
    rpc_url: RpcOption = None,
) -> None:
    """Reports for one record or many: summary, citation, badge, LaTeX table, CSV, JSON,
    HTML.

    Records are chosen by file, ID or directory, and narrowed by --experiment and --tag
    (the filters combine); the same record given twice is reported once. Exit 2 for an
    unknown ID or nothing selected, 3 for a file that is not a record.
    """
    from mrv_ml.config import load_settings
    from mrv_ml.reporting import many_records as paper
    from mrv_ml.reporting import one_record as report
    from mrv_ml.reporting.runs import Run
    from mrv_ml.reporting.text import is_loopback_url
    from mrv_ml.storage.selection import RecordFilter, select
    from mrv_ml.storage.store import RecordStore

    overrides: dict[str, str] = {}
    if network:
        overrides["network"] = network
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    if rpc_url is not None:  # a reviewer's own node, for --verify
        overrides["rpc_url"] = rpc_url
    if link is not None and is_loopback_url(link):
        raise typer.BadParameter("a loopback link works only on this machine, never in a "
                                 "paper", param_hint="--link")
    settings = load_settings(overrides or None)
    record_filter = RecordFilter(experiment=experiment,
                                 tags=tuple(RecordFilter.parse_tag(t) for t in tags or []))
    chosen = select(refs or [], RecordStore(settings.data_dir), record_filter)
    if group_by is not None:
        from mrv_ml.reporting import jobs

        if run_verify:
            raise typer.BadParameter("verify the records on their own (mrv verify); "
                                     "--group-by only adds them up", param_hint="--verify")
        if fmt.value not in jobs.GROUPED_FORMATS:
            raise typer.BadParameter(f"--group-by makes a table: -f text, csv or json, "
                                     f"not {fmt.value}", param_hint="--format")
        groups = jobs.group_by_slurm_job([Run(c) for c in chosen])
        _write(jobs.render_groups(groups, fmt.value), output)
        return
    many = len(chosen) > 1 or fmt in (ReportFormat.csv, ReportFormat.json, ReportFormat.html) \
        or (fmt is ReportFormat.latex and table)
    if many and fmt in _ONE_RECORD_ONLY:
        raise typer.BadParameter(f"{fmt.value} is for one record ({len(chosen)} selected); "
                                 "use -f latex, csv, json or html for several",
                                 param_hint="--format")
    verifications = None
    if run_verify:
        from mrv_ml.verification.verifier import iter_verify_files

        verifications = list(iter_verify_files([c.path for c in chosen], settings=settings))
    url = dashboard_url or report.DEFAULT_DASHBOARD_URL
    if many:
        runs = [Run(c, verifications[i] if verifications is not None else None)
                for i, c in enumerate(chosen)]
        text = paper.render(runs, fmt.value, link=link, dashboard_url=url)
    else:
        [one] = chosen
        fv = verifications[0] if verifications is not None else None
        if fv is not None and fv.verdict is None:
            assert fv.error is not None
            raise fv.error
        text = report.render(one.record, fmt.value, proof=one.proof,
                             proof_error=one.proof_error,
                             verdict=fv.verdict if fv is not None else None,
                             dashboard_url=url, network=settings.network)
    if output is None and many and fmt is ReportFormat.text and sys.stdout.isatty():
        console.print(paper.text_table(runs))
    else:
        _write(text, output)
    if verifications:
        from mrv_ml.verification.verifier import worse

        worst = 0
        for fv in verifications:
            worst = worse(worst, fv.exit_code)
        if worst:
            raise typer.Exit(worst)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)  # exact bytes: a badge or LaTeX must not be re-wrapped
        sys.stdout.flush()
    else:
        atomicfile.write_bytes(output, text.encode("utf-8"), what="the report")
        console_err.print(f"wrote {output}", highlight=False)
