"""A seeded history taken through the local pipeline: generated into PostgreSQL, synced, built."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from source_generator import GeneratorConfig
from source_generator.history import seed_history


def build_seeded_history(home: Path, dsn: str, config: GeneratorConfig, months: int) -> datetime:
    """`months` of history up to today's midnight into `dsn`, synced to RAW and built by dbt
    under MDP_HOME=`home`; the history's first instant."""
    from ingestion.sync import run_sync
    from transform.runner import release_duckdb, run_dbt

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(dsn) as conn:
        history = seed_history(conn, config, end, timedelta(hours=2), months=months)
    assert history.start is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_HOME", str(home))
        mp.delenv("MDP_TARGET", raising=False)
        run_sync(conninfo=dsn)
        release_duckdb()
        outcome = run_dbt(["build"], target="local", target_path=home / "dbt-target")
        release_duckdb()
    assert outcome.success, outcome.statuses
    return history.start
