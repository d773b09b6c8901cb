"""`mdp demo`: run the local platform end to end, one step after another."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

from mdp import localpg, paths
from source_generator.cli import run_cycles, summary_table
from source_generator.config import GeneratorConfig

DEMO_CYCLES = 3
DEMO_ROWS_PER_CYCLE = 2000


@dataclass
class DemoContext:
    """What the steps share: the console, the source DSN, and one line per finished step for the recap."""

    console: Console
    source_dsn: str = ""
    facts: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoContext], None]


def start_source(ctx: DemoContext) -> None:
    ctx.source_dsn = localpg.source_dsn() or ""
    ctx.facts.append(f"Source PostgreSQL: {localpg.redact(ctx.source_dsn)}")


def generate_source_data(ctx: DemoContext) -> None:
    config = GeneratorConfig(rows_per_cycle=DEMO_ROWS_PER_CYCLE, seed=42)
    totals = run_cycles(ctx.source_dsn, config, DEMO_CYCLES)
    ctx.console.print(summary_table(totals, "Source generator"))
    inserted = sum(totals.inserted.values())
    updated = sum(totals.updated.values())
    ctx.facts.append(
        f"Generator: {totals.cycles} cycles wrote {inserted:,} new rows and updated {updated:,} "
        f"in schema app (tables users, banks, credit_cards, plans, subscriptions, payments)"
    )


# Later stages (sync, dbt, Airflow, dashboard) append their steps here.
STEPS: list[Step] = [
    Step("Start the embedded PostgreSQL source", start_source),
    Step("Generate dirty source data", generate_source_data),
]


def demo() -> None:
    """Run the local platform: start the source, generate data, and say where everything is."""
    console = Console()
    ctx = DemoContext(console=console)
    started = datetime.now(UTC)
    for number, step in enumerate(STEPS, start=1):
        console.rule(f"[bold]{number}/{len(STEPS)} {step.title}")
        try:
            step.run(ctx)
        except (localpg.LocalPostgresError, localpg.SourceUnreachable) as err:
            console.print(f"[red]Step {number} failed: {err}[/red]")
            raise typer.Exit(1) from None
    elapsed = (datetime.now(UTC) - started).total_seconds()
    console.rule("[bold green]Done")
    console.print(f"The demo ran {len(STEPS)} steps in {elapsed:.0f}s:")
    for fact in ctx.facts:
        console.print(f"  - {fact}")
    console.print(f"Local state: {paths.local_home()} (PostgreSQL data in {paths.pg_dir()})")
    console.print(
        "Next: `uv run mdp status --json` prints the DSN and paths; "
        "`uv run mdp generate --cycles 5` adds data; `uv run mdp stop` stops PostgreSQL."
    )
