"""DAG integrity and structure: it imports cleanly, is safe to schedule, and orders sync, dbt, publish."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.orchestration.conftest import load_dag

MODEL_SUFFIX = "_model_build"


def _models(manifest: Path) -> set[str]:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {n["name"] for n in nodes if n["resource_type"] == "model"}


def _upstream_closure(task: Any) -> set[str]:
    seen: set[str] = set()
    todo = [task]
    while todo:
        for parent in todo.pop().upstream_list:
            if parent.task_id not in seen:
                seen.add(parent.task_id)
                todo.append(parent)
    return seen


@pytest.fixture
def local_dag(monkeypatch: pytest.MonkeyPatch, dbt_project: Path) -> Any:
    monkeypatch.delenv("MDP_TARGET", raising=False)
    for key in ("MDP_DAG_RETRIES", "MDP_DAG_RETRY_DELAY_SECONDS", "MDP_DAG_TASK_TIMEOUT_SECONDS"):
        monkeypatch.delenv(key, raising=False)
    return load_dag(monkeypatch, dbt_project)


@pytest.fixture
def cloud_dag(monkeypatch: pytest.MonkeyPatch, dbt_project: Path) -> Any:
    return load_dag(monkeypatch, dbt_project, MDP_TARGET="cloud")


def test_the_dag_folder_imports_without_errors_and_renders_dbt_from_the_manifest(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from cosmos.constants import LoadMode
    from cosmos.dbt.graph import DbtGraph

    from orchestration.include.runner import DAGS_FOLDER

    # Parsing stays cheap because Cosmos reads the manifest instead of starting dbt (`dbt ls`)
    # on every parse: record how each dbt graph was loaded, and fail on any dbt start.
    loads: list[LoadMode] = []
    load = DbtGraph.load

    def recording_load(self: DbtGraph, *args: Any, **kwargs: Any) -> None:
        load(self, *args, **kwargs)
        loads.append(self.load_method)

    def no_dbt(self: DbtGraph, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the DAG started dbt while it was parsed")

    monkeypatch.setattr(DbtGraph, "load", recording_load)
    for method in ("load_via_dbt_ls", "load_via_dbt_ls_file", "load_via_dbt_ls_cache"):
        monkeypatch.setattr(DbtGraph, method, no_dbt)
    monkeypatch.setenv("MDP_DBT_PROJECT_DIR", str(dbt_project))
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["mdp_daily"]
    assert loads == [LoadMode.DBT_MANIFEST]
    assert any(t.task_id.endswith(MODEL_SUFFIX) for t in bag.dags["mdp_daily"].tasks)


def test_schedule_safety_settings_on_every_task(local_dag: Any) -> None:
    assert local_dag.max_active_runs == 1
    assert local_dag.catchup is False
    assert {"mdp", "local", "dbt"} <= set(local_dag.tags)
    for task in local_dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_delay >= timedelta(seconds=60), task.task_id
        assert task.execution_timeout is not None, task.task_id
        assert task.execution_timeout <= timedelta(hours=3), task.task_id


def test_retries_come_from_configuration(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    dag = load_dag(monkeypatch, dbt_project, MDP_DAG_RETRIES="0")
    assert {t.retries for t in dag.tasks} == {0}


def test_local_order_generate_sync_then_one_task_per_model_then_publish(
    local_dag: Any, dbt_project: Path
) -> None:
    tasks = {t.task_id: t for t in local_dag.tasks}
    dbt_tasks = [t for t in tasks if t.startswith("transform.")]
    model_tasks = {
        t.removeprefix("transform.").removesuffix(MODEL_SUFFIX)
        for t in dbt_tasks
        if t.endswith(MODEL_SUFFIX)
    }

    assert model_tasks == _models(dbt_project / "target" / "manifest.json")
    assert "generate" in _upstream_closure(tasks["sync"])
    # Freshness is checked on the day's sync, before any model reads RAW.
    assert "sync" in _upstream_closure(tasks["source_freshness"])
    for task_id in dbt_tasks:
        assert "source_freshness" in _upstream_closure(tasks[task_id]), f"{task_id} too early"
    publish = tasks["publish"]
    assert publish.downstream_list == []
    assert _upstream_closure(publish) == set(tasks) - {"publish"}


def test_cloud_order_airbyte_sync_deferrable_wait_freshness_then_dbt_then_publish(
    cloud_dag: Any,
) -> None:
    from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
    from airflow.providers.airbyte.sensors.airbyte import AirbyteJobSensor

    from orchestration.include.airbyte import AirbyteSyncSensor

    tasks = {t.task_id: t for t in cloud_dag.tasks}
    assert "generate" not in tasks
    trigger, wait = tasks["airbyte_trigger_sync"], tasks["sync"]
    assert isinstance(trigger, AirbyteTriggerSyncOperator) and trigger.asynchronous
    assert "var.value.mdp_airbyte_connection_id" in trigger.connection_id
    assert isinstance(wait, AirbyteJobSensor) and wait.deferrable
    # The DAG's own subclass: waits through `queued` and polls every MDP_AIRBYTE_POLL_SECONDS.
    assert isinstance(wait, AirbyteSyncSensor) and wait.poke_interval == 60
    assert _upstream_closure(tasks["source_freshness"]) == {"airbyte_trigger_sync", "sync"}
    for task_id in (t for t in tasks if t.startswith("transform.")):
        assert "source_freshness" in _upstream_closure(tasks[task_id])
    assert _upstream_closure(tasks["publish"]) == set(tasks) - {"publish"}
    assert "cloud" in cloud_dag.tags


def test_cloud_dbt_uses_the_snowflake_private_key_profile_mapping(cloud_dag: Any) -> None:
    from cosmos.profiles import SnowflakePrivateKeyPemProfileMapping

    build = next(t for t in cloud_dag.tasks if t.task_id.endswith(MODEL_SUFFIX))
    mapping = build.profile_config.profile_mapping
    assert isinstance(mapping, SnowflakePrivateKeyPemProfileMapping)
    assert mapping.conn_id == "snowflake_dbt"
    # The stack's connection names the database (prefixed per stack): nothing overrides it.
    assert "database" not in mapping.profile_args


def test_on_mwaa_every_dbt_task_runs_the_dbt_of_its_own_virtualenv(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from cosmos.constants import InvocationMode

    from orchestration.include.dbt import DBT_EXECUTABLE_ENV

    executable = "/usr/local/airflow/dbt_venv/bin/dbt"
    dag = load_dag(monkeypatch, dbt_project, MDP_TARGET="cloud", **{DBT_EXECUTABLE_ENV: executable})
    tasks = {t.task_id: t for t in dag.tasks}
    dbt_tasks = [tasks["source_freshness"]] + [
        t for t in dag.tasks if t.task_id.startswith("transform.")
    ]
    for task in dbt_tasks:
        assert task.invocation_mode == InvocationMode.SUBPROCESS, task.task_id
        assert str(task.dbt_executable_path) == executable, task.task_id


def test_a_missing_manifest_is_a_clear_import_error(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from orchestration.include.runner import DAGS_FOLDER

    missing = dbt_project / "target" / "no-such-manifest.json"
    monkeypatch.setenv("MDP_DBT_PROJECT_DIR", str(dbt_project))
    monkeypatch.setenv("MDP_DBT_MANIFEST", str(missing))
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    (error,) = bag.import_errors.values()
    assert str(missing) in error
    assert "make dbt-manifest" in error


def test_a_bad_target_is_a_clear_import_error(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from orchestration.include.runner import DAGS_FOLDER

    monkeypatch.setenv("MDP_DBT_PROJECT_DIR", str(dbt_project))
    monkeypatch.setenv("MDP_TARGET", "moon")
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    (error,) = bag.import_errors.values()
    assert "MDP_TARGET=local or MDP_TARGET=cloud" in error


def test_the_snowflake_connection_the_stack_writes_maps_to_a_dbt_profile(
    monkeypatch: pytest.MonkeyPatch, cloud_dag: Any
) -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    # The shape of the `snowflake_dbt` secret the Pulumi program writes to Secrets Manager.
    connection = {
        "conn_type": "snowflake",
        "login": "DBT_SVC",
        "schema": "STAGING",
        "extra": {
            "account": "ab12345.eu-west-1",
            "database": "DEV_ANALYTICS",
            "warehouse": "TRANSFORMING",
            "role": "DATA_ENGINEER",
            "private_key_content": base64.b64encode(pem.encode()).decode(),
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DBT", json.dumps(connection))
    build = next(t for t in cloud_dag.tasks if t.task_id.endswith(MODEL_SUFFIX))
    mapping = build.profile_config.profile_mapping
    profile = mapping.profile
    assert profile["type"] == "snowflake"
    assert profile["account"] == "ab12345.eu-west-1"
    assert profile["user"] == "DBT_SVC"
    assert profile["database"] == "DEV_ANALYTICS"
    assert profile["warehouse"] == "TRANSFORMING"
    assert profile["role"] == "DATA_ENGINEER"
    # The key reaches dbt through an environment variable, never in the rendered profiles.yml.
    assert "BEGIN PRIVATE KEY" not in json.dumps(profile)
    assert any("BEGIN PRIVATE KEY" in str(v) for v in mapping.env_vars.values())


def test_watcher_mode_runs_one_build_and_gives_each_model_a_run_and_a_test_task(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from cosmos.constants import InvocationMode
    from cosmos.operators.watcher import (
        DbtProducerWatcherOperator,
        DbtRunWatcherOperator,
        DbtTestWatcherOperator,
    )

    from orchestration.include.settings import LOCAL_WATCHER_TASKS

    dag = load_dag(monkeypatch, dbt_project, MDP_DBT_EXECUTION_MODE="watcher")
    tasks = {t.task_id: t for t in dag.tasks}
    (producer,) = [t for t in tasks.values() if isinstance(t, DbtProducerWatcherOperator)]
    # The one `dbt build`, as a dbt process of its own, after the freshness check.
    assert producer.base_cmd == ["build"]
    assert producer.invocation_mode == InvocationMode.SUBPROCESS
    assert "source_freshness" in _upstream_closure(producer)
    models = _models(dbt_project / "target" / "manifest.json")
    runs = {t.removeprefix("transform.").removesuffix(".run") for t in tasks if t.endswith(".run")}
    assert runs == models
    for model in models:
        run = tasks[f"transform.{model}.run"]
        assert isinstance(run, DbtRunWatcherOperator)
        # Polled in its own slot, not handed to the triggerer: every second at first, then
        # less often the longer it waits, at most 3 s apart.
        assert (run.deferrable, run.poke_interval, run.exponential_backoff) == (False, 1, True)
        assert run.max_wait == timedelta(seconds=3)
        assert "source_freshness" in _upstream_closure(run)
    checks = [t for t in tasks.values() if isinstance(t, DbtTestWatcherOperator)]
    assert checks and all(t.task_id.endswith(".test") for t in checks)
    # A test that reads two models is reported with each, not as a task that would wait for
    # a result the build never reports under its own name.
    assert not [t for t in tasks if t.startswith("transform.relationships_")]
    publish = tasks["publish"]
    assert _upstream_closure(publish) == set(tasks) - {"publish"}
    # Locally only the build writes DuckDB: the model tasks read its progress beside it.
    assert dag.max_active_tasks == LOCAL_WATCHER_TASKS > 1


def test_watcher_mode_reports_a_test_of_several_models_with_the_model_that_defines_it(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    dag = load_dag(monkeypatch, dbt_project, MDP_DBT_EXECUTION_MODE="watcher")
    (producer,) = [t for t in dag.tasks if isinstance(t, DbtProducerWatcherOperator)]
    reported: dict[str, list[str]] = producer.tests_per_model
    nodes = json.loads((dbt_project / "target" / "manifest.json").read_text())["nodes"]
    tests = {uid: n for uid, n in nodes.items() if n["resource_type"] == "test"}
    models = {uid for uid, n in nodes.items() if n["resource_type"] == "model"}
    # Every test the build runs is still reported by some model's test task.
    assert set(tests) <= {t for listed in reported.values() for t in listed}
    # A relationships test waits only in the test task of the model it is defined on: the
    # referenced model, built earlier, reports its own tests without waiting for it.
    shared = {
        uid: n
        for uid, n in tests.items()
        if n["attached_node"] and len(set(n["depends_on"]["nodes"]) & models) > 1
    }
    assert shared
    for uid, test in shared.items():
        holders = {m for m, listed in reported.items() if uid in listed}
        assert holders == {test["attached_node"]}, uid
    # `dim_date` is read by relationships tests of models built late; it keeps its own tests.
    dim_date = next(m for m in models if m.endswith(".dim_date"))
    assert reported[dim_date]
    assert all(tests[t]["attached_node"] == dim_date for t in reported[dim_date])


def test_a_model_whose_only_tests_are_defined_elsewhere_keeps_them() -> None:
    from orchestration.include.dbt import tests_reported_where_defined

    manifest = {
        "nodes": {
            "test.p.rel": {"attached_node": "model.p.late"},
            "test.p.own": {"attached_node": "model.p.late"},
            "test.p.singular": {"attached_node": None},
        }
    }
    reported = tests_reported_where_defined(
        {
            "model.p.early": ["test.p.rel"],
            "model.p.late": ["test.p.rel", "test.p.own", "test.p.singular"],
            "model.p.other": ["test.p.singular", "test.p.rel"],
        },
        manifest,
    )
    # Its test task needs a result to report, so it waits for the shared test as before.
    assert reported["model.p.early"] == ["test.p.rel"]
    assert reported["model.p.late"] == ["test.p.rel", "test.p.own", "test.p.singular"]
    # A singular test names no model: it stays with each model it reads.
    assert reported["model.p.other"] == ["test.p.singular"]


def test_an_unknown_execution_mode_is_a_clear_import_error(
    monkeypatch: pytest.MonkeyPatch, dbt_project: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from orchestration.include.runner import DAGS_FOLDER

    monkeypatch.setenv("MDP_DBT_PROJECT_DIR", str(dbt_project))
    monkeypatch.setenv("MDP_DBT_EXECUTION_MODE", "turbo")
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    (error,) = bag.import_errors.values()
    assert "MDP_DBT_EXECUTION_MODE='turbo'" in error
    assert "MDP_DBT_EXECUTION_MODE=watcher" in error
