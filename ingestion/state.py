"""Per-stream sync state, kept in the RAW warehouse so it commits in the same transaction as the data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from ingestion.raw import run

# Beside the raw tables but outside the schema dbt reads, like Airbyte's own internal schema.
STATE_SCHEMA = "airbyte_internal"
STATE_TABLE = f"{STATE_SCHEMA}.mdp_stream_state"


@dataclass(frozen=True)
class StreamState:
    stream: str
    cursor_field: str
    cursor_value: datetime | None
    generation_id: int
    sync_id: int
    synced_at: datetime
    rows_read: int
    rows_inserted: int
    rows_updated: int


_COLUMNS = (
    "stream varchar primary key, cursor_field varchar, cursor_value timestamptz, generation_id bigint, "
    "sync_id bigint, synced_at timestamptz, rows_read bigint, rows_inserted bigint, "
    "rows_updated bigint"
)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    run(con, f"create schema if not exists {STATE_SCHEMA}")
    run(con, f"create table if not exists {STATE_TABLE} ({_COLUMNS})")


def load_all(con: duckdb.DuckDBPyConnection) -> dict[str, StreamState]:
    """Every stream's saved state; empty when the warehouse has never been synced."""
    exists = run(
        con,
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [STATE_SCHEMA, STATE_TABLE.split(".")[1]],
    )[0]
    if not exists[0]:
        return {}
    rows = run(
        con,
        "select stream, cursor_field, cursor_value, generation_id, sync_id, synced_at, "
        f"rows_read, rows_inserted, rows_updated from {STATE_TABLE}",
    )
    return {row[0]: StreamState(*row) for row in rows}


def save(con: duckdb.DuckDBPyConnection, state: StreamState) -> None:
    """Replaces the stream's state; the caller's transaction makes it atomic with the data."""
    run(
        con,
        f"insert or replace into {STATE_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            state.stream,
            state.cursor_field,
            state.cursor_value,
            state.generation_id,
            state.sync_id,
            state.synced_at,
            state.rows_read,
            state.rows_inserted,
            state.rows_updated,
        ],
    )
