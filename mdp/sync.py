"""`mdp sync`: load the source into RAW with a progress bar and a per-stream summary."""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingestion.errors import IngestionError, ReconciliationFailed
from ingestion.reconcile import Mode
from ingestion.sync import SyncResult, lookback_from_env, run_sync, select_streams


class ReconcileMode(StrEnum):
    auto = "auto"
    full = "full"


def sync(
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rewrite the streams from scratch and increment their _airbyte_generation_id. "
            "A damaged RAW file is moved aside and every stream is rebuilt from the source.",
        ),
    ] = False,
    stream: Annotated[
        list[str] | None,
        typer.Option("--stream", "-s", help="Sync only this stream (repeatable)."),
    ] = None,
    lookback: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Seconds re-read behind each saved cursor to catch rows committed late "
            "(default: MDP_SYNC_LOOKBACK_SECONDS or 600).",
        ),
    ] = None,
    reconcile: Annotated[
        ReconcileMode,
        typer.Option(
            help="auto: check the rows just read and the next 1/k of every table's ids (all of "
            "them within k = MDP_RECONCILE_SPAN syncs, default 7); full: check every row now.",
        ),
    ] = ReconcileMode.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Sync the source PostgreSQL into RAW (DuckDB): incremental, Append + Deduped, reconciled."""
    console = Console(stderr=as_json)
    try:
        window = timedelta(seconds=lookback) if lookback is not None else lookback_from_env()
        names = [s.name for s in select_streams(stream)]
        result = _run_with_progress(
            console, names, full_refresh, window, quiet=as_json, reconcile=reconcile.value
        )
    except ReconciliationFailed as failure:
        if isinstance(failure.result, SyncResult):
            _report(console, failure.result, as_json)
        _fail(console, failure)
    except IngestionError as failure:
        _fail(console, failure)
    _report(console, result, as_json)


def _run_with_progress(
    console: Console,
    names: list[str],
    full_refresh: bool,
    lookback: timedelta,
    quiet: bool,
    conninfo: str | None = None,
    reconcile: Mode = "auto",
) -> SyncResult:
    columns = (
        TextColumn("[bold]{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} streams"),
        TextColumn("{task.fields[rows]:>12,} rows read"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("connecting", total=len(select_streams(names)), rows=0)

        def on_event(event: str, name: str, rows: int) -> None:
            if event == "stream":
                bar.update(task, description=f"reading {name}")
            elif event == "rows":
                bar.update(task, rows=bar.tasks[task].fields["rows"] + rows)
            elif event == "committed":
                bar.advance(task)
            elif event == "reconcile":
                bar.update(task, description=f"reconciling {name}")

        return run_sync(
            conninfo,
            stream_names=names,
            full_refresh=full_refresh,
            lookback=lookback,
            progress=on_event,
            reconcile=reconcile,
        )


def _report(console: Console, result: SyncResult, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary(result), indent=2, default=str))
        return
    table = Table(title=f"Sync {result.sync_id} into {result.raw_path}")
    for header in ("stream", "rows read", "inserted", "updated", "cursor", "gen", "time"):
        table.add_column(header, justify="left" if header in ("stream", "cursor") else "right")
    for s in result.streams:
        name = s.stream + (" (full refresh)" if s.full_refresh else "")
        if s.columns_added:
            name += f" +{', '.join(s.columns_added)}"
        table.add_row(
            name,
            f"{s.rows_read:,}",
            f"{s.inserted:,}",
            f"{s.updated:,}",
            s.cursor.isoformat() if s.cursor else "-",
            str(s.generation_id),
            f"{s.seconds:.2f}s",
        )
    console.print(table)
    if result.damaged_moved_to:
        console.print(
            f"The damaged RAW file was moved to {result.damaged_moved_to} (kept, not deleted); "
            "RAW was rebuilt from the source, every stream in full."
        )
    bad = result.mismatches
    verdict = "[red]MISMATCH[/red]" if bad else "[green]match[/green]"
    checked = sum(r.rows_checked for r in result.reconciliations)
    full = [r.stream for r in result.reconciliations if r.scope.full]
    scope = "every row" if len(full) == len(result.reconciliations) else f"{checked:,} rows"
    console.print(
        f"Reconciliation (row count + checksum of id, updated_at; the rows just read and "
        f"{scope} by id range): {verdict} in {result.reconcile_seconds:.2f}s; "
        f"total {result.seconds:.2f}s"
    )


def summary(result: SyncResult) -> dict[str, object]:
    """The sync as plain data (what `--json` prints)."""
    recon = {r.stream: r for r in result.reconciliations}
    return {
        "sync_id": result.sync_id,
        "raw": str(result.raw_path),
        "seconds": round(result.seconds, 3),
        "reconcile_seconds": round(result.reconcile_seconds, 3),
        "reconciled": not result.mismatches,
        "damaged_moved_to": str(result.damaged_moved_to) if result.damaged_moved_to else None,
        "streams": [
            {
                "stream": s.stream,
                "rows_read": s.rows_read,
                "inserted": s.inserted,
                "updated": s.updated,
                "cursor": s.cursor.isoformat() if s.cursor else None,
                "generation_id": s.generation_id,
                "seconds": round(s.seconds, 3),
                "columns_added": s.columns_added,
                "reconciliation": recon[s.stream].describe() if s.stream in recon else None,
            }
            for s in result.streams
        ],
    }


def _fail(console: Console, failure: IngestionError) -> None:
    err = Console(stderr=True)
    err.print(f"[red bold]Sync failed.[/red bold] {failure.what}", highlight=False, soft_wrap=True)
    err.print(failure.kept_safe, highlight=False, soft_wrap=True)
    err.print(f"Next: {failure.next_step}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)
