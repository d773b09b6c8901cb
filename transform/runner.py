"""Runs the dbt project in-process: builds, manifests, summaries and table-by-table comparisons."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core import paths
from core.warehouse import (
    REBUILD_ANALYTICS,
    REBUILD_RAW,
    WarehouseDamaged,
    check_readable,
    move_aside,
)


class TransformError(RuntimeError):
    """A dbt run that could not start or did not succeed; the message says what to do next."""


@dataclass(frozen=True)
class DbtOutcome:
    success: bool
    statuses: dict[str, int]
    results: list[Any]
    # Where a damaged ANALYTICS file was moved before a full refresh rebuilt it, if one was.
    damaged_moved_to: Path | None = None


@contextmanager
def environment(overrides: dict[str, str]) -> Iterator[None]:
    """Sets the `overrides` environment variables for the block, then restores what was there."""
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def release_duckdb() -> None:
    """Close the DuckDB files dbt-duckdb keeps open in this process, so others can open them.

    When tasks share one interpreter (`dag.test()`, the demo), dbt-duckdb keeps ANALYTICS open
    read-write and RAW attached read-only after the last dbt run; the loader and the exports then
    cannot open those files with another configuration. Without dbt-duckdb this does nothing.
    """
    try:
        # Deferred: dbt-duckdb is a dbt plugin, imported only where the local target runs dbt.
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
            DuckDBConnectionManager._ENV = None


# Commands that run nodes. dbt writes manifest.json twice in each of them (after parsing and at
# the end), about a third of a second each time on this project, for a file that describes the
# project, not the run; `mdp transform manifest` (dbt parse) writes it. These commands write
# only run_results.json.
RESULTS_ONLY_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "test"})


def run_dbt(
    args: Sequence[str],
    *,
    target: str | None = None,
    project_dir: Path | None = None,
    profiles_dir: Path | None = None,
    target_path: Path | None = None,
) -> DbtOutcome:
    """Run one dbt command in-process against the project, with MDP_HOME made absolute."""
    from dbt.artifacts.schemas.run import RunExecutionResult
    from dbt.cli.main import dbtRunner

    project = project_dir or paths.transform_dir()
    results_only = bool(args) and args[0] in RESULTS_ONLY_COMMANDS
    command = [
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles_dir or project),
        "--log-path",
        str(paths.local_home() / "logs" / "dbt"),
    ]
    if target:
        command += ["--target", target]
    if target_path:
        command += ["--target-path", str(target_path)]
    if results_only:
        command.append("--no-write-json")
    env = {"MDP_HOME": str(paths.local_home()), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    # The garbage collector would walk the whole heap of earlier imports and dbt runs on every
    # full collection during this one; frozen for its duration, it walks only what dbt creates.
    gc.freeze()
    with environment(env):
        try:
            result = dbtRunner().invoke(command)
        finally:
            release_duckdb()
            gc.unfreeze()
    if result.exception is not None:
        raise TransformError(
            f"dbt {' '.join(args)} could not run: {result.exception}. "
            "Nothing was changed in the warehouse; fix the cause above and run it again."
        )
    if results_only and isinstance(result.result, RunExecutionResult):
        results_dir = target_path or project / "target"
        results_dir.mkdir(parents=True, exist_ok=True)
        result.result.write(str(results_dir / "run_results.json"))
    statuses: dict[str, int] = {}
    node_results = list(getattr(result.result, "results", None) or [])
    for node in node_results:
        status = str(node.status)
        statuses[status] = statuses.get(status, 0) + 1
    return DbtOutcome(success=bool(result.success), statuses=statuses, results=node_results)


# Bookkeeping, not data: rows an incremental run did not need to recompute keep the newest
# sync seen by the run that wrote them, and data_as_of records when its own run started.
BOOKKEEPING_COLUMNS = ("_synced_until", "marts_built_at")


def differing_tables(left: Path, right: Path) -> dict[str, int]:
    """Tables of two ANALYTICS warehouses whose rows differ, with the number of differing rows.

    Compares every table of `left` with the same table in `right` as multisets (EXCEPT ALL
    both ways), leaving out BOOKKEEPING_COLUMNS; a table missing from `right` counts as all of
    its rows. Used to check that an incremental build equals a full rebuild.
    """
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach '{left}' as l (read_only)")
        con.execute(f"attach '{right}' as r (read_only)")
        right_tables = set(
            con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'r'"
            ).fetchall()
        )
        differing: dict[str, int] = {}
        for schema, table in con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = 'l' order by all"
        ).fetchall():
            name = f"{schema}.{table}"
            left_rows = f'from l."{schema}"."{table}"'
            if (schema, table) not in right_tables:
                (count,) = con.execute(f"select count(*) {left_rows}").fetchone() or (0,)
                differing[name] = count
                continue
            columns = ", ".join(
                f'"{column}"'
                for (column,) in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'l' "
                    "and schema_name = ? and table_name = ? order by column_index",
                    [schema, table],
                ).fetchall()
                if column not in BOOKKEEPING_COLUMNS
            )
            a = f"select {columns} {left_rows}"
            b = f'select {columns} from r."{schema}"."{table}"'
            (count,) = con.execute(
                f"select count(*) from (({a} except all {b}) union all ({b} except all {a}))"
            ).fetchone() or (0,)
            if count:
                differing[name] = count
        return differing
    finally:
        con.close()


def build(select: str | None = None, full_refresh: bool = False) -> DbtOutcome:
    """`dbt build` on the local target; raises TransformError with next steps if it fails."""
    raw = paths.raw_db()
    if not raw.exists():
        raise TransformError(
            f"The raw warehouse {raw} does not exist yet, so there is nothing to transform. "
            "Load it first (generate and sync the source), then run `mdp transform` again."
        )
    analytics = paths.analytics_db()
    try:
        check_readable(raw, REBUILD_RAW)
    except WarehouseDamaged as damaged:
        raise TransformError(str(damaged)) from damaged
    moved_to = None
    try:
        check_readable(analytics, REBUILD_ANALYTICS)
    except WarehouseDamaged as damaged:
        if not full_refresh:
            raise TransformError(str(damaged)) from damaged
        # A full refresh rebuilds every model from RAW: keep the damaged file beside the new one.
        moved_to = move_aside(analytics)
    analytics.parent.mkdir(parents=True, exist_ok=True)
    args = ["build"]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    outcome = run_dbt(args, target="local")
    if select and not outcome.results:
        raise TransformError(
            f"--select {select!r} matches no model, test or seed of the dbt project, so dbt "
            "built nothing and the warehouse is unchanged. Check the name against "
            "`transform/models/` (e.g. `mdp transform --select +mrr_by_plan`) and run it again."
        )
    if not outcome.success:
        raise TransformError(
            f"dbt build finished with failures ({outcome.statuses}). The raw layer is untouched "
            f"and models that passed are in {paths.analytics_db()}. Read the failures above "
            f"(logs: {paths.local_home() / 'logs' / 'dbt'}), fix them, then run `mdp transform` again."
        )
    return replace(outcome, damaged_moved_to=moved_to) if moved_to else outcome


def write_manifest(target_path: Path | None = None) -> Path:
    """`dbt parse`: writes target/manifest.json (what Cosmos loads) without touching a warehouse."""
    out = target_path or paths.transform_dir() / "target"
    outcome = run_dbt(["parse"], target="local", target_path=out)
    if not outcome.success:
        raise TransformError("dbt parse failed: the project does not compile; see the log above.")
    return out / "manifest.json"


def summary(analytics_db: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Net revenue by plan and this month's MRR by plan, read from the local ANALYTICS file."""
    import duckdb

    db = analytics_db or paths.analytics_db()
    if not db.exists():
        raise TransformError(f"{db} does not exist: run `mdp transform` first.")
    try:
        check_readable(db, REBUILD_ANALYTICS)
    except WarehouseDamaged as damaged:
        raise TransformError(str(damaged)) from damaged
    con = duckdb.connect(str(db), read_only=True)
    try:
        revenue = con.execute(
            "select plan_name, net_revenue, succeeded_payments "
            "from finance.net_revenue_by_plan order by net_revenue desc, plan_name"
        ).fetchall()
        mrr = con.execute(
            "select plan_name, mrr, active_subscriptions, arr from finance.mrr_by_plan "
            "where month = (select max(month) from finance.mrr_by_plan) "
            "order by mrr desc, plan_name"
        ).fetchall()
        month = con.execute("select max(month) from finance.mrr_by_plan").fetchone()
    finally:
        con.close()
    return {
        "net_revenue_by_plan": [
            {"plan_name": p, "net_revenue": n, "succeeded_payments": c} for p, n, c in revenue
        ],
        "mrr_by_plan": [
            {
                "month": month[0] if month else None,
                "plan_name": p,
                "mrr": m,
                "active_subscriptions": a,
                "arr": arr,
            }
            for p, m, a, arr in mrr
        ],
    }
