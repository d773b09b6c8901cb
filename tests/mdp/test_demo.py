"""`mdp demo`: one simulated day through the Airflow DAG, then the marts and where everything is."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from mdp.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_demo_runs_a_day_through_the_dag_and_says_where_everything_is(
    pg_server: str, mdp_home: Path
) -> None:
    result = runner.invoke(app, ["demo", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert "Day 1/1" in result.output and "tasks succeeded" in result.output
    assert "net revenue" in result.output.lower() and "mrr" in result.output.lower()
    assert str(mdp_home / "warehouse" / "analytics.duckdb") in result.output
    dsn = json.loads(runner.invoke(app, ["status", "--json"]).output)["source"]["local_dsn"]
    with psycopg.connect(dsn) as conn:
        users = conn.execute("select count(*) from app.users").fetchone()
    assert users is not None and users[0] > 0
