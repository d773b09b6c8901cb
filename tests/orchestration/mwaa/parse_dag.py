"""Run inside the MWAA-version environment: parse the DAG folder and report what Airflow saw (JSON)."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version

from airflow.models.dagbag import DagBag


def main(dag_folder: str) -> None:
    bag = DagBag(dag_folder=dag_folder, include_examples=False)
    dag = bag.dags.get("mdp_daily")
    tasks = {}
    if dag is not None:
        for task in dag.tasks:
            tasks[task.task_id] = {
                "type": type(task).__name__,
                "invocation_mode": str(getattr(task, "invocation_mode", "") or ""),
                "dbt_executable_path": str(getattr(task, "dbt_executable_path", "") or ""),
                "on_failure_callback": [
                    f"{c.__module__}.{c.__name__}" for c in _callbacks(task.on_failure_callback)
                ],
            }
    report = {
        "airflow": version("apache-airflow"),
        "cosmos": version("astronomer-cosmos"),
        "airbyte_provider": version("apache-airflow-providers-airbyte"),
        "dbt_core_installed": _installed("dbt-core"),
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
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
