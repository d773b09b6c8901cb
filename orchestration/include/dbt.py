"""Cosmos wiring for the dbt project: a pre-built manifest, local execution, one profile per target."""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

import yaml
from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import SnowflakePrivateKeyPemProfileMapping

from core import paths
from orchestration.include import alerts
from orchestration.include.settings import LOCAL_WATCHER_TASKS, SNOWFLAKE_CONN_ID, Settings

# The database dbt builds into comes from the stack's Airflow connection (its ANALYTICS, with
# the stack's name prefix); this variable overrides it, e.g. DBT_DEV for a developer's run.
DATABASE_OVERRIDE_ENV = "MDP_DBT_DATABASE"


class SnowflakeKeyPairProfileMapping(SnowflakePrivateKeyPemProfileMapping):
    """Cosmos's key-pair mapping, also carrying the connection's `protocol`.

    Cosmos maps a connection's `host` and `port` but not its `protocol`, so a connection to an
    endpoint other than the account's HTTPS one (a proxy, or a local Snowflake emulator over
    HTTP) would be reached with the wrong scheme.
    """

    airflow_param_mapping: ClassVar[dict[str, Any]] = {
        **SnowflakePrivateKeyPemProfileMapping.airflow_param_mapping,
        "protocol": "extra.protocol",
    }


class ManifestMissingError(FileNotFoundError):
    """The DAG needs a dbt manifest built ahead of time; the message says how to build it."""


def project_file(project_dir: Path) -> dict[str, Any]:
    with (project_dir / "dbt_project.yml").open() as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def require_manifest(settings: Settings) -> Path:
    if not settings.dbt_manifest.is_file():
        raise ManifestMissingError(
            f"dbt manifest not found at {settings.dbt_manifest}. The DAG renders one task per dbt "
            "model from it and never runs `dbt ls` at parse time. Build it with `make dbt-manifest` "
            "(or `uv run python -m orchestration.include.dbt`), then reload the DAG. Nothing ran."
        )
    return settings.dbt_manifest


def profile_name(settings: Settings) -> str:
    return str(project_file(settings.dbt_project_dir).get("profile", "mdp"))


def profile_config(settings: Settings) -> ProfileConfig:
    if settings.target == "local":
        # DuckDB needs no credentials: the project's own profiles.yml holds the file paths.
        return ProfileConfig(
            profile_name=profile_name(settings),
            target_name=settings.dbt_target,
            profiles_yml_filepath=settings.dbt_profiles_yml,
        )
    profile_args = {"schema": "staging"}
    if os.environ.get(DATABASE_OVERRIDE_ENV):
        profile_args["database"] = os.environ[DATABASE_OVERRIDE_ENV]
    return ProfileConfig(
        profile_name=profile_name(settings),
        target_name=settings.dbt_target,
        # Account, user, role, warehouse and the private key come from the Airflow connection,
        # which the Airflow host reads from AWS Secrets Manager: nothing secret is in the repo.
        profile_mapping=SnowflakeKeyPairProfileMapping(
            conn_id=SNOWFLAKE_CONN_ID,
            profile_args=profile_args,
        ),
    )


def project_config(settings: Settings) -> ProjectConfig:
    return ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=require_manifest(settings),
        install_dbt_deps=False,
        # dbt reads the DuckDB paths of profiles.yml from MDP_HOME.
        env_vars={"MDP_HOME": str(paths.local_home())},
    )


def render_config(mode: str = "local") -> RenderConfig:
    if mode == "watcher":
        # One `dbt build` runs every model and test in order, and stops what is downstream of a
        # failed model or test. Each model gets a task reporting its run and one reporting its
        # tests; a test that reads several models is reported with each of them.
        return RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=False,
            emit_datasets=False,
        )
    # BUILD: one task per model running the model and then its tests, so a failing test
    # stops bad rows before any downstream model reads them, at one dbt call per model.
    # A test that reads several models (relationships, reconciliation) gets its own task after
    # all of them: inside one model's task, the other model might not be built yet.
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.BUILD,
        should_detach_multiple_parents_tests=True,
        emit_datasets=False,
    )


# Set where dbt lives in a virtualenv of its own (MWAA's startup script makes one), apart from
# Airflow's packages and constraints.
DBT_EXECUTABLE_ENV = "MDP_DBT_EXECUTABLE"


def execution_config(mode: str = "local") -> ExecutionConfig:
    execution_mode = ExecutionMode.WATCHER if mode == "watcher" else ExecutionMode.LOCAL
    executable = os.environ.get(DBT_EXECUTABLE_ENV)
    if executable:
        # dbt in its own virtualenv: Cosmos runs that executable in a subprocess per dbt call.
        return ExecutionConfig(
            execution_mode=execution_mode,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=executable,
        )
    # dbt runs inside the worker process (dbtRunner): no interpreter start-up per dbt call.
    if mode != "watcher":
        return ExecutionConfig(
            execution_mode=execution_mode,
            invocation_mode=InvocationMode.DBT_RUNNER,
        )
    # The build itself runs as a dbt process of its own: in-process, dbt's threads wait on
    # every progress record Cosmos writes to Airflow (several per model). Measured under the
    # scheduler: 89 s as a process against 99 s in-process. A model task that reruns its model
    # (a retry or a cleared task) still runs dbt in-process.
    return ExecutionConfig(
        execution_mode=execution_mode,
        invocation_mode=InvocationMode.DBT_RUNNER,
        setup_operator_args={
            "invocation_mode": InvocationMode.SUBPROCESS,
            "dbt_executable_path": str(Path(sys.executable).with_name("dbt")),
        },
    )


def partial_parse_cache(name: str) -> Path:
    """Where a dbt task outside the Cosmos group keeps dbt's partial-parse state between runs.

    Cosmos's own tasks keep theirs in its cache folder; a task given none parses the whole
    project on every run (seconds, on this project).
    """
    from cosmos import settings as cosmos_settings

    return Path(cosmos_settings.cache_dir) / name


def freeze_heap(context: Any) -> None:
    """Before each dbt task: move the long-lived heap out of the garbage collector's reach.

    Cosmos runs a full `gc.collect()` after every dbt call. When many dbt tasks share one
    interpreter (`dag.test()`, `make demo`), each collection walks Airflow's and dbt's whole
    heap and costs seconds; frozen objects are skipped. Garbage left by the previous task was
    already collected by then, so nothing collectable is frozen.
    """
    gc.freeze()


def report_failure(context: Any) -> None:
    """After the last try of a dbt task: one line naming the dbt node and dbt's error."""
    task_id: str = context["ti"].task_id
    node = alerts.dbt_node(task_id) or task_id
    error = str(context.get("exception") or "see the dbt output above").strip()
    logging.getLogger(__name__).error(
        "dbt node %s failed in task %s: %s. Every task downstream of it is skipped and "
        "publishing does not run; tables built before it are kept as they are. Fix the model "
        "or its data, then clear this task to resume from here.",
        node,
        task_id,
        error,
    )


# Watcher mode: how often a model's task reads the build's progress. Cosmos's default (10 s)
# would add up to that much after each model along the longest chain of the project.
WATCHER_POKE_SECONDS = 1
# A task that waits longer polls less often, up to this interval: each poll is three requests to
# the API server, which shares the machine's cores with the build.
WATCHER_MAX_WAIT_SECONDS = 3


def tests_reported_where_defined(
    tests_per_model: dict[str, list[str]], manifest: dict[str, Any]
) -> dict[str, list[str]]:
    """Watcher mode: the tests each model's test task waits for.

    Cosmos reports a test that reads several models (a relationships test, a reconciliation
    with the quarantine) with every one of them. The test task of a model built early, such as
    `dim_date`, then waits for tests of models built late, and every model task downstream of it
    waits too: under the scheduler they finished one after another after the build. Here such a
    test is reported with the model that defines it (dbt's `attached_node`) only. A singular test
    names no model and stays with each it reads; a model left with no test of its own keeps them
    all, since its test task needs a result to report.
    """
    nodes = manifest.get("nodes", {})
    reported: dict[str, list[str]] = {}
    for model, tests in tests_per_model.items():
        own = [t for t in tests if nodes.get(t, {}).get("attached_node") in (None, model)]
        reported[model] = own or list(tests)
    return reported


def report_tests_where_defined(group: Any, settings: Settings) -> None:
    """Point the watcher build of `group` at `tests_reported_where_defined`."""
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    with settings.dbt_manifest.open() as f:
        manifest = json.load(f)
    reported = tests_reported_where_defined(group.dbt_graph.tests_per_model, manifest)
    group.dbt_graph.tests_per_model = reported
    for task in group.children.values():
        if isinstance(task, DbtProducerWatcherOperator):
            task.tests_per_model = reported


def max_active_tasks(settings: Settings) -> int:
    """How many of the DAG's tasks may run at once."""
    if settings.target != "local":
        return 8
    # DuckDB takes one writer process at a time. In local mode every dbt task writes, so tasks
    # run one after another; in watcher mode only the build writes, and the model tasks read
    # Airflow's own records of its progress.
    return LOCAL_WATCHER_TASKS if settings.dbt_execution_mode == "watcher" else 1


def operator_args(settings: Settings) -> dict[str, Any]:
    args: dict[str, Any] = {
        "execution_timeout": settings.task_timeout,
        "pre_execute": freeze_heap,
        # The log line for whoever reads the task log, then the one alert of this failure.
        "on_failure_callback": [report_failure, alerts.on_task_failure],
    }
    if settings.dbt_execution_mode == "watcher":
        # The model tasks poll the build's progress in their own process, in a slot of their
        # own: deferring would hand each wait to the triggerer and start a second process per
        # model to finish it, which costs more than the wait on a project this size.
        args |= {
            "poke_interval": WATCHER_POKE_SECONDS,
            "exponential_backoff": True,
            "max_wait": WATCHER_MAX_WAIT_SECONDS,
            "deferrable": False,
        }
    return args


def build_manifest(settings: Settings | None = None) -> Path:
    """Parse the dbt project into target/manifest.json (no database connection needed)."""
    from dbt.cli.main import dbtRunner

    settings = settings or Settings.from_env()
    # Named as Cosmos names it in every dbt call: dbt keeps the partial-parse state this writes
    # only for a call with the same profile argument, and parses the whole project otherwise.
    args = [
        "parse",
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_profiles_yml.parent),
        "--profile",
        profile_name(settings),
        "--target",
        settings.dbt_target if settings.target == "local" else "local",
        "--quiet",
    ]
    result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(
            f"`dbt {' '.join(args)}` failed: {result.exception or 'see the dbt output above'}. "
            "Fix the dbt project, then build the manifest again."
        )
    return settings.dbt_project_dir / "target" / "manifest.json"


def manifest_is_stale(settings: Settings) -> bool:
    """True when the manifest is missing or older than a file of the dbt project."""
    manifest = settings.dbt_manifest
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    project = settings.dbt_project_dir
    sources = [project / "dbt_project.yml"]
    for folder in ("models", "macros", "tests", "seeds", "snapshots"):
        sources += [p for p in (project / folder).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def ensure_manifest(settings: Settings) -> Path:
    """The manifest, parsed again only when the project changed since it was built."""
    return build_manifest(settings) if manifest_is_stale(settings) else settings.dbt_manifest


if __name__ == "__main__":
    print(build_manifest())
