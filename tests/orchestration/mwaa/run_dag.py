"""Run inside the MWAA-version environment: one daily run of the bundle's DAG with `dag.test()` (JSON report).

The DAG comes from the stand-in's dags/ folder, as MWAA loads it; its connections and variables
from AIRFLOW_CONN_* / AIRFLOW_VAR_*, standing for the Secrets Manager backend. Task logs go to
stdout; the report is the last line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime

import structlog
from airflow import plugins_manager
from airflow.models.dagbag import DagBag
from airflow.utils import db

DAG_ID = "mdp_daily"
WATCHDOG_TASK_ID = "deadline_watchdog"


def main(dag_folder: str, day: str) -> None:
    # dag.test() runs each task under an in-process supervisor that logs every request of the
    # task at debug level, the secrets it asks to mask included (Airflow 3.0.6; a worker's
    # supervisor is a process of its own and logs none). Task logs stay at INFO, as on a worker.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    started = time.monotonic()
    db.resetdb()
    migrated = time.monotonic()
    plugins_manager.ensure_plugins_loaded()
    bag = DagBag(dag_folder=dag_folder, include_examples=False)
    if bag.import_errors or DAG_ID not in bag.dags:
        raise SystemExit(f"the DAG {DAG_ID} did not load from {dag_folder}: {bag.import_errors}")
    dag = bag.dags[DAG_ID]
    parsed = time.monotonic()
    logical_date = datetime.fromisoformat(day)
    # The watchdog is marked successful, not run: a run whose deadline has not passed would
    # keep dag.test() waiting for the watchdog's next look, 3 minutes later, and a past day's run
    # would raise `deadline_missed`. watch_deadline.py runs it for real on this Airflow.
    run = dag.test(
        logical_date=logical_date, run_after=logical_date, mark_success_pattern=WATCHDOG_TASK_ID
    )
    ran = time.monotonic()
    tis = run.get_task_instances()
    print(
        json.dumps(
            {
                "state": str(getattr(run.state, "value", run.state)),
                "tasks": {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis},
                "task_seconds": {
                    ti.task_id: (ti.end_date - ti.start_date).total_seconds()
                    for ti in tis
                    if ti.start_date and ti.end_date
                },
                "seconds": {
                    "migrate": migrated - started,
                    "parse": parsed - migrated,
                    "run": ran - parsed,
                },
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
