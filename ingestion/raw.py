"""Writes streams into the RAW DuckDB file with Airbyte's layout and Append + Deduped semantics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.catalog import RAW_SCHEMA, Stream
from ingestion.errors import WarehouseBusy
from ingestion.source import Aggregates
from ingestion.types import SourceColumn, quote

SCHEMA = RAW_SCHEMA.lower()

# The columns Airbyte's Snowflake destination adds, in its order, ahead of the source columns.
AIRBYTE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_airbyte_raw_id", "VARCHAR"),
    ("_airbyte_extracted_at", "TIMESTAMPTZ"),
    ("_airbyte_meta", "JSON"),
    ("_airbyte_generation_id", "BIGINT"),
)
AIRBYTE_COLUMN_NAMES = frozenset(name for name, _ in AIRBYTE_COLUMNS)


def run(con: duckdb.DuckDBPyConnection, query: str, params: object = None) -> list[tuple[Any, ...]]:
    """Executes and drains the result: DuckDB refuses new work while a result is pending."""
    return con.execute(query, params).fetchall()


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the RAW file that is always closed, so the file's lock is held briefly."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise WarehouseBusy(
            f"The RAW warehouse {path} is locked by another process: {exc}",
            "Nothing was written: RAW and every saved cursor are unchanged.",
            "Wait for the other process (a running sync, dbt or the dashboard) to finish, "
            "then re-run `mdp sync`.",
        ) from exc
    try:
        run(con, "set timezone = 'UTC'")
        yield con
    finally:
        con.close()


def table_name(stream: Stream) -> str:
    return f"{quote(SCHEMA)}.{quote(stream.name)}"


def raw_columns(con: duckdb.DuckDBPyConnection, stream: Stream) -> dict[str, str] | None:
    """The RAW table's columns and types, or None when the table does not exist yet."""
    rows = run(
        con,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [SCHEMA, stream.name],
    )
    return {name: dtype for name, dtype in rows} or None


def create_table(
    con: duckdb.DuckDBPyConnection, stream: Stream, columns: list[SourceColumn]
) -> None:
    run(con, f"create schema if not exists {quote(SCHEMA)}")
    defs = [f"{quote(n)} {t}" for n, t in AIRBYTE_COLUMNS]
    defs += [f"{quote(c.name)} {c.duckdb_type}" for c in columns]
    run(con, f"create table {table_name(stream)} ({', '.join(defs)})")


def add_new_columns(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    columns: list[SourceColumn],
    existing: dict[str, str],
) -> list[str]:
    """Schema drift: a column new in the source is added to RAW (NULL for rows loaded before)."""
    added = []
    for c in columns:
        if c.name not in existing:
            run(con, f"alter table {table_name(stream)} add column {quote(c.name)} {c.duckdb_type}")
            added.append(c.name)
    return added


@dataclass
class LoadResult:
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    max_cursor: datetime | None = None
    columns_added: list[str] = field(default_factory=list)


def _select_list(columns: list[SourceColumn], raw_types: dict[str, str]) -> str:
    """The batch's columns cast to RAW's types, then Airbyte's columns filled from parameters."""
    cols = [f"cast({quote(c.name)} as {raw_types[c.name]}) as {quote(c.name)}" for c in columns]
    return ", ".join(
        [
            "cast(uuid() as varchar) as _airbyte_raw_id",
            "cast($extracted_at as timestamptz) as _airbyte_extracted_at",
            "cast($meta as json) as _airbyte_meta",
            "cast($generation_id as bigint) as _airbyte_generation_id",
            *cols,
        ]
    )


def load(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    columns: list[SourceColumn],
    chunks: Iterable[pa.Table],
    *,
    extracted_at: datetime,
    generation_id: int,
    sync_id: int,
    replace_all: bool,
    on_rows: Callable[[int], None] | None = None,
) -> LoadResult:
    """Merges the chunks into the stream's RAW table inside the caller's transaction.

    One row per primary key survives: the latest by (cursor desc, _airbyte_extracted_at desc).
    A re-read row identical to the one in RAW keeps its first extraction, so re-reading the
    lookback window changes nothing.
    """
    table = table_name(stream)
    existing = raw_columns(con, stream)
    if replace_all and existing is not None:
        run(con, f"drop table {table}")
        existing = None
    result = LoadResult()
    if existing is None:
        create_table(con, stream, columns)
    else:
        result.columns_added = add_new_columns(con, stream, columns, existing)
    raw_types = raw_columns(con, stream) or {}
    is_empty = run(con, f"select count(*) = 0 from (select 1 from {table} limit 1)")[0]
    direct = bool(is_empty[0])

    params = {
        "extracted_at": extracted_at,
        "meta": json.dumps({"changes": [], "sync_id": sync_id}),
        "generation_id": generation_id,
    }
    select = _select_list(columns, raw_types)
    names = ", ".join([*(quote(n) for n, _ in AIRBYTE_COLUMNS), *(quote(c.name) for c in columns)])
    target = table if direct else "_batch"
    if not direct:
        run(con, f"create or replace temp table _batch as select {names} from {table} limit 0")
    for chunk in chunks:
        if chunk.num_rows == 0:
            continue
        con.register("_chunk", chunk)
        run(con, f"insert into {target} ({names}) select {select} from _chunk", params)
        con.unregister("_chunk")
        result.rows_read += chunk.num_rows
        top = pc.max(chunk.column(stream.cursor_field)).as_py()
        if top is not None and (result.max_cursor is None or top > result.max_cursor):
            result.max_cursor = top
        if on_rows is not None:
            on_rows(chunk.num_rows)
    if direct:
        result.inserted = result.rows_read
        return result
    _merge(con, stream, columns, names, result)
    run(con, "drop table _batch")
    return result


def _merge(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    columns: list[SourceColumn],
    names: str,
    result: LoadResult,
) -> None:
    table = table_name(stream)
    same_key = " and ".join(f"r.{quote(k)} = b.{quote(k)}" for k in stream.primary_key)
    cursor = quote(stream.cursor_field)
    differs = " or ".join(f"r.{quote(c.name)} is distinct from b.{quote(c.name)}" for c in columns)
    newer = f"b.{cursor} > r.{cursor} or (b.{cursor} = r.{cursor} and ({differs}))"
    replaced = run(
        con, f"delete from {table} as r using _batch as b where {same_key} and ({newer})"
    )[0]
    result.updated = int(replaced[0])
    added = run(
        con,
        f"insert into {table} ({names}) select {names} from _batch as b "
        f"where not exists (select 1 from {table} as r where {same_key})",
    )[0]
    result.inserted = int(added[0]) - result.updated


def aggregates(con: duckdb.DuckDBPyConnection, stream: Stream) -> Aggregates:
    """The same count and checksum as the source computes, over the RAW table."""
    pk, cursor = quote(stream.primary_key[0]), quote(stream.cursor_field)
    row = run(
        con,
        f"""
        select count(*), coalesce(sum(k), 0), coalesce(sum(us), 0),
               coalesce(sum((k % 1000003) * (us % 1000033)), 0)
        from (select cast({pk} as bigint) as k, epoch_us({cursor}) as us
              from {table_name(stream)}) as s
        """,
    )[0]
    return Aggregates.of(*row)
