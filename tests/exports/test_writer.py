"""Exports read back by pandas, pyarrow and DuckDB match the warehouse; re-runs never duplicate."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from core import paths
from core.warehouse import DuckDBWarehouse, NoDataYet
from exports import export_marts
from exports.sample import build_sample_warehouse
from exports.writer import STATE_FILE, ExportResult, TableExport, resolve_target
from tests.warehouse_lock import write_lock_held

TABLES = {
    "fct_payments": ("intermediate.fct_payments", "net_revenue"),
    "net_revenue_by_plan": ("finance.net_revenue_by_plan", "net_revenue"),
    "monthly_net_revenue_by_plan": ("finance.monthly_net_revenue_by_plan", "net_revenue"),
    "mrr_by_plan": ("finance.mrr_by_plan", "mrr"),
    "saas_metrics_monthly": ("finance.saas_metrics_monthly", "arr"),
}


def _truth(db: Path) -> dict[str, tuple[int, Decimal]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            name: tuple(con.execute(f"select count(*), sum({col}) from {src}").fetchone())  # type: ignore[misc]
            for name, (src, col) in TABLES.items()
        }
    finally:
        con.close()


def _partitions(table_dir: Path) -> set[str]:
    return {p.name for p in table_dir.iterdir() if p.is_dir()}


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_default_target_is_the_local_exports_folder(warehouse: Path) -> None:
    result = export_marts()
    assert Path(result.target) == paths.exports_dir()
    assert {t.table for t in result.tables} == set(TABLES)
    assert (paths.exports_dir() / "fct_payments").is_dir()


def test_every_reader_sees_the_warehouse_rows_and_sums(warehouse: Path) -> None:
    out = paths.exports_dir()
    export_marts(out)
    truth = _truth(warehouse)
    for name, (_, col) in TABLES.items():
        rows, total = truth[name]
        assert rows > 0
        frame = pd.read_parquet(out / name)
        assert (len(frame), sum(frame[col], Decimal(0))) == (rows, total), name
        table = ds.dataset(out / name, format="parquet", partitioning="hive").to_table()
        assert (
            table.num_rows,
            table.column(col).to_pylist() and sum(table.column(col).to_pylist()),
        ) == (rows, total), name
        got = duckdb.execute(
            f"select count(*), sum({col}) from read_parquet('{out / name}/**/*.parquet', hive_partitioning = true)"
        ).fetchone()
        assert got == (rows, total), name


def test_files_are_zstd_parquet_in_the_intended_hive_layout(warehouse: Path) -> None:
    out = paths.exports_dir()
    export_marts(out)
    con = duckdb.connect(str(warehouse), read_only=True)
    months = {
        m
        for (m,) in con.sql(
            "select distinct strftime(paid_at at time zone 'UTC', '%Y-%m') from intermediate.fct_payments"
        ).fetchall()
    }
    plans = {p for (p,) in con.sql("select plan_name from finance.net_revenue_by_plan").fetchall()}
    con.close()
    assert _partitions(out / "fct_payments") == {f"year_month={m}" for m in months}
    assert _partitions(out / "net_revenue_by_plan") == {f"plan_name={p}" for p in plans}
    # Beside the partitions, only the export's record, which every reader skips (`_` name).
    assert {p.name for p in (out / "fct_payments").iterdir() if p.is_file()} == {STATE_FILE}
    for f in (out / "fct_payments").rglob("*.parquet"):
        meta = pq.ParquetFile(f).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
    # The plan moves into the path, as Hive does; month keys are derived, the dates stay.
    assert (
        "plan_name"
        not in pq.read_schema(next((out / "net_revenue_by_plan").rglob("*.parquet"))).names
    )
    assert (
        "revenue_month"
        in pq.read_schema(next((out / "monthly_net_revenue_by_plan").rglob("*.parquet"))).names
    )


def test_a_filter_on_the_partition_key_reads_only_that_partition(warehouse: Path) -> None:
    out = paths.exports_dir()
    export_marts(out)
    month = "2026-07"
    dataset = ds.dataset(out / "fct_payments", format="parquet", partitioning="hive")
    fragments = list(dataset.get_fragments(filter=ds.field("year_month") == month))
    assert [Path(f.path).parent.name for f in fragments] == [f"year_month={month}"]

    con = duckdb.connect(str(warehouse), read_only=True)
    expected = con.execute(
        f"select count(*) from intermediate.fct_payments where strftime(paid_at at time zone 'UTC', '%Y-%m') = '{month}'"
    ).fetchone()
    con.close()
    frame = pd.read_parquet(out / "fct_payments", filters=[("year_month", "=", month)])
    assert (len(frame),) == expected
    assert set(frame["paid_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m")) == {month}

    # DuckDB prunes on the Hive key before opening files: its plan reads one file of eight.
    plan = duckdb.execute(
        f"explain analyze select count(*) from read_parquet('{out}/fct_payments/**/*.parquet', "
        f"hive_partitioning = true) where year_month = '{month}'"
    ).fetchall()[0][1]
    total_files = len(list((out / "fct_payments").rglob("*.parquet")))
    assert total_files == 8
    assert "Total Files Read: 1" in plan, plan


def _fct(result: ExportResult) -> TableExport:
    return next(t for t in result.tables if t.table == "fct_payments")


def test_each_month_file_holds_its_rows_sorted_by_time_and_nulls_go_to_the_null_partition(
    warehouse: Path,
) -> None:
    con = duckdb.connect(str(warehouse))
    # Ties on the partition column across payments, and payments without a time.
    con.execute(
        "update intermediate.fct_payments set paid_at = (select max(paid_at) from "
        "intermediate.fct_payments) where payment_id % 97 = 0"
    )
    con.execute("update intermediate.fct_payments set paid_at = null where payment_id % 89 = 0")
    rows = con.execute(
        "select payment_id, paid_at from intermediate.fct_payments order by rowid"
    ).fetchall()
    con.close()
    # Expected: each month's payments sorted by time, equal times in the warehouse's order.
    expected: dict[str, list[int]] = {}
    timed = sorted((r for r in rows if r[1] is not None), key=lambda r: r[1])
    for payment_id, paid_at in timed:
        expected.setdefault(f"year_month={paid_at:%Y-%m}", []).append(payment_id)
    expected["year_month=__HIVE_DEFAULT_PARTITION__"] = [p for p, t in rows if t is None]

    export_marts(paths.exports_dir())

    table_dir = paths.exports_dir() / "fct_payments"
    assert _partitions(table_dir) == set(expected)
    for partition, payment_ids in expected.items():
        written = pq.read_table(table_dir / partition / "data.parquet", columns=["payment_id"])
        assert written.column("payment_id").to_pylist() == payment_ids, partition


def test_exporting_again_rewrites_only_the_partitions_whose_rows_changed(warehouse: Path) -> None:
    out = paths.exports_dir()
    first = export_marts(out)
    assert _fct(first).partitions_written == len(_fct(first).partitions) == 8
    files = _files(out)
    inode = {f: (out / f).stat().st_ino for f in files}

    # Nothing changed: no partition is written again, every file is the first export's.
    again = export_marts(out)
    assert _files(out) == files
    assert [t.partitions_written for t in again.tables] == [0] * len(again.tables)
    assert all((out / f).stat().st_ino == inode[f] for f in files if f.endswith(".parquet"))

    # One month's rows change: only that month's file is replaced (by rename: a new inode).
    con = duckdb.connect(str(warehouse))
    (month,) = con.execute(
        "select max(strftime(paid_at at time zone 'UTC', '%Y-%m')) from intermediate.fct_payments"
    ).fetchone()  # type: ignore[misc]
    con.execute(
        "update intermediate.fct_payments set net_revenue = net_revenue + 1 "
        f"where strftime(paid_at at time zone 'UTC', '%Y-%m') = '{month}'"
    )
    con.close()
    third = export_marts(out)
    assert _fct(third).partitions_written == 1
    replaced = [f for f in files if f.endswith(".parquet") and (out / f).stat().st_ino != inode[f]]
    assert replaced == [f"fct_payments/year_month={month}/data.parquet"]

    # A partition file lost behind the export's back is written again, though its rows did not
    # change.
    lost = out / "fct_payments" / f"year_month={month}" / "data.parquet"
    lost.unlink()
    assert _fct(export_marts(out)).partitions_written == 1 and lost.is_file()

    assert _files(out) == files
    assert not [p for p in out.rglob(".*")]
    rows, total = _truth(warehouse)["fct_payments"]
    frame = pd.read_parquet(out / "fct_payments")
    assert (len(frame), sum(frame["net_revenue"], Decimal(0))) == (rows, total)
    assert frame["payment_id"].is_unique


def test_partitions_the_warehouse_no_longer_has_are_removed(mdp_home: Path) -> None:
    db = paths.analytics_db()
    build_sample_warehouse(db, payments=3_000, months=6)
    out = paths.exports_dir()
    export_marts(out)
    assert len(_partitions(out / "fct_payments")) == 6
    build_sample_warehouse(db, payments=3_000, months=4)
    result = export_marts(out)
    assert len(_partitions(out / "fct_payments")) == 4
    assert next(t for t in result.tables if t.table == "fct_payments").files_removed == 2
    assert len(pd.read_parquet(out / "fct_payments")) == _truth(db)["fct_payments"][0]


def test_empty_or_missing_warehouse_leaves_the_previous_export_alone(mdp_home: Path) -> None:
    out = paths.exports_dir()
    with pytest.raises(NoDataYet, match="does not exist"):
        export_marts(out)
    build_sample_warehouse(paths.analytics_db(), payments=2_000, months=3)
    export_marts(out)
    kept = _files(out)
    build_sample_warehouse(paths.analytics_db(), empty=True)
    with pytest.raises(NoDataYet, match="previous export was left as it was"):
        export_marts(out)
    assert _files(out) == kept


def test_an_object_store_target_gets_the_same_layout(warehouse: Path) -> None:
    # The in-memory filesystem behaves like S3: no rename, one PUT per object.
    fs = pafs._MockFileSystem()
    export_marts("bucket/exports", filesystem=fs)
    selector = pafs.FileSelector("bucket/exports/fct_payments", recursive=True)
    files = [i.path for i in fs.get_file_info(selector) if i.path.endswith(".parquet")]
    assert len(files) == 8
    table = ds.dataset("bucket/exports/fct_payments", filesystem=fs, partitioning="hive").to_table()
    assert table.num_rows == _truth(warehouse)["fct_payments"][0]


def test_the_target_can_come_from_the_environment(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDP_EXPORTS_TARGET", str(tmp_path / "published"))
    result = export_marts()
    assert Path(result.target) == tmp_path / "published"
    assert (tmp_path / "published" / "mrr_by_plan").is_dir()
    assert not paths.exports_dir().exists()


def test_s3_uris_resolve_to_a_bucket_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_EXPORTS_S3_REGION", "eu-west-1")
    fs, base, shown = resolve_target("s3://mdp-exports/marts/")
    assert isinstance(fs, pafs.S3FileSystem)
    assert fs.region == "eu-west-1"
    assert (base, shown) == ("mdp-exports/marts", "s3://mdp-exports/marts")
    with pytest.raises(ValueError, match="no bucket"):
        resolve_target("s3:///marts")


def test_a_locked_warehouse_gives_a_clear_message(warehouse: Path) -> None:
    from core.warehouse import WarehouseBusy

    with write_lock_held(warehouse, 30), pytest.raises(WarehouseBusy, match="being refreshed"):
        export_marts(warehouse=DuckDBWarehouse(warehouse, lock_wait_seconds=0.5))
    assert not os.path.exists(paths.exports_dir())


def test_only_selected_tables(warehouse: Path) -> None:
    result = export_marts(tables=["mrr_by_plan"])
    assert [t.table for t in result.tables] == ["mrr_by_plan"]
    assert pa.types.is_decimal(
        pq.read_schema(next((paths.exports_dir() / "mrr_by_plan").rglob("*.parquet")).__fspath__())
        .field("mrr")
        .type
    )
