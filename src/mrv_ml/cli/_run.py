"""``mrv run -- COMMAND ...``: track any program, in any language.

The options become :func:`mrv_ml.command.run_tracked`'s arguments, which runs the child
(stdin/stdout/stderr inherited, SIGINT and SIGTERM forwarded), writes the record whatever it
does, and gives its exit status (128 + N for a child killed by signal N), passed through
here. Our own line goes to stderr, so stdout stays the child's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mrv_ml.cli._app import app
from mrv_ml.command import run_tracked


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False,
                      "help_option_names": ["-h", "--help"]},
    help="Track any command: mrv run [OPTIONS] -- COMMAND [ARGS]...  "
         "A record is written whatever the command does; its exit status is passed through.",
)
def run_command(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).",
                                                 show_default=False)],
    experiment: Annotated[str | None, typer.Option("--experiment", "-e",
                                                   help="Experiment name (default: the program name).")] = None,
    model: Annotated[str, typer.Option(help="Model name.")] = "Unknown",
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "Unknown",
    epochs: Annotated[int | None, typer.Option(min=0, help="Training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size.")] = None,
    framework: Annotated[str | None, typer.Option(help="ML framework, e.g. PyTorch.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Record store (default: MRV_DATA_DIR or mrv_data).")] = None,
    no_anchor: Annotated[bool, typer.Option("--no-anchor", help="Write the record but do not anchor it.")] = False,
    batch: Annotated[bool, typer.Option("--batch", help="Leave the record pending for the next `mrv anchor --batch`.")] = False,
    country: Annotated[str | None, typer.Option(help="ISO 3166 alpha-3 country for the carbon intensity.")] = None,
    network: Annotated[str | None, typer.Option(help="Network to anchor on (default: local).")] = None,
    registry: Annotated[str | None, typer.Option(
        "--registry", help="Submit to this registry service instead of anchoring on the chain "
                           "(default: MRV_REGISTRY_URL).")] = None,
    publish: Annotated[bool, typer.Option(
        "--publish", help="With a registry: publish the record itself, not only its "
                          "fingerprint.")] = False,
    sign: Annotated[bool, typer.Option(
        "--sign", help="With a registry: sign the fingerprint with your key.")] = False,
) -> None:
    result = run_tracked(
        command, experiment_name=experiment, model_name=model, dataset_name=dataset,
        epochs=epochs, batch_size=batch_size, framework=framework,
        blockchain_enabled=not no_anchor, anchor_mode="batch" if batch else "single",
        publish=publish, sign=sign,
        settings={"data_dir": data_dir, "country_iso_code": country, "network": network,
                  "registry_url": registry})
    sys.stdout.flush()
    raise typer.Exit(result.exit_code)
