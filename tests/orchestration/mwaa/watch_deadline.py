"""Run inside the MWAA-version environment: the deadline's watchdog in real runs (JSON report).

Two small DAGs, `work >> publish` beside the watchdog, run with `dag.test()` (one task at a
time): one run is past its deadline before it starts (its logical date an hour back, 1 s
allowed), the other fails `work` well before its 1 hour deadline. The report says how each run
ended and which alerts the local notifier logged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task
from airflow.utils import db

from core import paths
from orchestration.include import alerts


def _dag(dag_id: str, deadline: timedelta, fail: bool) -> Any:
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task
        def work() -> None:
            if fail:
                raise RuntimeError("the task fails")

        @task
        def publish() -> None:
            pass

        # Whichever of `work` and the watchdog runs first, `publish` is unfinished at its first look.
        work() >> publish()
        alerts.DeadlineWatchdog(
            task_id=alerts.WATCHDOG_TASK_ID,
            deadline=deadline,
            reference="logical_date",
            timeout=timedelta(minutes=5),
            poke_interval=1,
        )
    return dag


def _reschedules(ti_id: object) -> int:
    """How often the watchdog gave its slot back and asked to look again later."""
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        query = select(func.count()).where(TaskReschedule.ti_id == ti_id)
        return int(session.scalar(query) or 0)


def main() -> None:
    db.resetdb()
    log = paths.alerts_log()
    report = {}
    now = datetime.now(UTC)
    for dag, logical_date in (
        (_dag("late_run", timedelta(seconds=1), fail=False), now - timedelta(hours=1)),
        (_dag("failed_run", timedelta(hours=1), fail=True), now),
    ):
        before = len(log.read_text().splitlines()) if log.exists() else 0
        run = dag.test(logical_date=logical_date)
        logged = log.read_text().splitlines()[before:] if log.exists() else []
        tis = {ti.task_id: ti for ti in run.get_task_instances()}
        report[dag.dag_id] = {
            "state": str(run.state),
            "tasks": {task_id: str(ti.state) for task_id, ti in tis.items()},
            "alerts": [json.loads(line)["kind"] for line in logged],
            "watchdog_reschedules": _reschedules(tis[alerts.WATCHDOG_TASK_ID].id),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
