"""Human-facing renderings of a record: a short summary, a citation sentence for a paper
(plain text and LaTeX) and a small SVG badge linking to the dashboard's deep link.

Everything here is a pure function of the record (plus, optionally, its proof sidecar and a
verification verdict); nothing touches the chain. Every record field is untrusted text: it is
LaTeX-escaped in LaTeX and XML-escaped in SVG.

The badge says "verified" only when a verification was run and returned VALID; a record
that merely has an anchoring proof is "anchored", one modified since it was anchored is
"modified", and anything else is "unverified".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrv_ml.errors import MRVValueError
from mrv_ml.measure.uncertainty import bounds_kwh
from mrv_ml.record.hashing import HASH_ALGORITHM, compute_hash
from mrv_ml.record.proof import Proof, proof_matches
from mrv_ml.record.trust import Trust, proof_trust
from mrv_ml.reporting.badge import badge_status, badge_svg
from mrv_ml.reporting.text import (
    deep_link,
    field_at,
    is_loopback_url,
    latex_escape,
    latex_url,
    printable,
)
from mrv_ml.units import (
    finite_number,
    format_co2_kg,
    format_duration_s,
    format_energy_kwh,
    format_intensity_g_per_kwh,
    format_mass_kg,
    format_number,
)
from mrv_ml.verification.model import Verdict

#: Where ``mrv serve`` shows the dashboard by default; ``--dashboard-url`` or the
#: ``MRV_DASHBOARD_URL`` environment variable point elsewhere (a public deployment).
DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8750/"  # server.DEFAULT_HOST/PORT

FORMATS = ("text", "citation", "latex", "badge")

# --- proof sidecar and status ------------------------------------------------------------


def network_of(proof: Proof | None, verdict: Verdict | None = None,
               default: str | None = None) -> str | None:
    if verdict is not None and verdict.network:
        return verdict.network
    network = proof.anchor.network if proof is not None and proof.anchor is not None else None
    return network or default


# --- the sentence ------------------------------------------------------------------------


def _facts(record: Mapping[str, Any]) -> dict[str, Any]:
    ee = field_at(record, "energy_emissions") or {}
    model = field_at(record, "experiment", "model_name")
    dataset = field_at(record, "experiment", "dataset_name")
    epochs = field_at(record, "training", "epochs")
    dist = field_at(record, "distributed")
    gpus = field_at(record, "hardware", "gpus") or []
    gpu_count = field_at(record, "hardware", "gpu_count") or 0
    hardware = None
    if isinstance(dist, Mapping) and isinstance(dist.get("world_size"), int) \
            and dist["world_size"] > 1:
        hardware = f"{dist['world_size']} processes"
    elif gpu_count and gpus and isinstance(gpus[0], Mapping) and gpus[0].get("name"):
        names = {g.get("name") for g in gpus if isinstance(g, Mapping)}
        name = str(gpus[0]["name"]) if len(names) == 1 else "GPUs"
        hardware = f"{gpu_count}x {name}" if gpu_count > 1 else str(name)
    return {
        "mrv_id": str(field_at(record, "mrv_id") or "unknown"),
        "model": str(model) if model and model != "Unknown" else None,
        "dataset": str(dataset) if dataset and dataset != "Unknown" else None,
        "epochs": epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None,
        "energy_kwh": finite_number(ee.get("energy_kwh")) if isinstance(ee, Mapping) else None,
        "co2_kg": finite_number(ee.get("co2_kg")) if isinstance(ee, Mapping) else None,
        "status": field_at(record, "outcome", "status") or "completed",
        "hardware": hardware,
    }


def _sentence(record: Mapping[str, Any], esc: Any, co2: str) -> str:
    """The one-record sentence; ``esc`` makes text (figures too: "< 0.001 mg" has a ``<``)
    safe for the medium, ``co2`` names the gas in it."""
    f = _facts(record)
    what = f"We trained {esc(f['model'])}" if f["model"] else "We trained a model"
    if f["dataset"]:
        what += f" on {esc(f['dataset'])}"
    if f["epochs"] is not None:
        what += f" for {f['epochs']} epoch{'s' if f['epochs'] != 1 else ''}"
    if f["hardware"]:
        what += f" using {esc(f['hardware'])}"
    if f["energy_kwh"] is None and f["co2_kg"] is None:
        what += "; energy and emissions could not be measured"
    else:
        what += (f", consuming {esc(format_energy_kwh(f['energy_kwh']))} and emitting "
                 f"{esc(format_mass_kg(f['co2_kg']))} {co2}")
    what += f" (MRV ID: {esc(f['mrv_id'])})."
    if f["status"] != "completed":
        what += f" The run {esc(str(f['status']))} before completing."
    return what


def facts(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a sentence or table says about a record: ``mrv_id``, ``model``, ``dataset``
    (``None`` when "Unknown"), ``epochs``, ``energy_kwh``, ``co2_kg``, ``status`` and
    ``hardware`` (GPUs or processes; ``None`` for a CPU-only run)."""
    return _facts(record)


def run_sentence(record: Mapping[str, Any], esc: Any = printable, co2: str = "CO₂e") -> str:
    """The one-sentence account of a run ("We trained X on Y ..., consuming ..."), its
    text made safe by ``esc`` for the medium."""
    return _sentence(record, esc, co2)


def integrity_line(record: Mapping[str, Any], proof: Proof | None) -> str:
    """One sentence on what backs the figures: the fingerprint, and where it is anchored in
    words a reader can act on (a public transaction, or why there is none)."""
    digest = compute_hash(record)
    trust = proof_trust(proof) if proof_matches(record, proof) else None
    a = proof.anchor if proof is not None else None
    if trust is None or a is None:
        return f"Integrity: SHA-256 (RFC 8785) {digest}; not anchored on any chain."
    if trust is Trust.LOCAL:
        return (f"Integrity: SHA-256 (RFC 8785) {digest}, anchored only on its author's "
                "local chain: not publicly verifiable.")
    where = f"{a.network or 'chain'} (chain {a.chain_id}), transaction {a.tx_hash or 'unknown'}"
    if trust is Trust.PRIVATE:
        return (f"Integrity: SHA-256 (RFC 8785) {digest}, anchored on the private network "
                f"{where}: verifiable only by those who trust that network.")
    explorer = f" ({a.explorer_url})" if a.explorer_url else ""
    return f"Integrity: SHA-256 (RFC 8785) {digest}, anchored on {where}{explorer}."


def _public_link(record: Mapping[str, Any], proof: Proof | None, dashboard_url: str,
                 network: str | None) -> str | None:
    """The dashboard deep link, unless it could only work on the author's machine."""
    if is_loopback_url(dashboard_url) or proof_trust(proof) is Trust.LOCAL:
        return None
    return deep_link(dashboard_url, _facts(record)["mrv_id"], network)


def citation_text(record: Mapping[str, Any], *, proof: Proof | None = None,
                  dashboard_url: str = DEFAULT_DASHBOARD_URL,
                  network: str | None = None) -> str:
    """The seed's sentence for a paper, in plain text, with what backs it and (for a
    public dashboard) the verification link."""
    link = _public_link(record, proof, dashboard_url, network)
    text = f"{_sentence(record, printable, 'CO₂e')}\n{integrity_line(record, proof)}\n"
    return text + (f"Verification: {link}\n" if link else "")


def citation_latex(record: Mapping[str, Any], *, proof: Proof | None = None,
                   dashboard_url: str = DEFAULT_DASHBOARD_URL,
                   network: str | None = None) -> str:
    r"""The same in LaTeX (record text escaped; the link needs ``\usepackage{url}``
    or ``hyperref``)."""
    link = _public_link(record, proof, dashboard_url, network)
    text = (f"{_sentence(record, latex_escape, 'CO$_2$e')}\n"
            f"{latex_escape(integrity_line(record, proof))}\n")
    return text + (f"Verification: \\url{{{latex_url(link)}}}\n" if link else "")


# --- summary -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One labelled line of a summary. ``tone`` ("good", "bad", "warn", "dim" or "") lets a
    terminal colour it; plain text ignores it."""

    label: str
    value: str
    tone: str = ""


def component_how(ee: Mapping[str, Any], component: str) -> str:
    """" (method; range 50 mWh–150 mWh)": the range only where the method is an estimate
    with one (mrv_ml.measure.uncertainty)."""
    method = field_at(ee, "methods", component, "method")
    if not method:
        return ""
    info = field_at(ee, "methods", component)
    bounds = bounds_kwh(finite_number(ee.get(f"{component}_energy_kwh")),
                        dict(info) if isinstance(info, Mapping) else None)
    if bounds is None:
        return f" ({method})"
    return f" ({method}; range {format_energy_kwh(bounds[0])}–{format_energy_kwh(bounds[1])})"


def _methods_text(methods: Any) -> str:
    if not isinstance(methods, Mapping):
        return "-"
    parts = []
    for component in ("cpu", "gpu", "ram"):
        info = methods.get(component)
        if isinstance(info, Mapping):
            how = "measured" if info.get("measured") else "estimated"
            # an imported row does not say how CodeCarbon measured: claim neither
            parts.append(f"{component.upper()} {info.get('method')}" + (
                "" if "(imported)" in str(info.get("method")) else f" ({how})"))
    return ", ".join(parts) or "-"


def _anchoring_row(record: Mapping[str, Any], proof: Proof | None,
                   proof_error: str | None) -> Row:
    if proof_error is not None:
        return Row("anchoring", f"unreadable proof: {proof_error}", "bad")
    if proof is None:
        return Row("anchoring", "none (no proof file; `mrv anchor` sends it)", "dim")
    if not proof_matches(record, proof):
        return Row("anchoring", "the proof file's hash differs: the record changed since "
                                "anchoring", "bad")
    a = proof.anchor
    if a is None:
        return Row("anchoring", f"pending ({proof.pending_reason or 'not sent yet'})", "warn")
    details = [f"anchored: {a.mode} on {a.network} (chain {a.chain_id})",
               f"tx {a.tx_hash or '-'}, block {a.block_number if a.block_number is not None else '-'}",
               f"submitter {a.submitter}", f"registry {a.contract_address}"]
    if a.explorer_url:
        details.append(a.explorer_url)
    return Row("anchoring", "\n".join(details), "good")


def _plan_rows(record: Mapping[str, Any]) -> list[Row]:
    """The budget and the forecast made during the run, beside what it used."""
    rows: list[Row] = []
    budget = field_at(record, "budget")
    if isinstance(budget, Mapping):
        limits = [text for text in (format_energy_kwh(finite_number(budget.get("energy_kwh"))),
                                    format_co2_kg(finite_number(budget.get("co2_kg"))))
                  if text != "—"]
        said = f"{' and '.join(limits) or '—'} ({budget.get('on_budget')})"
        if budget.get("exceeded"):
            said += (f": exceeded after "
                     f"{format_duration_s(finite_number(budget.get('exceeded_at_s')))}; "
                     f"{budget.get('action_taken') or 'no action'}")
        elif budget.get("forecast_exceeded"):
            said += ": the forecast exceeded it; the run did not"
        else:
            said += ": not exceeded"
        rows.append(Row("budget", said, "warn" if budget.get("exceeded") else ""))
    forecast = field_at(record, "energy_emissions", "forecast")
    if isinstance(forecast, Mapping):
        rows.append(Row("forecast", f"{format_energy_kwh(finite_number(forecast.get('energy_kwh')))}"
                                    f", {format_co2_kg(finite_number(forecast.get('co2_kg')))} in "
                                    f"{format_duration_s(finite_number(forecast.get('duration_s')))}"
                                    f" ({forecast.get('method')})"))
    return rows


def summary_rows(record: Mapping[str, Any], *, path: Path | str | None = None,
                 proof: Proof | None = None, proof_error: str | None = None,
                 verdict: Verdict | None = None) -> list[Row]:
    """What ran, what it cost and how that was measured, and where it is anchored: the one
    summary behind ``mrv show`` and ``mrv report -f text``. Values are the record's own
    text, unescaped (the caller makes them safe for its medium)."""
    ee = field_at(record, "energy_emissions") or {}
    exp = field_at(record, "experiment") or {}
    rows: list[Row] = []
    if path is not None:
        rows.append(Row("file", str(path)))
    rows.append(Row("experiment", f"{exp.get('name')} (model {exp.get('model_name')}, dataset "
                                  f"{exp.get('dataset_name')}, framework {exp.get('framework')})"))
    if exp.get("description"):
        rows.append(Row("description", str(exp["description"])))
    training = []
    epochs, batch = field_at(record, "training", "epochs"), field_at(record, "training", "batch_size")
    if epochs is not None:
        training.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    if batch is not None:
        training.append(f"batch {batch}")
    if training:
        rows.append(Row("training", ", ".join(training)))
    status = field_at(record, "outcome", "status")
    outcome = str(status)
    if field_at(record, "outcome", "error_type") or field_at(record, "outcome", "error_message"):
        outcome += (f" ({field_at(record, 'outcome', 'error_type')}: "
                    f"{field_at(record, 'outcome', 'error_message')})")
    if field_at(record, "outcome", "stopped_by") == "budget":
        outcome += "; stopped by its budget"
    rows.append(Row("outcome", outcome, "good" if status == "completed" else "bad"))
    rows.extend(_plan_rows(record))
    start, end = field_at(record, "timestamps", "start_time"), field_at(record, "timestamps", "end_time")
    rows.append(Row("time", f"{start or '?'} → {end or '?'} "
                            f"({format_duration_s(finite_number(ee.get('duration_seconds')))})"))
    parts = [f"{c.upper()} {format_energy_kwh(finite_number(ee.get(f'{c}_energy_kwh')))}"
             + component_how(ee, c)
             for c in ("cpu", "gpu", "ram") if finite_number(ee.get(f"{c}_energy_kwh")) is not None]
    energy = format_energy_kwh(finite_number(ee.get("energy_kwh")))
    energy += f" = {', '.join(parts)}" if parts else ""
    failed = ee.get("measurement_status") != "measured"
    if failed:
        energy += f"; measurement failed: {ee.get('measurement_error')}"
    rows.append(Row("energy", energy, "bad" if failed else ""))
    co2 = format_co2_kg(finite_number(ee.get("co2_kg")))
    intensity = finite_number(ee.get("carbon_intensity_g_per_kwh"))
    if intensity is not None:
        co2 += f" at {format_intensity_g_per_kwh(intensity)}"
        grid = field_at(ee, "methods", "grid", "uncertainty")
        if isinstance(grid, Mapping) and all(isinstance(grid.get(k), (int, float))
                                             for k in ("low_factor", "high_factor")):
            co2 += (f" (range {format_intensity_g_per_kwh(intensity * grid['low_factor'])}–"
                    f"{format_intensity_g_per_kwh(intensity * grid['high_factor'])})")
    where = "/".join(str(x) for x in (ee.get("country_iso_code"), ee.get("region")) if x)
    if where:
        co2 += f" ({where}, {ee.get('location_source') or 'location'})"
    if finite_number(ee.get("pue")) is not None:
        co2 += f", PUE {format_number(finite_number(ee.get('pue')))}"
    rows.append(Row("emissions", co2))
    rows.append(Row("measured by", f"{ee.get('measurement_tool')} "
                                   f"{ee.get('measurement_tool_version')}: "
                                   f"{_methods_text(ee.get('methods'))}"))
    provenance = record.get("provenance")
    if isinstance(provenance, Mapping) and provenance.get("kind") == "imported":
        rows.append(Row("provenance", f"imported from {provenance.get('measured_by')}'s "
                                      f"emissions.csv ({provenance.get('source_file_name')}, row "
                                      f"{provenance.get('source_row')}, imported "
                                      f"{provenance.get('imported_at')}); mrv-ml did not watch "
                                      "this run", "warn"))
    hw = field_at(record, "hardware") or {}
    gpus = ", ".join(str(g.get("name")) for g in hw.get("gpus") or []
                     if isinstance(g, Mapping)) or "none"
    rows.append(Row("hardware", f"{hw.get('cpu_model')}, {hw.get('cpu_logical_cores')} logical "
                                f"cores, {format_number(hw.get('ram_gb'))} GB RAM, GPUs: {gpus}"))
    source = record.get("source")
    if isinstance(source, Mapping):
        dirty = " (uncommitted changes)" if source.get("git_dirty") else ""
        rows.append(Row("source", f"git {source.get('git_commit')}{dirty}"))
    dist = record.get("distributed")
    if isinstance(dist, Mapping):
        missing = dist.get("missing_ranks") or []
        rows.append(Row("distributed", f"world size {dist.get('world_size')} "
                                       f"({dist.get('backend')}), "
                                       f"{len(dist.get('ranks') or [])} rank(s) reported"
                        + (f", missing {', '.join(str(r) for r in missing)}" if missing else ""),
                        "warn" if missing else ""))
    try:
        rows.append(Row("fingerprint", f"{HASH_ALGORITHM} {compute_hash(record)}"))
    except Exception as e:  # a summary must still print for a damaged record
        rows.append(Row("fingerprint", f"cannot be computed: {e}", "bad"))
    rows.append(_anchoring_row(record, proof, proof_error))
    if verdict is not None:
        rows.append(Row("verdict", verdict.status.value
                        + (f" — {verdict.detail}" if verdict.detail else ""),
                        "good" if verdict else "bad"))
    return rows


def summary_text(record: Mapping[str, Any], *, proof: Proof | None = None,
                 proof_error: str | None = None, verdict: Verdict | None = None) -> str:
    """:func:`summary_rows` as plain text, under a title line."""
    f = _facts(record)
    title = f"{f['mrv_id']}  {field_at(record, 'experiment', 'name') or ''}  [{f['status']}]"
    lines = [printable(title)]
    for row in summary_rows(record, proof=proof, proof_error=proof_error, verdict=verdict):
        first, *rest = (printable(line) for line in row.value.split("\n"))
        lines.append(f"  {row.label:<12}{first}")
        lines.extend(f"  {'':<12}{more}" for more in rest)
    return "\n".join(lines) + "\n"


def render(record: Mapping[str, Any], fmt: str, *, proof: Proof | None = None,
           proof_error: str | None = None, verdict: Verdict | None = None,
           dashboard_url: str = DEFAULT_DASHBOARD_URL, network: str | None = None) -> str:
    """One of :data:`FORMATS` as text."""
    net = network_of(proof, verdict, network)
    if fmt == "text":
        return summary_text(record, proof=proof, proof_error=proof_error, verdict=verdict)
    if fmt == "citation":
        return citation_text(record, proof=proof, dashboard_url=dashboard_url, network=net)
    if fmt == "latex":
        return citation_latex(record, proof=proof, dashboard_url=dashboard_url, network=net)
    if fmt == "badge":
        link = _public_link(record, proof, dashboard_url, net)
        return badge_svg(record, status=badge_status(record, proof, verdict), link=link)
    raise MRVValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
