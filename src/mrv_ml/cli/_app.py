"""The shared Typer application and consoles; command modules import from here."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mrv_ml._version import __version__


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1, the TAMPERED code: a reader that went away is no verdict.
        raise BrokenPipeError


console = _Console(highlight=False, soft_wrap=True)
console_err = _Console(stderr=True, highlight=False, soft_wrap=True)

# `-h` as well as `--help`, on every command and group.
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="mrv",
    help="Verifiable energy and CO2 records (MRV) for machine-learning training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=HELP_OPTIONS,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"mrv-ml {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Verifiable energy and CO2 records (MRV) for machine-learning training."""
