"""`make bench-transform` compares the same simulated day on two history sizes."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from transform import bench

DAYS = 730


def _day_changes(path: Path, payments: int, day: bench.Day) -> tuple[int, int, int]:
    bench.generate_raw(path, payments, DAYS)
    con = duckdb.connect(str(path))
    try:
        generated, last_paid = con.execute(
            "select max(_airbyte_extracted_at), max(paid_at) from POSTGRES_AIRBYTE.payments"
        ).fetchone() or (None, None)
    finally:
        con.close()
    bench.add_day(path, payments, DAYS, day)
    con = duckdb.connect(str(path), read_only=True)
    try:
        new, refunded = con.execute(
            f"select count(*) filter (where id > {payments}), "
            "count(*) filter (where id <= ? and status = 'refunded' and _airbyte_extracted_at > ?) "
            "from POSTGRES_AIRBYTE.payments",
            [payments, generated],
        ).fetchone() or (0, 0)
        (changed,) = con.execute(
            "select count(*) from POSTGRES_AIRBYTE.subscriptions where _airbyte_extracted_at > ?",
            [generated],
        ).fetchone() or (0,)
        (late,) = con.execute(
            "select count(*) from POSTGRES_AIRBYTE.payments where id > ? and paid_at <= ?",
            [payments, last_paid],
        ).fetchone() or (0,)
    finally:
        con.close()
    # The day's payments follow the history: none is dated before its last payment.
    assert late == 0
    return new, refunded, changed


def test_the_same_day_changes_as_many_rows_on_either_history(tmp_path: Path) -> None:
    day = bench.Day.of(200_000, DAYS)
    assert day.payments > 0 and day.refunds > 0 and day.plan_changes > 0
    large = _day_changes(tmp_path / "large.duckdb", 200_000, day)
    small = _day_changes(tmp_path / "small.duckdb", 20_000, day)
    assert large == (day.payments, day.refunds, day.plan_changes)
    assert small == large


def _raw_ids(path: Path, table: str) -> dict[int, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(f"select id, _airbyte_raw_id from POSTGRES_AIRBYTE.{table}").fetchall()
    finally:
        con.close()
    return dict(rows)


def test_the_second_day_changes_as_many_other_rows(tmp_path: Path) -> None:
    payments = 200_000
    day = bench.Day.of(payments, DAYS)
    path = tmp_path / "raw.duckdb"
    bench.generate_raw(path, payments, DAYS)
    before = {table: _raw_ids(path, table) for table in ("payments", "subscriptions")}
    changed: list[dict[str, set[int]]] = []
    for batch in (0, 1):
        bench.add_day(path, payments, DAYS, day, batch)
        after = {table: _raw_ids(path, table) for table in before}
        changed.append(
            {
                table: {i for i, raw_id in after[table].items() if before[table].get(i) != raw_id}
                for table in after
            }
        )
        before = after
    first, second = changed
    # As many new payments, refunds and plan changes on the second day, on other rows.
    for table in ("payments", "subscriptions"):
        assert len(second[table]) == len(first[table]) > 0
        assert not second[table] & first[table]
    assert min(second["payments"] - set(range(payments + 1))) > max(first["payments"])
    assert len(before["payments"]) == payments + 2 * day.payments


def test_the_cpu_figures_use_the_least_cpu_of_each_kind_of_run(tmp_path: Path) -> None:
    large = bench.History(10_000_000, tmp_path / "large")
    small = bench.History(1_000_000, tmp_path / "small")
    large.full_cpu_s = [30.0, 24.0]
    large.incremental_cpu_s = [3.6, 3.0, 3.3]
    small.incremental_cpu_s = [2.0, 2.4, 2.2]
    figures = bench.cpu_figures(large, small)
    assert figures == {
        "full_cpu_s": 24.0,
        "incremental_cpu_s": 3.0,
        "small_incremental_cpu_s": 2.0,
        "incremental_share_cpu": 0.125,
        "incremental_growth_cpu": 1.5,
    }


def test_a_timed_run_counts_the_cpu_of_the_whole_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def busy_run(args: list[str], target: str) -> SimpleNamespace:
        # Work on another thread, as DuckDB's threads work beside dbt's.
        worker = threading.Thread(target=lambda: sum(i * i for i in range(2_000_000)))
        worker.start()
        worker.join()
        return SimpleNamespace(success=True, statuses={}, results=[])

    monkeypatch.setattr(bench.transform, "run_dbt", busy_run)
    timing = bench.timed_run(["run"])
    assert timing.cpu_s > 0.05
