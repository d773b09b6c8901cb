"""The DAG on MWAA's Airflow: a separate environment with that version, its constraints, Cosmos.

MWAA runs an older Airflow than the project's lock file. The environment is built the way MWAA
builds its own: Airflow pinned, then the bundle's requirements.txt under the constraints (the
vendored copy, as GitHub is out of reach here). dbt is not in it: as on MWAA, it lives in an
environment of its own (here the project's), and Cosmos is pointed at that executable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from core import paths
from infra.mwaa import bundle
from infra.mwaa.config import MWAA_AIRFLOW_VERSION

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


@pytest.fixture(scope="module")
def parsed(mwaa_python: Path, dbt_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The DAG folder as MWAA's Airflow parses it on the cloud target, with dbt set apart."""
    home = tmp_path_factory.mktemp("mwaa-airflow-home")
    dbt = Path(sys.executable).parent / "dbt"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "MDP_", "PYTHON", "VIRTUAL_ENV"))
    }
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "MDP_TARGET": "cloud",
        "MDP_HOME": str(home / "mdp"),
        "MDP_DBT_PROJECT_DIR": str(dbt_project),
        bundle.DBT_EXECUTABLE_ENV: str(dbt),
    }
    result = subprocess.run(
        [
            str(mwaa_python),
            str(HERE / "mwaa" / "parse_dag.py"),
            str(paths.REPO_ROOT / "orchestration" / "dags"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), dbt


def test_the_environment_runs_mwaas_airflow_and_the_constraints_pins(parsed: Any) -> None:
    report, _ = parsed
    constrained = bundle.vendored_constraints(MWAA_AIRFLOW_VERSION)
    assert report["airflow"] == MWAA_AIRFLOW_VERSION
    assert report["airbyte_provider"] == constrained["apache-airflow-providers-airbyte"]
    assert report["cosmos"] == bundle.locked_versions()["astronomer-cosmos"]
    # dbt stays out of Airflow's environment, as the startup script keeps it on MWAA.
    assert report["dbt_core_installed"] is False


def test_the_dag_passes_its_integrity_test_on_mwaas_airflow(parsed: Any, dbt_project: Path) -> None:
    report, dbt = parsed
    assert report["import_errors"] == {}
    assert report["dag_ids"] == ["mdp_daily"]
    tasks = report["tasks"]
    assert tasks["airbyte_trigger_sync"]["type"] == "AirbyteTriggerSyncOperator"
    manifest = json.loads((dbt_project / "target" / "manifest.json").read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    dbt_tasks = {t: v for t, v in tasks.items() if t.endswith("_model_build")}
    assert {t.rsplit(".", 1)[-1].removesuffix("_model_build") for t in dbt_tasks} == models
    # Cosmos runs the dbt executable of dbt's own environment.
    for task in dbt_tasks.values():
        assert task["invocation_mode"].endswith("SUBPROCESS")
        assert task["dbt_executable_path"] == str(dbt)
    # Every task's final failure alerts; Airflow 3.0 has no DAG deadlines, so none is declared.
    for task in tasks.values():
        assert "orchestration.include.alerts.on_task_failure" in task["on_failure_callback"]
    assert report["deadline"] == "None"
