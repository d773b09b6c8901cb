"""`make bench-ingestion`'s baselines do the same job as the sync they are compared with."""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from core.bench import copy_to_disk
from core.catalog import STREAMS
from ingestion import bench
from ingestion.sync import run_sync
from ingestion.types import SourceColumn

pytestmark = pytest.mark.postgres

LOOKBACK = timedelta(minutes=10)


def _source_columns(path: Path, columns: dict[str, list[SourceColumn]]) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            s.name: con.execute(
                f"select {', '.join(c.name for c in columns[s.name])} from postgres_airbyte.{s.name} order by id"
            ).fetchall()
            for s in STREAMS
        }
    finally:
        con.close()


def test_the_minimal_incremental_reads_and_leaves_what_the_sync_does(
    source_dsn: str, tmp_path: Path
) -> None:
    bench.seed(source_dsn, 3000)
    base = tmp_path / "base.duckdb"
    run_sync(source_dsn, base, lookback=LOOKBACK)
    changed = bench.change(source_dsn, bench.CHANGED_SHARE)
    synced, minimal = tmp_path / "synced.duckdb", tmp_path / "minimal.duckdb"
    shutil.copy(base, synced)
    shutil.copy(base, minimal)

    result = run_sync(source_dsn, synced, lookback=LOOKBACK)
    columns = bench.source_columns(source_dsn)
    rows = bench.minimal_incremental(source_dsn, minimal, columns, LOOKBACK)

    assert changed > 0 and sum(s.updated for s in result.streams) == changed
    assert rows == sum(s.rows_read for s in result.streams)
    assert _source_columns(minimal, columns) == _source_columns(synced, columns)
    assert bench.checksums_alone(source_dsn) > 0


def _big_parent_child_peak() -> int:
    return bench.peak_rss_mb()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_the_fresh_process_peak_is_its_own_not_its_parents() -> None:
    held = bytearray(512 << 20)
    held[:: 1 << 12] = b"x" * len(held[:: 1 << 12])  # touch every page: the parent's RSS grows
    assert bench.peak_rss_mb() >= 512
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        child = pool.submit(_big_parent_child_peak).result()
    del held
    assert child < 400


def test_the_scales_option_needs_two_scales_to_measure_growth() -> None:
    assert bench.scale_list("10000000,1_000_000") == [1_000_000, 10_000_000]
    for text in ("10000000", "1000000,1000000", "1000,1000000", "1e6,x"):
        with pytest.raises(argparse.ArgumentTypeError, match=text):
            bench.scale_list(text)


def test_a_copied_folder_is_whole(tmp_path: Path) -> None:
    source = tmp_path / "warehouse"
    (source / "logs").mkdir(parents=True)
    (source / "raw.duckdb").write_bytes(b"r" * 70_000)
    (source / "logs" / "dbt.log").write_text("ran\n")
    copy_to_disk(source, tmp_path / "copy")
    copy_to_disk(source / "raw.duckdb", tmp_path / "raw.duckdb")
    assert (tmp_path / "copy" / "raw.duckdb").read_bytes() == b"r" * 70_000
    assert (tmp_path / "copy" / "logs" / "dbt.log").read_text() == "ran\n"
    assert (tmp_path / "raw.duckdb").read_bytes() == b"r" * 70_000
