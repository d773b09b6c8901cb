"""Seed months of history fast: the same billing cycles, fewer and larger, from a start months back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg

from source_generator.billing import anniversary
from source_generator.config import GeneratorConfig
from source_generator.migrate import migrate
from source_generator.schema import SCHEMA
from source_generator.simulation import CycleSummary, generate_cycle

HISTORY_MONTHS = 12
# One history cycle covers a week: the billing rules are the same, dunning retries (1, 3, 7 days)
# and refunds (30 days) land in the cycle whose window holds them, and a year takes 53 cycles.
HISTORY_INTERVAL = timedelta(days=7)


@dataclass(frozen=True)
class HistoryResult:
    start: datetime | None
    end: datetime
    cycles: int
    rows_inserted: int
    rows_updated: int
    seconds: float
    interval: timedelta = HISTORY_INTERVAL
    skipped: bool = False  # the source already had subscriptions: nothing was written

    def describe(self) -> str:
        if self.skipped or self.start is None:
            return "History: the source already has subscriptions; kept as it is."
        return (
            f"History: {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d} in {self.cycles} cycles of "
            f"{self.interval.days} days: {self.rows_inserted:,} rows inserted, {self.rows_updated:,} updated "
            f"in {self.seconds:.0f}s. The first day's sync loads it."
        )


def history_start(end: datetime, months: int = HISTORY_MONTHS) -> datetime:
    """Midnight of the first day of the month `months` months before the month of `end`."""
    first = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return anniversary(first, -months, annual=False)


def history_clocks(start: datetime, end: datetime, interval: timedelta) -> list[datetime]:
    """Cycle clocks start + interval, start + 2 * interval, ... up to and including `end`."""
    clocks = []
    clock = start + interval
    while clock <= end:
        clocks.append(clock)
        clock += interval
    if not clocks or clocks[-1] < end:
        clocks.append(end)
    return clocks


def has_subscriptions(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(f"select exists (select 1 from {SCHEMA}.subscriptions)").fetchone()
    return bool(row and row[0])


def seed_history(
    conn: psycopg.Connection[Any],
    config: GeneratorConfig,
    end: datetime,
    cycle_interval: timedelta,
    months: int = HISTORY_MONTHS,
    interval: timedelta = HISTORY_INTERVAL,
    on_cycle: Callable[[CycleSummary], None] | None = None,
) -> HistoryResult:
    """Generate the `months` months before `end` in cycles of `interval`, into an empty source.

    `config.rows_per_cycle` is the volume of one regular cycle of `cycle_interval`: each history
    cycle writes that volume scaled to its own length, so the history grows at the pace of the
    regular cycles that follow it. A source that already has subscriptions is left as it is.
    """
    started = time.perf_counter()
    start = history_start(end, months)
    migrate(conn, clock=start)
    if has_subscriptions(conn):
        return HistoryResult(None, end, 0, 0, 0, time.perf_counter() - started, skipped=True)
    scale = interval / cycle_interval
    bulk = replace(
        config, rows_per_cycle=max(1, round(config.rows_per_cycle * scale)), spread_starts=True
    )
    inserted = updated = 0
    clocks = history_clocks(start, end, interval)
    for clock in clocks:
        summary = generate_cycle(conn, bulk, clock=clock)
        inserted += summary.rows_inserted
        updated += summary.rows_updated
        if on_cycle is not None:
            on_cycle(summary)
    return HistoryResult(
        start, end, len(clocks), inserted, updated, time.perf_counter() - started, interval
    )
