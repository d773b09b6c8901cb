"""`mdp export`: write fct_payments and the finance marts as Parquet, locally or to S3."""

from __future__ import annotations

from typing import Annotated

import typer

from core.warehouse import WarehouseError
from exports import export_marts


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
    try:
        result = export_marts(target, tables=table or None)
    except (WarehouseError, ValueError, OSError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    for t in result.tables:
        split = (
            f"{len(t.partitions)} partitions by {t.partition_key}" if t.partition_key else "1 file"
        )
        files = max(len(t.partitions), 1)
        # Partitions whose rows did not change since the last export keep their files.
        changed = (
            f"{t.partitions_written} written" if t.partitions_written < files else "all written"
        )
        typer.echo(f"  {t.table:<32} {t.rows:>10,} rows  {split}, {changed}  (from {t.source})")
    typer.echo(f"Exported {len(result.tables)} tables, {result.rows:,} rows, to {result.target}")
