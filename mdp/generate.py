"""`mdp generate`: run generator cycles against the source, once or every N hours."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core import localpg
from source_generator.config import (
    DIRT_ENV,
    BillingRates,
    ChangeRates,
    GeneratorConfig,
    dirt_from_env,
)
from source_generator.migrate import migrate
from source_generator.simulation import CycleSummary, Row, generate_cycle

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DIRT_LABELS = {
    "D1": "case/whitespace on categorical text (incl. D2, D3 synonyms)",
    "D4": "amount in a non-plain format",
    "D5": "unparseable amount",
    "D6": "negative amount",
    "D7": "duplicate payment (same charge_id, new id)",
    "D8": "orphan payment (unknown subscription_id)",
    "D9": "email upper case / padded",
    "D10": "invalid email (no @)",
    "D11": "date_of_birth not ISO (incl. unparseable)",
    "D12": "discount_amount null",
}


def _share(help: str) -> Any:
    """A rate option: a share between 0 and 1."""
    return typer.Option(min=0.0, max=1.0, help=help)


def parse_duration(text: str) -> timedelta:
    """`2h`, `30m`, `45s`, `1d` or plain seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 2h, 30m, 45s or 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_clock(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO timestamp; use e.g. 2025-01-01T00:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class RunTotals:
    cycles: int = 0
    inserted: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    dirt: Counter[str] = field(default_factory=Counter)
    exposed: Counter[str] = field(default_factory=Counter)
    late_rows: int = 0
    first_clock: datetime | None = None
    last_clock: datetime | None = None

    def add(self, summary: CycleSummary) -> None:
        self.cycles += 1
        self.inserted.update(summary.inserted)
        self.updated.update(summary.updated)
        self.dirt.update(summary.dirt)
        self.exposed.update(summary.exposed)
        self.late_rows += summary.late_rows
        self.first_clock = self.first_clock or summary.clock
        self.last_clock = summary.clock


class _CyclesFailed(Exception):
    """Some ticks of a finite loop could not write their cycle."""

    def __init__(self, failed: int, totals: RunTotals) -> None:
        super().__init__(f"{failed} cycle(s) failed")
        self.failed = failed
        self.totals = totals


class _Stop(Exception):
    """SIGTERM arrived: leave the loop; an open cycle rolls back."""


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Stop()

    try:
        previous: Any = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def summary_table(totals: RunTotals, title: str) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    for name, count in sorted(totals.inserted.items()):
        table.add_row(f"inserted into app.{name}", f"{count:,}", "")
    for name, count in sorted(totals.updated.items()):
        table.add_row(f"updated: {name}", f"{count:,}", "")
    inserted = sum(totals.inserted.values())
    table.add_row("late rows (created_at backdated up to 72h)", f"{totals.late_rows:,}", "")
    for code, label in DIRT_LABELS.items():
        count = totals.dirt.get(code, 0)
        base = totals.exposed.get(code, 0)
        share = f"{count / base:.1%}" if base else ""
        table.add_row(f"{code} {label}", f"{count:,}", share)
    table.add_row("total inserted", f"{inserted:,}", "", end_section=True)
    if totals.first_clock and totals.last_clock:
        table.caption = (
            f"cycle clocks {totals.first_clock:%Y-%m-%d %H:%M:%S}Z"
            f" .. {totals.last_clock:%Y-%m-%d %H:%M:%S}Z"
        )
    return table


def run_cycles(
    dsn: str,
    config: GeneratorConfig,
    cycles: int,
    start: datetime | None = None,
    interval: timedelta = timedelta(hours=2),
    on_rows: Callable[[str, list[Row]], None] | None = None,
    on_cycle: Callable[[CycleSummary], None] | None = None,
) -> RunTotals:
    """Migrate, then run `cycles` cycles on one connection; cycle k's clock is start + k * interval."""
    totals = RunTotals()
    with localpg.connect(dsn) as conn:
        migrate(conn, clock=start)
        for k in range(cycles):
            clock = start + k * interval if start is not None else None
            summary = generate_cycle(conn, config, clock=clock, on_rows=on_rows)
            totals.add(summary)
            if on_cycle is not None:
                on_cycle(summary)
    return totals


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def generate(
    cycles: Annotated[
        int, typer.Option(help="Cycles to run; with --every, 0 runs until stopped.")
    ] = 1,
    rows_per_cycle: Annotated[
        int,
        typer.Option(
            min=1, envvar="MDP_GENERATOR_ROWS_PER_CYCLE", help="New rows per cycle, all tables."
        ),
    ] = 1000,
    seed: Annotated[
        int,
        typer.Option(
            envvar="MDP_GENERATOR_SEED",
            help="Seed of the one random generator: the same seed and start clock give the same rows.",
        ),
    ] = 42,
    start: Annotated[
        str | None,
        typer.Option(
            help="Clock of the first cycle (ISO, UTC if no zone); later cycles add --interval. "
            "Default: the wall clock."
        ),
    ] = None,
    interval: Annotated[
        str, typer.Option(help="Clock step between cycles when --start is given.")
    ] = "2h",
    every: Annotated[
        str | None,
        typer.Option(
            envvar="MDP_GENERATOR_EVERY",
            help="Loop mode for the cloud host: run a cycle now and then every period (e.g. 2h).",
        ),
    ] = None,
    dirt: Annotated[
        list[str] | None,
        typer.Option(
            "--dirt",
            help=f"Override a dirt rate, e.g. --dirt D4=0.3 (repeatable; also {DIRT_ENV}).",
        ),
    ] = None,
    failure_rate: Annotated[
        float,
        _share(help="Share of billing attempts that fail."),
    ] = BillingRates.failure,
    retry_failure_rate: Annotated[
        float | None,
        _share(
            help="Share of dunning retries (1, 3, 7 days after a failure) that fail again; "
            "the last failed retry makes the subscription idle. Default: the same as "
            "--failure-rate (a retry is an attempt like any other).",
        ),
    ] = None,
    refund_rate: Annotated[
        float,
        _share(help="Share of succeeded payments refunded within 30 days."),
    ] = BillingRates.refund,
    discount_share: Annotated[
        float,
        _share(help="Share of new subscriptions with a discount."),
    ] = BillingRates.discount_share,
    max_discount: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.3, help="Largest discount, as a share of the amount (1% to this)."
        ),
    ] = BillingRates.max_discount,
    annual_share: Annotated[
        float,
        _share(help="Share of new subscriptions billed annually."),
    ] = BillingRates.annual_share,
    change_rate: Annotated[
        float,
        _share(
            help="Share of subscriptions that change per simulated day "
            "(cancel, upgrade, downgrade, idle; inactive ones may come back).",
        ),
    ] = ChangeRates.subscription_changes,
) -> None:
    """Write dirty source data: inserts, the billing of subscriptions, updates, soft deletes and late rows,
    one transaction per cycle."""
    console = Console(stderr=True)
    out = Console()
    try:
        config = GeneratorConfig(
            rows_per_cycle=rows_per_cycle,
            seed=seed,
            dirt=dirt_from_env(dirt or []),
            changes=ChangeRates(subscription_changes=change_rate),
            billing=BillingRates(
                failure=failure_rate,
                retry_failure=retry_failure_rate,
                refund=refund_rate,
                discount_share=discount_share,
                max_discount=max_discount,
                annual_share=annual_share,
            ),
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    start_clock = parse_clock(start) if start else None
    step = parse_duration(interval)
    period = parse_duration(every) if every else None
    if cycles < 0 or (cycles == 0 and period is None):
        raise typer.BadParameter("--cycles must be at least 1 (0 only with --every)")

    try:
        dsn = localpg.source_dsn()
    except localpg.LocalPostgresError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from None
    assert dsn is not None
    console.print(f"Source: {localpg.redact(dsn)}")

    try:
        with _sigterm_stops():
            if period is None:
                totals = _run_once(console, dsn, config, cycles, start_clock, step)
            else:
                totals = _run_every(console, dsn, config, cycles, period)
    except localpg.SourceUnreachable as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from None
    except _CyclesFailed as err:
        out.print(summary_table(err.totals, f"{err.totals.cycles} cycle(s) written"))
        console.print(
            f"[red]{err.failed} of the requested cycles could not be written (see above); "
            "the others are committed.[/red]"
        )
        raise typer.Exit(1) from None
    except (_Stop, KeyboardInterrupt):
        console.print(
            "[yellow]Stopped. Committed cycles are kept; the cycle in progress was rolled back, "
            "so the source holds no part of it.[/yellow]"
        )
        raise typer.Exit(130) from None
    except psycopg.Error as err:
        console.print(
            f"[red]The source rejected a cycle ({err.__class__.__name__}: {err}). That cycle was "
            "rolled back; earlier cycles are kept. Check the source schema and rerun.[/red]"
        )
        raise typer.Exit(1) from None
    out.print(summary_table(totals, f"{totals.cycles} cycle(s) written to {localpg.redact(dsn)}"))


def _run_once(
    console: Console,
    dsn: str,
    config: GeneratorConfig,
    cycles: int,
    start: datetime | None,
    step: timedelta,
) -> RunTotals:
    started = time.perf_counter()
    with _progress(console) as progress:
        task = progress.add_task("generating", total=cycles * config.rows_per_cycle)

        def advance(table: str, rows: list[Row]) -> None:
            progress.advance(task, len(rows))

        def described(summary: CycleSummary) -> None:
            progress.update(task, description=f"cycle at {summary.clock:%Y-%m-%d %H:%M:%S}Z")

        totals = run_cycles(dsn, config, cycles, start, step, advance, described)
    elapsed = time.perf_counter() - started
    rows = sum(totals.inserted.values())
    console.print(f"{rows:,} rows in {elapsed:.1f}s ({rows / max(elapsed, 1e-9):,.0f} rows/s)")
    return totals


def _run_every(
    console: Console, dsn: str, config: GeneratorConfig, cycles: int, period: timedelta
) -> RunTotals:
    """Run a cycle on each tick; a failed cycle is logged and retried on the next tick."""
    totals = RunTotals()
    next_tick = time.monotonic()
    done = failed = 0
    while cycles == 0 or done < cycles:
        try:
            with localpg.connect(dsn) as conn:
                migrate(conn)
                summary = generate_cycle(conn, config)
            totals.add(summary)
            console.print(
                f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} cycle committed at "
                f"{summary.clock:%Y-%m-%dT%H:%M:%S}Z: {summary.rows_inserted:,} inserted, "
                f"{summary.rows_updated:,} updated, {summary.late_rows:,} late"
            )
        except (localpg.SourceUnreachable, psycopg.OperationalError) as err:
            console.print(
                f"[red]{err}[/red]\nNothing of this cycle was written; retrying at the next tick."
            )
            failed += 1
        done += 1
        if cycles and done >= cycles:
            break
        next_tick += period.total_seconds()
        time.sleep(max(0.0, next_tick - time.monotonic()))
    if failed:
        raise _CyclesFailed(failed, totals)
    return totals
