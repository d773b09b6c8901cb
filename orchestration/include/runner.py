"""Run the daily DAG in-process with `dag.test()`: Airflow state under one folder, no scheduler."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import paths
from orchestration.include.settings import DAG_ID, EXECUTION_MODE_ENV

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"


def airflow_home() -> Path:
    """`AIRFLOW_HOME` when set, else `airflow/` under the local state folder."""
    return Path(os.environ.get("AIRFLOW_HOME") or paths.local_home() / "airflow").resolve()


def configure(home: Path | None = None, **overrides: str) -> Path:
    """Point Airflow at a local sqlite metadata DB and this repository's DAG folder.

    Must run before the first `import airflow`: Airflow reads its configuration at import time.
    """
    home = (home or airflow_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        # Cosmos reads the OpenLineage namespace from the config, and warns when it is absent.
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mdp",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        # Watcher mode: the build writes every model's result to XCom. With this on, each
        # write would also rewrite a Variable holding all the results so far, a cost that grows
        # with the project; off, Cosmos still saves them there when the build fails or is
        # retried.
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        # dbt resolves the DuckDB paths in profiles.yml from MDP_HOME: make it absolute.
        "MDP_HOME": str(paths.local_home()),
        # dag.test() runs one task at a time: a model's watcher task would wait for a build
        # that cannot start until it ends. In-process runs take local mode; `make airflow`
        # (a real scheduler) passes its own.
        EXECUTION_MODE_ENV: "local",
    }
    if (
        os.environ.get(EXECUTION_MODE_ENV, "local") != "local"
        and EXECUTION_MODE_ENV not in overrides
    ):
        print(
            f"{EXECUTION_MODE_ENV}={os.environ[EXECUTION_MODE_ENV]} needs Airflow's scheduler "
            "(`make airflow`); this run of the DAG in one process uses local mode.",
            file=sys.stderr,
        )
    env.update(overrides)
    forced = ("AIRFLOW_HOME", "MDP_HOME", "AIRFLOW__CORE__DAGS_FOLDER", EXECUTION_MODE_ENV)
    for key, value in env.items():
        if key in forced or key in overrides:
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)
    return home


def migrate() -> None:
    """Create or upgrade the metadata DB; a DB already at the current revision is left as is."""
    from airflow.utils import db

    try:
        db.check_migrations(timeout=1)
    except Exception:
        # A missing or older DB: initdb creates it from the models or runs the migrations.
        db.initdb()


def load_dag() -> Any:
    """The daily DAG, or an error that lists every import error of the DAG folder."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors or DAG_ID not in bag.dags:
        errors = "\n".join(f"{path}:\n{err}" for path, err in bag.import_errors.items())
        raise RuntimeError(f"The DAG {DAG_ID} did not load from {DAGS_FOLDER}.\n{errors}")
    return bag.dags[DAG_ID]


@dataclass
class TaskResult:
    task_id: str
    state: str
    seconds: float


@dataclass
class DayResult:
    logical_date: datetime
    state: str
    seconds: float
    tasks: list[TaskResult] = field(default_factory=list)
    log_file: Path | None = None

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def states(self) -> dict[str, str]:
        return {t.task_id: t.state for t in self.tasks}


@contextlib.contextmanager
def _output_to(log_file: Path | None) -> Iterator[None]:
    """Send everything written to stdout/stderr, dbt and child processes included, to a file."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _record_real_start(run: Any, started_at: datetime) -> None:
    """Give the run its wall-clock start: `dag.test()` records the logical date as its start.

    Without this, the UI shows a simulated day's run as lasting from that day until now.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.id == run.id).update(
            {DagRun.start_date: started_at}, synchronize_session=False
        )
    run.start_date = started_at


def run_day(dag: Any, logical_date: datetime, log_file: Path | None = None) -> DayResult:
    """One DAG run for the simulated day ending at `logical_date`; a re-run replaces that run."""
    start = time.perf_counter()
    started_at = datetime.now(UTC)
    # dag.test() has no scheduler to watch the DAG's deadline, and Airflow 3.3's dag.test()
    # cannot finish a run of a DAG that declares one (it looks the unsaved alert definitions up
    # as stored ids). The scheduler (`make airflow`, the cloud host) keeps the deadline.
    deadline, dag.deadline = dag.deadline, None
    try:
        with _output_to(log_file):
            run = dag.test(logical_date=logical_date, run_after=logical_date)
    finally:
        dag.deadline = deadline
    seconds = time.perf_counter() - start
    _record_real_start(run, started_at)
    tasks = []
    for ti in sorted(run.get_task_instances(), key=lambda t: t.start_date or logical_date):
        took = (
            (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else 0.0
        )
        tasks.append(TaskResult(ti.task_id, str(getattr(ti.state, "value", ti.state)), took))
    state = str(getattr(run.state, "value", run.state))
    return DayResult(logical_date, state, seconds, tasks, log_file)


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestration.include.runner DAY_END [LOG]`: one DAG run, its task states as JSON."""
    import json

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m orchestration.include.runner 2026-03-11T00:00:00+00:00 [log file]")
        return 2
    configure()
    migrate()
    result = run_day(
        load_dag(), datetime.fromisoformat(args[0]), Path(args[1]) if len(args) > 1 else None
    )
    print(json.dumps({"state": result.state, "seconds": result.seconds, "tasks": result.states()}))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
