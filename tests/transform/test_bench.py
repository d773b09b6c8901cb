"""`make bench-transform` compares the same simulated day on two history sizes."""

from __future__ import annotations

from pathlib import Path

import duckdb

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
