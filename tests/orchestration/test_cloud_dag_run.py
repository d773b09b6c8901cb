"""The cloud DAG end to end with `dag.test()`: Airbyte Cloud and Snowflake faked on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from rehearsal.fake_airbyte import FakeAirbyte
from tests import contract_marts
from tests.orchestration.cloud_services import (
    MARTS,
    RAW_SCHEMA,
    TEST_SETTINGS,
    SnowflakeSync,
    assert_marts_match_contract,
    cloud_services,
    generate_day,
    mart_rows,
    snowflake_query,
)
from tests.orchestration.conftest import FAST_SETTINGS, DagRun, run_in_process

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    # fakesnow copies every result to Arrow and says so on each query.
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result"),
]

# Not the local run's days: both targets share the session's Airflow metadata DB.
DAY_1 = datetime(2026, 4, 14, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)
# Stack-prefixed names, as in a shared account: nothing may fall back to RAW / ANALYTICS.
RAW_DATABASE = "DEV_RAW"
ANALYTICS_DATABASE = "DEV_ANALYTICS"
JOB_FAILURE = "Failure in source: Connection to the database timed out (fake)"
MIDWAY_FAILURE = "Failure in destination: Snowflake session expired (fake)"
DAY_3 = DAY_1 + timedelta(days=2)


@dataclass
class Cloud:
    home: Path
    source_dsn: str
    snowflake: dict[str, Any]
    airbyte: FakeAirbyte
    connection_id: str
    sync: SnowflakeSync
    exports: Path
    dbt_project: Path


@pytest.fixture(scope="module")
def cloud(
    mdp_home: Path,
    airflow_home: Path,
    dbt_project: Path,
    source_db_factory: Callable[[], str],
) -> Iterator[Cloud]:
    """Airflow's cloud settings, with its connections pointing at fake Airbyte and fakesnow."""
    home = mdp_home / "cloud"
    home.mkdir()
    source_dsn = source_db_factory()
    with (
        cloud_services(home, source_dsn, RAW_DATABASE, ANALYTICS_DATABASE) as s,
        pytest.MonkeyPatch.context() as mp,
    ):
        env = {
            **s.connections,
            **TEST_SETTINGS,
            "MDP_TARGET": "cloud",
            "MDP_RAW_DATABASE": RAW_DATABASE,
            "MDP_HOME": str(home),
            "MDP_SOURCE_DSN": source_dsn,
            "MDP_EXPORTS_TARGET": str(home / "exports"),
            **FAST_SETTINGS,
        }
        for key, value in env.items():
            mp.setenv(key, value)
        yield Cloud(
            home, source_dsn, s.snowflake, s.airbyte, s.connection_id, s.sync, home / "exports",
            dbt_project,
        )  # fmt: skip


def _run(cloud: Cloud, day: datetime, log: Path) -> DagRun:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_DBT_PROJECT_DIR", str(cloud.dbt_project))
        mp.delenv("MDP_DBT_MANIFEST", raising=False)
        mp.delenv("MDP_DBT_PROFILES_YML", raising=False)
        return run_in_process(day, log)


def _marts(cloud: Cloud) -> dict[str, list[tuple[Any, ...]]]:
    return mart_rows(cloud.snowflake, ANALYTICS_DATABASE)


def _files(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class FirstRun:
    run: DagRun
    expected: contract_marts.ContractMarts


@pytest.fixture(scope="module")
def first_run(cloud: Cloud) -> FirstRun:
    generate_day(DAY_1)
    run = _run(cloud, DAY_1, cloud.home / "day1.log")
    with psycopg.connect(cloud.source_dsn) as conn:
        expected = contract_marts.compute(conn)
    return FirstRun(run, expected)


def test_the_cloud_run_succeeds_with_every_task(cloud: Cloud, first_run: FirstRun) -> None:
    states = first_run.run.tasks
    not_ok = {t: s for t, s in states.items() if s != "success"}
    jobs = {j.job_id: (j.status, j.error) for j in cloud.airbyte.jobs.values()}
    errors = [line for line in first_run.run.log.splitlines() if "Error" in line][-5:]
    assert first_run.run.state == "success", (not_ok, jobs, errors)
    assert set(states.values()) == {"success"}, states
    assert {"airbyte_trigger_sync", "sync", "source_freshness", "publish"} <= set(states)
    assert sum(t.startswith("transform.") for t in states) > 15


def test_the_trigger_synced_the_stacks_connection_and_the_sensor_saw_it_succeed(
    cloud: Cloud, first_run: FirstRun
) -> None:
    (token,) = cloud.airbyte.requests("POST", "/v1/applications/token")[:1]
    assert token.body["client_id"] == cloud.airbyte.client_id
    (create,) = cloud.airbyte.requests("POST", "/v1/jobs")[:1]
    assert create.body == {"connectionId": cloud.connection_id, "jobType": "sync"}
    assert create.headers["Authorization"].removeprefix("Bearer ") in cloud.airbyte.tokens
    job = cloud.airbyte.jobs[1]
    assert job.connection_id == cloud.connection_id
    # The sensor saw the job running and deferred; the trigger, run in line by dag.test(),
    # polled until it succeeded and resumed the sensor.
    assert job.answered[0] == "running" and job.answered[-1] == "succeeded", job.answered
    assert set(job.answered[:-1]) == {"running"}
    assert len(cloud.sync.synced) == 1
    assert "[DAG TEST] running trigger in line" in first_run.run.log
    assert "sync completed successfully." in first_run.run.log


def test_source_freshness_passed_on_every_synced_table_but_the_seeded_plans(
    first_run: FirstRun,
) -> None:
    passed = set(re.findall(r"PASS freshness of postgres_airbyte\.(\w+)", first_run.run.log))
    # plans is seeded once and carries no freshness threshold (it would alert every day).
    assert passed == {"users", "banks", "credit_cards", "subscriptions", "payments"}


def test_dbt_built_the_marts_in_snowflake_from_the_synced_raw_tables(
    cloud: Cloud, first_run: FirstRun
) -> None:
    raw = {
        t.upper(): n
        for t, n in snowflake_query(
            cloud.snowflake,
            f"select table_name, row_count from {RAW_DATABASE}.information_schema.tables "
            f"where table_schema = '{RAW_SCHEMA}'",
        )
    }
    assert {"PLANS", "USERS", "SUBSCRIPTIONS", "PAYMENTS"} <= set(raw)
    with psycopg.connect(cloud.source_dsn) as conn:
        (payments,) = conn.execute("select count(*) from app.payments").fetchone()  # type: ignore[misc]
    (raw_payments,) = snowflake_query(
        cloud.snowflake, f"select count(*) from {RAW_DATABASE}.{RAW_SCHEMA}.PAYMENTS"
    )[0]
    assert raw_payments == payments > 0
    built = {
        (s.upper(), t.upper())
        for s, t in snowflake_query(
            cloud.snowflake,
            f"select table_schema, table_name from {ANALYTICS_DATABASE}.information_schema.tables",
        )
    }
    assert {("FINANCE", m.upper()) for m in MARTS} <= built
    assert ("INTERMEDIATE", "FCT_PAYMENTS") in built
    (staged,) = snowflake_query(
        cloud.snowflake,
        f"select count(*) from {ANALYTICS_DATABASE}.STAGING.STG_POSTGRES_AIRBYTE__PAYMENTS",
    )[0]
    assert 0 < staged <= raw_payments


def test_the_marts_match_the_contract_computed_from_the_source(
    cloud: Cloud, first_run: FirstRun
) -> None:
    assert_marts_match_contract(cloud.snowflake, ANALYTICS_DATABASE, first_run.expected)


def test_publish_exported_the_snowflake_marts_to_parquet(cloud: Cloud, first_run: FirstRun) -> None:
    exported_tables = {f"FINANCE.{m}": m for m in MARTS} | {
        "INTERMEDIATE.FCT_PAYMENTS": "fct_payments"
    }
    for table_name, name in exported_tables.items():
        files = sorted((cloud.exports / name).rglob("*.parquet"))
        assert files, f"no Parquet export of {name} in {cloud.exports}"
        exported = sum(pq.read_metadata(f).num_rows for f in files)
        (rows,) = snowflake_query(
            cloud.snowflake, f"select count(*) from {ANALYTICS_DATABASE}.{table_name}"
        )[0]
        assert exported == rows > 0, name
    table = ds.dataset(
        cloud.exports / "net_revenue_by_plan", format="parquet", partitioning="hive"
    ).to_table()
    exported_net = {
        p.lower(): Decimal(str(r)) for p, r in zip(
            table.column("plan_name").to_pylist(), table.column("net_revenue").to_pylist(), strict=True
        )
    }  # fmt: skip
    assert exported_net == {
        p.lower(): r for p, (r, _) in first_run.expected.net_revenue_by_plan.items()
    }


def test_a_failed_airbyte_job_fails_the_run_before_dbt_and_keeps_the_exports(
    cloud: Cloud, first_run: FirstRun
) -> None:
    marts_before, exports_before = _marts(cloud), _files(cloud.exports)
    raw_before = snowflake_query(
        cloud.snowflake, f"select count(*) from {RAW_DATABASE}.{RAW_SCHEMA}.PAYMENTS"
    )
    generate_day(DAY_2)  # new source rows the failed sync does not bring
    cloud.airbyte.failing_jobs.append(JOB_FAILURE)

    run = _run(cloud, DAY_2, cloud.home / "day2-failed-sync.log")
    states = run.tasks
    assert run.state == "failed"
    assert states["airbyte_trigger_sync"] == "success"
    assert states["sync"] == "failed"
    downstream = {t: s for t, s in states.items() if t not in ("airbyte_trigger_sync", "sync")}
    assert "source_freshness" in downstream and "publish" in downstream
    assert set(downstream.values()) == {"upstream_failed"}, downstream

    job = cloud.airbyte.jobs[2]
    assert job.connection_id == cloud.connection_id
    assert job.answered[0] == "running" and job.answered[-1] == "failed", job.answered
    assert len(cloud.sync.synced) == 1
    assert f"Airbyte job {job.job_id} ended failed" in run.log
    # Nothing was loaded or built, and the last good exports are exactly as they were.
    assert (
        snowflake_query(
            cloud.snowflake, f"select count(*) from {RAW_DATABASE}.{RAW_SCHEMA}.PAYMENTS"
        )
        == raw_before
    )
    assert _marts(cloud) == marts_before
    assert _files(cloud.exports) == exports_before


def _raw_counts(cloud: Cloud) -> dict[str, int]:
    return {
        t.lower(): n
        for t, n in snowflake_query(
            cloud.snowflake,
            f"select table_name, row_count from {RAW_DATABASE}.information_schema.tables "
            f"where table_schema = '{RAW_SCHEMA}'",
        )
    }


def _source_counts(cloud: Cloud) -> dict[str, int]:
    with psycopg.connect(cloud.source_dsn) as conn:
        return {
            table: conn.execute(f"select count(*) from app.{table}").fetchone()[0]  # type: ignore[index]
            for table in ("banks", "credit_cards", "payments", "plans", "subscriptions", "users")
        }


@dataclass
class PartialFailure:
    """A sync that failed after landing part of RAW, then the next run, whose sync succeeded."""

    raw_before: dict[str, int]
    marts_before: dict[str, list[tuple[Any, ...]]]
    exports_before: dict[str, tuple[str, int]]
    raw_after_failure: dict[str, int]
    marts_after_failure: dict[str, list[tuple[Any, ...]]]
    exports_after_failure: dict[str, tuple[str, int]]
    failed: DagRun
    failed_job: Any
    # Rows the next sync landed: the one the next day's run starts with.
    converged_rows: int


@pytest.fixture(scope="module")
def partial_failure(cloud: Cloud, first_run: FirstRun) -> PartialFailure:
    raw_before, marts_before = _raw_counts(cloud), _marts(cloud)
    exports_before = _files(cloud.exports)
    generate_day(DAY_3)
    cloud.airbyte.failing_midway.append(MIDWAY_FAILURE)
    failed = _run(cloud, DAY_3, cloud.home / "day3-sync-failed-midway.log")
    failed_job = max(cloud.airbyte.jobs.values(), key=lambda j: j.job_id)
    # Airbyte goes on with a job whatever Airflow does: let it end before looking at RAW.
    assert failed_job.done.wait(600), "the failing job never ended"
    raw_after, marts_after = _raw_counts(cloud), _marts(cloud)
    exports_after = _files(cloud.exports)
    # The next sync, as the next day's run starts it: it reads from the last committed
    # cursors. (What dbt then builds from RAW is the first run's path, checked above.)
    converged_rows = cloud.sync({})
    return PartialFailure(
        raw_before, marts_before, exports_before, raw_after, marts_after, exports_after,
        failed, failed_job, converged_rows,
    )  # fmt: skip


def test_a_sync_that_fails_midway_stops_the_run_before_dbt(
    cloud: Cloud, partial_failure: PartialFailure
) -> None:
    """The guarantee: a failed sync never reaches dbt, even when it already changed RAW."""
    pf = partial_failure
    said = [line for line in pf.failed.log.splitlines() if "Airbyte job" in line][-5:]
    assert f"Airbyte job {pf.failed_job.job_id} ended failed" in pf.failed.log, (
        pf.failed.tasks,
        pf.failed_job.answered,
        said,
    )
    # The fault is real: the failed job did land new payments in RAW, and only those tables.
    assert pf.failed_job.status == "failed" and pf.failed_job.error == MIDWAY_FAILURE
    assert pf.failed_job.answered[-1] == "failed", pf.failed_job.answered
    assert pf.raw_after_failure["payments"] > pf.raw_before["payments"]
    assert pf.raw_after_failure["subscriptions"] == pf.raw_before["subscriptions"]
    assert pf.raw_after_failure["users"] == pf.raw_before["users"]

    states = pf.failed.tasks
    assert pf.failed.state == "failed"
    assert states["airbyte_trigger_sync"] == "success"
    assert states["sync"] == "failed"
    downstream = {t: s for t, s in states.items() if t not in ("airbyte_trigger_sync", "sync")}
    assert "source_freshness" in downstream and "publish" in downstream
    assert sum(t.startswith("transform.") for t in downstream) > 15
    assert set(downstream.values()) == {"upstream_failed"}, downstream
    # dbt built nothing over the half-landed RAW; the last good marts and exports stand.
    assert pf.marts_after_failure == pf.marts_before
    assert pf.exports_after_failure == pf.exports_before


def test_the_next_successful_sync_converges_to_the_source(
    cloud: Cloud, partial_failure: PartialFailure
) -> None:
    pf = partial_failure
    assert pf.converged_rows > 0 and len(cloud.sync.synced) == 2, cloud.sync.synced
    # RAW holds the source exactly once more: one row per key, nothing lost or doubled.
    assert _raw_counts(cloud) == _source_counts(cloud)
    for table in ("payments", "subscriptions", "users"):
        (duplicates,) = snowflake_query(
            cloud.snowflake,
            f"select count(*) - count(distinct id) from {RAW_DATABASE}.{RAW_SCHEMA}.{table.upper()}",
        )[0]
        assert duplicates == 0, table


def test_the_snowflake_key_never_reaches_any_task_log(
    cloud: Cloud, first_run: FirstRun, partial_failure: PartialFailure
) -> None:
    extra = json.loads(os.environ["AIRFLOW_CONN_SNOWFLAKE_DBT"])["extra"]
    pem = base64.b64decode(extra["private_key_content"]).decode()
    key_lines = [line for line in pem.splitlines() if "-----" not in line]
    # Every run's log, the failed runs' included: a failure path is where a key leaks.
    logs = {p.name: p.read_text(errors="replace") for p in sorted(cloud.home.glob("*.log"))}
    assert "day1.log" in logs and "day3-sync-failed-midway.log" in logs, sorted(logs)
    assert "dbt node" not in first_run.run.log  # no dbt task failed
    assert "transform." in first_run.run.log  # the dbt tasks did log here
    for name, text in logs.items():
        assert not [line for line in key_lines if line in text], name
        assert extra["private_key_content"][:60] not in text, name
