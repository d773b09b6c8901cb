"""`make bench-ingestion`: full and 1%-changed incremental sync against bare COPY (the limit) and dlt (the peer)."""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas  # noqa: F401  # DuckDB imports it on its first Arrow scan: no run should pay that
import psutil
import psycopg
import pyarrow as pa
import pyarrow.csv as pcsv
from psycopg import sql

from core import localpg
from core.bench import copy_to_disk, write_figures
from core.catalog import RAW_SCHEMA, SOURCE_SCHEMA, STREAMS
from ingestion.reconcile import Mode
from ingestion.source import CHECKSUM_SQL, SourceReader
from ingestion.state import STATE_TABLE
from ingestion.sync import SyncResult, run_sync
from ingestion.types import SourceColumn
from source_generator.migrate import PLANS, migrate

# Row shares per table, as the generator's default mix; plans stay at their five seeded rows.
MIX = {"users": 0.15, "banks": 0.08, "credit_cards": 0.12, "subscriptions": 0.20, "payments": 0.45}
CHANGED_SHARE = 0.01

_SEED = {
    "users": """
        insert into app.users select g, gen_random_uuid(), 'First' || (g % 997), 'Last' || (g % 991),
            'user' || g || '@example.com', '+1-555-' || lpad((g % 10000)::text, 4, '0'),
            (date '1950-01-01' + (g % 20000))::text, (array['US','CA','GB','FR','DE'])[1 + g % 5],
            md5(g::text), lpad((g::bigint * 7919 % 1000000000)::text, 9, '0'),
            case when g % 97 = 0 then now() - interval '3 days' end,
            now() - (g % 31536000) * interval '1 second', now() - (g % 31536000) * interval '1 second'
        from generate_series(1, {n}) g""",
    "banks": """
        insert into app.banks select g, 1 + g % 150000, (array['Chase','HSBC','Barclays'])[1 + g % 3],
            lpad(g::text, 12, '0'), 'GB' || lpad(g::text, 20, '0'), lpad((g % 999999999)::text, 9, '0'),
            'BANKGB2L', now() - (g % 31536000) * interval '1 second',
            now() - (g % 31536000) * interval '1 second'
        from generate_series(1, {n}) g""",
    "credit_cards": """
        insert into app.credit_cards select g, 1 + g % 150000, '4' || lpad(g::text, 15, '0'),
            (array['visa','Mastercard',' amex '])[1 + g % 3], lpad((1 + g % 12)::text, 2, '0') || '/29',
            now() - (g % 31536000) * interval '1 second', now() - (g % 31536000) * interval '1 second'
        from generate_series(1, {n}) g""",
    "subscriptions": """
        insert into app.subscriptions select g, 1 + g % 150000,
            (array['Basic','bronze','Standard','GOLD','Platinum'])[1 + g % 5],
            (array['active','idle','canceled','blocked'])[1 + g % 4],
            (array['monthly','annual','Yearly'])[1 + g % 3], (array['card','bank'])[1 + g % 2],
            now() - (g % 31536000) * interval '1 second',
            case when g % 4 = 2 then now() - (g % 86400) * interval '1 second' end,
            now() - (g % 31536000) * interval '1 second', now() - (g % 31536000) * interval '1 second'
        from generate_series(1, {n}) g""",
    "payments": """
        insert into app.payments select g, 1 + g % 200000, 1 + g % 150000, 'ch_' || md5(g::text),
            (array['12.50','$12.50',' 12.50 ','USD 12.50','12,50'])[1 + g % 5],
            case when g % 10 <> 0 then (g % 500)::numeric / 100 end, 'usd',
            (array['succeeded','failed','refunded'])[1 + g % 3],
            now() - (g % 31536000) * interval '1 second', now() - (g % 31536000) * interval '1 second',
            now() - (g % 31536000) * interval '1 second'
        from generate_series(1, {n}) g""",
}

_CHANGE = {
    "users": "email = upper(email)",
    "banks": "bank_name = 'Lloyds'",
    "credit_cards": "card_type = 'visa'",
    "subscriptions": "status = 'cancelled', cancelled_at = now()",
    "payments": "status = 'refunded'",
}


@dataclass
class Run:
    name: str
    rows: int
    seconds: float
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def seed(dsn: str, rows: int) -> dict[str, int]:
    """The source schema with `rows` rows spread over the tables like the generator's mix."""
    counts = {t: round(rows * share) for t, share in MIX.items()}
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        for table, n in counts.items():
            conn.execute(f"truncate {SOURCE_SCHEMA}.{table}")
            conn.execute(_SEED[table].format(n=n))
        conn.execute("vacuum analyze")
    return counts


def change(dsn: str, share: float, at_most: int | None = None) -> int:
    """Updates `share` of each table's rows (every n-th id), stamping updated_at now.

    With `at_most`, only the first of those rows (by id, spread over the tables like the mix):
    the same rows, at any scale, for comparing the cost of one day's changes as history grows.
    """
    step = round(1 / share)
    changed = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, assignment in _CHANGE.items():
            where = f"id % {step} = 7"
            if at_most is not None:
                n = round(at_most * MIX[table])
                where = (
                    f"id in (select id from {SOURCE_SCHEMA}.{table} where {where} order by id "
                    f"limit {n})"
                )
            cur = conn.execute(
                f"update {SOURCE_SCHEMA}.{table} set {assignment}, updated_at = clock_timestamp() "
                f"where {where}"
            )
            changed += cur.rowcount
        conn.execute("analyze")
    return changed


def _copy_csv(
    conn: psycopg.Connection, statement: str, convert: pcsv.ConvertOptions | None = None
) -> pa.Table:
    """One bare `COPY ... TO STDOUT (format csv)`, parsed by Arrow in one go."""
    buffer = io.BytesIO()
    with conn.cursor().copy(statement) as copy:
        for data in copy:
            buffer.write(data)
    return pcsv.read_csv(
        io.BytesIO(buffer.getvalue()),
        read_options=pcsv.ReadOptions(autogenerate_column_names=True),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=convert,
    )


def limit(dsn: str, path: Path) -> int:
    """The floor of any COPY-based loader: bare COPY TO STDOUT, Arrow, DuckDB; no dedup, no state."""
    con = duckdb.connect(str(path))
    rows = 0
    with psycopg.connect(dsn) as conn:
        for s in STREAMS:
            table = _copy_csv(conn, f"copy {SOURCE_SCHEMA}.{s.name} to stdout (format csv)")
            con.register("t", table)
            con.execute(f"create table {s.name} as select * from t")
            con.unregister("t")
            rows += table.num_rows
    con.close()
    return rows


def source_columns(dsn: str) -> dict[str, list[SourceColumn]]:
    """Each source table's columns and the Arrow types the sync parses them as."""
    with SourceReader(dsn) as source:
        return source.columns(list(STREAMS))


def minimal_incremental(
    dsn: str, path: Path, columns: dict[str, list[SourceColumn]], lookback: timedelta
) -> int:
    """About the least an incremental sync of the same rows costs here, whatever the loader.

    Reads the same window behind each saved cursor with bare COPY, then in one DuckDB
    transaction replaces rows by primary key and appends the new ones; commits and closes the
    file. No Airbyte columns, state, ordering rules or reconciliation.
    """
    con = duckdb.connect(str(path))
    since = dict(con.execute(f"select stream, cursor_value from {STATE_TABLE}").fetchall())
    rows = 0
    with psycopg.connect(dsn) as conn:
        conn.execute("set timezone = 'UTC'")
        con.execute("begin")
        for s in STREAMS:
            names = [c.name for c in columns[s.name]]
            cols = ", ".join(names)
            batch = _copy_csv(
                conn,
                f"copy (select {cols} from {SOURCE_SCHEMA}.{s.name} where {s.cursor_field} >= "
                f"'{(since[s.name] - lookback).isoformat()}') to stdout (format csv)",
                pcsv.ConvertOptions(
                    column_types={f"f{i}": c.arrow_type for i, c in enumerate(columns[s.name])},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            ).rename_columns(names)
            table = f"{RAW_SCHEMA.lower()}.{s.name}"
            con.register("b", batch)
            con.execute(f"delete from {table} as r using b where r.id = b.id")
            con.execute(f"insert into {table} ({cols}) select {cols} from b")
            con.unregister("b")
            rows += batch.num_rows
        con.execute("commit")
    con.close()
    return rows


def checksums_alone(dsn: str) -> float:
    """Seconds PostgreSQL takes for the reconciliation's whole-table checksums, one at a time."""
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for s in STREAMS:
            conn.execute(
                sql.SQL(CHECKSUM_SQL).format(
                    pk=sql.Identifier(s.primary_key[0]),
                    cursor=sql.Identifier(s.cursor_field),
                    table=sql.Identifier(SOURCE_SCHEMA, s.name),
                    where=sql.SQL(""),
                ),
                (),
            ).fetchone()
    return time.perf_counter() - started


def dlt_pipeline(dsn: str, work: Path) -> Callable[[], int]:
    work.mkdir(parents=True, exist_ok=True)
    """dlt's sql_database source, pyarrow backend, merge on the primary key, cursor updated_at."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.sql_database import sql_database

    params = psycopg.conninfo.conninfo_to_dict(dsn)
    url = f"postgresql+psycopg://{params.get('user', 'postgres')}@/{params['dbname']}?host={params['host']}"
    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt",
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name=RAW_SCHEMA.lower(),
        pipelines_dir=str(work / "dlt_pipelines"),
    )

    def run() -> int:
        source = sql_database(
            url, schema=SOURCE_SCHEMA, table_names=[s.name for s in STREAMS], backend="pyarrow"
        )
        for s in STREAMS:
            source.resources[s.name].apply_hints(
                primary_key=list(s.primary_key),
                write_disposition="merge",
                incremental=dlt.sources.incremental(s.cursor_field),
            )
        pipeline.run(source)
        trace = pipeline.last_trace
        info = trace.last_normalize_info if trace is not None else None
        counts = info.row_counts if info is not None else {}
        return sum(v for k, v in counts.items() if not k.startswith("_dlt"))

    return run


class CpuClock:
    """CPU seconds of this process plus the whole PostgreSQL server: other load hardly moves it."""

    def __init__(self, pgdata: Path) -> None:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        self.postmaster = psutil.Process(pid)

    def __call__(self) -> float:
        t = self.postmaster.cpu_times()
        # Backends that ended are counted in the postmaster's children times once reaped.
        total = time.process_time() + t.user + t.system + t.children_user + t.children_system
        for child in self.postmaster.children():
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total


def _best(
    repeat: int,
    fn: Callable[[int], Any],
    cpu: CpuClock,
    setup: Callable[[int], object] | None = None,
) -> tuple[float, float, Any]:
    """Best wall time of `repeat` runs (the least disturbed), its CPU seconds and its result.

    `setup(i)` runs before run i and is not timed (e.g. copying the RAW file a run starts from).
    """
    best: tuple[float, float, Any] | None = None
    for i in range(repeat):
        if setup is not None:
            setup(i)
        started, cpu_started = time.perf_counter(), cpu()
        value = fn(i)
        took = (time.perf_counter() - started, cpu() - cpu_started, value)
        if best is None or took[0] < best[0]:
            best = took
    assert best is not None
    return best


def peak_rss_mb() -> int:
    """This process's own peak RSS in MB.

    Linux's `ru_maxrss` survives exec: a process spawned by a large parent starts with the
    parent's peak, so it is used only where `VmHWM` (the peak of this process's memory) is not
    available.
    """
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _sync_in_fresh_process(dsn: str, path: str) -> tuple[float, int]:
    """An initial sync in a new interpreter, as `mdp sync` runs: its seconds and peak RSS in MB."""
    started = time.perf_counter()
    run_sync(dsn, Path(path), lookback=LOOKBACK)
    seconds = time.perf_counter() - started
    return seconds, peak_rss_mb()


LOOKBACK = timedelta(minutes=10)
# The same number of changed rows at every scale, for `incremental_growth`.
FIXED_CHANGES = 10_000


def measure(rows: int, repeat: int, with_dlt: bool) -> dict[str, Any]:
    """Every figure at one scale, printed as a table; returns them for the JSON summary."""
    work = Path(tempfile.mkdtemp(prefix="mdp-bench-ingestion-"))
    work.chmod(0o755)
    pgdata = work / "pg"
    try:
        dsn = localpg.start(pgdata)
        print(f"\n== {rows:,} source rows ==\nSeeding ...", flush=True)
        counts = seed(dsn, rows)
        total = sum(counts.values()) + len(PLANS)
        print(f"Running each measurement {repeat}x (the incremental {repeat + 1}x), best kept ...")

        def ours(path: Path, reconcile: Mode = "auto") -> SyncResult:
            return run_sync(dsn, path, lookback=LOOKBACK, reconcile=reconcile)

        cpu = CpuClock(pgdata)
        t_limit, c_limit, limit_rows = _best(
            repeat, lambda i: limit(dsn, work / f"limit{i}.duckdb"), cpu
        )
        t_full, c_full, full = _best(repeat, lambda i: ours(work / f"raw{i}.duckdb"), cpu)
        base = work / "raw0.duckdb"
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            _, max_rss_mb = pool.submit(
                _sync_in_fresh_process, dsn, str(work / "rss.duckdb")
            ).result()
        (work / "rss.duckdb").unlink(missing_ok=True)
        dlt_runs = (
            [] if not with_dlt else [dlt_pipeline(dsn, work / f"dlt{i}") for i in range(repeat)]
        )
        t_dlt_full, c_dlt_full, dlt_rows = (
            _best(repeat, lambda i: dlt_runs[i](), cpu) if dlt_runs else (0.0, 0.0, 0)
        )

        # Each incremental starts from its own copy of the initial sync's RAW, made untimed.
        def start_from_base(i: int) -> None:
            copy_to_disk(base, work / f"inc{i}.duckdb")

        def incremental(i: int, reconcile: Mode = "auto") -> SyncResult:
            return ours(work / f"inc{i}.duckdb", reconcile)

        # The same 10,000 rows at every scale first; they are part of the 1% changed next.
        fixed = change(dsn, CHANGED_SHARE, at_most=FIXED_CHANGES)
        t_fixed, c_fixed, _ = _best(repeat + 1, incremental, cpu, setup=start_from_base)
        changed = change(dsn, CHANGED_SHARE)
        t_inc, c_inc, inc = _best(repeat + 1, incremental, cpu, setup=start_from_base)
        t_bare, c_bare, _ = _best(
            repeat + 1, lambda i: incremental(i, reconcile="off"), cpu, setup=start_from_base
        )
        t_dlt_inc, c_dlt_inc, _ = _best(1, lambda i: dlt_runs[0](), cpu) if dlt_runs else (0, 0, 0)
        columns = source_columns(dsn)
        t_floor, c_floor, floor_rows = _best(
            repeat + 1,
            lambda i: minimal_incremental(dsn, work / f"inc{i}.duckdb", columns, LOOKBACK),
            cpu,
            setup=start_from_base,
        )
        t_sums, c_sums, _ = _best(repeat + 1, lambda i: checksums_alone(dsn), cpu)

        runs = [
            Run("limit: bare COPY -> Arrow -> DuckDB", limit_rows, t_limit, c_limit),
            Run("mdp sync, initial (full)", sum(s.rows_read for s in full.streams), t_full, c_full),
            Run(f"mdp sync, incremental ({fixed:,} changed)", fixed, t_fixed, c_fixed),
            Run(
                "mdp sync, incremental (1% changed)",
                sum(s.rows_read for s in inc.streams),
                t_inc,
                c_inc,
            ),
        ]
        if dlt_runs:
            runs += [
                Run("dlt sql_database pyarrow merge, initial", dlt_rows, t_dlt_full, c_dlt_full),
                Run("dlt sql_database pyarrow merge, incremental", changed, t_dlt_inc, c_dlt_inc),
            ]
        print(f"\nSource: {total:,} rows in {len(STREAMS)} tables; {changed:,} rows changed (1%).")
        print(f"{'run':<46} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'CPU s':>7}")
        for r in runs:
            print(f"{r.name:<46} {r.rows:>10,} {r.seconds:>8.2f} {r.rate:>9,.0f} {r.cpu:>7.2f}")
        print("CPU s: this process plus the whole PostgreSQL server; other load hardly moves it.")
        print(
            f"\ninitial sync: {runs[1].rate / runs[0].rate:.2f} of the limit (goal >= 0.8 at 10M; "
            f"CPU {c_limit / c_full:.2f}), with dedup, Airbyte columns, state and reconciliation; "
            f"peak RSS of a fresh `mdp sync` process {max_rss_mb:,} MB (goal <= 2048)"
        )
        if dlt_runs:
            print(f"initial sync: {t_dlt_full / t_full:.1f}x dlt (CPU {c_dlt_full / c_full:.1f}x)")
            print(
                f"incremental: {t_dlt_inc / t_inc:.1f}x dlt's incremental (CPU {c_dlt_inc / c_inc:.1f}x)"
            )
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in inc.phases.items())
        print(
            f"incremental: {t_inc:.2f}s = {100 * t_inc / t_full:.1f}% of the initial sync "
            f"(goal <= 3% at 10M; CPU {100 * c_inc / c_full:.1f}%); "
            f"{sum(s.updated for s in inc.streams):,} rows updated; {phases}"
        )
        print(
            f"incremental without reconciliation: {t_bare:.2f}s = "
            f"{100 * t_bare / t_full:.1f}% (CPU {100 * c_bare / c_full:.1f}%)"
        )
        print(
            f"minimal loader, same {floor_rows:,} rows (bare COPY, one DuckDB transaction that "
            f"replaces by key, commit, close): {t_floor:.2f}s = "
            f"{100 * t_floor / t_full:.1f}% (CPU {100 * c_floor / c_full:.1f}%)"
        )
        print(
            f"whole-table checksums in PostgreSQL alone (what every sync used to add): "
            f"{t_sums:.2f}s = {100 * t_sums / t_full:.1f}% (CPU {100 * c_sums / c_full:.1f}%)"
        )
        print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        return {
            "source_rows": total,
            "limit_seconds": round(t_limit, 3),
            "initial_seconds": round(t_full, 3),
            "initial_vs_limit": round(runs[1].rate / runs[0].rate, 3),
            "max_rss_mb": max_rss_mb,
            "fixed_changed_rows": fixed,
            "fixed_incremental_seconds": round(t_fixed, 3),
            "changed_rows": changed,
            "incremental_seconds": round(t_inc, 3),
            "incremental_share": round(t_inc / t_full, 4),
            "incremental_without_reconciliation_share": round(t_bare / t_full, 4),
            "minimal_loader_share": round(t_floor / t_full, 4),
            "whole_table_checksums_share": round(t_sums / t_full, 4),
            "dlt_initial_ratio": round(t_dlt_full / t_full, 3) if dlt_runs else None,
        }
    finally:
        localpg.stop(pgdata)
        shutil.rmtree(work, ignore_errors=True)


def scale_list(text: str) -> list[int]:
    """`--scales`: two or more source row counts, comma-separated, such as 1000000,10000000."""
    try:
        scales = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of row counts, such as 1000000,10000000"
        ) from None
    if len(scales) < 2 or scales[0] < FIXED_CHANGES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give at least two different scales of {FIXED_CHANGES:,} rows or more; "
            "incremental_growth compares the smallest with the largest"
        )
    return scales


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scales",
        type=scale_list,
        default=[1_000_000, 10_000_000],
        help="source rows of each run, comma-separated (default 1000000,10000000); the summary's "
        "figures are the largest scale's, its growth the largest over the smallest",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs of each measurement, the best kept (the incremental runs once more)",
    )
    parser.add_argument("--skip-dlt", action="store_true", help="leave out the dlt peer")
    options = parser.parse_args()
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")
    scales: list[int] = options.scales
    # dlt is the peer at the first scale only: at 10M it would take most of the run.
    by_scale = {
        rows: measure(rows, options.repeat, not options.skip_dlt and k == 0)
        for k, rows in enumerate(scales)
    }
    small, large = by_scale[min(scales)], by_scale[max(scales)]
    growth = large["fixed_incremental_seconds"] / small["fixed_incremental_seconds"]
    summary = {
        "scales": by_scale,
        "initial_vs_limit": large["initial_vs_limit"],
        "incremental_share_10m": large["incremental_share"],
        "incremental_growth": round(growth, 3),
        "max_rss_mb": large["max_rss_mb"],
        "goals": {
            "initial_vs_limit": ">= 0.8",
            "incremental_share_10m": "<= 0.03",
            "incremental_growth": "<= 1.5",
            "max_rss_mb": "<= 2048",
        },
    }
    print(
        f"\nSummary at {max(scales):,} rows: initial {large['initial_vs_limit']:.2f} of the limit "
        f"(goal >= 0.8), incremental {100 * large['incremental_share']:.1f}% of the initial "
        f"(goal <= 3%), peak RSS {large['max_rss_mb']:,} MB (goal <= 2048); the same "
        f"{FIXED_CHANGES:,} changed rows take {growth:.2f}x as long as at {min(scales):,} "
        "(goal <= 1.5)"
    )
    print(f"Figures: {write_figures('ingestion', summary)}")


if __name__ == "__main__":
    main()
