"""`make airflow` on a port other than 8080: the real scheduler runs a triggered day to success."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from airflow.executors.local_executor import LocalExecutor

from orchestration.include import executor, standalone
from tests.orchestration.conftest import FAST_SETTINGS

DAG_ID = "mdp_daily"
# Bounded waits: a run whose tasks cannot reach the execution API retries for half an hour.
START_TIMEOUT = 600
RUN_TIMEOUT = 1500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_execution_api_address_follows_the_port() -> None:
    settings = standalone.airflow_settings(8089, "watcher")
    assert settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://127.0.0.1:8089/execution/"
    )
    assert settings["AIRFLOW__API__PORT"] == "8089"


def test_a_busy_port_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("AIRFLOW_PORT", str(port))
        assert standalone.main() == 1
    out = capsys.readouterr().out
    assert f"Port {port} on 127.0.0.1 is in use" in out and "AIRFLOW_PORT=" in out


def test_an_unknown_execution_mode_is_an_error_before_airflow_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_PORT", str(_free_port()))
    monkeypatch.setenv("MDP_DBT_EXECUTION_MODE", "turbo")
    assert standalone.main() == 2
    out = capsys.readouterr().out
    assert "MDP_DBT_EXECUTION_MODE='turbo'" in out and "Airflow was not started" in out


def test_make_airflow_runs_the_local_executor_that_imports_dbt_before_it_forks() -> None:
    name = standalone.airflow_settings(8089, "watcher")["AIRFLOW__CORE__EXECUTOR"]
    module, _, cls = name.rpartition(".")
    chosen = getattr(importlib.import_module(module), cls)
    assert issubclass(chosen, LocalExecutor) and chosen is executor.PreloadingLocalExecutor


def test_the_preload_imports_dbt_and_the_targets_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_TARGET", "local")
    imported = executor.preload()
    assert {"dbt.cli.main", "cosmos.operators.local", "dbt.adapters.duckdb"} <= set(imported)
    assert "dbt.adapters.duckdb" in sys.modules
    # Locally the generator, loader and exports tasks find their modules imported too.
    assert {"orchestration.include.local_steps", "orchestration.include.publishing"} <= set(
        imported
    )
    monkeypatch.setenv("MDP_TARGET", "cloud")
    assert "orchestration.include.local_steps" not in executor.modules_to_preload()
    assert "dbt.adapters.snowflake" in executor.modules_to_preload()


def test_a_module_that_does_not_import_is_logged_and_the_scheduler_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(executor, "MODULES", ("mdp_no_such_module",))
    monkeypatch.setenv("MDP_TARGET", "nowhere")
    with caplog.at_level("WARNING", logger=executor.__name__):
        assert executor.preload() == {}
    assert "Could not import mdp_no_such_module" in caplog.text
    assert "each dbt task imports it itself" in caplog.text


@pytest.fixture
def airflow_on_another_port(
    mdp_home: Path, source_db_factory: Callable[[], str], dbt_project: Path
) -> Iterator[dict[str, Any]]:
    """`python -m orchestration.include.standalone` (what `make airflow` runs) on a free port."""
    home = Path(tempfile.mkdtemp(prefix="mdp-airflow-standalone-"))
    port = _free_port()
    env = {
        **os.environ,
        **FAST_SETTINGS,
        "AIRFLOW_PORT": str(port),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "MDP_HOME": str(mdp_home / "standalone"),
        "MDP_SOURCE_DSN": source_db_factory(),
        "MDP_DBT_PROJECT_DIR": str(dbt_project),
        # Runs only when triggered: no scheduled run competes with the triggered one.
        "MDP_DAG_SCHEDULE": "",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # One retry absorbs a task lost to a starved heartbeat on a loaded machine; a task that
        # cannot reach the execution API fails every attempt, so it still fails the run.
        "MDP_DAG_RETRIES": "1",
        "MDP_DAG_RETRY_DELAY_SECONDS": "5",
        # The run takes longer than this: the scheduler must fire the deadline's alert.
        "MDP_DAG_DEADLINE": "1s",
    }
    env.pop("MDP_TARGET", None)
    # `make airflow`'s own default (watcher) is under test, not the in-process runs' setting.
    env.pop("MDP_DBT_EXECUTION_MODE", None)
    log = home / "standalone.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestration.include.standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "home": home,
            "log": log,
            "process": process,
            "alerts_log": Path(env["MDP_HOME"]) / "alerts.log",
        }
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # The scheduler's task processes outlive `airflow standalone` when it is stopped.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        # Kept when the run failed, for its task logs (the failure message names the folder).
        if not (home / "failed").exists():
            shutil.rmtree(home, ignore_errors=True)


def _wait(what: str, check: Callable[[], Any], timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(2)
    tail = log.read_text(errors="replace")[-4000:]
    raise AssertionError(f"{what} not within {timeout} s. Airflow's output ends with:\n{tail}")


@pytest.mark.slow
@pytest.mark.postgres
def test_a_triggered_day_runs_to_success_under_the_scheduler(
    airflow_on_another_port: dict[str, Any],
) -> None:
    url, home, log = (airflow_on_another_port[k] for k in ("url", "home", "log"))
    passwords = home / "simple_auth_manager_passwords.json.generated"
    _wait(
        "the API server",
        lambda: httpx.get(f"{url}/api/v2/monitor/health", timeout=30).is_success,
        START_TIMEOUT,
        log,
    )
    _wait("the admin password file", passwords.exists, START_TIMEOUT, log)
    user, password = next(iter(json.loads(passwords.read_text()).items()))
    token = httpx.post(
        f"{url}/auth/token", json={"username": user, "password": password}, timeout=60
    )
    token.raise_for_status()
    api = httpx.Client(
        base_url=f"{url}/api/v2",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=60,
    )
    _wait("the DAG parsed", lambda: api.get(f"/dags/{DAG_ID}").is_success, START_TIMEOUT, log)

    triggered = api.post(f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
    assert triggered.is_success, triggered.text
    run_id = triggered.json()["dag_run_id"]

    def finished() -> str | None:
        state = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
        return state if state in ("success", "failed") else None

    state = _wait("the triggered run", finished, RUN_TIMEOUT, log)
    tasks = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    states = {t["task_id"]: t["state"] for t in tasks.json()["task_instances"]}
    if state != "success":
        (home / "failed").touch()
        failed = [t for t, s in states.items() if s not in ("success", "skipped")]
        logs = sorted((home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        tail = logs[-1].read_text(errors="replace")[-3000:] if logs else ""
        raise AssertionError(f"run {state}; not succeeded: {failed}; logs in {home}\n{tail}")
    assert set(states.values()) == {"success"}, states
    assert {"generate", "sync", "publish"} <= set(states)
    # `make airflow` runs watcher mode: one dbt build, and a task per model reporting it.
    assert "transform.dbt_producer_watcher" in states
    assert "transform.fct_payments.run" in states and "transform.fct_payments.test" in states
    assert not [t for t in states if t.endswith("_model_build")]
    # The scheduler imported dbt before forking its worker, so the task processes inherit it.
    assert "Imported for the dbt tasks in" in log.read_text(errors="replace")

    # The run outlived its 1 s deadline: the scheduler ran the callback through the executor,
    # and the local notifier wrote one alert for this run, without failing it.
    alerts_log = airflow_on_another_port["alerts_log"]

    def deadline_alerts() -> list[dict[str, Any]]:
        lines = alerts_log.read_text().splitlines() if alerts_log.exists() else []
        found = [json.loads(line) for line in lines]
        return [a for a in found if a["kind"] == "deadline_missed"]

    (missed,) = _wait("the deadline's alert", deadline_alerts, 120, log)
    assert missed["run_id"] == run_id and missed["dag_id"] == DAG_ID
    assert missed["link"].endswith(f"/runs/{quote(run_id)}")
