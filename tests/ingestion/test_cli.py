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


def _cut_in_half(path: Path) -> bytes:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return path.read_bytes()


def test_a_damaged_raw_file_is_reported_and_rebuilt_from_the_source(
    source_dsn: str, cycle: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    cycle(300)
    monkeypatch.setenv("MDP_SOURCE_DSN", source_dsn)
    runner = CliRunner()
    first = json.loads(runner.invoke(app, ["sync", "--json"]).stdout)
    damaged = _cut_in_half(paths.raw_db())

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 1
    assert "is damaged" in status.output and "mdp sync --full-refresh" in status.output
    as_json = runner.invoke(app, ["status", "--json"])
    assert as_json.exit_code == 1
    assert "mdp sync --full-refresh" in json.loads(as_json.stdout)["raw"]["error"]

    for args in (["sync"], ["sync", "--stream", "plans"]):
        failed = runner.invoke(app, args)
        assert failed.exit_code == 1, failed.output
        assert "is damaged and cannot be read" in failed.output
        assert "Next: Rebuild RAW from the source with `mdp sync --full-refresh`" in failed.output
        assert "Traceback" not in failed.output
        assert paths.raw_db().read_bytes() == damaged  # left exactly as it was

    rebuilt = runner.invoke(app, ["sync", "--full-refresh", "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    report = json.loads(rebuilt.stdout)
    aside = Path(report["damaged_moved_to"])
    assert aside.parent == paths.raw_db().parent and aside.read_bytes() == damaged
    assert report["reconciled"] is True
    assert {s["stream"]: s["inserted"] for s in report["streams"]} == {
        s["stream"]: s["rows_read"] for s in first["streams"]
    }
    assert runner.invoke(app, ["status"]).exit_code == 0
