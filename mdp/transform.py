"""`mdp transform`: run the dbt project on the local warehouse and print the finance marts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from transform.runner import TransformError, build, summary, write_manifest

app = typer.Typer(
    help="Build the dbt project (staging, intermediate, finance) on the local DuckDB warehouse.",
    no_args_is_help=False,
    invoke_without_command=True,
    # Plain help: rich help shows every flag as `<bool>`.
    rich_markup_mode=None,
)


@contextmanager
def _exit_on_transform_error() -> Iterator[None]:
    """End the command with the error's message, in red, and exit code 1."""
    try:
        yield
    except TransformError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error


def print_summary(analytics_db: Path | None = None) -> None:
    """Print the two tables the demo ends with."""
    data = summary(analytics_db)
    console = Console()
    revenue = Table(title="Net revenue by plan (all time, USD)")
    for column in ("plan", "net revenue", "succeeded payments"):
        revenue.add_column(column, justify="left" if column == "plan" else "right")
    for row in data["net_revenue_by_plan"]:
        revenue.add_row(
            row["plan_name"], f"{row['net_revenue']:,.2f}", str(row["succeeded_payments"])
        )
    console.print(revenue)
    month = data["mrr_by_plan"][0]["month"] if data["mrr_by_plan"] else "current month"
    mrr = Table(title=f"MRR by plan, {month} (USD)")
    for column in ("plan", "MRR", "active subscriptions", "ARR"):
        mrr.add_column(column, justify="left" if column == "plan" else "right")
    for row in data["mrr_by_plan"]:
        mrr.add_row(
            row["plan_name"],
            f"{row['mrr']:,.2f}",
            str(row["active_subscriptions"]),
            f"{row['arr']:,.2f}",
        )
    console.print(mrr)


@app.callback()
def transform(
    ctx: typer.Context,
    select: str = typer.Option(None, "--select", "-s", help="dbt selector, e.g. +mrr_by_plan"),
    full_refresh: bool = typer.Option(
        False,
        "--full-refresh",
        help="Rebuild incremental models; a damaged ANALYTICS file is moved aside and rebuilt.",
    ),
) -> None:
    """Run `dbt build` on the local target, then print net revenue and MRR by plan."""
    if ctx.invoked_subcommand is not None:
        return
    with _exit_on_transform_error():
        outcome = build(select=select, full_refresh=full_refresh)
        if outcome.damaged_moved_to:
            typer.echo(
                f"The damaged ANALYTICS file was moved to {outcome.damaged_moved_to} (kept, not "
                "deleted); every model was rebuilt from RAW."
            )
        print_summary()


@app.command("manifest", short_help="Write transform/target/manifest.json (dbt parse).")
def manifest_command() -> None:
    """Write transform/target/manifest.json with `dbt parse` (for Airflow/Cosmos)."""
    with _exit_on_transform_error():
        typer.echo(write_manifest())


@app.command("summary", short_help="Print net revenue and MRR by plan.")
def summary_command() -> None:
    """Print net revenue by plan and current MRR by plan from the local warehouse."""
    with _exit_on_transform_error():
        print_summary()
