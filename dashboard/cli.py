"""`mdp dashboard` and `mdp export`: serve the dashboard, write the Parquet exports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

APP = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def streamlit_command(host: str, port: int) -> list[str]:
    """The Streamlit server command: headless, no telemetry, no file watcher, bound to `host`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def serve(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, **popen: object
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the dashboard server in the background; returns the process and its address."""
    if port == 0:
        port = free_port(host)
    popen.setdefault("env", os.environ.copy())
    process = subprocess.Popen(streamlit_command(host, port), **popen)  # type: ignore[call-overload]
    return process, f"http://{host}:{port}"


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
        from dashboard import background as bg

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


def export_command(
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="A folder, or s3://bucket/prefix. Default: .local/exports/ (MDP_HOME moves it).",
            envvar="MDP_EXPORTS_TARGET",
        ),
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", help="Export only this table (repeatable). Default: all."),
    ] = None,
) -> None:
    """Export fct_payments and the FINANCE marts as Hive-partitioned zstd Parquet."""
    from dashboard.warehouse import WarehouseError
    from exports import export_marts

    try:
        result = export_marts(target, tables=table or None)
    except (WarehouseError, ValueError, OSError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    for t in result.tables:
        split = (
            f"{len(t.partitions)} partitions by {t.partition_key}" if t.partition_key else "1 file"
        )
        typer.echo(f"  {t.table:<32} {t.rows:>10,} rows  {split}  (from {t.source})")
    typer.echo(f"Exported {len(result.tables)} tables, {result.rows:,} rows, to {result.target}")
