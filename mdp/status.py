"""`mdp status`: where the local state lives and how to reach the source, for people and scripts."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core import localpg, paths
from core.warehouse import REBUILD_ANALYTICS, damage, damaged_message
from ingestion.status import raw_status


def source_status() -> dict[str, Any]:
    """The source DSN the generator writes to (password redacted) and the embedded server's state."""
    local = localpg.local_status()
    override = os.environ.get(localpg.SOURCE_DSN_ENV)
    return {
        "dsn": localpg.redact(override) if override else local["dsn"],
        "dsn_from_env": bool(override),
        "local_dsn": local["dsn"],
        "local_running": local["running"],
        "local_pid": local["pid"],
    }


def paths_status() -> dict[str, Any]:
    return {
        "home": str(paths.local_home()),
        "pg": str(paths.pg_dir()),
        "warehouse": str(paths.warehouse_dir()),
        "raw_db": str(paths.raw_db()),
        "analytics_db": str(paths.analytics_db()),
        "exports": str(paths.exports_dir()),
        "transform": str(paths.transform_dir()),
    }


def analytics_status() -> dict[str, Any]:
    """The ANALYTICS warehouse file that dbt builds (and the dashboard and exports read)."""
    db = paths.analytics_db()
    report: dict[str, Any] = {
        "path": str(db),
        "exists": db.is_file(),
        "bytes": db.stat().st_size if db.is_file() else 0,
    }
    reason = damage(db)
    if reason is not None:
        report["error"] = damaged_message(db, reason, REBUILD_ANALYTICS)
    return report


# One entry per component: a top-level key and a function returning JSON-ready data.
PROVIDERS: dict[str, Callable[[], Any]] = {
    "source": source_status,
    "paths": paths_status,
    "raw": raw_status,
    "analytics": analytics_status,
}


def collect() -> dict[str, Any]:
    """Every provider's section; a provider that fails reports its error instead of hiding the rest."""
    result: dict[str, Any] = {}
    for key, provider in PROVIDERS.items():
        try:
            result[key] = provider()
        except Exception as err:
            result[key] = {"error": f"{err.__class__.__name__}: {err}"}
    return result


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    start: Annotated[
        bool, typer.Option("--start", help="Start the embedded PostgreSQL first.")
    ] = False,
) -> None:
    """Show the source DSN and the paths of the local state; exit 1 when a part is damaged."""
    if start and not os.environ.get(localpg.SOURCE_DSN_ENV):
        localpg.start()
    data = collect()
    problems = errors(data)
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        if problems:
            raise typer.Exit(1)
        return
    console = Console()
    for section, values in data.items():
        table = Table(title=section, show_header=False)
        table.add_column("key")
        table.add_column("value")
        if isinstance(values, dict):
            for key, value in values.items():
                table.add_row(key, "" if value is None else str(value))
        else:
            table.add_row(section, str(values))
        console.print(table)
    if problems:
        err = Console(stderr=True)
        for section, message in problems.items():
            err.print(f"[red bold]{section}:[/red bold] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def errors(data: dict[str, Any]) -> dict[str, str]:
    """The sections that report an error (a damaged file, a failing provider), by section."""
    return {
        key: str(values["error"])
        for key, values in data.items()
        if isinstance(values, dict) and values.get("error")
    }


def stop() -> None:
    """Stop the embedded PostgreSQL; its data stays in the local state folder."""
    try:
        stopped = localpg.stop()
    except localpg.LocalPostgresError as err:
        Console(stderr=True).print(f"[red]{err}[/red]")
        raise typer.Exit(1) from None
    where = paths.pg_dir()
    if stopped:
        typer.echo(f"Stopped the embedded PostgreSQL; its data stays in {where}.")
    else:
        typer.echo(f"The embedded PostgreSQL was not running ({where}).")
