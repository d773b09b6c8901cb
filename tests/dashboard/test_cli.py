"""`mdp dashboard` and `mdp export` from the command line."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import paths
from dashboard import background
from exports.sample import build_sample_warehouse
from mdp.cli import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MDP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MDP_TARGET", raising=False)
    monkeypatch.delenv("MDP_EXPORTS_TARGET", raising=False)
    return tmp_path / "home"


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.mark.slow
def test_background_dashboard_prints_its_address_and_stops(home: Path) -> None:
    result = runner.invoke(app, ["dashboard", "--background", "--port", "0"])
    try:
        assert result.exit_code == 0, result.output
        match = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+)", result.output)
        assert match, result.output
        assert _up(match.group(1))
        again = runner.invoke(app, ["dashboard", "--background"])
        assert match.group(1) in again.output  # the running server is reused, not doubled
    finally:
        stopped = runner.invoke(app, ["dashboard", "--stop"])
    assert "Dashboard stopped." in stopped.output
    assert not _up(match.group(1))


def test_export_command_reports_tables_and_fails_clearly_without_marts(home: Path) -> None:
    empty = runner.invoke(app, ["export"])
    assert empty.exit_code == 1
    assert "does not exist" in empty.output and "make demo" in empty.output
    build_sample_warehouse(paths.analytics_db(), payments=1_000, months=2)
    target = home / "elsewhere"
    done = runner.invoke(app, ["export", "--target", str(target), "--table", "fct_payments"])
    assert done.exit_code == 0, done.output
    assert "fct_payments" in done.output and "2 partitions by year_month" in done.output
    assert sorted(p.name for p in (target / "fct_payments").iterdir()) == [
        "year_month=2026-09",
        "year_month=2026-10",
    ]


@pytest.mark.slow
def test_background_dashboard_starts_reports_and_stops(home: Path) -> None:
    build_sample_warehouse(paths.analytics_db(), payments=1_000, months=2)
    try:
        started = runner.invoke(app, ["dashboard", "--background", "--port", "0"])
        assert started.exit_code == 0, started.output
        url = background.running()
        assert url is not None and _up(url["url"])
        assert f"Dashboard: {url['url']}" in started.output
    finally:
        stopped = runner.invoke(app, ["dashboard", "--stop"])
    assert stopped.exit_code == 0 and "Dashboard stopped." in stopped.output
    assert background.running() is None
