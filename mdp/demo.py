"""`mdp demo`: the whole local pipeline, run day by day through the Airflow DAG with `dag.test()`."""

from __future__ import annotations

import os
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from core import localpg, paths
from core.warehouse import DuckDBWarehouse
from dashboard import background
from dashboard.server import DEFAULT_PORT
from transform.runner import release_duckdb

DEFAULT_DAYS = 3
DAYS_ENV = "MDP_DEMO_DAYS"
# New rows per 2-hour cycle: a year of history at this pace is ~15k active subscriptions.
DEMO_ROWS_PER_CYCLE = 20


def demo_days(days: int, now: datetime | None = None) -> list[datetime]:
    """The logical dates of the simulated days: the `days` UTC days that end at today's midnight.

    A re-run simulates the same days: the generator cycles already in the source are kept as they
    are, so it shows that re-running a day changes nothing.
    """
    midnight = (
        (now or datetime.now(UTC))
        .astimezone(UTC)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    return [midnight - timedelta(days=days - 1 - k) for k in range(days)]


def _money(value: Any) -> str:
    return f"${value:,.2f}"


def _by_plan(
    title: str, rows: list[dict[str, Any]], money: tuple[str, str], count: tuple[str, str]
) -> Table:
    """One row per plan, largest `money` column first, and a total row."""
    (money_title, money_key), (count_title, count_key) = money, count
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("plan")
    table.add_column(money_title, justify="right")
    table.add_column(count_title, justify="right")
    for r in sorted(rows, key=lambda r: r[money_key], reverse=True):
        table.add_row(r["plan_name"], _money(r[money_key]), f"{r[count_key]:,}")
    table.add_row(
        "[bold]total",
        f"[bold]{_money(sum(r[money_key] for r in rows))}",
        f"[bold]{sum(r[count_key] for r in rows):,}",
    )
    return table


def marts_summary() -> tuple[Table, Table]:
    """Net revenue by plan (all time) and MRR by plan for the current month, read from ANALYTICS."""
    with DuckDBWarehouse().session() as session:
        tables = session.read_required(["net_revenue_by_plan", "mrr_by_plan"])
    revenue = tables["net_revenue_by_plan"].to_pylist()
    mrr_rows = tables["mrr_by_plan"].to_pylist()
    current = max((r["month"] for r in mrr_rows), default=None)

    current_rows = [r for r in mrr_rows if r["month"] == current]
    net = _by_plan(
        "Net revenue by plan (all time)",
        revenue,
        ("net revenue", "net_revenue"),
        ("succeeded payments", "succeeded_payments"),
    )
    mrr = _by_plan(
        f"MRR by plan, {current:%B %Y}" if current else "MRR by plan",
        current_rows,
        ("MRR", "mrr"),
        ("active subscriptions", "active_subscriptions"),
    )
    return net, mrr


def phase_seconds(result: Any) -> str:
    phases: dict[str, float] = {}
    for t in result.tasks:
        phase = "dbt" if t.task_id.startswith("transform.") else t.task_id
        phases[phase] = phases.get(phase, 0.0) + t.seconds
    return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in phases.items())


def report_failure(console: Console, result: Any, again: str = "make demo") -> None:
    failed = [t.task_id for t in result.tasks if t.state == "failed"]
    skipped = [t.task_id for t in result.tasks if t.state in ("upstream_failed", "skipped")]
    console.print(f"[red]The run for the day ending {result.logical_date:%Y-%m-%d} failed.[/red]")
    console.print(f"Failed tasks: {', '.join(failed) or 'none'}")
    console.print(f"Skipped downstream of them: {len(skipped)} tasks, publishing included.")
    console.print(
        "Tables built before the failure, RAW and the previous exports are kept as they were. "
        f"The full log, with dbt's error for the failing model, is in {result.log_file}. "
        f"Fix the cause, then run `{again}` again: days already generated are not generated twice."
    )
    if result.log_file and Path(result.log_file).exists():
        lines = Path(result.log_file).read_text(errors="replace").splitlines()
        errors = [line for line in lines if "Error" in line or "error" in line][-8:]
        for line in errors:
            console.print(f"  [dim]{line[:240]}[/dim]")


def library_log() -> Path:
    """Where `mdp demo` writes what Airflow, alembic, Cosmos, dbt and pgserver log."""
    return paths.local_home() / "logs" / "demo.log"


# The commands the demo suggests at the end: each must work as written on a fresh clone
# (tests run `make -n` or `--help` on every one of them).
NEXT_STEPS = (
    ("make airflow", "the Airflow UI and a scheduler on http://127.0.0.1:8080 (AIRFLOW_PORT=…)"),
    (".venv/bin/mdp --help", "every command; `make help` lists the make targets"),
    ("make demo", "again: re-runs the same days and changes nothing"),
    ("make clean", "stops the local services and deletes .local/"),
)


def send_library_output_to(log: Path) -> TextIO | None:
    """Point this process's stdout and stderr (file descriptors 1 and 2) at `log`, for good.

    Airflow, alembic, Cosmos, dbt and pgserver (from its exit hook too) write there; the demo
    prints to the terminal through the returned stream. None when stdout is not a real file
    descriptor (under a test runner), and nothing is redirected.
    """
    try:
        out_fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(out_fd), "w", buffering=1, encoding="utf-8", errors="replace")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return terminal


def demo(
    days: Annotated[
        int,
        typer.Option(min=1, envvar=DAYS_ENV, help="Simulated days to run."),
    ] = DEFAULT_DAYS,
) -> None:
    """Run the local platform end to end through Airflow: generate, sync, dbt, publish, per day."""
    log = library_log()
    terminal = send_library_output_to(log)
    console = Console(file=terminal) if terminal else Console()
    try:
        _demo(console, days, log)
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as err:
        traceback.print_exc()
        console.print(
            f"[red]The demo stopped: {err.__class__.__name__}: {err}[/red]\n"
            f"The full traceback is in {log}. Fix the cause, then run `make demo` again: "
            "days already generated are not generated twice."
        )
        raise typer.Exit(1) from None


def _demo(console: Console, days: int, log: Path) -> None:
    started = time.perf_counter()

    # Deferred for start-up speed, and because Airflow reads its configuration when first
    # imported: `runner.configure()` must run before anything imports Airflow.
    from orchestration.include import runner

    # A demo should not sit through production retry delays when something is broken.
    os.environ.setdefault("MDP_DAG_RETRY_DELAY_SECONDS", "5")
    home = runner.configure()

    console.rule("[bold]1/4 Source: embedded PostgreSQL")
    try:
        dsn = localpg.source_dsn() or ""
    except (localpg.LocalPostgresError, localpg.SourceUnreachable) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Source: {localpg.redact(dsn)}", soft_wrap=True)
    # Deferred, as below: the settings and the local steps are read after `runner.configure()`.
    from orchestration.include import local_steps
    from orchestration.include.settings import Settings

    os.environ.setdefault("MDP_ROWS_PER_CYCLE", str(DEMO_ROWS_PER_CYCLE))
    with console.status("Seeding a year of history into the source…"):
        history = local_steps.seed_history(demo_days(days)[0], Settings.from_env())
    console.print(history.describe())

    console.rule("[bold]2/4 Airflow and the dbt manifest")
    # Deferred: these import Cosmos and so Airflow, which must see `runner.configure()` first.
    from orchestration.include import dbt

    t0 = time.perf_counter()
    runner.migrate()
    dbt.build_manifest(Settings.from_env())
    t1 = time.perf_counter()
    dag = runner.load_dag()
    parse_seconds = time.perf_counter() - t1
    dbt_tasks = [t for t in dag.task_ids if t.startswith("transform.")]
    console.print(f"Airflow metadata DB and dbt manifest ready in {t1 - t0:.1f}s.")
    console.print(
        f"DAG {dag.dag_id} parsed in {parse_seconds:.2f}s: {len(dag.task_ids)} tasks, "
        f"{len(dbt_tasks)} of them dbt tasks rendered by Cosmos."
    )

    console.rule(f"[bold]3/4 {days} simulated days through the DAG (dag.test)")
    logs = home / "logs" / "demo"
    day_seconds: list[float] = []
    for number, day_end in enumerate(demo_days(days), start=1):
        log_file = logs / f"{day_end:%Y-%m-%d}.log"
        with console.status(f"Day {number}/{days}, ending {day_end:%Y-%m-%d %H:%M} UTC…"):
            result = runner.run_day(dag, day_end, log_file)
        if not result.ok:
            report_failure(console, result)
            raise typer.Exit(1)
        day_seconds.append(result.seconds)
        console.print(
            f"[green]✓[/green] Day {number}/{days} (ending {day_end:%Y-%m-%d}): "
            f"{len(result.tasks)} tasks in {result.seconds:.1f}s: {phase_seconds(result)}"
        )
    release_duckdb()

    console.rule("[bold]4/4 Marts")
    net, mrr = marts_summary()
    console.print(net)
    console.print(mrr)

    # The dashboard keeps serving after the demo; a port in use moves it, and says so.
    dashboard = background.start(port=DEFAULT_PORT, fallback=True)

    total = time.perf_counter() - started
    console.rule("[bold green]Done")
    console.print(
        f"The demo ran {days} simulated days in {total:.0f}s "
        f"({sum(day_seconds) / len(day_seconds):.1f}s per day on average)."
    )
    where = (
        ("Dashboard", f"{dashboard.url} (running; `.venv/bin/mdp dashboard --stop` stops it)"),
        ("Source PostgreSQL", f"{localpg.redact(dsn)} (data in {paths.pg_dir()})"),
        ("RAW (DuckDB)", str(paths.raw_db())),
        ("ANALYTICS (DuckDB)", f"{paths.analytics_db()} (staging, intermediate, finance)"),
        ("Parquet exports", str(paths.exports_dir())),
        ("Airflow state", str(home)),
        ("Task logs, per day", str(logs)),
        ("Library logs", str(log)),
    )
    for name, value in where:
        console.print(f"  {name:<20} {value}", soft_wrap=True, highlight=False)
    if dashboard.busy_port:
        console.print(
            f"Port {dashboard.busy_port} was in use by another program, so the dashboard "
            f"took port {dashboard.port}."
        )
    console.print("Next:")
    for command, what in NEXT_STEPS:
        console.print(f"  {command:<22} {what}", soft_wrap=True, highlight=False)
