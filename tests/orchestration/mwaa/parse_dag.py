"""Run inside the MWAA-version environment: parse the DAG folder and report what Airflow saw (JSON)."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from typing import Any

from airflow import plugins_manager
from airflow.models.dagbag import DagBag
from cosmos.dbt.graph import DbtGraph

# Parsing must stay cheap: Cosmos reads the manifest and never starts dbt (`dbt ls`).
LOADS: list[str] = []
DBT_STARTS: list[str] = []


def _guard_dbt() -> None:
    load = DbtGraph.load

    def recording_load(self: DbtGraph, *args: Any, **kwargs: Any) -> None:
        load(self, *args, **kwargs)
        LOADS.append(str(self.load_method))

    def no_dbt(self: DbtGraph, *args: Any, **kwargs: Any) -> None:
        DBT_STARTS.append(type(self).__name__)
        raise AssertionError("the DAG started dbt while it was parsed")

    DbtGraph.load = recording_load  # type: ignore[method-assign]
    for method in ("load_via_dbt_ls", "load_via_dbt_ls_file", "load_via_dbt_ls_cache"):
        setattr(DbtGraph, method, no_dbt)


def main(dag_folder: str) -> None:
    _guard_dbt()
    plugins_manager.ensure_plugins_loaded()
    bag = DagBag(dag_folder=dag_folder, include_examples=False)
    dag = bag.dags.get("mdp_daily")
    tasks = {}
    if dag is not None:
        for task in dag.tasks:
            tasks[task.task_id] = {
                "type": type(task).__name__,
                "upstream": sorted(task.upstream_task_ids),
                "retries": task.retries,
                "retry_delay": task.retry_delay.total_seconds(),
                "execution_timeout": (
                    task.execution_timeout.total_seconds() if task.execution_timeout else None
                ),
                "invocation_mode": str(getattr(task, "invocation_mode", "") or ""),
                "dbt_executable_path": str(getattr(task, "dbt_executable_path", "") or ""),
                "on_failure_callback": [
                    f"{c.__module__}.{c.__name__}" for c in _callbacks(task.on_failure_callback)
                ],
            }
    code = sys.modules.get("orchestration.include.dbt")
    report = {
        "airflow": version("apache-airflow"),
        "cosmos": version("astronomer-cosmos"),
        "airbyte_provider": version("apache-airflow-providers-airbyte"),
        "dbt_core_installed": _installed("dbt-core"),
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "plugin_import_errors": {k: str(v) for k, v in plugins_manager.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
        "dag_file": getattr(dag, "fileloc", None),
        "code_file": getattr(code, "__file__", None),
        "dbt_loads": LOADS,
        "dbt_starts": DBT_STARTS,
        "tasks": tasks,
        "deadline": repr(getattr(dag, "deadline", None)),
        "watchdog": _watchdog(dag),
    }
    print(json.dumps(report))


def _watchdog(dag: object) -> dict | None:
    """The deadline's watchdog task as Airflow built it, if the DAG has one."""
    task = getattr(dag, "task_dict", {}).get("deadline_watchdog")
    if task is None:
        return None
    from airflow.serialization.serialized_objects import SerializedDAG

    # The scheduler knows the task only from the serialized DAG.
    scheduled = SerializedDAG.from_dict(SerializedDAG.to_dict(dag)).get_task(task.task_id)
    return {
        "type": type(task).__name__,
        "mode": task.mode,
        "poke_interval": task.poke_interval,
        "reference": task.reference,
        "deadline_seconds": task.deadline.total_seconds(),
        "trigger_rule": str(task.trigger_rule),
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "scheduler_reschedules": bool(getattr(scheduled, "reschedule", False)),
    }


def _callbacks(value: object) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _installed(name: str) -> bool:
    try:
        version(name)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    main(sys.argv[1])
