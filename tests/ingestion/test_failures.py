"""Crashes, an unreachable source and the CLI: nothing half-written, a re-run completes the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from ingestion.errors import SourceUnavailable
from ingestion.sync import FAILPOINT_ENV, run_sync
from mdp import paths
from mdp.cli import app
from tests.ingestion.conftest import assert_mirrors, raw_query, raw_snapshot

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


def _sync_in_subprocess(dsn: str, raw: Path, failpoint: str | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(FAILPOINT_ENV, None)
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
    code = f"from ingestion.sync import run_sync; run_sync({dsn!r}, __import__('pathlib').Path({str(raw)!r}))"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, timeout=120).returncode


def _without_airbyte_ids(snapshot: dict[str, list[tuple]], raw: Path) -> dict[str, list[tuple]]:
    """Source columns and state only: a re-run extracts again, so raw ids and times differ."""
    out = {}
    for table, rows in snapshot.items():
        if table == "_state":
            out[table] = rows
            continue
        names = [
            r[0]
            for r in raw_query(
                raw,
                "select column_name from information_schema.columns where table_schema = "
                f"'postgres_airbyte' and table_name = '{table}' order by ordinal_position",
            )
        ]
        keep = [
            i
            for i, n in enumerate(names)
            if n not in ("_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta")
        ]
        out[table] = [tuple(row[i] for i in keep) for row in rows]
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "failpoint",
    [
        "after-commit:users",  # killed between two streams
        "before-commit:payments",  # killed inside a stream, its rows written but not committed
    ],
)
def test_a_crash_mid_sync_then_a_rerun_equals_an_uninterrupted_sync(
    source_dsn: str, tmp_path: Path, cycle: Callable[..., None], failpoint: str
) -> None:
    crashed, reference = tmp_path / "crashed.duckdb", tmp_path / "reference.duckdb"
    cycle(400)
    run_sync(source_dsn, crashed)
    run_sync(source_dsn, reference)
    cycle(400)
    before = raw_snapshot(crashed)

    assert _sync_in_subprocess(source_dsn, crashed, failpoint) == -signal.SIGKILL
    after_crash = raw_snapshot(crashed)
    killed_in = failpoint.split(":")[1]
    # The stream being written when the process died is exactly as before the sync.
    assert after_crash["payments"] == before["payments"]
    if failpoint.startswith("after-commit"):
        assert after_crash[killed_in] != before[killed_in]

    assert _sync_in_subprocess(source_dsn, crashed, None) == 0
    run_sync(source_dsn, reference)
    assert _without_airbyte_ids(raw_snapshot(crashed), crashed) == _without_airbyte_ids(
        raw_snapshot(reference), reference
    )
    assert_mirrors(source_dsn, crashed)


def test_source_down_gives_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "warehouse" / "raw.duckdb"
    dead = f"postgresql://postgres@/app?host={tmp_path}&port=1"
    with pytest.raises(SourceUnavailable) as failure:
        run_sync(dead, raw)
    message = str(failure.value)
    assert "The source PostgreSQL at" in message and "is unavailable" in message
    assert "Nothing was written" in message and "re-run `mdp sync`" in message
    assert not raw.exists() and not raw.parent.exists()


def test_source_down_leaves_an_existing_warehouse_untouched(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None], tmp_path: Path
) -> None:
    cycle(200)
    run_sync(source_dsn, raw_path)
    before = raw_snapshot(raw_path)
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("update app.users set updated_at = clock_timestamp() where id = 1")
    with pytest.raises(SourceUnavailable):
        run_sync(f"postgresql://postgres@/app?host={tmp_path}&port=1", raw_path)
    assert raw_snapshot(raw_path) == before


def test_source_lost_during_a_stream_keeps_that_stream_unchanged(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(300)
    run_sync(source_dsn, raw_path)
    before = raw_snapshot(raw_path)
    cycle(300)

    def cut_the_source(event: str, name: str, rows: int) -> None:
        if event == "stream" and name == "subscriptions":
            with psycopg.connect(source_dsn, autocommit=True) as admin:
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid()"
                )

    with pytest.raises(SourceUnavailable):
        run_sync(source_dsn, raw_path, progress=cut_the_source)
    after = raw_snapshot(raw_path)
    assert after["subscriptions"] == before["subscriptions"]
    assert after["payments"] == before["payments"]
    assert after["users"] != before["users"]  # committed before the source went away

    run_sync(source_dsn, raw_path)
    assert_mirrors(source_dsn, raw_path)


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


def test_cli_explains_an_unreachable_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_SOURCE_DSN", f"postgresql://postgres@/app?host={tmp_path}&port=1")
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "Sync failed." in result.output and "Nothing was written" in result.output
