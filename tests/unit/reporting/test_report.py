"""report.py and `mrv report`: summary, citation (plain/LaTeX), SVG badge."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mrv_ml.record.hashing import compute_hash
from mrv_ml.record.proof import Proof, find_proof
from mrv_ml.reporting import one_record as report
from mrv_ml.reporting import text, verdict_text
from mrv_ml.verification.model import Verdict
from mrv_ml.verification.verdict import VerdictStatus
from tests.support.records import make_sample_record

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
NASTY = r"Res_Net & 50% $x$ #1 {a} ~b^c \d <e>"


def _proof_dict(record: dict[str, Any], *, status: str = "anchored",
                digest: str | None = None, network: str = "sepolia") -> dict[str, Any]:
    chain_id = {"sepolia": 11155111, "local": 1337, "anvil": 31337}[network]
    return {"proof_version": "1.0", "mrv_id": record["mrv_id"],
            "record_hash": {"algorithm": "sha256-jcs", "digest": digest or compute_hash(record)},
            "status": status,
            "anchor": {"mode": "single", "network": network, "chain_id": chain_id,
                       "contract_address": "0x" + "11" * 20, "submitter": "0x" + "22" * 20,
                       "tx_hash": "0x" + "ab" * 32, "block_number": 3}}


def _proof(record: dict[str, Any], **kw: Any) -> Proof:
    return Proof.from_dict(_proof_dict(record, **kw))


def _verdict(record: dict[str, Any], status: VerdictStatus, trust: str = "public") -> Verdict:
    return Verdict(status=status, reason="", mrv_id=record["mrv_id"],
                   record_hash=compute_hash(record), network="sepolia", trust=trust)


# --- LaTeX ---------------------------------------------------------------------------------


def test_latex_escape_covers_every_special_character() -> None:
    escaped = text.latex_escape(NASTY)
    assert escaped == (r"Res\_Net \& 50\% \$x\$ \#1 \{a\} \textasciitilde{}b\textasciicircum{}c "
                       r"\textbackslash{}d \textless{}e\textgreater{}")
    assert text.latex_escape("two\nlines") == "two lines"  # a newline would end the paragraph


def test_latex_citation_escapes_record_fields_and_keeps_figures() -> None:
    record = make_sample_record(experiment__model_name=NASTY, experiment__dataset_name="CIFAR_10",
                                training__epochs=90, energy_emissions__energy_kwh=0.87,
                                energy_emissions__co2_kg=0.42)
    text = report.citation_latex(record, dashboard_url="https://verify.example/app",
                                 network="sepolia")
    sentence, integrity, link_line = text.strip().split("\n")
    assert integrity.startswith("Integrity: SHA-256 (RFC 8785) ") and "not anchored" in integrity
    assert sentence.startswith(r"We trained Res\_Net \& 50\% \$x\$ \#1 \{a\}")
    assert r"on CIFAR\_10 for 90 epochs, consuming 870 Wh and emitting 420 g CO$_2$e" in sentence
    assert f"(MRV ID: {record['mrv_id']})." in sentence
    # every special character outside the escapes we emit is gone
    stripped = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater)\{\}"
                      r"|\\[&%$#_{}]|CO\$_2\$e", "", sentence)
    assert not re.search(r"[&%$#_{}~^\\<>]", stripped), stripped
    assert link_line == (r"Verification: \url{https://verify.example/app?id="
                         f"{record['mrv_id']}&network=sepolia}}")


def test_latex_url_escapes_percent_and_hash() -> None:
    record = make_sample_record()
    text = report.citation_latex(record, dashboard_url="https://x.example/a%20b/?q=1#top")
    assert r"\url{https://x.example/a\%20b/?q=1&id=" in text and text.strip().endswith(r"\#top}")


def test_plain_citation_has_figures_and_deep_link() -> None:
    record = make_sample_record(experiment__model_name="ResNet18", training__epochs=1,
                                energy_emissions__energy_kwh=0.0042,
                                energy_emissions__co2_kg=0.0000451)
    text = report.citation_text(record, dashboard_url="https://v.example/", network="sepolia")
    assert "We trained ResNet18 on MNIST for 1 epoch, consuming 4.2 Wh and emitting 45.1 mg CO₂" \
        in text
    link = text.split("Verification: ")[1].strip()
    assert parse_qs(urlsplit(link).query) == {"id": [record["mrv_id"]], "network": ["sepolia"]}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8750/", "http://localhost:8750/",
                                 "http://[::1]/", "http://0.0.0.0/"])
def test_citations_and_badges_never_carry_a_loopback_link(url: str) -> None:
    record = make_sample_record()
    for fmt in ("citation", "latex"):
        text = report.render(record, fmt, proof=_proof(record), dashboard_url=url)
        assert "Verification:" not in text and "127.0.0.1" not in text
        assert "localhost" not in text and "anchored on sepolia (chain 11155111)" in text
    assert _parse_badge(report.render(record, "badge", proof=_proof(record),
                                      dashboard_url=url))[1] is None


def test_local_only_records_say_they_are_not_publicly_anchored() -> None:
    record = make_sample_record(energy_emissions__co2_kg=0.42)
    proof = _proof(record, network="local")
    text = report.citation_text(record, proof=proof, dashboard_url="https://v.example/")
    assert "anchored only on its author's local chain: not publicly verifiable" in text
    assert "Verification:" not in text  # a link would only work on the author's machine
    title, href = _parse_badge(report.render(record, "badge", proof=proof,
                                             dashboard_url="https://v.example/"))
    assert title == "CO2e: 420 g · local only" and href is None
    valid_here = _verdict(record, VerdictStatus.VALID, trust="local only")
    title, _ = _parse_badge(report.render(record, "badge", proof=proof, verdict=valid_here))
    assert title == "CO2e: 420 g · local only"  # VALID on one's own chain is not "verified"


def test_citation_of_failed_unmeasured_run_says_so() -> None:
    record = make_sample_record(outcome__status="failed",
                                energy_emissions__measurement_status="failed",
                                energy_emissions__energy_kwh=None, energy_emissions__co2_kg=None)
    text = report.citation_text(record)
    assert "energy and emissions could not be measured" in text
    assert "The run failed before completing." in text
    assert "None" not in text and "0 g" not in text  # never an invented figure


def test_deep_link_keeps_existing_query_and_encodes() -> None:
    link = text.deep_link("https://h.example/verify?lang=en&id=old", "MRV-1 2", "base sepolia")
    assert parse_qs(urlsplit(link).query) == {"lang": ["en"], "id": ["MRV-1 2"],
                                              "network": ["base sepolia"]}
    assert " " not in link


def test_every_rendering_formats_figures_through_units() -> None:
    """One formatter: the sentence, the summary, the badge and a verdict's rows show the
    figures exactly as mrv_ml.units does (and the page's units.js)."""
    from mrv_ml import units

    record = make_sample_record(energy_emissions__energy_kwh=3.014e-05,
                                energy_emissions__co2_kg=1.43164e-05,
                                energy_emissions__duration_seconds=4000.0)
    energy, co2 = units.format_energy_kwh(3.014e-05), units.format_mass_kg(1.43164e-05)
    assert (energy, co2) == ("30.1 mWh", "14.3 mg")
    assert f"consuming {energy} and emitting {co2} CO₂e" in report.citation_text(record)
    summary = report.summary_text(record)
    assert f"energy      {energy} = CPU" in summary and f"{co2} CO2e at 367 g CO2e/kWh" in summary
    assert "(1.11 h)" in summary and "e-05" not in summary
    assert _parse_badge(report.render(record, "badge"))[0] == f"CO2e: {co2} · unverified"
    verdict = _verdict(record, VerdictStatus.VALID)
    rows = dict(verdict_text.verdict_rows(dataclasses.replace(verdict, co2_kg=1.43164e-05,
                                                              energy_kwh=3.014e-05), "r.json"))
    assert rows["CO2e"] == units.format_co2_kg(1.43164e-05) and rows["Energy"] == energy
    assert not hasattr(report, "format_quantity") and not hasattr(report, "format_duration")


# --- badge ---------------------------------------------------------------------------------


def _parse_badge(svg: str) -> tuple[str, str | None]:
    root = ET.fromstring(svg)  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    title = root.find(f".//{SVG}title")
    assert title is not None and title.text == root.get("aria-label")
    anchor = root.find(f"{SVG}a")
    href = None if anchor is None else anchor.get("href")
    if anchor is not None:
        assert anchor.get(f"{XLINK}href") == href
    return title.text or "", href


def test_badge_text_and_link_for_anchored_record() -> None:
    record = make_sample_record(energy_emissions__co2_kg=0.42)
    svg = report.render(record, "badge", proof=_proof(record),
                        dashboard_url="https://verify.example/")
    title, href = _parse_badge(svg)
    assert title == "CO2e: 420 g · anchored"
    assert href == f"https://verify.example/?id={record['mrv_id']}&network=sepolia"


@pytest.mark.parametrize(("proof_kind", "verdict_status", "expected"), [
    (None, None, "unverified"),
    ("anchored", None, "anchored"),
    ("pending", None, "pending"),
    ("other-digest", None, "modified"),
    ("anchored", VerdictStatus.VALID, "verified"),
    ("anchored", VerdictStatus.TAMPERED, "tampered"),
    (None, VerdictStatus.NOT_FOUND, "not found"),
])
def test_badge_says_verified_only_after_a_valid_verification(
        proof_kind: str | None, verdict_status: VerdictStatus | None, expected: str) -> None:
    record = make_sample_record(energy_emissions__co2_kg=0.42)
    proof = None
    if proof_kind == "other-digest":
        proof = _proof(record, digest="00" * 32)
    elif proof_kind is not None:
        proof = _proof(record, status=proof_kind)
    verdict = _verdict(record, verdict_status) if verdict_status else None
    title, _ = _parse_badge(report.render(record, "badge", proof=proof, verdict=verdict))
    assert title == f"CO2e: 420 g · {expected}"


def test_badge_escapes_hostile_url_and_stays_well_formed() -> None:
    record = make_sample_record()
    evil = 'https://x.example/"><script>alert(1)</script>&a=\'1'
    svg = report.render(record, "badge", dashboard_url=evil)
    _, href = _parse_badge(svg)
    assert "<script>" not in svg
    assert href is not None and href.startswith('https://x.example/"><script>')


# --- summary -------------------------------------------------------------------------------


def test_summary_names_figures_hash_and_anchor() -> None:
    record = make_sample_record(experiment__name="resnet & co")
    text = report.summary_text(record, proof=_proof(record))
    assert record["mrv_id"] in text and "resnet & co" in text
    assert f"sha256-jcs {compute_hash(record)}" in text
    assert "123 mWh" in text and "CPU 100 mWh (TDP)" in text
    assert "single on sepolia (chain 11155111)" in text
    odd = make_sample_record(hardware__ram_gb=23.540084838867188)
    assert "23.5 GB RAM" in report.summary_text(odd)  # through units, like every figure
    edited = dict(record, experiment={**record["experiment"], "name": "changed"})
    assert "the record changed since anchoring" in report.summary_text(edited,
                                                                      proof=_proof(record))


def test_summary_says_the_budget_stop_and_the_forecast() -> None:
    record = make_sample_record(outcome__status="interrupted", outcome__stopped_by="budget")
    record["budget"] = {"energy_kwh": 1e-05, "co2_kg": None, "on_budget": "stop",
                        "exceeded": True, "exceeded_at_s": 4.361,
                        "action_taken": "sent SIGINT to the command"}
    record["energy_emissions"]["forecast"] = {
        "method": "linear extrapolation after 1 of 90 epochs", "made_at_progress": 1 / 90,
        "made_at_s": 60.0, "energy_kwh": 4.2, "co2_kg": 2.0, "duration_s": 5400.0}
    rows = {row.label: row.value for row in report.summary_rows(record)}
    assert rows["outcome"].endswith("; stopped by its budget")
    assert rows["budget"] == ("10 mWh (stop): exceeded after 4.36 s; sent SIGINT to the "
                              "command")
    assert rows["forecast"] == ("4.2 kWh, 2 kg CO2e in 1.5 h (linear extrapolation after 1 "
                                "of 90 epochs)")
    plain = {row.label for row in report.summary_rows(make_sample_record())}
    assert not {"budget", "forecast"} & plain


def test_find_proof_beside_record_or_in_store(tmp_path: Path) -> None:
    record = make_sample_record()
    folder, store = tmp_path / "elsewhere", tmp_path / "store"
    folder.mkdir()
    store.mkdir()
    path = folder / "copy.json"
    path.write_text(json.dumps(record))
    assert find_proof(path, record["mrv_id"], store) == (None, None)
    (store / f"{record['mrv_id']}.proof.json").write_text(json.dumps(_proof_dict(record)))
    assert find_proof(path, record["mrv_id"], store) == (_proof(record), None)
    # the sidecar beside the record comes first, and one for another record is no proof
    other = _proof_dict(make_sample_record())
    (folder / f"{record['mrv_id']}.proof.json").write_text(json.dumps(other))
    proof, problem = find_proof(path, record["mrv_id"], store)
    assert proof is None and problem is not None and "proof of another record" in problem
    (folder / f"{record['mrv_id']}.proof.json").write_text("[]")  # unusable: said, not hidden
    proof, problem = find_proof(path, record["mrv_id"], store)
    assert proof is None and problem is not None and "proof" in problem


# --- command line --------------------------------------------------------------------------


@dataclass
class _Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def mrv(capsys: pytest.CaptureFixture[str]) -> Callable[..., _Result]:
    """Runs the real `mrv` entry point in-process (exit code from its SystemExit)."""
    from mrv_ml.cli import main

    def run(*args: str) -> _Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        out = capsys.readouterr()
        return _Result(int(exit_info.value.code or 0), out.out, out.err)

    return run


def _write_record(tmp_path: Path, **overrides: Any) -> tuple[Path, dict[str, Any]]:
    record = make_sample_record(**overrides)
    path = tmp_path / f"{record['mrv_id']}.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path, record


def test_cli_report_formats(tmp_path: Path, mrv: Callable[..., _Result]) -> None:
    path, record = _write_record(tmp_path, energy_emissions__co2_kg=0.42,
                                 experiment__model_name="Res_Net")
    (tmp_path / f"{record['mrv_id']}.proof.json").write_text(
        json.dumps(_proof_dict(record, network="sepolia")))
    latex = mrv("report", str(path), "--format", "latex", "--dashboard-url", "https://v.example/")
    assert latex.returncode == 0, latex.stderr
    assert r"We trained Res\_Net" in latex.stdout
    assert f"https://v.example/?id={record['mrv_id']}&network=sepolia" in latex.stdout
    out = tmp_path / "badges" / "co2.svg"
    badge = mrv("report", str(path), "-f", "badge", "-o", str(out))
    assert badge.returncode == 0, badge.stderr
    assert _parse_badge(out.read_text())[0] == "CO2e: 420 g · anchored"
    text = mrv("report", str(path))
    assert text.returncode == 0 and compute_hash(record) in text.stdout


@pytest.mark.parametrize(("content", "code", "needle"), [
    (None, 3, "no such file"),
    ("{not json", 3, "invalid JSON"),
    ('{"schema_version": "1.0"}', 3, "not an MRV record"),
])
def test_cli_report_bad_input_is_one_line(tmp_path: Path, content: str | None, code: int,
                                          needle: str, mrv: Callable[..., _Result]) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    result = mrv("report", str(path))
    assert result.returncode == code
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_report_unknown_format_is_usage_error(tmp_path: Path,
                                                 mrv: Callable[..., _Result]) -> None:
    path, _ = _write_record(tmp_path)
    result = mrv("report", str(path), "--format", "pdf")
    assert result.returncode == 64 and "Traceback" not in result.stderr


def test_cli_report_output_to_unwritable_place_is_store_error(
        tmp_path: Path, mrv: Callable[..., _Result]) -> None:
    path, _ = _write_record(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = mrv("report", str(path), "-f", "badge", "-o", str(blocker / "b.svg"))
    assert result.returncode == 6 and "cannot write" in result.stderr
    assert blocker.read_text() == "x"


def test_cli_report_verify_badge_from_a_real_anchored_run(
        data_dir: Path, mrv: Callable[..., _Result]) -> None:
    """A real tracked run anchored on the embedded chain: --verify finds it VALID, and the
    badge says what that is worth ("local only", never "verified"); after an edit, tampered."""
    from mrv_ml import MRVTracker

    with MRVTracker(experiment_name="report_verify", quiet=True) as tracker:
        sum(range(10_000))
    assert tracker.tx_hash is not None
    ok = mrv("report", tracker.mrv_id, "-f", "badge", "--verify")
    assert ok.returncode == 0, ok.stderr
    assert _parse_badge(ok.stdout)[0].endswith(" · local only")
    path = Path(tracker.record_path)
    edited = json.loads(path.read_text())
    edited["energy_emissions"]["co2_kg"] = 0.0
    path.write_text(json.dumps(edited))
    bad = mrv("report", str(path), "-f", "badge", "--verify")
    assert bad.returncode == 1
    assert _parse_badge(bad.stdout)[0] == "CO2e: 0 g · tampered"
