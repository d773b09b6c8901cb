"""`mdp dashboard`: serve the finance dashboard, in the foreground or in the background."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from dashboard import background as bg
from dashboard.server import DEFAULT_PORT, serve


def dashboard_command(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; keep 127.0.0.1 and tunnel to reach it remotely."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on; 0 picks a free one.")
    ] = DEFAULT_PORT,
    background: Annotated[
        bool, typer.Option("--background", help="Keep serving after this command returns.")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop the server started with --background.")
    ] = False,
) -> None:
    """Serve the finance dashboard (reads the warehouse read-only) until Ctrl+C."""
    if stop or background:
        if stop:
            typer.echo("Dashboard stopped." if bg.stop() else "No dashboard was running.")
            return
        try:
            url = bg.start(host, port)
        except RuntimeError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"Dashboard: {url}  (`mdp dashboard --stop` stops it; log: {bg.log_file()})")
        return
    process, url = serve(host, port, stdout=subprocess.DEVNULL)
    typer.echo(f"Dashboard: {url}  (Ctrl+C stops it)")
    try:
        raise typer.Exit(process.wait())
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=10)
