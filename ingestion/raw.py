"""Writes streams into the RAW DuckDB file with Airbyte's layout and Append + Deduped semantics."""

from __future__ import annotations

import itertools
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

from core.catalog import RAW_SCHEMA, Stream
from core.warehouse import is_damage
from ingestion.errors import RawDamaged, WarehouseBusy, number_from_env
from ingestion.reconcile import Aggregates, Scope
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


# DuckDB's memory for one sync (its own default is 80% of the machine's RAM, which it fills with
# the blocks a large initial load writes); beyond it, DuckDB spills to `<RAW file>.tmp`.
MEMORY_ENV = "MDP_SYNC_MEMORY_MB"
DEFAULT_MEMORY_MB = 1024


def memory_mb_from_env() -> int:
    return number_from_env(
        MEMORY_ENV, int, 64, DEFAULT_MEMORY_MB, "whole number of MB", str(DEFAULT_MEMORY_MB)
    )


def run(con: duckdb.DuckDBPyConnection, query: str, params: object = None) -> list[tuple[Any, ...]]:
    """Executes and drains the result: DuckDB refuses new work while a result is pending."""
    return con.execute(query, params).fetchall()


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the RAW file that is always closed, so the file's lock is held briefly."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": f"{memory_mb_from_env()}MiB",
        "temp_directory": str(path.with_name(path.name + ".tmp")),
    }
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        if is_damage(exc):
            raise RawDamaged(path, exc) from exc
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


def create_table(
    con: duckdb.DuckDBPyConnection, stream: Stream, columns: list[SourceColumn]
) -> None:
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
    existing: dict[str, str] | None,
    extracted_at: datetime,
    generation_id: int,
    sync_id: int,
    replace_all: bool,
    on_rows: Callable[[int], None] | None = None,
) -> LoadResult:
    """Merges the chunks into the stream's RAW table inside the caller's transaction.

    `existing` is the RAW table's columns (None when it does not exist yet). One row per primary
    key survives: the latest by (cursor desc, _airbyte_extracted_at desc). A re-read row
    identical to the one in RAW keeps its first extraction, so re-reading the lookback window
    changes nothing.
    """
    table = table_name(stream)
    result = LoadResult()
    if replace_all and existing is not None:
        run(con, f"drop table {table}")
        existing = None
    direct = existing is None
    if existing is None:
        create_table(con, stream, columns)
        raw_types = {c.name: c.duckdb_type for c in columns}
    else:
        result.columns_added = add_new_columns(con, stream, columns, existing)
        raw_types = {
            **existing,
            **{c.name: c.duckdb_type for c in columns if c.name not in existing},
        }

    params = {
        "extracted_at": extracted_at,
        "meta": json.dumps({"changes": [], "sync_id": sync_id}),
        "generation_id": generation_id,
    }
    names = ", ".join([*(quote(n) for n, _ in AIRBYTE_COLUMNS), *(quote(c.name) for c in columns)])
    casts = ", ".join(
        f"cast({quote(c.name)} as {raw_types[c.name]}) as {quote(c.name)}" for c in columns
    )

    def counted(source: Iterable[pa.Table]) -> Iterator[pa.Table]:
        for chunk in source:
            if chunk.num_rows == 0:
                continue
            result.rows_read += chunk.num_rows
            top = pc.max(chunk.column(stream.cursor_field)).as_py()
            if top is not None and (result.max_cursor is None or top > result.max_cursor):
                result.max_cursor = top
            yield chunk
            if on_rows is not None:
                on_rows(chunk.num_rows)

    if direct:
        # A new table needs no dedup: one snapshot holds one row per primary key.
        _append_all(
            con,
            table,
            f"insert into {table} ({names}) select {_AIRBYTE_VALUES}, {casts} from _chunk",
            counted(chunks),
            params,
        )
        result.inserted = result.rows_read
        return result
    batch = list(counted(chunks))
    if batch:
        con.register("_chunk", pa.concat_tables(batch) if len(batch) > 1 else batch[0])
        _merge(con, stream, columns, names, f"(select {casts} from _chunk)", params, result)
        con.unregister("_chunk")
    return result


def _append_all(
    con: duckdb.DuckDBPyConnection,
    table: str,
    insert: str,
    chunks: Iterator[pa.Table],
    params: dict[str, Any],
) -> None:
    """Runs `insert` once over every chunk, read as a stream while the source still sends them.

    One statement, not one per chunk, fed batches aligned to DuckDB's row groups
    (`_aligned_batches`), so that every row group but the last is full (one insert per chunk, or
    batches of any size, leave partial ones, which the first checkpoint after a later delete
    merges and rewrites). Each batch is freed once written, so memory does not grow with the
    table; a registered Arrow table, by contrast, stays alive until the transaction ends.
    """
    first = next(chunks, None)
    if first is None:
        return
    failure: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from _aligned_batches(itertools.chain([first], chunks))
        except BaseException as exc:
            # DuckDB reports a failed scan as its own error: keep the cause to raise it.
            failure.append(exc)
            raise

    con.register("_chunk", pa.RecordBatchReader.from_batches(first.schema, batches()))
    try:
        run(con, insert, params)
    except duckdb.Error:
        if failure:
            raise failure[0] from None
        raise
    finally:
        con.unregister("_chunk")


# DuckDB's rows per row group (its default ROW_GROUP_SIZE), and the rows of each batch an initial
# load hands it: a quarter of a row group (see `_aligned_batches`).
ROW_GROUP_ROWS = 122_880
BATCH_ROWS = ROW_GROUP_ROWS // 4


def _aligned_batches(chunks: Iterable[pa.Table]) -> Iterator[pa.RecordBatch]:
    """The chunks' rows, in order, in record batches of exactly BATCH_ROWS rows (the last may be short).

    DuckDB's ordered insert gathers the batches it is given and writes them every few row
    groups; as measured, the last row group of each write stays partly empty unless the write
    is a whole number of row groups. Batches of the CSV parser's sizes left a 2M-row table with
    four such row groups (1,398 to 20,973 rows). Once a later sync deletes rows near one, the
    checkpoint merges it with its neighbours and rewrites them all: 0.36 s for deleting 1% of
    those 2M rows, against 0.01-0.02 s for the same deletes in whole row groups. With batches
    of a quarter row group, every write is a whole number of row groups (a test holds this),
    and fewer rows are in flight than with batches of a whole one. A batch whose rows span two
    of the parser's batches is copied once; the others are slices, not copies.
    """
    pending: list[pa.Table] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += chunk.num_rows
        if count < BATCH_ROWS:
            continue
        table = pa.concat_tables(pending)
        whole = count - count % BATCH_ROWS
        for offset in range(0, whole, BATCH_ROWS):
            yield from table.slice(offset, BATCH_ROWS).combine_chunks().to_batches()
        pending, count = [table.slice(whole)], count - whole
    if count:
        yield from pa.concat_tables(pending).combine_chunks().to_batches()


# Airbyte's columns for rows written by this sync, filled from the statement's parameters.
_AIRBYTE_VALUES = (
    "cast(uuid() as varchar), cast($extracted_at as timestamptz), cast($meta as json), "
    "cast($generation_id as bigint)"
)


def _merge(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    columns: list[SourceColumn],
    names: str,
    batch: str,
    params: dict[str, Any],
    result: LoadResult,
) -> None:
    table = table_name(stream)
    same_key = " and ".join(f"r.{quote(k)} = b.{quote(k)}" for k in stream.primary_key)
    cursor = quote(stream.cursor_field)
    differs = " or ".join(f"r.{quote(c.name)} is distinct from b.{quote(c.name)}" for c in columns)
    # A RAW row is replaced when the batch holds its key with a later cursor, or the same cursor
    # and other values. Two deletes: the first reads only RAW's key and cursor columns. The
    # second compares whole rows, but only where key and cursor are equal: DuckDB passes the
    # batch's cursor range into that scan as a filter, so it can skip the row groups whose
    # cursors all fall outside it.
    keys = ", ".join(f"{quote(k)}" for k in (*stream.primary_key, stream.cursor_field))
    newer = run(
        con,
        f"delete from {table} as r using (select {keys} from {batch}) as b "
        f"where {same_key} and b.{cursor} > r.{cursor}",
    )
    altered = run(
        con,
        f"delete from {table} as r using {batch} as b "
        f"where {same_key} and b.{cursor} = r.{cursor} and ({differs})",
    )
    result.updated = int(newer[0][0]) + int(altered[0][0])
    source_cols = ", ".join(f"b.{quote(c.name)}" for c in columns)
    # The batch's keys still in RAW, found by a semi join: DuckDB pushes the batch's key range
    # into that scan (a bare NOT EXISTS reads every key of the table), so the cost follows the
    # batch, not the table's history.
    keys = ", ".join(f"r.{quote(k)}" for k in stream.primary_key)
    on = " and ".join(f"r.{quote(k)} = k.{quote(k)}" for k in stream.primary_key)
    kept = f"(select {keys} from {table} as r semi join {batch} as k on {on})"
    added = run(
        con,
        f"insert into {table} ({names}) select {_AIRBYTE_VALUES}, {source_cols} from {batch} as b "
        f"where not exists (select 1 from {kept} as r where {same_key})",
        params,
    )
    result.inserted = int(added[0][0]) - result.updated


def all_raw_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Every RAW table's columns and types, in one query (creating the schema if needed)."""
    run(con, f"create schema if not exists {quote(SCHEMA)}")
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in run(
        con,
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = ? order by table_name, ordinal_position",
        [SCHEMA],
    ):
        out.setdefault(table, {})[column] = dtype
    return out


_SUMS = (
    "count(*), coalesce(sum(k), 0), coalesce(sum(us), 0), "
    "coalesce(sum((k % 1000003) * (us % 1000033)), 0)"
)


def reconcile_aggregates(
    con: duckdb.DuckDBPyConnection, streams: list[Stream], scopes: dict[str, Scope]
) -> dict[str, tuple[Aggregates | None, dict[int, Aggregates]]]:
    """The same counts and checksums as the source computes, over each scope's window and buckets."""
    found = {}
    for stream in streams:
        scope = scopes[stream.name]
        pk, cursor = quote(stream.primary_key[0]), quote(stream.cursor_field)
        keys = (
            f"select cast({pk} as bigint) as k, epoch_us({cursor}) as us from {table_name(stream)}"
        )
        window = None
        if scope.since is not None:
            row = run(con, f"select {_SUMS} from ({keys} where {cursor} >= ?) as s", [scope.since])
            window = Aggregates.of(*row[0])
        rows = run(
            con,
            f"select k // ? as bucket, {_SUMS} from ({keys} where {pk} >= ? and {pk} < ?) as s "
            "group by 1",
            [scope.bucket_ids, scope.first_id, scope.end_id],
        )
        found[stream.name] = (window, {int(r[0]): Aggregates.of(*r[1:]) for r in rows})
    return found
