"""`make bench-exports`: the Parquet export against CSV of the same data, measured in one run."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from core.warehouse import PAYMENTS_FACT, DuckDBWarehouse
from exports.sample import build_sample_warehouse
from exports.writer import MONTH_KEY, _split, export_marts, partitioning_for

COLUMN = "net_revenue"


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _best(fn: Callable[[], pa.Table], repeat: int) -> tuple[float, int]:
    """Fastest of `repeat` timed runs after one warm-up (both formats read from the page cache)."""
    rows = fn().num_rows
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), rows


def _duckdb_table(sql: str) -> pa.Table:
    relation = duckdb.sql(sql)
    assert relation is not None
    return relation.to_arrow_table()


def _write_csv_like_export(warehouse: DuckDBWarehouse, root: Path) -> None:
    """Every exported table as CSV, split into the same Hive partitions as the Parquet export."""
    with warehouse.session() as session:
        refs = {t.name.lower(): t for t in session.marts()}
        fact = session.find(PAYMENTS_FACT)
        if fact is not None:
            refs[PAYMENTS_FACT] = fact
        tables = {name: session.read(ref) for name, ref in refs.items()}
    for name, table in tables.items():
        for directory, rows in _split(table, partitioning_for(name, table.schema)).items():
            folder = root / name / directory
            folder.mkdir(parents=True, exist_ok=True)
            pacsv.write_csv(rows, folder / "data.csv")


def run(payments: int, months: int, repeat: int, warehouse_path: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="mdp-bench-exports-") as tmp:
        work = Path(tmp)
        if warehouse_path is None:
            print(f"Building a sample warehouse: {payments:,} payments over {months} months…")
            warehouse_path = build_sample_warehouse(
                work / "analytics.duckdb", payments=payments, months=months
            )
        warehouse = DuckDBWarehouse(warehouse_path)
        parquet_root, csv_root = work / "parquet", work / "csv"
        start = time.perf_counter()
        result = export_marts(parquet_root, warehouse=warehouse)
        export_seconds = time.perf_counter() - start
        start = time.perf_counter()
        _write_csv_like_export(warehouse, csv_root)
        csv_seconds = time.perf_counter() - start

        fact_rows = next(t for t in result.tables if t.table == PAYMENTS_FACT)
        month = fact_rows.partitions[len(fact_rows.partitions) // 2].split("=", 1)[1]
        partitioning = ds.partitioning(pa.schema([(MONTH_KEY, pa.string())]), flavor="hive")

        def dataset(fmt: str, root: Path) -> ds.Dataset:
            return ds.dataset(
                str(root / PAYMENTS_FACT),
                format=fmt,
                partitioning=partitioning,
                filesystem=pafs.LocalFileSystem(),
            )

        pq_set, csv_set = dataset("parquet", parquet_root), dataset("csv", csv_root)
        sizes = (_size(parquet_root), _size(csv_root))
        where = ds.field(MONTH_KEY) == month
        glob = {"parquet": f"{parquet_root}/{PAYMENTS_FACT}/*/*.parquet",
                "csv": f"{csv_root}/{PAYMENTS_FACT}/*/*.csv"}  # fmt: skip

        def duck(fmt: str, sql: str) -> Callable[[], pa.Table]:
            reader = "read_parquet" if fmt == "parquet" else "read_csv"
            source = f"{reader}('{glob[fmt]}', hive_partitioning = true)"
            return lambda: _duckdb_table(sql.format(source=source))

        def scan(d: ds.Dataset, **options: object) -> Callable[[], pa.Table]:
            return lambda: d.to_table(**options)

        sets = (("parquet", pq_set), ("csv", csv_set))
        readers: dict[str, dict[str, Callable[[], pa.Table]]] = {
            "pyarrow.dataset": {
                **{f"column {f}": scan(d, columns=[COLUMN]) for f, d in sets},
                **{f"partition {f}": scan(d, filter=where) for f, d in sets},
            },
            "pyarrow.dataset, 1 thread": {
                **{f"column {f}": scan(d, columns=[COLUMN], use_threads=False) for f, d in sets},
                **{f"partition {f}": scan(d, filter=where, use_threads=False) for f, d in sets},
            },
            "duckdb": {
                **{f"column {f}": duck(f, f"select {COLUMN} from {{source}}") for f, _ in sets},
                **{
                    f"partition {f}": duck(
                        f, f"select * from {{source}} where {MONTH_KEY} = '{month}'"
                    )
                    for f, _ in sets
                },
            },
        }
        timings = {
            reader: {k: _best(fn, repeat) for k, fn in cases.items()}
            for reader, cases in readers.items()
        }

    figures = {"size_ratio": sizes[1] / sizes[0]}
    print(
        f"\n{result.rows:,} rows in {len(result.tables)} tables; {fact_rows.rows:,} payments in "
        f"{len(fact_rows.partitions)} monthly partitions. Export {export_seconds:.2f} s "
        f"(CSV baseline written in {csv_seconds:.2f} s). Timings: best of {repeat} warm runs.\n"
    )
    print(f"{'measure':<72}{'Parquet (zstd)':>15}{'CSV':>12}{'ratio':>9}  goal")
    print(
        f"{'size on disk, all tables':<72}{sizes[0] / 1e6:>12.2f} MB{sizes[1] / 1e6:>9.2f} MB"
        f"{figures['size_ratio']:>8.1f}x  ≥5x {'met' if figures['size_ratio'] >= 5 else 'NOT met'}"
    )
    for reader, t in timings.items():
        for what, label, goal in (
            ("column", f"read one column ({PAYMENTS_FACT}.{COLUMN})", True),
            ("partition", f"read one partition ({MONTH_KEY}={month})", False),
        ):
            (pq_s, pq_rows), (csv_s, csv_rows) = t[f"{what} parquet"], t[f"{what} csv"]
            assert pq_rows == csv_rows, (reader, what, pq_rows, csv_rows)
            ratio = csv_s / pq_s
            figures[f"{reader} {what} ratio"] = ratio
            verdict = ("≥5x " + ("met" if ratio >= 5 else "NOT met")) if goal else "—"
            print(
                f"{label + ', ' + reader:<72}{pq_s * 1e3:>12.1f} ms{csv_s * 1e3:>9.1f} ms"
                f"{ratio:>8.1f}x  {verdict}"
            )
    print(
        f"\nOne column = {t['column parquet'][1]:,} rows; one partition = {t['partition parquet'][1]:,} rows."
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="An existing ANALYTICS DuckDB file (e.g. .local/warehouse/analytics.duckdb) "
        "instead of the synthetic one.",
    )
    args = parser.parse_args()
    run(args.payments, args.months, args.repeat, args.warehouse)


if __name__ == "__main__":
    main()
