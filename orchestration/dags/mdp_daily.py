"""Daily mdp pipeline: sync the source, then build the dbt project with Cosmos, then publish."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# The Airflow host may load this folder without the project installed: make its root importable.
_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.append(str(_REPO_ROOT))

from airflow.sdk import DAG, task  # noqa: E402
from cosmos import DbtTaskGroup  # noqa: E402
from cosmos.operators.local import DbtSourceLocalOperator  # noqa: E402

from core import paths  # noqa: E402
from orchestration.include import alerts, dbt  # noqa: E402
from orchestration.include.settings import (  # noqa: E402
    AIRBYTE_CONN_ID,
    AIRBYTE_CONNECTION_ID_VARIABLE,
    DAG_ID,
    Settings,
)

settings = Settings.from_env()
# A run still going after this long fails; its unfinished tasks are skipped.
DAGRUN_TIMEOUT = timedelta(hours=6)

default_args: dict[str, Any] = {
    "owner": "mdp",
    "retries": settings.retries,
    "retry_delay": settings.retry_delay,
    "retry_exponential_backoff": True,
    "max_retry_delay": settings.retry_delay * 4,
    "execution_timeout": settings.task_timeout,
    # After a task's last try: one alert through the target's notifier.
    "on_failure_callback": alerts.on_task_failure,
}

with DAG(
    dag_id=DAG_ID,
    description=f"Sync, transform with dbt (Cosmos), publish — {settings.target} target",
    schedule=settings.schedule,
    start_date=datetime(2026, 1, 1),
    # Every sync is incremental from the saved cursor, so one run catches up any missed days.
    catchup=False,
    max_active_runs=1,
    max_active_tasks=dbt.max_active_tasks(settings),
    default_args=default_args,
    dagrun_timeout=DAGRUN_TIMEOUT,
    tags=["mdp", settings.target, "dbt", "cosmos"],
    # A run still unfinished this long after its scheduled time (after it was queued, when the
    # DAG is only triggered) raises an alert, where Airflow has deadlines: not on MWAA's 3.0.6,
    # where the watchdog task below raises it.
    **alerts.deadline_args(settings),
    doc_md=__doc__,
) as dag:

    def source_freshness() -> DbtSourceLocalOperator:
        """dbt's source freshness on RAW: a warning alerts and goes on, an error stops the run."""
        # The same dbt as the model tasks: in a virtualenv of its own on MWAA, in-process here.
        execution = dbt.execution_config(settings.dbt_execution_mode)
        return DbtSourceLocalOperator(
            task_id=alerts.FRESHNESS_TASK_ID,
            invocation_mode=execution.invocation_mode,
            dbt_executable_path=str(execution.dbt_executable_path),
            project_dir=str(settings.dbt_project_dir),
            profile_config=dbt.profile_config(settings),
            execution_timeout=timedelta(minutes=15),
            cache_dir=dbt.partial_parse_cache(f"{DAG_ID}__{alerts.FRESHNESS_TASK_ID}"),
            on_warning_callback=alerts.on_freshness_warning,
            # Locally, dbt reads the DuckDB paths of profiles.yml from MDP_HOME, as in the group.
            env={"MDP_HOME": str(paths.local_home())} if settings.target == "local" else None,
        )

    if settings.target == "local":

        @task(execution_timeout=settings.task_timeout)
        def generate(logical_date: Any = None, dag_run: Any = None) -> dict[str, Any]:
            """Generator cycles for the simulated day ending at the run's logical date."""
            # Runs triggered without a logical date simulate the day ending when they were due.
            day_end = logical_date or dag_run.run_after
            # Deferred for parse speed: the generator and the loader are only needed at run time.
            from orchestration.include import local_steps

            return local_steps.generate_day(day_end, settings)

        @task(execution_timeout=settings.sync_timeout)
        def sync() -> dict[str, Any]:
            """Incremental, deduplicated, reconciled load of the source into RAW."""
            # Deferred for parse speed, as in `generate`.
            from orchestration.include import local_steps

            return local_steps.sync()

        upstream = generate() >> sync() >> source_freshness()
    else:
        # Deferred for parse speed: the Airbyte provider and its API client take about half a
        # second to import, and the local target, which never syncs through Airbyte, parses
        # the DAG without them.
        from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator

        from orchestration.include.airbyte import AirbyteSyncSensor

        trigger = AirbyteTriggerSyncOperator(
            task_id="airbyte_trigger_sync",
            airbyte_conn_id=AIRBYTE_CONN_ID,
            connection_id=f"{{{{ var.value.{AIRBYTE_CONNECTION_ID_VARIABLE} }}}}",
            asynchronous=True,
            execution_timeout=timedelta(minutes=5),
        )
        wait = AirbyteSyncSensor(
            task_id="sync",
            airbyte_conn_id=AIRBYTE_CONN_ID,
            airbyte_job_id=trigger.output,  # type: ignore[arg-type]
            deferrable=True,
            poke_interval=settings.airbyte_poll_interval.total_seconds(),
            timeout=settings.sync_timeout.total_seconds(),
            execution_timeout=settings.sync_timeout,
        )
        upstream = trigger >> wait >> source_freshness()

    transform = DbtTaskGroup(
        group_id="transform",
        project_config=dbt.project_config(settings),
        profile_config=dbt.profile_config(settings),
        render_config=dbt.render_config(settings.dbt_execution_mode),
        execution_config=dbt.execution_config(settings.dbt_execution_mode),
        operator_args=dbt.operator_args(settings),
    )
    if settings.dbt_execution_mode == "watcher":
        # A test reading several models is reported with the model that defines it, so that the
        # model tasks keep pace with the build instead of finishing one by one after it.
        dbt.report_tests_where_defined(transform, settings)

    @task(execution_timeout=settings.task_timeout)
    def publish() -> dict[str, Any]:
        """Check the marts, then refresh the Parquet exports and the dashboard's data."""
        # Deferred for parse speed: the exports and warehouse readers are only needed at run time.
        from orchestration.include import publishing

        return publishing.publish(settings)

    upstream >> transform >> publish()

    # Where Airflow has no DAG deadlines (MWAA's 3.0.6), a watchdog task beside the others
    # raises the deadline's alert; elsewhere there is none, and the DAG's tasks are as above.
    alerts.deadline_watchdog(settings, timeout=DAGRUN_TIMEOUT)
