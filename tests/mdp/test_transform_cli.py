"""`mdp transform` and the readers of ANALYTICS: a typo in a selection and a damaged file are errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core import paths
from exports.sample import build_sample_warehouse
from mdp.cli import app
from tests.transform import fixture

runner = CliRunner()


def flat(text: str) -> str:
    """Output without the line breaks the terminal width puts in."""
    return " ".join(text.split())


@pytest.fixture
def home(private_home: Path) -> Path:
    return private_home


def _cut_in_half(path: Path) -> bytes:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return path.read_bytes()


def test_a_selection_that_matches_nothing_is_an_error(home: Path) -> None:
    fixture.write_duckdb(paths.raw_db(), fixture.build())
    result = runner.invoke(app, ["transform", "--select", "nosuchmodel"])
    assert result.exit_code == 1, result.output
    assert "--select 'nosuchmodel' matches no model, test or seed" in flat(result.output)
    assert "Net revenue" not in result.output
    assert not paths.analytics_db().exists()


def test_a_damaged_analytics_file_names_its_rebuild_everywhere(home: Path) -> None:
    build_sample_warehouse(paths.analytics_db(), payments=20_000, months=6)
    fixture.write_duckdb(paths.raw_db(), fixture.build())
    damaged = _cut_in_half(paths.analytics_db())

    for args in (["export"], ["transform"], ["transform", "summary"], ["status"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        text = flat(result.output)
        assert "is damaged" in text and "mdp transform --full-refresh" in text, (args, text)
        assert "Traceback" not in result.output
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert "mdp transform --full-refresh" in status["analytics"]["error"]
    assert paths.analytics_db().read_bytes() == damaged  # nothing touched it


@pytest.mark.slow
def test_a_full_refresh_moves_a_damaged_analytics_file_aside_and_rebuilds_it(home: Path) -> None:
    build_sample_warehouse(paths.analytics_db(), payments=20_000, months=6)
    fixture.write_duckdb(paths.raw_db(), fixture.build())
    damaged = _cut_in_half(paths.analytics_db())

    result = runner.invoke(app, ["transform", "--full-refresh"])
    assert result.exit_code == 0, result.output
    (aside,) = paths.warehouse_dir().glob("analytics.duckdb.damaged-*")
    assert aside.read_bytes() == damaged
    assert f"moved to {aside}" in flat(result.output)
    assert "Net revenue by plan" in result.output
    assert runner.invoke(app, ["status"]).exit_code == 0
    _full_refresh_of_a_model_rebuilds_it_and_what_reads_it_only()


def _count(table: str) -> int:
    with duckdb.connect(str(paths.analytics_db()), read_only=True) as con:
        row = con.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


def _full_refresh_of_a_model_rebuilds_it_and_what_reads_it_only() -> None:
    """The runbook's `mdp transform --full-refresh --select fct_payments+`, on the build above."""
    # Rows gone wrong: a row with no source row in the incremental model and in an incremental
    # model the selection does not reach (an incremental run keeps both), and a mart emptied.
    with duckdb.connect(str(paths.analytics_db())) as con:
        for table, key in (("fct_payments", "payment_id"), ("dim_users", "user_id")):
            con.execute(
                f"insert into intermediate.{table} "
                f"select * replace (-1 as {key}) from intermediate.{table} limit 1"
            )
        marts = con.execute("select count(*) from finance.net_revenue_by_plan").fetchone()
        con.execute("delete from finance.net_revenue_by_plan")
    assert marts and marts[0] > 0

    args = ["transform", "--full-refresh", "--select", "fct_payments+"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # The model was rebuilt from RAW, and what reads it too; the model outside the selection
    # was left as it was.
    assert _count("intermediate.fct_payments where payment_id = -1") == 0
    assert _count("finance.net_revenue_by_plan") == marts[0]
    assert _count("intermediate.dim_users where user_id = -1") == 1
