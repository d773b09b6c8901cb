"""Crashes and an unreachable source: nothing half-written, and a re-run completes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from ingestion.errors import SourceUnavailable
from ingestion.sync import FAILPOINT_ENV, run_sync
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
    stage, killed_in = failpoint.split(":")
    if stage == "before-commit":
        # Its rows were written, but the transaction died with the process.
        assert after_crash[killed_in] == before[killed_in]
    else:
        assert after_crash[killed_in] != before[killed_in]
    # No stream is half-written: each is as before the sync, or whole (its cursor moved).
    moved = {row[0] for row in set(after_crash["_state"]) - set(before["_state"])}
    for table in ("users", "banks", "credit_cards", "subscriptions", "payments"):
        if table not in moved:
            assert after_crash[table] == before[table], table

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

    # Holding a lock on subscriptions parks the sync's read there; the source then goes away.
    locker = psycopg.connect(source_dsn)
    locker.execute("lock table app.subscriptions in access exclusive mode")

    # Streams are read in catalog order: once credit_cards is committed, the read is parked on
    # subscriptions.
    def cut_the_source(event: str, name: str, rows: int) -> None:
        if event == "committed" and name == "credit_cards":
            with psycopg.connect(source_dsn, autocommit=True) as admin:
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = current_database() and pid not in (pg_backend_pid(), %s)",
                    (locker.info.backend_pid,),
                )

    try:
        with pytest.raises(SourceUnavailable) as failure:
            run_sync(source_dsn, raw_path, progress=cut_the_source)
    finally:
        locker.rollback()
        locker.close()
    assert "terminat" in str(failure.value)
    after = raw_snapshot(raw_path)
    assert after["subscriptions"] == before["subscriptions"]
    assert after["payments"] == before["payments"]
    assert after["users"] != before["users"]  # committed whole before the source went away

    run_sync(source_dsn, raw_path)
    assert_mirrors(source_dsn, raw_path)


def test_status_reports_the_raw_file_and_each_cursor(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    from ingestion.status import raw_status

    assert raw_status(raw_path) == {
        "path": str(raw_path),
        "exists": False,
        "bytes": 0,
        "streams": {},
    }
    cycle(100)
    result = run_sync(source_dsn, raw_path)
    status = raw_status(raw_path)
    assert status["exists"] and status["bytes"] > 0
    cursors = {s.stream: s.cursor.isoformat() for s in result.streams if s.cursor}
    assert {n: v["cursor"] for n, v in status["streams"].items()} == cursors
    assert set(cursors) == {"plans", "users", "banks", "credit_cards", "subscriptions", "payments"}
