"""Reports over many records, for papers, mails and spreadsheets: a LaTeX table with a
paragraph, CSV, JSON, one self-contained HTML file, and a text table.

Input is what :func:`mrv_ml.storage.selection.select` chose, optionally with a verification of each
(``mrv report --verify``). Every figure shown goes through :mod:`mrv_ml.units`; CSV and
JSON keep raw values in base units (the unit is in the column name). Every record field is
untrusted text and is escaped for its medium: LaTeX (``text.latex_escape``), HTML
(``html.escape``), CSV (formula injection: a text cell starting with ``= + - @`` or a tab /
carriage return gets a leading ``'``), the terminal (``text.printable``).

Each run is a :class:`mrv_ml.reporting.runs.Run`; what it is worth, and its fields, are said
there.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from mrv_ml.errors import MRVValueError
from mrv_ml.record.schema import section
from mrv_ml.record.trust import Trust
from mrv_ml.reporting import charts, text
from mrv_ml.reporting import one_record as report
from mrv_ml.reporting.runs import Run, run_fields, run_trust, verdict_sentence
from mrv_ml.storage.selection import COMPONENTS, Totals, totals
from mrv_ml.units import (
    MISSING,
    format_co2_kg,
    format_datetime,
    format_duration_s,
    format_energy_kwh,
    format_intensity_g_per_kwh,
    format_mass_kg,
    format_number,
)

__all__ = ["FORMATS", "csv_cell", "csv_report", "html_report", "json_report", "latex_report", "render",
           "text_table", "totals_text"]

#: The formats of a report over many records.
FORMATS = ("text", "latex", "csv", "json", "html")
#: Columns of the CSV, in order (the JSON objects have the same keys).
CSV_FIELDS = (
    "mrv_id", "experiment", "model", "dataset", "hardware", "outcome", "start_time",
    "end_time", "duration_s", "energy_kwh", "cpu_energy_kwh", "gpu_energy_kwh",
    "ram_energy_kwh", "co2_kg", "carbon_intensity_g_per_kwh", "pue", "country_iso_code",
    "measurement_status", "fingerprint", "anchor_state", "network", "chain_id", "tx_hash",
    "verification", "trust", "file",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def totals_text(t: Totals) -> str:
    """The totals in one line: "total 4.2 kWh, 1.3 kg CO2e over 3.5 h" and, apart, the
    runs whose measurement gave no figures."""
    text = (f"total {format_energy_kwh(t.energy_kwh)}, {format_co2_kg(t.co2_kg)} over "
            f"{format_duration_s(t.duration_s)}")
    if t.not_measured:
        text += f" ({t.not_measured} not measured, not included)"
    return text


# --- CSV and JSON ------------------------------------------------------------------------


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return value


def csv_report(runs: Sequence[Run]) -> str:
    """One row per run, :data:`CSV_FIELDS` as columns, raw values in base units."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({k: csv_cell(v) for k, v in run_fields(run).items()})
    return buffer.getvalue()


def json_report(runs: Sequence[Run]) -> str:
    """``{"records": [run_fields...], "totals": Totals}`` as JSON."""
    document = {"records": [run_fields(r) for r in runs],
                "totals": totals([r.selected for r in runs]).to_dict()}
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --- LaTeX -------------------------------------------------------------------------------


def _public_link(runs: Sequence[Run], link: str | None, dashboard_url: str) -> str | None:
    """The one verification link of a paper: ``link`` if given, else the dashboard's deep
    link of the first publicly anchored run; never a link that only works on this machine."""
    if link is not None:
        return None if text.is_loopback_url(link) else link
    if text.is_loopback_url(dashboard_url):
        return None
    for run in runs:
        if run_trust(run) is Trust.PUBLIC:
            sel = run.selected
            return text.deep_link(dashboard_url, str(run.record.get("mrv_id")),
                                    report.network_of(sel.proof))
    return None


def _names(values: list[str], most: int = 4) -> str:
    """"A", "A and B", "A, B and C", "A, B, C, D and 2 more"."""
    if len(values) > most:
        return ", ".join(values[:most]) + f" and {len(values) - most} more"
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _distinct(runs: Sequence[Run], key: str) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        value = report.facts(run.record)[key]
        if value:
            seen.setdefault(str(value), None)
    return list(seen)


def _paragraph(runs: Sequence[Run], t: Totals, link: str | None, esc: Any, co2: str,
               url: Any) -> str:
    """The paper's paragraph over all runs, text through ``esc``, the link through ``url``."""
    n = len(runs)
    models, datasets = _distinct(runs, "model"), _distinct(runs, "dataset")
    what = f"We report {n} training run{'s' if n != 1 else ''}"
    if models:
        what += f" of {esc(_names(models))}"
    if datasets:
        what += f" on {esc(_names(datasets))}"
    if t.measured:
        what += (f", consuming in total {esc(format_energy_kwh(t.energy_kwh))} and emitting "
                 f"{esc(format_mass_kg(t.co2_kg))} {co2} over "
                 f"{esc(format_duration_s(t.duration_s))} of training, as measured by "
                 "CodeCarbon.")
    else:
        what += "; their energy and emissions could not be measured."
    if t.measured and t.not_measured:
        what += (f" {t.not_measured} of the runs could not be measured and "
                 f"{'is' if t.not_measured == 1 else 'are'} not included in these totals.")
    trusts = [run_trust(r) for r in runs]
    public = sum(1 for x in trusts if x is Trust.PUBLIC)
    private = sum(1 for x in trusts if x is Trust.PRIVATE)
    local = sum(1 for x in trusts if x is Trust.LOCAL)
    none = n - public - private - local
    verified = any(r.verification is not None for r in runs)
    done = "verified" if verified else "anchored"
    if public == n:
        what += (f" Each figure is {done} on a public blockchain by the SHA-256 fingerprint "
                 "(RFC 8785) of its measurement record")
    elif local == n:
        what += (" Each measurement record is fingerprinted (SHA-256 over RFC 8785) and "
                 "anchored only on its author's local chain, so none is publicly verifiable")
    elif private == n:
        what += (" Each measurement record is fingerprinted (SHA-256 over RFC 8785) and "
                 f"{done} only on a private network, verifiable only by those who trust it")
    elif none == n:
        what += (" Each measurement record is fingerprinted (SHA-256 over RFC 8785), but "
                 + ("none could be verified" if verified else "none is anchored on a chain")
                 + ": nothing outside the records vouches for these figures")
    else:
        parts = []
        if public:
            parts.append(f"{public} {'is' if public == 1 else 'are'} {done} on a public "
                         "blockchain")
        if private:
            parts.append(f"{private} only on a private network, verifiable only by those "
                         "who trust it")
        if local:
            parts.append(f"{local} only on their author's local chain, not publicly "
                         "verifiable")
        if none:
            parts.append(f"{none} {'is' if none == 1 else 'are'} "
                         + ("not verified" if verified else "not anchored"))
        what += (f" Each measurement record is fingerprinted (SHA-256 over RFC 8785); of the "
                 f"{n}, " + esc("; ".join(parts)))
    what += f"; verify at {url(link)}." if link else "."
    return what


def latex_report(runs: Sequence[Run], *, link: str | None = None,
                 dashboard_url: str = report.DEFAULT_DASHBOARD_URL) -> str:
    r"""A booktabs table of the runs with a totals row, then one paragraph for the paper.
    Needs ``\usepackage{booktabs}`` and ``url`` (or ``hyperref``) for the link."""
    esc = text.latex_escape
    t = totals([r.selected for r in runs])
    lines = [
        "% mrv report: needs \\usepackage{booktabs} and \\usepackage{url} (or hyperref)",
        "\\begin{table}[ht]", "\\centering", "\\small",
        "\\begin{tabular}{lllrrrl}", "\\toprule",
        "Experiment / model & Dataset & Hardware & Duration & Energy & CO$_2$e & "
        "Verification \\\\", "\\midrule",
    ]
    for run in runs:
        f = run_fields(run)
        name = f"{f['experiment'] or MISSING} / {f['model'] or MISSING}"
        cells = [name, f["dataset"] or MISSING, f["hardware"] or MISSING,
                 format_duration_s(f["duration_s"]), format_energy_kwh(f["energy_kwh"]),
                 format_mass_kg(f["co2_kg"]), f["verification"]]
        lines.append(" & ".join(esc(str(c)) for c in cells) + " \\\\")
    total_name = f"Total ({t.count} run{'s' if t.count != 1 else ''}"
    total_name += f"; {t.not_measured} not measured)" if t.not_measured else ")"
    lines += ["\\midrule",
              " & ".join([esc(total_name), "", "", esc(format_duration_s(t.duration_s)),
                          esc(format_energy_kwh(t.energy_kwh)), esc(format_mass_kg(t.co2_kg)),
                          ""]) + " \\\\",
              "\\bottomrule", "\\end{tabular}",
              "\\caption{Energy and emissions of the training runs, measured with "
              "CodeCarbon; each row is one MRV record.}",
              "\\label{tab:mrv-runs}", "\\end{table}", ""]
    public = _public_link(runs, link, dashboard_url)
    lines.append(_paragraph(runs, t, public, esc, "CO$_2$e",
                            lambda u: f"\\url{{{text.latex_url(u)}}}"))
    return "\n".join(lines) + "\n"


# --- text --------------------------------------------------------------------------------


def text_table(runs: Sequence[Run]) -> Any:
    """A rich ``Table`` of the runs with a totals footer (the CLI prints it in colour)."""
    from rich.table import Table

    t = totals([r.selected for r in runs])
    table = Table(show_footer=True, title=f"{len(runs)} run(s)", title_justify="left")
    columns = [("ID", "Total", "left"), ("Experiment", "", "left"),
               ("Dataset", "", "left"), ("Hardware", "", "left"),
               ("Duration", format_duration_s(t.duration_s), "right"),
               ("Energy", format_energy_kwh(t.energy_kwh), "right"),
               ("CO2e", format_mass_kg(t.co2_kg), "right"),
               ("Verification", f"{t.not_measured} not measured" if t.not_measured else "",
                "left")]
    for name, footer, justify in columns:
        table.add_column(name, footer=footer, justify=justify,  # type: ignore[arg-type]
                         overflow="fold")
    p = text.printable
    for run in runs:
        f = run_fields(run)
        table.add_row(p(str(f["mrv_id"])[:12]), p(f["experiment"] or MISSING),
                      p(f["dataset"] or MISSING), p(f["hardware"] or MISSING),
                      format_duration_s(f["duration_s"]), format_energy_kwh(f["energy_kwh"]),
                      format_mass_kg(f["co2_kg"]), p(f["verification"]))
    return table


def _text_report(runs: Sequence[Run]) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None, highlight=False).print(text_table(runs))
    t = totals([r.selected for r in runs])
    return buffer.getvalue() + f"{t.count} record(s); {totals_text(t)}\n"


# --- HTML --------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;
max-width:62rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin:0 0 .4rem}
h3{font-size:.95rem;margin:1rem 0 .3rem}
.totals{border:1px solid #bdbdbd;border-radius:6px;padding:.75rem 1rem;margin:1rem 0 1.5rem}
.totals p{margin:.2rem 0}
article{border-top:2px solid #e0e0e0;padding:1rem 0 1.25rem;break-inside:avoid}
.verdict{font-weight:600;padding:.35rem .6rem;border-radius:4px;margin:.2rem 0 .5rem}
.good{background:#e8f5e9;color:#1b5e20}.warn{background:#fff8e1;color:#6d4c00}
.bad{background:#ffebee;color:#b71c1c}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0}
dt{color:#616161}dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #e0e0e0}
td.num,th.num{text-align:right}
svg{max-width:100%;height:auto;display:block;margin:.4rem 0}
.none{color:#757575;font-style:italic}
ul{margin:.2rem 0;padding-left:1.2rem}
@media print{body{margin:0}.totals{border-color:#000}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _quality(record: Mapping[str, Any], points: list[charts.PowerPoint] | None) -> str:
    """How the figures were obtained: per component measured or estimated, extrapolated
    intervals, grid intensity and its source, PUE."""
    ee = section(record, "energy_emissions")
    items = []
    methods = section(ee, "methods")
    for c in COMPONENTS:
        info = methods.get(c)
        if isinstance(info, Mapping):
            how = "measured" if info.get("measured") is True else "estimated"
            # the method, and for an estimate its range (as mrv show and mrv report say it)
            items.append(f"{c.upper()}: {how}{_e(report.component_how(ee, c))}")
    if ee.get("measurement_status") != "measured":
        items.append(f"Measurement failed: {_e(ee.get('measurement_error'))}")
    if points is not None:
        extrapolated = [p for p in points if not p.measured]
        if extrapolated:
            seconds = sum(p.duration_s for p in extrapolated)
            items.append(f"{len(extrapolated)} of {len(points)} intervals extrapolated "
                         f"({_e(format_duration_s(seconds))}) while CodeCarbon was detecting "
                         "the hardware")
        else:
            items.append(f"All {len(points)} intervals measured")
    where = "/".join(str(x) for x in (ee.get("country_iso_code"), ee.get("region")) if x)
    items.append(f"Grid intensity {_e(format_intensity_g_per_kwh(ee.get('carbon_intensity_g_per_kwh')))}"
                 + (f" for {_e(where)}" if where else "")
                 + f" (location {_e(ee.get('location_source') or 'unknown')})")
    items.append(f"PUE {_e(format_number(ee.get('pue')))}")
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _run_html(run: Run) -> str:
    r = run.record
    f = run_fields(run)
    tone, verdict = verdict_sentence(run)
    series = section(r, "energy_emissions").get("power_series")
    points: list[charts.PowerPoint] | None = None
    if series is None:
        chart = ('<p class="none">No power series in this record (schema '
                 f'{_e(r.get("schema_version"))}): only the totals were recorded.</p>')
    else:
        try:
            points = charts.power_points(series)
        except ValueError as e:
            chart = f'<p class="none">The power series cannot be drawn: {_e(e)}.</p>'
        else:
            chart = (charts.power_chart_svg(points) if points else
                     '<p class="none">The power series is empty.</p>')
            if points and isinstance(series, Mapping) and series.get("downsampled"):
                chart += (f'<p class="none">{_e(series.get("source"))}; merged into '
                          f"{len(points)} intervals.</p>")
    split = charts.energy_split_svg({c: f[f"{c}_energy_kwh"] for c in COMPONENTS})
    figures = [
        ("Energy", format_energy_kwh(f["energy_kwh"])), ("Emissions", format_co2_kg(f["co2_kg"])),
        ("Duration", format_duration_s(f["duration_s"])),
        ("Started", format_datetime(f["start_time"])),
        ("Model / dataset", f"{f['model'] or MISSING} / {f['dataset'] or MISSING}"),
        ("Hardware", f["hardware"] or MISSING), ("Outcome", f["outcome"] or MISSING),
        ("MRV ID", f["mrv_id"]), ("Fingerprint", f"SHA-256 (RFC 8785) {f['fingerprint']}"),
        ("Anchoring", f"{f['anchor_state']}" + (f" on {f['network']} (chain {f['chain_id']}), "
                                                f"tx {f['tx_hash'] or MISSING}"
                                                if f["network"] else "")),
    ]
    return "".join([
        f'<article><h2>{_e(f["experiment"] or f["mrv_id"])}</h2>',
        f'<p class="verdict {tone}">{_e(verdict)}</p>',
        f"<p>{report.run_sentence(r, _e, 'CO<sub>2</sub>e')}</p>",
        "<dl>", "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in figures), "</dl>",
        "<h3>Power over time</h3>", chart,
        "<h3>Energy by component</h3>",
        split or '<p class="none">No energy split: the components gave no energy.</p>',
        "<h3>Measurement quality</h3>", _quality(r, points), "</article>",
    ])


def html_report(runs: Sequence[Run], *, title: str | None = None, link: str | None = None,
                dashboard_url: str = report.DEFAULT_DASHBOARD_URL) -> str:
    """One self-contained HTML file: totals first, then per run the verdict, its sentence,
    figures, power chart, energy split and measurement quality. No scripts, no external
    resources (it is mailed, attached and printed)."""
    t = totals([r.selected for r in runs])
    heading = title or f"Energy and emissions of {t.count} training run{'s' * (t.count != 1)}"
    public = _public_link(runs, link, dashboard_url)
    paragraph = _paragraph(runs, t, public, _e, "CO<sub>2</sub>e",
                           lambda u: f'<a href="{_e(u)}">{_e(u)}</a>')
    rows = "".join(
        f"<tr><td>{_e(f['experiment'])}</td><td>{_e(f['dataset'])}</td>"
        f"<td class=\"num\">{_e(format_duration_s(f['duration_s']))}</td>"
        f"<td class=\"num\">{_e(format_energy_kwh(f['energy_kwh']))}</td>"
        f"<td class=\"num\">{_e(format_mass_kg(f['co2_kg']))}</td>"
        f"<td>{_e(f['verification'])}</td></tr>"
        for f in (run_fields(r) for r in runs))
    summary = (
        '<section class="totals">'
        f"<p><strong>{_e(totals_text(t)[0].upper() + totals_text(t)[1:])}</strong> "
        f"across {t.count} run{'s' * (t.count != 1)}.</p><p>{paragraph}</p>"
        "<table><thead><tr><th>Experiment</th><th>Dataset</th><th class=\"num\">Duration</th>"
        "<th class=\"num\">Energy</th><th class=\"num\">CO<sub>2</sub>e</th>"
        f"<th>Verification</th></tr></thead><tbody>{rows}</tbody></table></section>")
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(heading)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(heading)}</h1>", summary, "".join(_run_html(r) for r in runs),
        "</body></html>\n",
    ])


# --- one entry point ---------------------------------------------------------------------


def render(runs: Sequence[Run], fmt: str, *, link: str | None = None,
           dashboard_url: str = report.DEFAULT_DASHBOARD_URL) -> str:
    """One of :data:`FORMATS` as text."""
    if fmt == "text":
        return _text_report(runs)
    if fmt == "latex":
        return latex_report(runs, link=link, dashboard_url=dashboard_url)
    if fmt == "csv":
        return csv_report(runs)
    if fmt == "json":
        return json_report(runs)
    if fmt == "html":
        return html_report(runs, link=link, dashboard_url=dashboard_url)
    raise MRVValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
