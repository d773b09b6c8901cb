"""The DAG on MWAA's Airflow: a separate environment with that version, its constraints, Cosmos.

MWAA runs an older Airflow than the project's lock file. The environment is built the way MWAA
builds its own: Airflow pinned, then the bundle's requirements.txt under the constraints (the
vendored copy, as GitHub is out of reach here). dbt is not in it: as on MWAA, it lives in an
environment of its own (here the project's), and Cosmos is pointed at that executable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from core import paths
from infra.mwaa import bundle
from infra.mwaa.config import MWAA_AIRFLOW_VERSION
from tests import contract_marts
from tests.orchestration.cloud_services import (
    MARTS,
    TEST_SETTINGS,
    CloudServices,
    cloud_services,
    generate_day,
    snowflake_query,
)
from tests.orchestration.conftest import FAST_SETTINGS
from tests.orchestration.mwaa import standin
from tests.orchestration.mwaa import warm_dbt as warm_dbt_server

HERE = Path(__file__).resolve().parent
ENV_ROOT = Path(os.environ.get("MDP_MWAA_ENV_DIR", paths.REPO_ROOT / ".local" / "mwaa-env"))
BUILD_SECONDS: dict[str, float] = {}


def _requirements() -> str:
    """The bundle's requirements.txt, with Airflow itself pinned as MWAA's image has it."""
    text = bundle.requirements_txt(
        MWAA_AIRFLOW_VERSION,
        bundle.locked_versions(),
        bundle.vendored_constraints(MWAA_AIRFLOW_VERSION),
    )
    # The remote constraints file is replaced by the vendored one (`-c` below).
    lines = [line for line in text.splitlines() if not line.startswith("--constraint")]
    return "\n".join([f"apache-airflow=={MWAA_AIRFLOW_VERSION}", *lines]) + "\n"


def _uv() -> str:
    """uv from PATH, else the one `uv run` names in $UV, else the Makefile's own (.tools/bin)."""
    for candidate in (
        shutil.which("uv"),
        os.environ.get("UV"),
        str(paths.REPO_ROOT / ".tools" / "bin" / "uv"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "uv not found on PATH, in $UV or in .tools/bin: run the tests with `make test` "
        "(it installs uv into .tools/) or put uv on PATH"
    )


@pytest.fixture(scope="session")
def mwaa_python() -> Path:
    """Python of an environment with MWAA's Airflow, built once per requirements and constraints."""
    uv = _uv()
    constraints = bundle.constraints_file(MWAA_AIRFLOW_VERSION)
    requirements = _requirements()
    key = hashlib.sha256((requirements + constraints.read_text()).encode()).hexdigest()[:12]
    env = ENV_ROOT / f"airflow-{MWAA_AIRFLOW_VERSION}-{key}"
    python = env / "bin" / "python"
    if not (env / ".built").is_file():
        shutil.rmtree(env, ignore_errors=True)
        env.parent.mkdir(parents=True, exist_ok=True)
        (env.parent / f"{env.name}.txt").write_text(requirements)
        started = time.monotonic()
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(env)], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--python",
                str(python),
                "-c",
                str(constraints),
                "-r",
                str(env.parent / f"{env.name}.txt"),
            ],
            check=True,
        )
        BUILD_SECONDS["build"] = time.monotonic() - started
        (env / ".built").write_text(f"{BUILD_SECONDS['build']:.1f}\n")
    return python


# The stack's RAW database as the startup script exports it (not the cloud run's names: fakesnow
# keeps one catalog per test process).
RAW_DATABASE = "MWAA_RAW"


@pytest.fixture(scope="module")
def mwaa_bundle(dbt_project: Path, tmp_path_factory: pytest.TempPathFactory) -> standin.StandIn:
    """The bundle the deploy uploads, unpacked as MWAA unpacks it, dbt in its own virtualenv."""
    home = tmp_path_factory.mktemp("mwaa-home")
    env = bundle.StartupEnv(
        stack="dev", raw_database=RAW_DATABASE, exports_target=str(home / "exports")
    )
    # dbt-snowflake of the project's environment stands for the startup script's virtualenv.
    dbt = Path(sys.executable).parent / "dbt"
    return standin.build(home, dbt_project / "target" / "manifest.json", env, dbt)


@pytest.fixture(scope="module")
def parsed(mwaa_python: Path, mwaa_bundle: standin.StandIn) -> Any:
    """The bundle's dags/ as MWAA's Airflow parses it, on the startup script's environment."""
    env = standin.airflow_environment(
        mwaa_bundle, MDP_HOME=str(mwaa_bundle.home / "mdp"), AIRFLOW__CORE__UNIT_TEST_MODE="True"
    )
    result = subprocess.run(
        [str(mwaa_python), str(HERE / "mwaa" / "parse_dag.py"), str(mwaa_bundle.dags)],
        capture_output=True,
        text=True,
        env=env,
        cwd=mwaa_bundle.home,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), mwaa_bundle.dbt


def test_the_environment_runs_mwaas_airflow_and_the_constraints_pins(parsed: Any) -> None:
    report, _ = parsed
    constrained = bundle.vendored_constraints(MWAA_AIRFLOW_VERSION)
    assert report["airflow"] == MWAA_AIRFLOW_VERSION
    assert report["airbyte_provider"] == constrained["apache-airflow-providers-airbyte"]
    assert report["cosmos"] == bundle.locked_versions()["astronomer-cosmos"]
    # dbt stays out of Airflow's environment, as the startup script keeps it on MWAA.
    assert report["dbt_core_installed"] is False


def test_the_dag_passes_its_integrity_test_on_mwaas_airflow(
    parsed: Any, mwaa_bundle: standin.StandIn
) -> None:
    report, dbt = parsed
    assert report["import_errors"] == {}
    # The .airflowignore keeps Airflow from importing plugins.zip's packages as plugins.
    folder = str(mwaa_bundle.plugins)
    assert {k: v for k, v in report["plugin_import_errors"].items() if k.startswith(folder)} == {}
    assert report["dag_ids"] == ["mdp_daily"]
    # The DAG came from the bundle: dags/ holds the loader, the code is plugins.zip's.
    assert report["dag_file"] == str(mwaa_bundle.dags / "mdp_daily.py")
    assert report["code_file"].startswith(str(mwaa_bundle.plugins) + os.sep)
    # Parsing read the manifest and never started dbt.
    assert report["dbt_loads"] == ["LoadMode.DBT_MANIFEST"] and report["dbt_starts"] == []
    tasks = report["tasks"]
    assert tasks["airbyte_trigger_sync"]["type"] == "AirbyteTriggerSyncOperator"
    manifest = json.loads((mwaa_bundle.plugins / bundle.MANIFEST).read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    dbt_tasks = {t: v for t, v in tasks.items() if t.endswith("_model_build")}
    assert {t.rsplit(".", 1)[-1].removesuffix("_model_build") for t in dbt_tasks} == models
    # Cosmos runs the dbt executable of dbt's own environment, as the startup script names it.
    for task in dbt_tasks.values():
        assert task["invocation_mode"].endswith("SUBPROCESS")
        assert task["dbt_executable_path"] == str(dbt)
    # Every task's final failure alerts; Airflow 3.0 has no DAG deadlines, so none is declared.
    for task in tasks.values():
        assert "orchestration.include.alerts.on_task_failure" in task["on_failure_callback"]
    assert report["deadline"] == "None"
    # In its place, a watchdog task raises the deadline's alert: the default 2 hours after the
    # scheduled time, looking every 3 minutes without holding a worker slot in between.
    assert report["watchdog"] == {
        "type": "DeadlineWatchdog",
        "mode": "reschedule",
        "poke_interval": 180.0,
        "reference": "logical_date",
        "deadline_seconds": 7200.0,
        "trigger_rule": "always",
        "upstream": [],
        "downstream": [],
        "scheduler_reschedules": True,
    }


def test_the_deadline_watchdog_alerts_once_in_real_runs_on_mwaas_airflow(
    mwaa_python: Path, tmp_path: Path
) -> None:
    """Airflow 3.0.6 runs the watchdog (`mwaa/watch_deadline.py`): its task-state reads and reschedules are real."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "MDP_", "PYTHON", "VIRTUAL_ENV"))
    }
    env |= {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "MDP_HOME": str(tmp_path / "mdp"),
        "PYTHONPATH": str(paths.REPO_ROOT),
    }
    result = subprocess.run(
        [str(mwaa_python), str(HERE / "mwaa" / "watch_deadline.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Late: one alert at its first look, and the run still succeeds.
    assert report["late_run"]["alerts"] == ["deadline_missed"]
    assert report["late_run"]["state"] == "success"
    assert report["late_run"]["watchdog_reschedules"] == 0
    # On time but failed: the watchdog looked again later, then finished without an alert; the
    # failed task, not the watchdog, decides the run's state.
    failed = report["failed_run"]
    assert failed["alerts"] == []
    assert failed["watchdog_reschedules"] >= 1
    assert failed["state"] == "failed"
    assert failed["tasks"] == {
        "work": "failed",
        "publish": "upstream_failed",
        "deadline_watchdog": "success",
    }


def _upstream_closure(tasks: dict[str, Any], task_id: str) -> set[str]:
    seen: set[str] = set()
    todo = [task_id]
    while todo:
        for parent in tasks[todo.pop()]["upstream"]:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_on_mwaas_airflow_the_dag_syncs_waits_checks_freshness_then_dbt_then_publishes(
    parsed: Any,
) -> None:
    tasks = parsed[0]["tasks"]
    assert tasks["sync"]["type"] == "AirbyteSyncSensor"
    assert tasks["sync"]["upstream"] == ["airbyte_trigger_sync"]
    assert _upstream_closure(tasks, "source_freshness") == {"airbyte_trigger_sync", "sync"}
    dbt_tasks = [t for t in tasks if t.startswith("transform.")]
    assert len(dbt_tasks) > 15
    for task_id in dbt_tasks:
        assert "source_freshness" in _upstream_closure(tasks, task_id), task_id
    # The deadline watchdog stands apart: nothing waits on it, and it waits on nothing.
    assert _upstream_closure(tasks, "publish") == set(tasks) - {"publish", "deadline_watchdog"}


def test_on_mwaas_airflow_every_task_retries_and_has_a_timeout(parsed: Any) -> None:
    for task_id, task in parsed[0]["tasks"].items():
        assert task["retries"] >= 2, task_id
        assert task["retry_delay"] >= 60, task_id
        assert task["execution_timeout"] is not None, task_id
        assert task["execution_timeout"] <= 3 * 3600, task_id


# fakesnow keeps one catalog per test process: not the 3.3 cloud run's analytics database.
ANALYTICS_DATABASE = "MWAA_ANALYTICS"
# Not a day of the other DAG runs of the session.
RUN_DAY = datetime(2026, 5, 4, tzinfo=UTC)
# Half the DAG tests' day: enough rows for every model and mart, and half the sync's inserts
# into fakesnow.
SMALL_DAY = {"MDP_CYCLES_PER_DAY": "2"}


@dataclass
class MwaaRun:
    """One daily run of the bundle's DAG on MWAA's Airflow: its report, its log, the services."""

    report: dict[str, Any]
    log: str
    services: CloudServices
    exports: Path
    expected: contract_marts.ContractMarts
    dbt: Path  # the executable of dbt's own environment, as the startup script names it


# A Snowflake profile as Cosmos writes it for the cloud target (profile `mdp`, target `prod`):
# parsing reads no credential, and dbt's partial parsing checks only these names.
_PARSE_PROFILE = """mdp:
  target: prod
  outputs:
    prod:
      type: snowflake
      account: FAKESNOW
      user: DEV_DBT_SVC
      password: unused-by-parse
      role: DEV_DATA_ENGINEER
      database: MWAA_ANALYTICS
      warehouse: DEV_TRANSFORMING_WH
      schema: staging
"""


@contextmanager
def warm_dbt(mwaa_bundle: standin.StandIn, env: dict[str, str]) -> Iterator[None]:
    """The stand-in's `dbt` forks a dbt that has done its imports (`mwaa/warm_dbt.py`).

    Each Cosmos task starts dbt afresh, and dbt's imports take about 4 s of CPU, most of a task's
    time here: sharing them keeps the run within the suite's time budget. dbt still runs in its
    own environment's Python (the project's), outside Airflow's, one process per call. The
    project is parsed once ahead, and the stand-in's project ships the `partial_parse.msgpack`,
    so the model tasks never parse it from scratch.
    """
    folder = mwaa_bundle.home / "dbt-warm-up"
    project = folder / "transform"
    shutil.copytree(
        mwaa_bundle.plugins / "transform", project, ignore=shutil.ignore_patterns("target")
    )
    (folder / "profiles.yml").write_text(_PARSE_PROFILE)
    parse = ["parse", "--project-dir", str(project), "--profiles-dir", str(folder),
             "--profile", "mdp", "--target", "prod", "--quiet"]  # fmt: skip
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run([str(dbt), *parse], env=env, cwd=folder, check=True, timeout=600)
    shutil.copy2(
        project / "target" / "partial_parse.msgpack",
        mwaa_bundle.plugins / "transform" / "target" / "partial_parse.msgpack",
    )
    socket_path = folder / "dbt.sock"
    server = subprocess.Popen(
        [sys.executable, str(HERE / "mwaa" / "warm_dbt.py"), str(socket_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=folder,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        mwaa_bundle.dbt.unlink()
        mwaa_bundle.dbt.write_text(warm_dbt_server.client_script(sys.executable, str(socket_path)))
        mwaa_bundle.dbt.chmod(0o755)
        yield
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.fixture(scope="module")
def mwaa_run(
    mwaa_python: Path,
    mwaa_bundle: standin.StandIn,
    parsed: Any,
    source_db_factory: Callable[[], str],
) -> Iterator[MwaaRun]:
    """`mwaa/run_dag.py`: the cloud path on Airflow 3.0.6, with Airbyte and Snowflake faked here.

    The fakes listen on 127.0.0.1 in this process; the run reaches them through the stack's
    connections, which MWAA reads from Secrets Manager and the run from AIRFLOW_CONN_*. dbt is
    the stand-in's executable, in an environment of its own, as the startup script makes it.
    """
    home = mwaa_bundle.home / "mdp"
    source_dsn = source_db_factory()
    settings = FAST_SETTINGS | SMALL_DAY
    with (
        cloud_services(home, source_dsn, RAW_DATABASE, ANALYTICS_DATABASE) as s,
        pytest.MonkeyPatch.context() as mp,
    ):
        # The generator host's day, on this process's side.
        mp.setenv("MDP_SOURCE_DSN", source_dsn)
        for key, value in settings.items():
            mp.setenv(key, value)
        generate_day(RUN_DAY)
        env = standin.airflow_environment(
            mwaa_bundle,
            MDP_HOME=str(home),
            AIRFLOW__COSMOS__CACHE_DIR=str(mwaa_bundle.home / "cosmos"),
            AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
            DO_NOT_TRACK="1",
            SCARF_ANALYTICS="false",
            **s.connections,
            **TEST_SETTINGS,
            **settings,
        )
        log_file = mwaa_bundle.home / "run.log"
        with warm_dbt(mwaa_bundle, env), log_file.open("w") as log:
            result = subprocess.run(
                [str(mwaa_python), str(HERE / "mwaa" / "run_dag.py"), str(mwaa_bundle.dags),
                 RUN_DAY.isoformat()],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=mwaa_bundle.home,
                # A run takes about two minutes; a busy shared machine can stretch it fivefold.
                timeout=1200,
            )  # fmt: skip
        text = log_file.read_text(errors="replace")
        assert result.returncode == 0, text[-3000:]
        with psycopg.connect(source_dsn) as conn:
            expected = contract_marts.compute(conn)
        yield MwaaRun(
            json.loads(text.strip().splitlines()[-1]), text, s, Path(env["MDP_EXPORTS_TARGET"]),
            expected, mwaa_bundle.dbt,
        )  # fmt: skip


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.mwaa_run
@pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result")
def test_the_cloud_path_runs_end_to_end_on_mwaas_airflow(mwaa_run: MwaaRun) -> None:
    report, log, s = mwaa_run.report, mwaa_run.log, mwaa_run.services
    states = report["tasks"]
    not_ok = {t: v for t, v in states.items() if v != "success"}
    jobs = {j.job_id: (j.status, j.error) for j in s.airbyte.jobs.values()}
    errors = [line for line in log.splitlines() if "ERROR" in line or "rror" in line][-8:]
    assert report["state"] == "success", (not_ok, jobs, errors)
    assert set(states.values()) == {"success"}, states
    assert {"airbyte_trigger_sync", "sync", "source_freshness", "publish"} <= set(states)
    assert sum(t.startswith("transform.") for t in states) > 15
    # The watchdog was marked successful, not run (`mwaa/run_dag.py` says why).
    assert "[DAG TEST] Marking success for <Task(DeadlineWatchdog): deadline_watchdog>" in log

    # The trigger started a sync of the stack's connection; the sensor's trigger, run in line,
    # polled until it succeeded.
    (create,) = s.airbyte.requests("POST", "/v1/jobs")
    assert create.body == {"connectionId": s.connection_id, "jobType": "sync"}
    assert create.headers["Authorization"].removeprefix("Bearer ") in s.airbyte.tokens
    (job,) = s.airbyte.jobs.values()
    assert job.answered[0] == "running" and job.answered[-1] == "succeeded", job.answered
    assert len(s.sync.synced) == 1
    assert "[DAG TEST] running trigger in line" in log

    # dbt of its own environment built the marts in Snowflake from the synced RAW tables.
    for command in ("'source', 'freshness'", "'build', '--select'"):
        assert f"Running command: ['{mwaa_run.dbt}', {command}" in log, command
    finance = f"{ANALYTICS_DATABASE}.FINANCE"
    net = {p.lower(): (Decimal(r), n) for p, r, n in snowflake_query(
        s.snowflake, f"select plan_name, net_revenue, succeeded_payments from {finance}.net_revenue_by_plan"
    )}  # fmt: skip
    assert net == {p.lower(): v for p, v in mwaa_run.expected.net_revenue_by_plan.items()}
    assert sum(n for _, n in net.values()) > 0
    counts = {
        name: snowflake_query(s.snowflake, f"select count(*) from {finance}.{name}")[0][0]
        for name in MARTS
    }
    assert all(n > 0 for n in counts.values()), counts

    # Publishing exported each mart, row for row, to the exports target the startup script sets.
    for name, rows in counts.items():
        files = sorted((mwaa_run.exports / name).rglob("*.parquet"))
        assert files, f"no Parquet export of {name} in {mwaa_run.exports}"
        assert sum(pq.read_metadata(f).num_rows for f in files) == rows, name

    # The Snowflake key never reached the log.
    extra = json.loads(s.connections["AIRFLOW_CONN_SNOWFLAKE_DBT"])["extra"]
    pem = base64.b64decode(extra["private_key_content"]).decode()
    key_lines = [line for line in pem.splitlines() if "-----" not in line]
    assert not [line for line in key_lines if line in log]
