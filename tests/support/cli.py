"""Running the ``mrv`` command in tests: one helper for every CLI test.

Registered as a plugin in ``tests/conftest.py``, so the fixtures need no import.

``mrv(*args, input=None, env=None) -> Result`` (fixture ``mrv``, function :func:`run_mrv`)
    Runs the real entry point :func:`mrv_ml.cli.main` in this process, as the shell would:
    ``args`` are the words after ``mrv`` (``str`` or ``os.PathLike``). ``input`` (``str`` or
    ``bytes``) is standard input, empty by default and never a terminal; ``env`` sets (value
    ``str``) or removes (value ``None``) environment variables for the call only;
    ``COLUMNS=200`` unless ``env`` says otherwise, so tables do not wrap. ``sys.stdout`` and
    ``sys.stderr`` are captured (both have a ``.buffer``), whatever the test's own capture
    does. ``SystemExit`` is caught: ``None`` is exit code 0, an int is itself, anything else
    is 1. Any other exception propagates (``MRV_DEBUG=1`` re-raises internal errors).

``mrv_subprocess(*args, input=None, env=None, timeout=120) -> Result`` (fixture
``mrv_subprocess``, function :func:`run_mrv_subprocess`)
    Runs the installed ``mrv`` script in a child process, for what only a separate process
    shows: the console script itself, output the command's own child writes to the inherited
    file descriptors (``mrv run``), signals. The environment is this process's (the test's
    ``MRV_DATA_DIR`` included) updated by ``env`` as above.

:func:`mrv_command` is the argv prefix both use for a separate process, for tests that need
``subprocess.Popen`` themselves.

``Result`` is a named tuple ``(exit_code, stdout, stderr)``: unpack it, index it, or compare
it with a plain tuple.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple, Protocol

import pytest

Arg = str | os.PathLike[str]
Env = Mapping[str, str | None]


class Result(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


class MRV(Protocol):
    def __call__(self, *args: Arg, input: str | bytes | None = None,
                 env: Env | None = None) -> Result: ...


class MRVSubprocess(Protocol):
    def __call__(self, *args: Arg, input: str | bytes | None = None,
                 env: Env | None = None, timeout: float = 120) -> Result: ...


def mrv_command() -> list[str]:
    """The argv prefix that starts ``mrv``: the installed script, else the interpreter."""
    script = Path(sys.executable).with_name("mrv")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from mrv_ml.cli import main; main()"]


@contextlib.contextmanager
def _environment(changes: Env) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _text_stream(data: bytes = b"") -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")


def _read(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8")


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _as_bytes(data: str | bytes | None) -> bytes:
    if data is None:
        return b""
    return data.encode("utf-8") if isinstance(data, str) else data


def run_mrv(*args: Arg, input: str | bytes | None = None,
            env: Env | None = None) -> Result:
    """Run ``mrv ARGS`` in this process; see the module docstring."""
    from mrv_ml.cli import main
    from mrv_ml.cli._app import console, console_err

    stdin, stdout, stderr = _text_stream(_as_bytes(input)), _text_stream(), _text_stream()
    saved = sys.stdin, sys.stdout, sys.stderr
    code: object = 0
    changes = {"COLUMNS": "200", **(env or {})}
    # rich reads COLUMNS once, when the consoles are made (whenever mrv_ml.cli was first
    # imported): give them this call's width.
    widths = console.width, console_err.width
    columns = int(changes["COLUMNS"] or 80)
    with _environment(changes):
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
        console.width = console_err.width = columns
        try:
            main([os.fspath(a) for a in args])
        except SystemExit as e:
            code = e.code
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
            console.width, console_err.width = widths
    return Result(_exit_code(code), _read(stdout), _read(stderr))


def run_mrv_subprocess(*args: Arg, input: str | bytes | None = None,
                       env: Env | None = None, timeout: float = 120) -> Result:
    """Run ``mrv ARGS`` as a separate process; see the module docstring."""
    environ = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    done = subprocess.run([*mrv_command(), *map(os.fspath, args)], input=_as_bytes(input),
                          capture_output=True, env=environ, timeout=timeout, check=False)
    return Result(done.returncode, done.stdout.decode("utf-8", "replace"),
                  done.stderr.decode("utf-8", "replace"))


@pytest.fixture
def mrv() -> MRV:
    """``mrv(*args, input=None, env=None) -> Result``, in process (see the module docstring)."""
    return run_mrv


@pytest.fixture
def mrv_subprocess() -> MRVSubprocess:
    """``mrv_subprocess(*args, input=None, env=None, timeout=120) -> Result``, a child process."""
    return run_mrv_subprocess
