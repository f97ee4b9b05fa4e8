"""``mrv run -- COMMAND ...``: track any program, in any language.

The options become :func:`mrv_ml.run.command.run_tracked`'s arguments, which runs the child
(stdin/stdout/stderr inherited, SIGINT and SIGTERM forwarded), writes the record whatever it
does, and gives its exit status (128 + N for a child killed by signal N), passed through
here. Our own line goes to stderr, so stdout stays the child's.
"""

from __future__ import annotations

import enum
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mrv_ml.cli._app import app
from mrv_ml.run.command import DEFAULT_BUDGET_GRACE_S, run_tracked


class TrackingMode(str, enum.Enum):
    machine = "machine"
    process = "process"


class OnBudget(str, enum.Enum):
    warn = "warn"
    stop = "stop"


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False,
                      "help_option_names": ["-h", "--help"]},
    help="Track any command: mrv run [OPTIONS] -- COMMAND [ARGS]...  "
         "A record is written whatever the command does; its exit status is passed through.",
)
def run_command(
    command: Annotated[list[str], typer.Argument(
        metavar="COMMAND...", help="The command and its arguments (after --).",
        show_default=False)],
    experiment: Annotated[str | None, typer.Option(
        "--experiment", "-e", metavar="NAME",
        help="Experiment name (default: the program name).")] = None,
    model: Annotated[str, typer.Option(metavar="NAME", help="Model name.")] = "Unknown",
    dataset: Annotated[str, typer.Option(metavar="NAME", help="Dataset name.")] = "Unknown",
    epochs: Annotated[int | None, typer.Option(
        min=0, metavar="N", help="Training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        min=1, metavar="N", help="Batch size.")] = None,
    framework: Annotated[str | None, typer.Option(
        metavar="NAME", help="ML framework, e.g. PyTorch.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Record store (default: MRV_DATA_DIR or mrv_data).")] = None,
    no_anchor: Annotated[bool, typer.Option("--no-anchor", help="Write the record but do not anchor it.")] = False,
    batch: Annotated[bool, typer.Option("--batch", help="Leave the record pending for the next `mrv anchor --batch`.")] = False,
    tags: Annotated[list[str] | None, typer.Option(
        "--tag", "--tags", metavar="KEY=VALUE",
        help="A tag for the record's experiment.tags (repeatable).")] = None,
    description: Annotated[str | None, typer.Option(
        metavar="TEXT", help="What the run is, in words (experiment.description).")] = None,
    country: Annotated[str | None, typer.Option(
        metavar="ISO3", help="ISO 3166 alpha-3 country for the carbon intensity, e.g. FRA "
                             "(default: MRV_COUNTRY, else the world average).")] = None,
    region: Annotated[str | None, typer.Option(
        metavar="NAME", help="Region within the country, where CodeCarbon knows regions "
                             "(default: MRV_REGION).")] = None,
    pue: Annotated[float | None, typer.Option(
        metavar="FLOAT", help="Power usage effectiveness of the data centre, 1 to 3 "
                              "(default: MRV_PUE, else 1.0).")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No lines of our own on stderr: no opening, heartbeat or "
                              "closing line (errors still are).")] = False,
    network: Annotated[str | None, typer.Option(
        metavar="NAME", help="Network to anchor on (default: local).")] = None,
    registry: Annotated[str | None, typer.Option(
        "--registry", help="Submit to this registry service instead of anchoring on the chain "
                           "(default: MRV_REGISTRY_URL).", metavar="URL")] = None,
    publish: Annotated[bool, typer.Option(
        "--publish", help="With a registry: publish the record itself, not only its "
                          "fingerprint.")] = False,
    sign: Annotated[bool, typer.Option(
        "--sign", help="With a registry: sign the fingerprint with your key.")] = False,
    log_to: Annotated[list[str] | None, typer.Option(
        "--log-to", metavar="mlflow|wandb",
        help="Log the record into this experiment tracker's run (repeatable; default: "
             "MRV_LOG_TO). MLflow: the run MLFLOW_RUN_ID names.")] = None,
    tracking_mode: Annotated[TrackingMode | None, typer.Option(
        "--tracking-mode", metavar="machine|process", case_sensitive=False,
        help="CodeCarbon's tracking mode: the whole machine, or the command's processes' "
             "share of CPU and RAM (GPUs are measured per device; default: "
             "MRV_TRACKING_MODE, else machine).")] = None,
    budget_kwh: Annotated[float | None, typer.Option(
        "--budget-kwh", metavar="KWH", callback=lambda v: _positive(v, "--budget-kwh"),
        help="Energy budget in kWh (default: MRV_BUDGET_KWH).")] = None,
    budget_co2_kg: Annotated[float | None, typer.Option(
        "--budget-co2-kg", metavar="KG",
        callback=lambda v: _positive(v, "--budget-co2-kg"),
        help="CO2e budget in kg (default: MRV_BUDGET_CO2_KG).")] = None,
    on_budget: Annotated[OnBudget | None, typer.Option(
        "--on-budget", metavar="warn|stop", case_sensitive=False,
        help="When the budget is crossed: warn, or stop the command: SIGINT, then SIGTERM "
             "after --budget-grace-s (default: MRV_ON_BUDGET, else stop).")] = None,
    budget_grace_s: Annotated[float, typer.Option(
        "--budget-grace-s", metavar="SECONDS", min=0.0, max=86_400.0,
        help="Seconds between the SIGINT and the SIGTERM of a command stopped by its "
             "budget.")] = DEFAULT_BUDGET_GRACE_S,
) -> None:
    options: dict[str, Any] = {"publish": publish, "sign": sign, "description": description,
                               "tags": parse_tags(tags or [])}
    if quiet:
        options["quiet"] = True  # otherwise MRV_QUIET decides
    if on_budget is not None:
        options["on_budget"] = on_budget.value
    result = run_tracked(
        command, experiment_name=experiment, model_name=model, dataset_name=dataset,
        epochs=epochs, batch_size=batch_size, framework=framework,
        blockchain_enabled=not no_anchor, anchor_mode="batch" if batch else "single",
        settings={"data_dir": data_dir, "country_iso_code": country, "region": region,
                  "pue": pue, "network": network, "registry_url": registry,
                  "log_to": ",".join(log_to) if log_to else None,
                  "tracking_mode": tracking_mode.value if tracking_mode else None,
                  "budget_kwh": budget_kwh, "budget_co2_kg": budget_co2_kg},
        budget_grace_s=budget_grace_s, **options)
    sys.stdout.flush()
    raise typer.Exit(result.exit_code)


def _positive(value: float | None, name: str) -> float | None:
    """A budget of zero or less would stop the command at once: a usage error."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive number, not {value:g}", param_hint=name)
    return value


def parse_tags(values: list[str]) -> dict[str, str]:
    """``["team=nlp", "seed=3"]`` -> ``{"team": "nlp", "seed": "3"}``; a usage error for a
    value without ``=``, an empty key, or a key given twice."""
    tags: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="'--tag'")
        if key in tags:
            raise typer.BadParameter(f"tag {key!r} given twice", param_hint="'--tag'")
        tags[key] = text
    return tags
