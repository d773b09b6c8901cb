"""`mdp transform` and the readers of ANALYTICS: a typo in a selection and a damaged file are errors."""

from __future__ import annotations

import json
from pathlib import Path

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
