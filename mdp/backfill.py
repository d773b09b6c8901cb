"""`mdp backfill`: run the daily DAG on the local target for a range of days, or re-run one failed day."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console

from mdp.demo import phase_seconds, report_failure, send_library_output_to
from transform.runner import release_duckdb

# A range this long is a mistake more often than a plan: each day is a full DAG run.
MAX_DAYS = 366


class BackfillRangeError(ValueError):
    """The range cannot be run; the message says why and gives a range that can."""


def backfill_days(first: date, last: date, today: date | None = None) -> list[datetime]:
    """The logical dates (UTC midnight) of the runs for `first`..`last`, both included.

    A run's logical date is its scheduled time; the local run for date D simulates the day
    that ends at D's midnight, as the scheduler's @daily run for D would.
    """
    today = today or datetime.now(UTC).date()
    if last < first:
        raise BackfillRangeError(
            f"--to {last} is before --from {first}; give the earlier day first, e.g. "
            f"--from {last} --to {first}"
        )
    if last > today:
        raise BackfillRangeError(
            f"--to {last} is after today ({today}): that day's run is not due yet; "
            f"end the range at --to {today} at the latest"
        )
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise BackfillRangeError(
            f"{count} days is more than {MAX_DAYS}; split the range into shorter ones"
        )
    return [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in _dates(first, count)]


def _dates(first: date, count: int) -> list[date]:
    return [first + timedelta(days=k) for k in range(count)]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day such as 2026-03-10") from None


def backfill(
    first: Annotated[
        str, typer.Option("--from", help="First run's date (YYYY-MM-DD, UTC).", show_default=False)
    ],
    last: Annotated[
        str | None,
        typer.Option("--to", help="Last run's date, included (default: the --from day)."),
    ] = None,
) -> None:
    """Run the daily DAG on the local target for each day from --from to --to, in order.

    Re-running a day replaces its run: generator cycles already in the source are not run
    again, the sync loads what changed, and dbt rebuilds. It stops at the first failed day.
    """
    start = _day(first)
    try:
        days = backfill_days(start, _day(last) if last else start)
    except BackfillRangeError as err:
        typer.echo(f"Nothing was run: {err}.", err=True)
        raise typer.Exit(2) from None
    # Deferred for start-up speed, and because Airflow reads its configuration when first
    # imported: `runner.configure()` must run before anything imports Airflow.
    from orchestration.include import runner

    os.environ.setdefault("MDP_DAG_RETRY_DELAY_SECONDS", "5")
    home = runner.configure()
    log_dir = home / "logs" / "backfill"
    terminal = send_library_output_to(log_dir / "backfill.log")
    console = Console(file=terminal) if terminal else Console()
    # Deferred, as above: these import Cosmos and so Airflow.
    from orchestration.include import dbt
    from orchestration.include.settings import Settings

    runner.migrate()
    dbt.ensure_manifest(Settings.from_env())
    dag = runner.load_dag()
    again = f"mdp backfill --from {{day}} --to {days[-1]:%Y-%m-%d}"
    started = time.perf_counter()
    for number, day in enumerate(days, start=1):
        log_file = log_dir / f"{day:%Y-%m-%d}.log"
        result = runner.run_day(dag, day, log_file)
        release_duckdb()
        if not result.ok:
            report_failure(console, result, again.format(day=f"{day:%Y-%m-%d}"))
            raise typer.Exit(1)
        console.print(
            f"[green]✓[/green] {day:%Y-%m-%d} ({number}/{len(days)}): {len(result.tasks)} tasks "
            f"in {result.seconds:.1f}s: {phase_seconds(result)}"
        )
    console.print(
        f"Backfilled {len(days)} day(s) in {time.perf_counter() - started:.0f}s; task logs in "
        f"{log_dir}, alerts in .local/alerts.log."
    )
