"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME, set before anything imports Airflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

# Airflow reads its configuration once, at import: this must run before any test imports it.
if "airflow.settings" in sys.modules:
    raise RuntimeError(
        "Airflow was imported before tests/orchestration/conftest.py could point it at a "
        "throwaway home: its DAG bundle would be ~/airflow/dags and every dag.test() would fail "
        "with 'the dag is not serialized'. A test module collected earlier imports Airflow (or "
        "orchestration.include) at module level: move that test under tests/orchestration/."
    )
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mdp-airflow-test-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__API__HOST"] = "127.0.0.1"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(
    Path(__file__).resolve().parents[2] / "orchestration" / "dags"
)

FAST_SETTINGS = {
    # Failures must fail at once: no retries, no retry delay.
    "MDP_DAG_RETRIES": "0",
    "MDP_DAG_RETRY_DELAY_SECONDS": "0",
    # A small simulated day: the DAG's behaviour, not the generator's volume, is under test.
    "MDP_CYCLES_PER_DAY": "4",
    "MDP_ROWS_PER_CYCLE": "400",
    "MDP_SEED": "7",
}


@pytest.fixture(scope="session")
def airflow_home(mdp_home: Path) -> Iterator[Path]:
    """A migrated sqlite metadata DB for the whole session."""
    from orchestration.include import runner

    runner.configure(_AIRFLOW_HOME)
    runner.migrate()
    yield _AIRFLOW_HOME
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def manifest_builder(airflow_home: Path) -> Callable[[Path], Path]:
    """Parses a dbt project into its target/manifest.json, as `make dbt-manifest` does."""
    from orchestration.include import dbt
    from orchestration.include.settings import Settings

    def build(project_dir: Path) -> Path:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MDP_DBT_PROJECT_DIR", str(project_dir))
            mp.delenv("MDP_DBT_MANIFEST", raising=False)
            mp.delenv("MDP_DBT_PROFILES_YML", raising=False)
            return dbt.build_manifest(Settings.from_env())

    return build


@pytest.fixture(scope="session")
def dbt_project(
    tmp_path_factory: pytest.TempPathFactory, manifest_builder: Callable[[Path], Path]
) -> Path:
    """A copy of the repository's dbt project with its manifest built (the repo's target/ is left alone)."""
    from core import paths

    copy = tmp_path_factory.mktemp("dbt") / "transform"
    shutil.copytree(
        paths.REPO_ROOT / "transform",
        copy,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    manifest_builder(copy)
    return copy


def load_dag(monkeypatch: pytest.MonkeyPatch, project_dir: Path, **env: str) -> object:
    """Parse the DAG folder with the given settings; every call re-reads the environment."""
    from orchestration.include import runner

    monkeypatch.setenv("MDP_DBT_PROJECT_DIR", str(project_dir))
    monkeypatch.delenv("MDP_DBT_MANIFEST", raising=False)
    monkeypatch.delenv("MDP_DBT_PROFILES_YML", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runner.load_dag()


@dataclass
class DagRun:
    """What a DAG run in its own process reported, and its task log."""

    ok: bool
    state: str
    tasks: dict[str, str]
    log: str


def run_in_process(day: datetime, log: Path) -> DagRun:
    """One DAG run in its own process, as `make demo` runs it: the task log goes to `log`."""
    run = subprocess.run(
        [sys.executable, "-m", "orchestration.include.runner", day.isoformat(), str(log)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        # A run takes about a minute; a busy shared machine can stretch it tenfold.
        timeout=1200,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return DagRun(
        run.returncode == 0, result["state"], result["tasks"], log.read_text(errors="replace")
    )
