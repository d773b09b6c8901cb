"""`mdp dashboard`: serve the finance dashboard, in the foreground or in the background."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from dashboard import background as bg
from dashboard.server import DEFAULT_PORT, PortBusy, serve

STOP_HINT = "`mdp dashboard --stop` stops it"


def dashboard_command(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; keep 127.0.0.1 and tunnel to reach it remotely."),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(help="Port to listen on; 0 picks a free one. A port in use is an error."),
    ] = DEFAULT_PORT,
    background: Annotated[
        bool, typer.Option("--background", help="Keep serving after this command returns.")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop the server started with --background.")
    ] = False,
) -> None:
    """Serve the finance dashboard (reads the warehouse read-only) until Ctrl+C."""
    if stop:
        typer.echo("Dashboard stopped." if bg.stop() else "No dashboard was running.")
        return
    if background:
        try:
            started = bg.start(host, port)
        except (RuntimeError, PortBusy) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        if started.already_running:
            typer.echo(f"The dashboard is already running: {started.url}  ({STOP_HINT})")
        else:
            typer.echo(f"Dashboard: {started.url}  ({STOP_HINT}; log: {bg.log_file()})")
        return
    current = bg.running()
    if current is not None:
        # `make demo` leaves one running: point at it rather than fail on its port.
        typer.echo(
            f"The dashboard is already running in the background: {current['url']}  "
            f"({STOP_HINT}, then run this again to serve it in the foreground)"
        )
        return
    try:
        process, url = serve(host, port, stdout=subprocess.DEVNULL)
    except PortBusy as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Dashboard: {url}  (Ctrl+C stops it)")
    try:
        raise typer.Exit(process.wait())
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=10)
