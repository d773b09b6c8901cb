"""`mdp demo`: one simulated day through the Airflow DAG, told in a few lines, with working next steps."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from core.paths import REPO_ROOT
from mdp.cli import app
from mdp.demo import NEXT_STEPS

runner = CliRunner()
MDP = str(Path(sys.executable).with_name("mdp"))


def test_the_days_option_states_one_default() -> None:
    shown = " ".join(runner.invoke(app, ["demo", "--help"]).output.split())
    assert "MDP_DEMO_DAYS" in shown
    assert re.findall(r"default: (\d+)", shown) == ["3"]


def test_no_help_shows_flags_as_bool() -> None:
    commands = ["", "generate", "sync", "transform", "export", "dashboard", "demo", "status"]
    for command in commands:
        shown = runner.invoke(app, [*command.split(), "--help"]).output
        assert "<bool>" not in shown, command


def test_make_help_has_no_colour_codes_when_piped() -> None:
    run = subprocess.run(["make", "help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and "demo" in run.stdout
    assert "\033" not in run.stdout


@pytest.mark.slow
def test_demo_runs_a_day_through_the_dag_in_a_few_lines() -> None:
    # In its own process, as `make demo` runs it: what the libraries log must not reach the
    # terminal, and the run's own Airflow home is created under MDP_HOME. A home of its own, as
    # on a fresh clone: the session's home holds other tests' RAW and source.
    mdp_home = Path(tempfile.mkdtemp(prefix="mdp-demo-"))
    mdp_home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("MDP_SOURCE_DSN", None)
    env.update(MDP_HOME=str(mdp_home), MDP_DEMO_DAYS="1", COLUMNS="100")
    try:
        run = subprocess.run(
            [MDP, "demo"], env=env, capture_output=True, text=True, timeout=900, check=False
        )
        assert run.returncode == 0, run.stdout + run.stderr
        out = run.stdout
        lines = out.splitlines()
        # Three simulated days print two more lines than this one.
        assert len(lines) <= 58, out
        assert run.stderr == ""
        assert not re.search(r"\[(info|warning|debug)\s*\]|WARNING|Traceback", out), out
        # The day ran every task of the DAG it parsed: one per dbt model at least, and more.
        parsed = re.search(r"DAG mdp_daily parsed in [\d.]+s: (\d+) tasks, (\d+) of them dbt", out)
        assert parsed, out
        tasks, dbt_tasks = int(parsed.group(1)), int(parsed.group(2))
        models = [p for p in (REPO_ROOT / "transform" / "models").rglob("*.sql")]
        assert dbt_tasks >= len(models) and tasks > dbt_tasks, out
        assert re.search(rf"Day 1/1 \(ending [\d-]+\): {tasks} tasks in", out), out
        assert "Net revenue by plan" in out and "MRR by plan" in out
        log = mdp_home / "logs" / "demo.log"
        assert out.count(str(log)) == 1
        # The libraries' output went there, and none of it is a warning.
        library = log.read_text()
        assert "airflow" in library.lower()
        assert not re.search(r"\[warning|WARNING", library), library[-3000:]
        assert str(mdp_home / "warehouse" / "analytics.duckdb") in out
        for command, _ in NEXT_STEPS:
            assert command in out
        url = re.search(r"Dashboard\s+(http://127\.0\.0\.1:\d+)", out)
        assert url, out
        with urllib.request.urlopen(f"{url.group(1)}/_stcore/health", timeout=5) as health:
            assert health.status == 200
        # `make dashboard` after the demo points at the running server.
        again = subprocess.run(
            [MDP, "dashboard", "--port", url.group(1).rsplit(":", 1)[1]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout
        status = subprocess.run([MDP, "status", "--json"], env=env, capture_output=True, text=True)
        dsn = json.loads(status.stdout)["source"]["local_dsn"]
        with psycopg.connect(dsn) as conn:
            users = conn.execute("select count(*) from app.users").fetchone()
        assert users is not None and users[0] > 0
    finally:
        subprocess.run([MDP, "dashboard", "--stop"], env=env, capture_output=True, timeout=60)
        subprocess.run([MDP, "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(mdp_home, ignore_errors=True)
