"""`make bench-generator`: generator rows/s against a bare COPY FROM STDIN of the same rows, measured in the same run."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import psutil
import psycopg
import typer
from psycopg import sql
from rich.console import Console
from rich.table import Table

from core import localpg
from core.bench import write_figures
from source_generator.config import GeneratorConfig
from source_generator.migrate import migrate
from source_generator.simulation import Row, generate_cycle
from source_generator.writer import copy_rows

GENERATOR_DB = "mdp_bench_generator"
COPY_DB = "mdp_bench_copy"
START_CLOCK = datetime(2025, 1, 1, tzinfo=UTC)
GOAL = 0.6  # generator rows/s at least this share of a bare COPY of the same rows


def write_json(result: BenchResult, rows_per_cycle: int, seed: int) -> Path:
    """The figures as `.local/bench/generator.json`, so runs can be compared."""
    return write_figures(
        "generator",
        {
            **asdict(result),
            "rows_per_cycle": rows_per_cycle,
            "seed": seed,
            "generator_rows_per_s": result.generator_rows_per_s,
            "copy_rows_per_s": result.copy_rows_per_s,
            "ratio": result.ratio,
            "cpu_ratio": result.cpu_ratio,
            "goal": GOAL,
            "meets_goal": result.ratio >= GOAL,
        },
    )


@dataclass(frozen=True)
class BenchResult:
    rows: int
    rows_updated: int
    cycles: int
    generator_seconds: float
    copy_seconds: float
    # CPU seconds of this process plus its server backend: insensitive to other load.
    generator_cpu: float = 0.0
    copy_cpu: float = 0.0

    @property
    def generator_rows_per_s(self) -> float:
        return self.rows / self.generator_seconds

    @property
    def copy_rows_per_s(self) -> float:
        return self.rows / self.copy_seconds

    @property
    def ratio(self) -> float:
        return self.generator_rows_per_s / self.copy_rows_per_s

    @property
    def cpu_ratio(self) -> float:
        return self.copy_cpu / self.generator_cpu if self.generator_cpu else 0.0


def _cpu(backend: psutil.Process) -> float:
    """CPU seconds used so far by this process and by the server process serving it."""
    times = backend.cpu_times()
    return time.process_time() + times.user + times.system


def _recreate(server_dsn: str, database: str) -> str:
    with localpg.connect(server_dsn, autocommit=True) as conn:
        name = sql.Identifier(database)
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(name))
        conn.execute(sql.SQL("create database {}").format(name))
    return _on(server_dsn, database)


def _drop(server_dsn: str, database: str) -> None:
    with localpg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
        )


def _on(server_dsn: str, database: str) -> str:
    return server_dsn.replace("/postgres?", f"/{database}?", 1)


def run(rows: int, rows_per_cycle: int, seed: int, server_dsn: str) -> BenchResult:
    """Write `rows` new rows with the generator, then COPY each cycle's rows again as the baseline.

    Rows are those of every app table, payments included (the billing of the cycle's new
    subscriptions and of any due renewals); the generator's own billing ledger is its overhead.

    Each cycle is followed at once by its baseline COPY, so both see the same machine load.
    Both databases start empty with the same schema and indexes; both write in one
    transaction per cycle.
    """
    generator_dsn = _recreate(server_dsn, GENERATOR_DB)
    copy_dsn = _recreate(server_dsn, COPY_DB)
    config = GeneratorConfig(rows_per_cycle=rows_per_cycle, seed=seed)
    generator_seconds = copy_seconds = generator_cpu = copy_cpu = 0.0
    written = updated = cycles = 0
    try:
        with (
            psycopg.connect(generator_dsn) as gconn,
            psycopg.connect(copy_dsn) as cconn,
        ):
            migrate(gconn, clock=START_CLOCK)
            migrate(cconn, clock=START_CLOCK)
            gbackend = psutil.Process(gconn.info.backend_pid)
            cbackend = psutil.Process(cconn.info.backend_pid)
            while written < rows:
                this_cycle = min(rows_per_cycle, rows - written)
                captured: list[tuple[str, list[Row]]] = []

                def capture(table: str, batch: list[Row], sink: list[Any] = captured) -> None:
                    sink.append((table, batch))

                started, cpu = time.perf_counter(), _cpu(gbackend)
                summary = generate_cycle(
                    gconn,
                    replace(config, rows_per_cycle=this_cycle),
                    clock=START_CLOCK + timedelta(hours=2 * (cycles + 1)),
                    on_rows=capture,
                )
                generator_seconds += time.perf_counter() - started
                generator_cpu += _cpu(gbackend) - cpu

                started, cpu = time.perf_counter(), _cpu(cbackend)
                with cconn.transaction():
                    for table, batch in captured:
                        copy_rows(cconn, table, batch)
                copy_seconds += time.perf_counter() - started
                copy_cpu += _cpu(cbackend) - cpu

                written += summary.rows_inserted
                updated += summary.rows_updated
                cycles += 1
    finally:
        _drop(server_dsn, GENERATOR_DB)
        _drop(server_dsn, COPY_DB)
    return BenchResult(
        written, updated, cycles, generator_seconds, copy_seconds, generator_cpu, copy_cpu
    )


def main(
    rows: Annotated[int, typer.Option(help="New rows to write in total.")] = 1_000_000,
    rows_per_cycle: Annotated[int, typer.Option(help="Rows per generator cycle.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 42,
) -> None:
    """Measure the generator against a bare COPY FROM STDIN of the same rows."""
    console = Console()
    app_dsn = localpg.start()
    server_dsn = app_dsn.replace(f"/{localpg.SOURCE_DATABASE}?", "/postgres?", 1)
    console.print(f"Embedded PostgreSQL: {localpg.redact(server_dsn)}")
    console.print(f"Writing {rows:,} rows in cycles of {rows_per_cycle:,} ...")
    result = run(rows, rows_per_cycle, seed, server_dsn)
    table = Table(title="Generator benchmark")
    table.add_column("measure")
    table.add_column("rows/s", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("CPU s", justify="right")
    table.add_row(
        f"generator ({result.cycles} cycles, +{result.rows_updated:,} updates)",
        f"{result.generator_rows_per_s:,.0f}",
        f"{result.generator_seconds:.2f}",
        f"{result.generator_cpu:.2f}",
    )
    table.add_row(
        "bare COPY FROM STDIN, same rows",
        f"{result.copy_rows_per_s:,.0f}",
        f"{result.copy_seconds:.2f}",
        f"{result.copy_cpu:.2f}",
    )
    console.print(table)
    console.print("CPU s: this process plus its PostgreSQL backend, so other load hardly counts.")
    verdict = "meets" if result.ratio >= GOAL else "is below"
    console.print(
        f"rows: {result.rows:,}  generator: {result.generator_rows_per_s:,.0f} rows/s  "
        f"baseline COPY: {result.copy_rows_per_s:,.0f} rows/s  "
        f"ratio: {result.ratio:.3f} ({verdict} the {GOAL} goal)"
    )
    console.print(
        f"CPU-time ratio: {result.cpu_ratio:.3f}; "
        f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    console.print(f"Figures written to {write_json(result, rows_per_cycle, seed)}")


if __name__ == "__main__":
    typer.run(main)
