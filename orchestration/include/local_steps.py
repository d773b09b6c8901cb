"""The local target's steps: generator cycles for a simulated day, then the local loader sync."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from core import localpg
from ingestion.sync import run_sync
from orchestration.include.settings import Settings
from source_generator import GeneratorConfig, generate_cycle, migrate
from source_generator.history import HistoryResult
from source_generator.history import seed_history as _seed_history
from transform.runner import release_duckdb

log = logging.getLogger(__name__)

GENERATED_TABLES = ("users", "banks", "credit_cards", "subscriptions", "payments")


def cycle_clocks(day_end: datetime, cycles: int) -> list[datetime]:
    """Evenly spaced cycle clocks over the simulated day that ends at `day_end` (inclusive)."""
    end = day_end.astimezone(UTC)
    step = timedelta(days=1) / cycles
    return [end - step * (cycles - 1 - k) for k in range(cycles)]


def source_clock(conn: Any) -> datetime | None:
    """The newest `updated_at` the generator wrote: every cycle at or before it already ran."""
    latest: datetime | None = None
    for table in GENERATED_TABLES:
        row = conn.execute(f"select max(updated_at) from app.{table}").fetchone()
        if row and row[0] is not None and (latest is None or row[0] > latest):
            latest = row[0]
    return latest


def generator_config(settings: Settings) -> GeneratorConfig:
    config_args: dict[str, Any] = {}
    if settings.rows_per_cycle:
        config_args["rows_per_cycle"] = settings.rows_per_cycle
    if settings.seed is not None:
        config_args["seed"] = settings.seed
    return GeneratorConfig(**config_args)


def seed_history(first_day_end: Any, settings: Settings) -> HistoryResult:
    """Months of history before the simulated day ending at `first_day_end`, into an empty
    source, at the pace of the daily cycles; the first day's sync loads it like any other rows."""
    end = _as_datetime(first_day_end) - timedelta(days=1)
    with localpg.connect(localpg.source_dsn() or "") as conn:
        return _seed_history(
            conn,
            generator_config(settings),
            end,
            cycle_interval=timedelta(days=1) / settings.cycles_per_day,
        )


def generate_day(day_end: Any, settings: Settings) -> dict[str, Any]:
    """Run the day's generator cycles that have not run yet, so a re-run of the day adds nothing."""
    clocks = cycle_clocks(_as_datetime(day_end), settings.cycles_per_day)
    config = generator_config(settings)
    dsn = localpg.source_dsn() or ""
    inserted = updated = 0
    with localpg.connect(dsn) as conn:
        migrate(conn, clock=clocks[0] - timedelta(days=1))
        latest = source_clock(conn)
        todo = [c for c in clocks if latest is None or c > latest]
        for clock in todo:
            summary = generate_cycle(conn, config, clock=clock)
            inserted += summary.rows_inserted
            updated += summary.rows_updated
            log.info(
                "cycle at %s: %d rows inserted, %d updated",
                clock.isoformat(),
                summary.rows_inserted,
                summary.rows_updated,
            )
    skipped = len(clocks) - len(todo)
    if skipped:
        log.info(
            "%d of %d cycles of this day were already in the source (newest change %s): kept as they are",
            skipped,
            len(clocks),
            latest.isoformat() if latest else "none",
        )
    return {
        "day_end": clocks[-1].isoformat(),
        "cycles_run": len(todo),
        "cycles_already_done": skipped,
        "rows_inserted": inserted,
        "rows_updated": updated,
        "source": localpg.redact(dsn),
    }


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # A plain datetime: pendulum's (Airflow's logical date) loses its zone in astimezone().
        return datetime.fromtimestamp(value.timestamp(), tz=UTC)
    if isinstance(value, str):
        return _as_datetime(datetime.fromisoformat(value))
    raise TypeError(f"expected the run's logical date, got {value!r}")


def sync() -> dict[str, Any]:
    """Incremental Append + Deduped load of every stream into RAW, reconciled against the source."""
    release_duckdb()
    result = run_sync(conninfo=localpg.source_dsn() or None)
    for s in result.streams:
        log.info(
            "%s: %d rows read, %d inserted, %d updated in %.1f s (cursor %s)",
            s.stream,
            s.rows_read,
            s.inserted,
            s.updated,
            s.seconds,
            s.cursor.isoformat() if s.cursor else "none",
        )
    return {
        "raw": str(result.raw_path),
        "sync_id": result.sync_id,
        "rows_read": sum(s.rows_read for s in result.streams),
        "rows_inserted": sum(s.inserted for s in result.streams),
        "rows_updated": sum(s.updated for s in result.streams),
        "streams_reconciled": len(result.reconciliations),
    }
