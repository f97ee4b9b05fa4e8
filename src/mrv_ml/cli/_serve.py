"""Command ``mrv serve``: the verification dashboard (see :mod:`mrv_ml.serve.local`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrv_ml.cli._app import app, console, console_err
from mrv_ml.errors import ConfigError


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Port (0 picks a free one).", metavar="PORT")] = 8750,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Store and local chain folder (default: settings).", metavar="DIR")] = None,
    network: Annotated[str | None, typer.Option("--network", help="Network to verify on.", metavar="NAME")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a non-loopback --host (the page becomes reachable by "
                               "other machines).")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write the static page into this folder instead of serving.", metavar="DIR")] = None,
) -> None:
    """Serve the verification dashboard (static page, local store API, read-only RPC bridge)."""
    from mrv_ml.config import load_settings
    from mrv_ml.serve import local as server

    if export is not None:
        out = server.export_static(export)
        console.print(f"dashboard written to {out}")
        return
    if host not in server.LOOPBACK_HOSTS:
        if not allow_remote:
            raise ConfigError(f"refusing to listen on non-loopback host {host}; pass "
                              "--allow-remote if other machines should reach the dashboard")
        console_err.print(f"warning: listening on {host}: the dashboard and its read-only RPC "
                          "bridge are reachable from the network", highlight=False)
    overrides: dict[str, str] = {}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    if network is not None:
        overrides["network"] = network
    settings = load_settings(overrides or None)
    httpd = server.make_server(settings, host, port)
    console.print(f"MRV dashboard: {httpd.url}  (Ctrl+C to stop)")
    try:
        if open_browser:
            import webbrowser

            webbrowser.open(httpd.url)
        httpd.serve_forever()
    finally:
        httpd.server_close()
