"""selection.select/totals, paper.py, charts.py and `mrv report` over many records."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mrv_ml import units
from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import Proof
from mrv_ml.record.trust import Trust
from mrv_ml.reporting import charts, text
from mrv_ml.reporting import many_records as paper
from mrv_ml.reporting.runs import Run
from mrv_ml.storage.selection import RecordFilter, Selected, select, totals
from mrv_ml.storage.store import RecordStore
from tests.support.cli import MRV
from tests.support.records import make_sample_record, make_sample_record_1_0

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "report"
#: Every character LaTeX treats specially, and a newline, in a record's text.
HOSTILE = "a_b & 50% $x$ #1 {c} ~d^e \\f\nnext line <g>|"


def _public_proof(record: dict[str, Any], network: str = "sepolia") -> Proof:
    chain_id = {"sepolia": 11155111, "local": 1337}[network]
    anchor: dict[str, Any] = {"mode": "single", "network": network, "chain_id": chain_id,
                              "contract_address": "0x" + "11" * 20,
                              "submitter": "0x" + "22" * 20, "tx_hash": "0x" + "ab" * 32,
                              "block_number": 3}
    if network == "local":
        anchor["local_only"] = True
    return Proof.from_dict({"proof_version": "1.0", "mrv_id": record["mrv_id"],
                            "record_hash": {"algorithm": "sha256-jcs",
                                            "digest": compute_hash(record)},
                            "status": "anchored", "anchor": anchor})


def _failed(**overrides: Any) -> dict[str, Any]:
    return make_sample_record(energy_emissions__measurement_status="failed",
                              energy_emissions__measurement_error="no RAPL, no TDP",
                              energy_emissions__energy_kwh=None, energy_emissions__co2_kg=None,
                              energy_emissions__cpu_energy_kwh=None,
                              energy_emissions__gpu_energy_kwh=None,
                              energy_emissions__ram_energy_kwh=None,
                              energy_emissions__power_series=None, **overrides)


def _runs(*records: dict[str, Any], proofs: dict[str, Proof] | None = None) -> list[Run]:
    proofs = proofs or {}
    return [Run(Selected(Path(f"{r['mrv_id']}.json"), r, proofs.get(r["mrv_id"])))
            for r in records]


# --- totals --------------------------------------------------------------------------------


def test_totals_sum_measured_runs_and_count_failed_ones_apart() -> None:
    a = make_sample_record(energy_emissions__energy_kwh=0.5, energy_emissions__co2_kg=0.2,
                           energy_emissions__cpu_energy_kwh=0.3,
                           energy_emissions__gpu_energy_kwh=0.15,
                           energy_emissions__ram_energy_kwh=0.05,
                           energy_emissions__duration_seconds=100.0)
    b = make_sample_record(energy_emissions__energy_kwh=1.5, energy_emissions__co2_kg=0.6,
                           energy_emissions__cpu_energy_kwh=1.0,
                           energy_emissions__gpu_energy_kwh=0.4,
                           energy_emissions__ram_energy_kwh=0.1,
                           energy_emissions__duration_seconds=300.0)
    t = totals([a, b, _failed(energy_emissions__duration_seconds=9999.0)])
    assert (t.count, t.measured, t.not_measured) == (3, 2, 1)
    assert t.energy_kwh == pytest.approx(2.0) and t.co2_kg == pytest.approx(0.8)
    assert t.duration_s == pytest.approx(400.0)  # the failed run's duration is not mixed in
    assert t.component_energy_kwh == pytest.approx({"cpu": 1.3, "gpu": 0.55, "ram": 0.15})
    nothing = totals([_failed()])
    assert (nothing.energy_kwh, nothing.not_measured) == (0.0, 1)
    assert nothing.component_energy_kwh == {"cpu": None, "gpu": None, "ram": None}
    assert totals([]).count == 0


def test_totals_of_store_summaries_equal_those_of_the_records(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    records = [make_sample_record(energy_emissions__energy_kwh=x, energy_emissions__co2_kg=x / 3)
               for x in (0.1, 0.2, 0.7)] + [_failed()]
    for r in records:
        store.save(r)
    (tmp_path / f"MRV-{'0' * 8}-0000-4000-8000-{'0' * 12}.json").write_text("{broken")
    summaries = store.list()
    by_records, by_summaries = totals(records), totals(summaries)
    by_dicts = totals([s.to_dict() for s in summaries])  # what the explorer's API gives
    for t in (by_summaries, by_dicts):
        # equal up to the order of addition (the listing is by start time, then ID)
        assert (t.energy_kwh, t.co2_kg, t.duration_s) == pytest.approx(
            (by_records.energy_kwh, by_records.co2_kg, by_records.duration_s), rel=1e-12)
        assert (t.count, t.measured, t.not_measured) == (5, 3, 2)  # the unreadable one apart
        assert t.component_energy_kwh == {"cpu": None, "gpu": None, "ram": None}


# --- selection -----------------------------------------------------------------------------


def test_select_mixes_files_ids_prefixes_and_directories_each_record_once(
        tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "store")
    a, b, c = make_sample_record(), make_sample_record(), make_sample_record()
    for r in (a, b):
        store.save(r)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "c.json").write_text(json.dumps(c))
    (folder / "copy-of-a.json").write_text(json.dumps(a))  # the same record again
    refs = [a["mrv_id"], str(store.path_for(a["mrv_id"])), b["mrv_id"][4:12], str(folder),
            str(folder / "c.json")]
    chosen = select(refs, store)
    assert [s.record["mrv_id"] for s in chosen] == [a["mrv_id"], b["mrv_id"], c["mrv_id"]]
    assert {s.record["mrv_id"] for s in select([], store)} == {a["mrv_id"], b["mrv_id"]}


def test_select_filters_by_experiment_and_tags_combined(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    x = make_sample_record(experiment__name="x", experiment__tags={"team": "a", "gpu": "h100"})
    y = make_sample_record(experiment__name="x", experiment__tags={"team": "b"})
    z = make_sample_record(experiment__name="z", experiment__tags={"team": "a"})
    for r in (x, y, z):
        store.save(r)

    def ids(f: RecordFilter) -> set[str]:
        return {s.record["mrv_id"] for s in select([], store, f)}

    assert ids(RecordFilter(experiment="x")) == {x["mrv_id"], y["mrv_id"]}
    assert ids(RecordFilter(tags=(("team", "a"),))) == {x["mrv_id"], z["mrv_id"]}
    assert ids(RecordFilter(experiment="x", tags=(("team", "a"),))) == {x["mrv_id"]}
    assert ids(RecordFilter(tags=(RecordFilter.parse_tag("gpu"),))) == {x["mrv_id"]}
    # conditions on anchoring are asked of the record's own proof file
    store.save_proof(_public_proof(y))
    assert ids(RecordFilter(trust=Trust.PUBLIC)) == {y["mrv_id"]}
    assert ids(RecordFilter(experiment="x", anchor_state="none")) == {x["mrv_id"]}
    folder = tmp_path / "copies"
    folder.mkdir()
    (folder / "y.json").write_text(json.dumps(y))  # its proof is found in the store
    assert [s.record["mrv_id"] for s in select([str(folder)], store,
                                               RecordFilter(trust=Trust.PUBLIC))] == [y["mrv_id"]]


def _mrv_id(prefix: str) -> str:
    return f"MRV-{prefix}{'0' * (8 - len(prefix))}-0000-4000-8000-{'1' * 12}"


@pytest.mark.parametrize(("case", "code", "needle"), [
    ("empty directory", 3, "no record files"),
    ("unknown ID", 2, "no record"),
    ("ambiguous prefix", 3, "matches 2 records"),
    ("not a record", 3, "not an MRV record"),
    ("nothing matches", 2, "matches the filters"),
])
def test_cli_report_bad_selection_is_one_line_with_its_code(
        case: str, code: int, needle: str, tmp_path: Path, data_dir: Path, mrv: MRV) -> None:
    store = RecordStore(data_dir)
    store.save(make_sample_record(mrv_id=_mrv_id("abc1")))
    store.save(make_sample_record(mrv_id=_mrv_id("abc2")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "other.json").write_text('{"schema_version": "1.0"}')
    args = {"empty directory": [str(tmp_path / "empty")],
            "unknown ID": [f"MRV-{'f' * 8}-0000-4000-8000-{'f' * 12}"],
            "ambiguous prefix": ["abc"],
            "not a record": [str(tmp_path / "other.json")],
            "nothing matches": ["--experiment", "no-such-experiment"]}[case]
    result = mrv("report", *args, "-f", "csv")
    assert result.exit_code == code, result
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_report_usage_errors(data_dir: Path, mrv: MRV) -> None:
    store = RecordStore(data_dir)
    store.save(make_sample_record())
    store.save(make_sample_record())
    many = mrv("report", "-f", "citation")
    assert many.exit_code == 64 and "is for one record (2 selected)" in many.stderr
    loop = mrv("report", "-f", "latex", "--link", "http://127.0.0.1:8750/")
    assert loop.exit_code == 64 and "loopback" in loop.stderr


# --- CSV and JSON --------------------------------------------------------------------------


def test_csv_has_raw_values_in_base_units_and_no_formulas(data_dir: Path, mrv: MRV) -> None:
    store = RecordStore(data_dir)
    evil = make_sample_record(experiment__name='=HYPERLINK("http://x.example","hi")',
                              experiment__model_name="+1", experiment__dataset_name="@SUM(A1)",
                              energy_emissions__energy_kwh=3.014e-05,
                              energy_emissions__co2_kg=1.43164e-05)
    store.save(evil)
    store.save(_failed(experiment__name="-2+3"))
    result = mrv("report", "-f", "csv", "--experiment", evil["experiment"]["name"])
    assert result.exit_code == 0, result
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(row) == list(paper.CSV_FIELDS)
    assert row["experiment"] == "'" + evil["experiment"]["name"]
    assert row["model"] == "'+1" and row["dataset"] == "'@SUM(A1)"
    assert float(row["energy_kwh"]) == 3.014e-05 and float(row["co2_kg"]) == 1.43164e-05
    assert row["fingerprint"] == compute_hash(evil) and row["anchor_state"] == "none"
    assert row["verification"] == "unverified" and row["trust"] == ""
    rows = list(csv.DictReader(io.StringIO(mrv("report", "-f", "csv").stdout)))
    failed = next(r for r in rows if r["experiment"] == "'-2+3")
    assert failed["energy_kwh"] == "" and failed["measurement_status"] == "failed"


def test_json_lists_the_same_fields_and_the_totals(data_dir: Path, mrv: MRV) -> None:
    store = RecordStore(data_dir)
    records = [make_sample_record(), make_sample_record(), _failed()]
    for r in records:
        store.save(r)
    store.save_proof(_public_proof(records[0]))
    result = mrv("report", "-f", "json")
    assert result.exit_code == 0, result
    doc = json.loads(result.stdout)
    assert [set(r) for r in doc["records"]] == [set(paper.CSV_FIELDS)] * 3
    first = next(r for r in doc["records"] if r["mrv_id"] == records[0]["mrv_id"])
    assert first["verification"] == "anchored" and first["trust"] == "public"
    assert first["network"] == "sepolia" and first["energy_kwh"] == 0.000123
    assert doc["totals"] == totals(records).to_dict()
    assert doc["totals"]["not_measured"] == 1


def test_text_table_has_totals_formatted_by_units(data_dir: Path, mrv: MRV,
                                                  tmp_path: Path) -> None:
    store = RecordStore(data_dir)
    for kwh in (0.25, 0.5):
        store.save(make_sample_record(energy_emissions__energy_kwh=kwh))
    out = tmp_path / "report.txt"
    assert mrv("report", "-o", out).exit_code == 0
    text = out.read_text()
    assert "250 Wh" in text and "500 Wh" in text and "750 Wh" in text
    assert "2 record(s); total 750 Wh" in text


# --- LaTeX ---------------------------------------------------------------------------------

def _check_latex_structure(text: str) -> None:
    """Braces balance, environments nest, every table row has 7 cells on one line, and no
    special character is left unescaped outside the commands we emit."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
    stack: list[str] = []
    for m in re.finditer(r"\\(begin|end)\{(\w+)\}", body):
        if m.group(1) == "begin":
            stack.append(m.group(2))
        else:
            assert stack and stack.pop() == m.group(2), m.group(0)
    assert not stack
    depth = 0
    for m in re.finditer(r"\\.|[{}]", body):
        if m.group(0) == "{":
            depth += 1
        elif m.group(0) == "}":
            depth -= 1
            assert depth >= 0
    assert depth == 0
    rows = body.split("\\toprule\n", 1)[1].split("\\bottomrule", 1)[0]
    for line in rows.splitlines():
        if line and line != "\\midrule":
            assert line.endswith(" \\\\") and len(re.findall(r"(?<!\\)&", line)) == 6, line
    # What is left once the markup we emit is taken out must hold no special character.
    prose = re.sub(r"\\url\{[^}]*\}", "", body.replace("CO$_2$e", ""))
    prose = re.sub(r"\\(begin|end)\{\w+\}(\{l+r+l\})?|\\label\{[\w:-]+\}", "", prose)
    prose = re.sub(r"\\caption\{(.*)\}$", r"\1", prose, flags=re.M)
    prose = re.sub(r"\\(centering|small|toprule|midrule|bottomrule)\b|\\\\$", "", prose,
                   flags=re.M)
    prose = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater"
                   r"|textbar)\{\}|\\[&%$#_{}]", "", prose)
    prose = prose.replace(" & ", " ")  # column separators
    assert not re.search(r"[{}&%$#_^~\\]", prose), prose


def _compile(tex: str, where: Path) -> None:
    document = ("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{url}\n"
                f"\\begin{{document}}\n{tex}\\end{{document}}\n")
    (where / "paper.tex").write_text(document, encoding="utf-8")
    result = subprocess.run(["pdflatex", "-no-shell-escape", "-halt-on-error",
                             "-interaction=nonstopmode", "paper.tex"], cwd=where,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (where / "paper.pdf").stat().st_size > 1000


def _hostile_runs() -> list[Run]:
    public = make_sample_record(experiment__name=HOSTILE, experiment__model_name=HOSTILE,
                                experiment__dataset_name="CIFAR_10 & more",
                                energy_emissions__energy_kwh=4.2e-10,  # "< 0.001 µWh"
                                energy_emissions__co2_kg=0.6)
    local = make_sample_record(experiment__name="local run")
    return _runs(public, local, _failed(experiment__name="}{ unbalanced \\end{table}"),
                 proofs={public["mrv_id"]: _public_proof(public),
                         local["mrv_id"]: _public_proof(local, "local")})


def test_latex_table_escapes_hostile_text_and_says_what_is_anchored() -> None:
    runs = _hostile_runs()
    tex = paper.latex_report(runs, dashboard_url="https://verify.example/app")
    _check_latex_structure(tex)
    assert text.latex_escape(HOSTILE) in tex and "\\textless{}" in tex
    assert "next line" in tex and "\nnext line" not in tex
    total_row = next(line for line in tex.splitlines() if line.startswith("Total"))
    assert "Total (3 runs; 1 not measured)" in total_row
    assert units.format_mass_kg(0.6 + runs[1].record["energy_emissions"]["co2_kg"]) in total_row
    paragraph = tex.rstrip().splitlines()[-1]
    assert paragraph.startswith("We report 3 training runs")
    assert "1 of the runs could not be measured" in paragraph
    assert "1 is anchored on a public blockchain" in paragraph
    assert "; 1 only on their author's local chain, not publicly verifiable; 1 is not " \
        "anchored" in paragraph
    public_id = runs[0].record["mrv_id"]
    assert paragraph.count("\\url{") == 1
    assert f"verify at \\url{{https://verify.example/app?id={public_id}&network=sepolia}}" \
        in paragraph
    given = paper.latex_report(runs, link="https://bundle.example/paper/index.html")
    assert "verify at \\url{https://bundle.example/paper/index.html}." in given
    # the default dashboard is this machine's: no link at all rather than a loopback one
    assert "\\url" not in paper.latex_report(runs) and "127.0.0.1" not in paper.latex_report(runs)


def test_paragraph_of_runs_all_on_one_kind_of_chain_says_so_once() -> None:
    a, b = make_sample_record(), make_sample_record()
    local = _runs(a, b, proofs={r["mrv_id"]: _public_proof(r, "local") for r in (a, b)})
    paragraph = paper.latex_report(local).rstrip().splitlines()[-1]
    assert "anchored only on its author's local chain, so none is publicly verifiable" \
        in paragraph
    assert "of the 2" not in paragraph and "public blockchain" not in paragraph
    html = paper.html_report(_runs(a, proofs={a["mrv_id"]: _public_proof(a)}))
    # an anchoring the report did not verify is the proof file's claim: never shown as good
    assert 'class="verdict good"' not in html and "not verified in this report" in html


def test_html_report_gives_the_range_of_an_estimate_and_none_for_a_measurement() -> None:
    estimated = {"method": "estimated from CPU load and TDP", "measured": False,
                 "uncertainty": {"low_factor": 0.5, "high_factor": 1.5, "basis": "TDP",
                                 "reference": "docs/uncertainty.md#cpu-tdp"}}
    record = make_sample_record(
        energy_emissions__cpu_energy_kwh=0.01,
        energy_emissions__methods={"cpu": estimated,
                                   "gpu": {"method": "NVML total-energy counter",
                                           "measured": True}})
    html = paper.html_report(_runs(record))
    assert "CPU: estimated (estimated from CPU load and TDP; range 5 Wh–15 Wh)" in html
    assert "GPU: measured (NVML total-energy counter)</li>" in html


def test_latex_report_compiles_with_pdflatex(tmp_path: Path) -> None:
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (scripts/bootstrap.sh test installs it)")
    _compile(paper.latex_report(_hostile_runs(), dashboard_url="https://v.example/a%20b#x"),
             tmp_path)


def test_cli_latex_one_record_is_the_sentence_or_with_table_the_table(
        data_dir: Path, mrv: MRV) -> None:
    record = make_sample_record()
    RecordStore(data_dir).save(record)
    sentence = mrv("report", record["mrv_id"], "-f", "latex")
    assert sentence.exit_code == 0 and sentence.stdout.startswith("We trained SimpleCNN")
    table = mrv("report", record["mrv_id"], "-f", "latex", "--table")
    assert table.exit_code == 0 and "\\begin{tabular}" in table.stdout
    assert "Total (1 run)" in table.stdout


# --- charts --------------------------------------------------------------------------------


def test_power_chart_geometry_follows_the_series() -> None:
    series = make_sample_record()["energy_emissions"]["power_series"]
    points = charts.power_points(series)
    svg = charts.power_chart_svg(points, width=640, height=240)
    polygons = re.findall(r'<polygon class="area-(\w+)" points="([^"]+)"', svg)
    assert [c for c, _ in polygons] == ["cpu", "gpu", "ram"]
    n = len(series["start_offset_s"])
    left, right, top, bottom = charts.MARGIN
    for _, vertices in polygons:
        xy = [tuple(map(float, v.split(","))) for v in vertices.split()]
        assert len(xy) == 4 * n  # two per interval on top, two back along the bottom
        assert min(x for x, _ in xy) == left and max(x for x, _ in xy) == 640 - right
    assert svg.count('class="extrapolated"') == series["measured"].count(False)
    # stacked CPU 28.8 W + RAM 6.62 W peaks at 35.4 W: the axis goes to the next 1-2-5 step
    assert ">50 W</text>" in svg and ">0 W</text>" in svg and ">12.5 s</text>" in svg
    with pytest.raises(ValueError, match="differ in length"):
        charts.power_points({**series, "measured": [True]})


# --- HTML ----------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_is_self_contained_escaped_and_charts_every_point() -> None:
    runs = _hostile_runs()
    runs.append(_runs(make_sample_record_1_0(experiment__name="old record"))[0])
    doc = paper.html_report(runs, link="https://bundle.example/")
    page = _Page()
    page.feed(doc)
    names = [t for t, _ in page.tags]
    assert "script" not in names and "link" not in names and "img" not in names
    for tag, attrs in page.tags:
        assert "src" not in attrs and not any(k.startswith("on") for k in attrs)
        if "href" in attrs:  # only the one verification link, for a person to follow
            assert tag == "a" and attrs["href"] == "https://bundle.example/"
    text = "".join(page.text)
    assert html.escape(HOSTILE) in doc and HOSTILE in text  # the record's "<g>" is text
    assert not any(tag == "g" for tag, _ in page.tags if tag != "svg")
    # verdict first, in words that claim no more than the proof shows
    verdicts = [v for v in text.split("\n") if v]
    assert "Anchored on sepolia (chain 11155111), a public chain; not verified" in text
    assert "Local only: anchored on its author's own embedded chain" in text
    assert "Not anchored: nothing vouches for these figures." in text
    assert verdicts
    # one chart per record with a series, each with as many intervals as its series
    n = len(runs[1].record["energy_emissions"]["power_series"]["start_offset_s"])
    areas = re.findall(r'<polygon class="area-cpu" points="([^"]+)"', doc)
    assert len(areas) == 2 and all(len(a.split()) == 4 * n for a in areas)
    assert "No power series in this record (schema 1.0)" in text
    # figures through the one formatter
    assert units.format_energy_kwh(4.2e-10) in text and units.format_co2_kg(0.6) in text
    assert "Measurement failed: no RAPL, no TDP" in text
    assert "1 of 7 intervals extrapolated" in text
    assert "Grid intensity 367 g CO2e/kWh for FRA (location configured)" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.html").write_text(doc, encoding="utf-8")


def test_cli_html_report_to_a_file(data_dir: Path, mrv: MRV, tmp_path: Path) -> None:
    store = RecordStore(data_dir)
    records = [make_sample_record(experiment__name=f"run {i}") for i in range(3)]
    for r in records:
        store.save(r)
    out = tmp_path / "out" / "report.html"
    result = mrv("report", *[r["mrv_id"] for r in records[:2]], "-f", "html", "-o", out)
    assert result.exit_code == 0 and f"wrote {out}" in result.stderr
    doc = out.read_text()
    assert doc.startswith("<!DOCTYPE html>") and doc.count("<article>") == 2
    assert "run 2" not in doc


# --- verification of many records, on a real chain ----------------------------------------


def test_cli_report_verify_many_on_the_embedded_chain(data_dir: Path, mrv: MRV) -> None:
    """Two real tracked runs anchored on the embedded chain: --verify finds both VALID and
    says what that is worth (local only); after one is edited, that one is tampered and the
    exit code is the worst verdict's."""
    from mrv_ml import MRVTracker

    ids = []
    for name in ("first", "second"):
        with MRVTracker(experiment_name=name, quiet=True) as tracker:
            sum(range(10_000))
        assert tracker.tx_hash is not None
        ids.append(str(tracker.mrv_id))
    ok = mrv("report", "-f", "json", "--verify")
    assert ok.exit_code == 0, ok.stderr
    rows = json.loads(ok.stdout)["records"]
    assert {r["verification"] for r in rows} == {"local only"}
    assert {r["trust"] for r in rows} == {"local only"}
    path = RecordStore(data_dir).path_for(ids[1])
    edited = json.loads(path.read_text())
    edited["energy_emissions"]["co2_kg"] = 0.0
    path.write_text(json.dumps(edited))
    bad = mrv("report", "-f", "csv", "--verify")
    assert bad.exit_code == 1
    by_id = {r["mrv_id"]: r for r in csv.DictReader(io.StringIO(bad.stdout))}
    assert by_id[ids[0]]["verification"] == "local only"
    assert by_id[ids[1]]["verification"] == "tampered" and by_id[ids[1]]["trust"] == ""
