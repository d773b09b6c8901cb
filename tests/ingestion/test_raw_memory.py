"""The RAW writer's memory and layout: a stream's rows are not all held at once, DuckDB's share is
bounded, and an initial load fills whole row groups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from core.catalog import Stream
from ingestion import raw
from ingestion.errors import IngestionError
from ingestion.types import SourceColumn

COLUMNS = [
    SourceColumn("id", "bigint"),
    SourceColumn("note", "text"),
    SourceColumn("updated_at", "timestamp with time zone"),
]
CHUNK_ROWS = 50_000


def _chunks(count: int, allocated: list[int]) -> Iterator[pa.Table]:
    """`count` chunks of distinct rows; records Arrow's live bytes before building each one."""
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        allocated.append(pa.total_allocated_bytes())
        ids = range(i * CHUNK_ROWS, (i + 1) * CHUNK_ROWS)
        yield pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "note": pa.array([f"charge {n} " + "x" * 40 for n in ids], pa.string()),
                "updated_at": pa.array([stamp] * CHUNK_ROWS, pa.timestamp("us", tz="UTC")),
            }
        )


def _begin_initial_load(
    con: duckdb.DuckDBPyConnection, chunks: Iterator[pa.Table]
) -> raw.LoadResult:
    """Loads `chunks` as a new table, the way a stream's first sync does, and leaves the stream's
    transaction open for the caller to inspect and commit."""
    raw.run(con, f"create schema if not exists {raw.SCHEMA}")
    raw.run(con, "begin transaction")
    return raw.load(
        con,
        Stream("notes"),
        COLUMNS,
        chunks,
        existing=None,
        extracted_at=datetime.now(UTC),
        generation_id=0,
        sync_id=1,
        replace_all=False,
    )


def test_an_initial_load_frees_each_chunk_once_written(tmp_path: Path) -> None:
    chunk_bytes = next(_chunks(1, [])).nbytes
    allocated: list[int] = []
    with raw.connect(tmp_path / "raw.duckdb") as con:
        result = _begin_initial_load(con, _chunks(30, allocated))
        # Still inside the stream's transaction: the rows written so far must not pin their
        # Arrow buffers until the commit, or a large table is held whole in memory.
        assert max(allocated) - allocated[0] < 6 * chunk_bytes, [
            a // chunk_bytes for a in allocated
        ]
        raw.run(con, "commit")
        count = raw.run(con, f"select count(*), count(distinct id) from {raw.SCHEMA}.notes")
    assert result.inserted == 30 * CHUNK_ROWS
    assert count == [(30 * CHUNK_ROWS, 30 * CHUNK_ROWS)]


def test_an_initial_load_fills_every_row_group_but_the_last(tmp_path: Path) -> None:
    """Partly empty row groups in the middle of a table get merged, and rewritten, by the first
    checkpoint after a sync deletes rows near them."""
    chunks = 30
    with raw.connect(tmp_path / "raw.duckdb") as con:
        _begin_initial_load(con, _chunks(chunks, []))
        raw.run(con, "commit")
        raw.run(con, "checkpoint")
        sizes = [
            rows
            for _, rows in raw.run(
                con,
                "select row_group_id, sum(count) from pragma_storage_info(?) "
                "where column_name = 'id' and segment_type <> 'VALIDITY' group by 1 order by 1",
                [f"{raw.SCHEMA}.notes"],
            )
        ]
        in_order = raw.run(con, f"select bool_and(id = rowid) from {raw.SCHEMA}.notes")
    total = chunks * CHUNK_ROWS
    assert sizes[:-1] == [raw.ROW_GROUP_ROWS] * (total // raw.ROW_GROUP_ROWS), sizes
    assert sizes[-1] == total % raw.ROW_GROUP_ROWS
    assert in_order == [(True,)]


def test_duckdb_memory_is_bounded_by_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "raw.duckdb"
    with raw.connect(path) as con:
        limit = raw.run(con, "select current_setting('memory_limit')")[0][0]
        temp = raw.run(con, "select current_setting('temp_directory')")[0][0]
    assert limit == "1.0 GiB"
    assert temp == str(tmp_path / "raw.duckdb.tmp")

    monkeypatch.setenv(raw.MEMORY_ENV, "300")
    with raw.connect(path) as con:
        assert raw.run(con, "select current_setting('memory_limit')")[0][0] == "300.0 MiB"

    monkeypatch.setenv(raw.MEMORY_ENV, "lots")
    with pytest.raises(IngestionError, match=raw.MEMORY_ENV):
        raw.connect(path).__enter__()
