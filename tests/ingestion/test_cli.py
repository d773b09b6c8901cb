"""`mdp sync`, the RAW section of `mdp status` and the sync step of `mdp demo`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import paths
from mdp.cli import app

pytestmark = pytest.mark.postgres


def test_cli_syncs_and_reports_each_stream(
    source_dsn: str, cycle: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    cycle(200)
    monkeypatch.setenv("MDP_SOURCE_DSN", source_dsn)
    runner = CliRunner()

    shown = runner.invoke(app, ["sync"])
    assert shown.exit_code == 0, shown.output
    for header in ("rows read", "inserted", "updated", "time", "payments"):
        assert header in shown.output
    assert "match" in shown.output

    as_json = runner.invoke(app, ["sync", "--json", "--stream", "plans"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["raw"] == str(paths.raw_db()) and report["reconciled"] is True
    assert [s["stream"] for s in report["streams"]] == ["plans"]
    assert report["streams"][0]["rows_read"] == 5  # the inclusive cursor re-reads the seed
    assert "5 rows checked (ids " in report["streams"][0]["reconciliation"]

    full = runner.invoke(app, ["sync", "--json", "--stream", "plans", "--reconcile", "full"])
    assert full.exit_code == 0, full.output
    checked = json.loads(full.stdout)["streams"][0]["reconciliation"]
    assert checked.startswith("plans: 5 rows checked (every id)")


def test_cli_explains_an_unreachable_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_SOURCE_DSN", f"postgresql://postgres@/app?host={tmp_path}&port=1")
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "Sync failed." in result.output and "Nothing was written" in result.output


def test_status_json_reports_raw_and_each_cursor(
    source_dsn: str, cycle: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    cycle(100)
    monkeypatch.setenv("MDP_SOURCE_DSN", source_dsn)
    runner = CliRunner()
    synced = json.loads(runner.invoke(app, ["sync", "--json"]).stdout)

    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    raw = json.loads(status.stdout)["raw"]
    assert raw["path"] == str(paths.raw_db()) and raw["exists"] and raw["bytes"] > 0
    assert {n: v["cursor"] for n, v in raw["streams"].items()} == {
        s["stream"]: s["cursor"] for s in synced["streams"]
    }
