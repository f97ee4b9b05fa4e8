"""The ``mrv`` command line: one thin layer that parses, calls the library, and turns
:class:`~mrv_ml.errors.MRVError` into a one-line message and its exit code.

Commands live in one private module per area and register themselves on :data:`app`.
Only this package exits.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import typer

from mrv_ml.cli._app import app, console_err
from mrv_ml.config import redact_text
from mrv_ml.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    MRVError,
)
from mrv_ml.reporting.text import printable

try:  # typer >= 0.24 vendors click: its usage errors are not click's classes
    from typer._click import exceptions as _typer_click

    _USAGE_ERRORS: tuple[Any, ...] = (click.UsageError, _typer_click.UsageError)
    _CLICK_ERRORS: tuple[Any, ...] = (click.ClickException, _typer_click.ClickException)
except ImportError:  # pragma: no cover - older typer uses click itself
    _USAGE_ERRORS, _CLICK_ERRORS = (click.UsageError,), (click.ClickException,)

# Importing registers the commands on `app`.
# registration order is the order `mrv --help` lists the commands in
from mrv_ml.cli import _bundle, _verify, _anchor, _account, _core, _export, _import, _registry, _report, _run, _serve, _timestamp  # noqa: E402,F401  isort: skip


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``mrv`` script."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that cannot show a character (PYTHONIOENCODING=ascii) gets an
        # escape, never a crash halfway through a verdict.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        command = typer.main.get_command(app)
        # Without standalone mode, a command's `raise typer.Exit(code)` comes back as the
        # return value, not as an exception: it must become the exit status.
        returned = command.main(args=argv, prog_name="mrv", standalone_mode=False)
        if isinstance(returned, int) and not isinstance(returned, bool) and returned != 0:
            sys.exit(returned)
    except MRVError as e:
        console_err.print("[bold red]error:[/] ", end="", highlight=False, markup=True)
        # one line, whatever a file name or a record holds (a newline, an escape sequence)
        console_err.print(printable(redact_text(str(e))), highlight=False, markup=False,
                          soft_wrap=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except _USAGE_ERRORS as e:
        console_err.print("[bold red]usage error:[/] ", end="", markup=True)
        console_err.print(printable(e.format_message()), highlight=False, markup=False,
                          soft_wrap=True)
        sys.exit(EXIT_USAGE)
    except click.Abort:
        console_err.print("interrupted", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        console_err.print("interrupted", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # `mrv verify X | head -1`: the reader left; that is no verdict and no error. Exit
        # as a process killed by SIGPIPE would, with nothing more written to the pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    except _CLICK_ERRORS as e:
        console_err.print("[bold red]error:[/] ", end="", markup=True)
        console_err.print(printable(e.format_message()), highlight=False, markup=False,
                          soft_wrap=True)
        sys.exit(EXIT_USAGE)
    except Exception as e:  # a bug: still one line, but say it is one
        console_err.print("[bold red]internal error:[/] ", end="", markup=True)
        console_err.print(printable(f"{type(e).__name__}: {redact_text(str(e))} (please report "
                                    "this; run with MRV_DEBUG=1 for a traceback)"),
                          highlight=False, markup=False, soft_wrap=True)
        if os.environ.get("MRV_DEBUG"):
            raise
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)
