"""Fixtures and oracles for the loader: RAW must mirror the source's rows exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from core.catalog import STREAMS
from source_generator import GeneratorConfig, generate_cycle

Rows = list[tuple[Any, ...]]


@pytest.fixture
def raw_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "raw.duckdb"


@pytest.fixture
def cycle(source_dsn: str) -> Callable[..., None]:
    """Runs one generator cycle (inserts, updates, soft deletes, late rows) on the source.

    Cycles are two hours apart, as in production, and in the past, so rows a test writes "now"
    are always the newest.
    """
    start = datetime.now(UTC) - timedelta(days=30)
    counter = [0]

    def run(rows: int = 300) -> None:
        counter[0] += 1
        clock = start + timedelta(hours=2 * counter[0])
        with psycopg.connect(source_dsn) as conn:
            generate_cycle(conn, GeneratorConfig(rows_per_cycle=rows, seed=counter[0]), clock)

    return run


def source_columns(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'app' and table_name = %s order by ordinal_position",
            (table,),
        ).fetchall()
    return [r[0] for r in rows]


def source_rows(dsn: str, table: str, columns: list[str] | None = None) -> Rows:
    cols = ", ".join(columns or source_columns(dsn, table))
    with psycopg.connect(dsn) as conn:
        return [_norm(r) for r in conn.execute(f"select {cols} from app.{table} order by id")]


def raw_rows(path: Path, table: str, columns: list[str] | str) -> Rows:
    cols = columns if isinstance(columns, str) else ", ".join(columns)
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("set timezone = 'UTC'")
        rows = con.execute(f"select {cols} from postgres_airbyte.{table} order by id").fetchall()
    finally:
        con.close()
    return [_norm(r) for r in rows]


def raw_query(path: Path, query: str) -> Rows:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("set timezone = 'UTC'")
        return con.execute(query).fetchall()
    finally:
        con.close()


def _norm(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # PostgreSQL and DuckDB return the same instants in different zone objects, uuids as objects.
    out = []
    for v in row:
        if isinstance(v, datetime):
            v = v.astimezone(UTC)
        elif v.__class__.__name__ == "UUID":
            v = str(v)
        out.append(v)
    return tuple(out)


def assert_mirrors(dsn: str, path: Path) -> None:
    """Every stream's RAW table holds exactly the source's rows: one per id, same values."""
    for s in STREAMS:
        cols = source_columns(dsn, s.name)
        expected = source_rows(dsn, s.name, cols)
        actual = raw_rows(path, s.name, cols)
        assert len(actual) == len(expected), (
            f"{s.name}: {len(actual)} rows, expected {len(expected)}"
        )
        assert actual == expected, f"{s.name}: RAW differs from the source"


def raw_snapshot(path: Path) -> dict[str, Rows]:
    """Every RAW table in full, Airbyte columns included, plus the saved state."""
    snap = {s.name: raw_rows(path, s.name, "*") for s in STREAMS}
    snap["_state"] = raw_query(
        path,
        "select stream, cursor_value, generation_id from airbyte_internal.mdp_stream_state "
        "order by stream",
    )
    return snap
