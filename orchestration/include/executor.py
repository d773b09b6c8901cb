"""Airflow's LocalExecutor, with dbt and Cosmos imported once before it starts its workers.

On Linux the LocalExecutor forks its workers from the scheduler, and each worker forks one
process per task: modules the scheduler imported before the fork are already in every task
process. A dbt task otherwise spends seconds importing dbt, its adapter and Cosmos before it
runs a model; imported here, that cost is paid once per scheduler start instead of once per
task. Each model is still its own Airflow task, run and retried alone. Locally the generator,
the loader and the exports are imported the same way, for the tasks before and after dbt.

`make airflow` selects it with `AIRFLOW__CORE__EXECUTOR=` this module's `PreloadingLocalExecutor`.
"""

from __future__ import annotations

import importlib
import logging
import time

from airflow.executors.local_executor import LocalExecutor

from core.target import UnknownTarget, current_target

# What a dbt task imports before dbt runs: the DAG file's Cosmos wiring, Cosmos's local
# operators, dbt's programmatic runner and its build task.
MODULES = (
    "orchestration.include.dbt",
    "cosmos.operators.local",
    "dbt.cli.main",
    "dbt.task.build",
)
# What each target's tasks load besides: dbt's adapter; locally also the generator, the loader
# and the exports, which the tasks before and after dbt import.
TARGET_MODULES = {
    "local": (
        "dbt.adapters.duckdb",
        "orchestration.include.local_steps",
        "orchestration.include.publishing",
    ),
    "cloud": ("dbt.adapters.snowflake",),
}

log = logging.getLogger(__name__)


def modules_to_preload() -> tuple[str, ...]:
    try:
        extra = TARGET_MODULES.get(current_target(), ())
    except UnknownTarget:
        # The DAG reports an unknown target itself when it loads; here it only means no adapter.
        extra = ()
    return (*MODULES, *extra)


def preload() -> dict[str, float]:
    """Import what dbt tasks need; the seconds each took. A failure is logged, not raised.

    A module that does not import here fails again in the task that needs it, with the full
    error in that task's log, so the scheduler keeps running the tasks that do not need it.
    """
    seconds: dict[str, float] = {}
    for name in modules_to_preload():
        started = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as error:
            log.warning(
                "Could not import %s ahead of the dbt tasks (%s: %s); each dbt task imports it "
                "itself and its log shows the full error.",
                name,
                type(error).__name__,
                error,
            )
            continue
        seconds[name] = time.perf_counter() - started
    log.info("Imported for the dbt tasks in %.1f s: %s", sum(seconds.values()), ", ".join(seconds))
    return seconds


class PreloadingLocalExecutor(LocalExecutor):
    """The LocalExecutor; its forked workers and task processes start with dbt imported."""

    def start(self) -> None:
        preload()
        super().start()
