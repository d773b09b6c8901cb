"""The local DAG end to end with `dag.test()`: marts match the contract, re-runs change nothing, failures stop."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from tests import contract_marts
from tests.orchestration.conftest import FAST_SETTINGS, load_dag, run_in_process

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAY_1 = datetime(2026, 3, 10, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)
DAY_3 = DAY_2 + timedelta(days=1)
BROKEN_MODEL = "dim_subscriptions"
SOURCE_TABLES = ("users", "banks", "credit_cards", "subscriptions", "payments")


@pytest.fixture(scope="module")
def pipeline(
    mdp_home: Path, airflow_home: Path, source_db_factory: Callable[[], str]
) -> Iterator[dict[str, Any]]:
    """A fresh source database and warehouse folder, with the fast test settings."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_HOME", str(mdp_home / "orchestration"))
        mp.setenv("MDP_SOURCE_DSN", source_db_factory())
        mp.delenv("MDP_TARGET", raising=False)
        for key, value in FAST_SETTINGS.items():
            mp.setenv(key, value)
        yield {"home": mdp_home / "orchestration"}


def _run(dag: Any, day: datetime, log: Path) -> Any:
    from orchestration.include import runner
    from transform.runner import release_duckdb

    result = runner.run_day(dag, day, log)
    release_duckdb()
    return result


def _analytics(query: str) -> list[tuple[Any, ...]]:
    from core import paths

    with duckdb.connect(str(paths.analytics_db()), read_only=True) as con:
        return con.execute(query).fetchall()


def _marts() -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: _analytics(f"select * from finance.{name} order by all")
        for name in ("net_revenue_by_plan", "monthly_net_revenue_by_plan", "mrr_by_plan")
    }


def _source_counts() -> dict[str, int]:
    from core import localpg

    with psycopg.connect(localpg.source_dsn()) as conn:
        return {
            t: conn.execute(f"select count(*) from app.{t}").fetchone()[0] for t in SOURCE_TABLES
        }  # type: ignore[index]


@pytest.fixture(scope="module")
def first_day(pipeline: dict[str, Any], dbt_project: Path) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        dag = load_dag(mp, dbt_project)
        return _run(dag, DAY_1, pipeline["home"] / "day1.log")


def _alerts(home: Path) -> list[dict[str, Any]]:
    log = home / "alerts.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_full_local_run_succeeds_with_every_task(
    first_day: Any, pipeline: dict[str, Any]
) -> None:
    assert first_day.state == "success"
    assert set(first_day.states().values()) == {"success"}, first_day.states()
    assert len(first_day.tasks) > 20
    # Freshness was checked on the day's sync, and a good day raises no alert.
    assert first_day.states()["source_freshness"] == "success"
    assert _alerts(pipeline["home"]) == []


def test_the_recorded_run_shows_its_real_duration(first_day: Any) -> None:
    """The Airflow UI shows a demo day's run as taking seconds, not the months since its day."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == "mdp_daily", DagRun.logical_date == DAY_1)
            .one()
        )
        took = (run.end_date - run.start_date).total_seconds()
    assert 0 < took <= first_day.seconds + 1


def test_marts_match_the_contract_computed_from_the_source(first_day: Any) -> None:
    from core import localpg

    with psycopg.connect(localpg.source_dsn()) as conn:
        expected = contract_marts.compute(conn)

    net = {p: (Decimal(r), n) for p, r, n in _analytics(
        "select plan_name, net_revenue, succeeded_payments from finance.net_revenue_by_plan"
    )}  # fmt: skip
    assert {p.lower(): v for p, v in net.items()} == {
        p.lower(): v for p, v in expected.net_revenue_by_plan.items()
    }
    assert sum(n for _, n in net.values()) > 0

    monthly = {(m, p.lower()): Decimal(r) for m, p, r in _analytics(
        "select revenue_month, plan_name, net_revenue from finance.monthly_net_revenue_by_plan"
    )}  # fmt: skip
    for (month, plan), revenue in expected.monthly_net_revenue_by_plan.items():
        assert monthly.get((month, plan.lower())) == revenue, (month, plan)
    extra = {
        k: v
        for k, v in monthly.items()
        if (k[0], k[1]) not in {(m, p.lower()) for m, p in expected.monthly_net_revenue_by_plan}
    }
    assert all(v == 0 for v in extra.values()), extra

    (current,) = _analytics("select max(month) from finance.mrr_by_plan")[0]
    assert current == datetime.now(UTC).date().replace(day=1)
    mrr = {p.lower(): (Decimal(m), n) for p, m, n in _analytics(
        f"select plan_name, mrr, active_subscriptions from finance.mrr_by_plan where month = '{current}'"
    )}  # fmt: skip
    assert mrr == {p.lower(): v for p, v in expected.current_mrr_by_plan.items()}


def test_re_running_the_day_generates_nothing_more(first_day: Any) -> None:
    from orchestration.include import local_steps
    from orchestration.include.settings import Settings

    before = _source_counts()
    again = local_steps.generate_day(DAY_1, Settings.from_env())
    assert again["cycles_run"] == 0
    assert again["cycles_already_done"] == int(FAST_SETTINGS["MDP_CYCLES_PER_DAY"])
    assert _source_counts() == before


def test_a_broken_model_fails_its_task_skips_downstream_and_keeps_earlier_tables(
    first_day: Any,
    pipeline: dict[str, Any],
    dbt_project: Path,
    tmp_path: Path,
    manifest_builder: Callable[[Path], Path],
) -> None:
    broken = tmp_path / "transform"
    shutil.copytree(dbt_project, broken)
    model = next(broken.glob(f"models/**/{BROKEN_MODEL}.sql"))
    model.write_text(
        model.read_text().rstrip().rstrip(";") + "\nwhere no_such_column_on_purpose = 1\n"
    )
    manifest_builder(broken)
    marts_before = _marts()
    source_before = _source_counts()

    log = pipeline["home"] / "day2-broken.log"
    with pytest.MonkeyPatch.context() as mp:
        dag = load_dag(mp, broken)
        # In its own process, as `make demo` runs: the task log goes to the file, not to pytest.
        run = run_in_process(DAY_2, log)
    states = run.tasks
    assert not run.ok
    assert run.state == "failed"
    broken_task = f"transform.{BROKEN_MODEL}_model_build"
    assert states[broken_task] == "failed"
    assert states["sync"] == "success"
    downstream = {t.task_id for t in dag.get_task(broken_task).get_flat_relatives(upstream=False)}
    assert "publish" in downstream
    assert {states[t] for t in downstream} == {"upstream_failed"}
    # Models that do not depend on the broken one were still refreshed.
    assert states["transform.dim_users_model_build"] == "success"

    # The new day reached the source and RAW; the marts keep the last good build.
    assert _source_counts() != source_before
    assert _marts() == marts_before
    # The task log names the model and dbt's error.
    assert f"dbt node {BROKEN_MODEL} failed in task {broken_task}" in run.log
    assert 'Binder Error: Referenced column "no_such_column_on_purpose" not found' in run.log

    # Exactly one alert, for the failed task: its dbt node, dbt's first error line, the run's
    # link; the tasks skipped downstream of it raise none. It also reached the console (the log).
    (alert,) = _alerts(pipeline["home"])
    assert alert["kind"] == "task_failed"
    assert (alert["task_id"], alert["dbt_node"]) == (broken_task, BROKEN_MODEL)
    # dbt's first error line: the model's unit test, run first, hits the broken SQL.
    assert "Runtime Error in unit_test" in alert["error"] and "\n" not in alert["error"]
    assert alert["link"].endswith(f"/tasks/{broken_task}?try_number=1")
    assert f"/dags/mdp_daily/runs/{alert['run_id']}/" in alert["link"].replace("%3A", ":").replace(
        "%2B", "+"
    )
    assert f"ALERT task_failed: dbt node {BROKEN_MODEL} failed" in run.log


def _freshness_run(
    day: datetime, dbt_project: Path, home: Path, stale: dict[str, timedelta]
) -> tuple[str, list[dict[str, Any]]]:
    """The DAG's freshness task alone, through `dag.test()`, on a copy of the warehouse whose
    RAW tables were last loaded `stale[table]` ago."""
    from core import paths

    shutil.copytree(paths.warehouse_dir(), home / "warehouse")
    now = datetime.now(UTC)
    with duckdb.connect(str(home / "warehouse" / "raw.duckdb")) as con:
        for table, age in stale.items():
            con.execute(
                f"update postgres_airbyte.{table} set _airbyte_extracted_at = ?", [now - age]
            )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_HOME", str(home))
        dag = load_dag(mp, dbt_project)
        subset = dag.partial_subset(  # type: ignore[attr-defined]
            task_ids=["source_freshness"], include_upstream=False, include_downstream=False
        )
        result = _run(subset, day, home / "freshness.log")
    return result.states()["source_freshness"], _alerts(home)


def test_source_freshness_errors_and_warnings_each_raise_one_alert(
    first_day: Any, dbt_project: Path, tmp_path: Path
) -> None:
    day = DAY_1 + timedelta(days=20)
    # Past error_after (50 h) for two tables, past warn_after (26 h) only for a third: the run
    # stops with one alert naming the two.
    state, alerts = _freshness_run(
        day,
        dbt_project,
        tmp_path / "error",
        {
            "users": timedelta(hours=60),
            "payments": timedelta(hours=60),
            "banks": timedelta(hours=30),
        },
    )
    assert state == "failed"
    (alert,) = alerts
    assert alert["kind"] == "freshness_error"
    assert set(alert["sources"]) == {"users", "payments"}
    assert alert["task_id"] == "source_freshness"

    # Past warn_after only: the task succeeds, and one warning names the table. Plans, seeded
    # once and re-extracted by no incremental sync, never raise one however old their load.
    state, alerts = _freshness_run(
        day + timedelta(days=1),
        dbt_project,
        tmp_path / "warn",
        {"banks": timedelta(hours=30), "plans": timedelta(days=90)},
    )
    assert state == "success"
    (alert,) = alerts
    assert alert["kind"] == "freshness_warning"
    assert alert["sources"] == ["banks"]


def test_mdp_backfill_re_runs_the_failed_day_and_runs_the_next_one(
    first_day: Any, pipeline: dict[str, Any], dbt_project: Path
) -> None:
    """The runbook's recovery and backfill: once the model is fixed, `mdp backfill --from D1 --to
    D2` re-runs the failed day, then runs the next, one DAG run per day, in order."""
    from typer.testing import CliRunner

    from mdp.cli import app

    marts_before = _marts()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_DBT_PROJECT_DIR", str(dbt_project))
        mp.delenv("MDP_DBT_MANIFEST", raising=False)
        mp.delenv("MDP_DBT_PROFILES_YML", raising=False)
        result = CliRunner().invoke(
            app, ["backfill", "--from", f"{DAY_2:%Y-%m-%d}", "--to", f"{DAY_3:%Y-%m-%d}"]
        )
    assert result.exit_code == 0, result.output
    assert f"✓ {DAY_2:%Y-%m-%d} (1/2)" in result.output
    assert f"✓ {DAY_3:%Y-%m-%d} (2/2)" in result.output
    assert result.output.index(f"{DAY_2:%Y-%m-%d} (1/2)") < result.output.index(f"{DAY_3:%Y-%m-%d}")
    assert "Backfilled 2 day(s)" in result.output

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = {
            run.logical_date: run
            for run in session.query(DagRun).filter(DagRun.logical_date.in_([DAY_2, DAY_3]))
        }
        states = {
            day: {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
            for day, run in runs.items()
        }
    assert sorted(runs) == [DAY_2, DAY_3]
    for day, run in runs.items():
        assert str(run.state) in ("success", "DagRunState.SUCCESS"), day
        assert set(states[day].values()) <= {"success", "TaskInstanceState.SUCCESS"}, states[day]
    assert runs[DAY_2].end_date <= runs[DAY_3].start_date
    # The failed day's rows, loaded by its failed run, now reach the marts; the runs raised no
    # alert.
    assert _marts() != marts_before
    assert [a["kind"] for a in _alerts(pipeline["home"])] == ["task_failed"]


def test_mdp_backfill_stops_at_the_first_failed_day_and_names_the_command_that_resumes(
    first_day: Any, pipeline: dict[str, Any], dbt_project: Path
) -> None:
    """A range whose first day fails (its source is unreachable) runs no later day."""
    from typer.testing import CliRunner

    from mdp.cli import app

    first, last = DAY_3 + timedelta(days=1), DAY_3 + timedelta(days=2)
    alerts_before = len(_alerts(pipeline["home"]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_DBT_PROJECT_DIR", str(dbt_project))
        mp.delenv("MDP_DBT_MANIFEST", raising=False)
        mp.delenv("MDP_DBT_PROFILES_YML", raising=False)
        mp.setenv("MDP_SOURCE_DSN", f"postgresql:///app?host={pipeline['home']}/no-such-socket")
        mp.setenv("MDP_SOURCE_CONNECT_ATTEMPTS", "1")
        result = CliRunner().invoke(
            app, ["backfill", "--from", f"{first:%Y-%m-%d}", "--to", f"{last:%Y-%m-%d}"]
        )
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"The run for the day ending {first:%Y-%m-%d} failed" in text
    assert f"run `mdp backfill --from {first:%Y-%m-%d} --to {last:%Y-%m-%d}` again" in text
    assert "✓" not in text and "Backfilled" not in text

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        ran = [
            r.logical_date
            for r in session.query(DagRun).filter(DagRun.logical_date.in_([first, last]))
        ]
    assert ran == [first]
    (alert,) = _alerts(pipeline["home"])[alerts_before:]
    assert alert["kind"] == "task_failed"
