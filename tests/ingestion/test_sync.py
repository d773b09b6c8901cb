"""Incremental Append + Deduped semantics of the loader against a real PostgreSQL and DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
import pytest

from ingestion.errors import ReconciliationFailed
from ingestion.sync import run_sync
from tests.ingestion.conftest import assert_mirrors, raw_query, raw_rows, raw_snapshot

pytestmark = pytest.mark.postgres

NO_LOOKBACK = timedelta(0)


def test_first_sync_mirrors_the_source_with_airbyte_columns(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(400)
    result = run_sync(source_dsn, raw_path)

    assert_mirrors(source_dsn, raw_path)
    assert {s.stream: s.inserted for s in result.streams}["plans"] == 5
    assert all(r.ok for r in result.reconciliations)
    columns = raw_query(
        raw_path,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'postgres_airbyte' and table_name = 'payments' "
        "order by ordinal_position",
    )
    assert columns[:4] == [
        ("_airbyte_raw_id", "VARCHAR"),
        ("_airbyte_extracted_at", "TIMESTAMP WITH TIME ZONE"),
        ("_airbyte_meta", "JSON"),
        ("_airbyte_generation_id", "BIGINT"),
    ]
    types = dict(columns)
    assert types["discount_amount"] == "DECIMAL(10,2)"
    assert types["paid_at"] == "TIMESTAMP WITH TIME ZONE"
    ids = raw_query(
        raw_path,
        "select count(distinct _airbyte_raw_id), count(*), "
        "count(*) filter (where _airbyte_raw_id similar to '[0-9a-f-]{36}'), "
        "min(_airbyte_generation_id), max(_airbyte_meta->>'sync_id') "
        "from postgres_airbyte.payments",
    )[0]
    assert ids[0] == ids[1] == ids[2] > 0
    assert ids[3] == 0 and ids[4] == "1"


def test_two_syncs_in_a_row_give_identical_results(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(400)
    run_sync(source_dsn, raw_path)
    first = raw_snapshot(raw_path)
    second_result = run_sync(source_dsn, raw_path)

    assert raw_snapshot(raw_path) == first
    assert sum(s.inserted + s.updated for s in second_result.streams) == 0


def test_updates_and_soft_deletes_are_reflected(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(600)
    run_sync(source_dsn, raw_path)
    cycle(600)  # cancels, upgrades, refunds, email changes, soft deletes
    with psycopg.connect(source_dsn) as conn:
        conn.execute(
            "update app.users set deleted_at = now(), updated_at = clock_timestamp() where id = 3"
        )
        conn.execute(
            "update app.plans set monthly_price = monthly_price + 1, "
            "updated_at = clock_timestamp() where id = 1"
        )
        # Billing changes a few subscriptions a day; a cycle of two hours may change none.
        conn.execute(
            "update app.subscriptions set status = 'cancelled', cancelled_at = now(), "
            "updated_at = clock_timestamp() where id = 2"
        )
    result = run_sync(source_dsn, raw_path)

    assert_mirrors(source_dsn, raw_path)
    updated = {s.stream: s.updated for s in result.streams}
    assert updated["users"] > 0 and updated["subscriptions"] > 0 and updated["plans"] == 1
    assert raw_query(
        raw_path, "select deleted_at is not null from postgres_airbyte.users where id = 3"
    ) == [(True,)]


def test_a_row_updated_twice_between_syncs_appears_once_with_latest_values(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(200)
    run_sync(source_dsn, raw_path)
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        for status in ("idle", "cancelled"):
            conn.execute(
                "update app.subscriptions set status = %s, updated_at = clock_timestamp() "
                "where id = 7",
                (status,),
            )
    result = run_sync(source_dsn, raw_path)

    rows = raw_query(raw_path, "select status from postgres_airbyte.subscriptions where id = 7")
    assert rows == [("cancelled",)]
    assert {s.stream: s.updated for s in result.streams}["subscriptions"] == 1
    assert_mirrors(source_dsn, raw_path)


SAME_CURSOR = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _insert_banks(dsn: str, rows: list[tuple[int, str]]) -> None:
    """Banks with these ids and names, all stamped with the same updated_at."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for id_, name in rows:
            conn.execute(
                "insert into app.banks (id, user_id, bank_name, created_at, updated_at) "
                "values (%s, 1, %s, %s, %s)",
                (id_, name, SAME_CURSOR, SAME_CURSOR),
            )


def test_rows_sharing_the_saved_cursor_are_neither_lost_nor_duplicated(
    source_dsn: str, raw_path: Path
) -> None:
    _insert_banks(source_dsn, [(1, "first"), (2, "second")])
    result = run_sync(source_dsn, raw_path, lookback=NO_LOOKBACK)
    assert {s.stream: s.cursor for s in result.streams}["banks"] == SAME_CURSOR

    # A third row stamped with exactly the saved cursor value, committed after the sync.
    _insert_banks(source_dsn, [(3, "third")])
    result = run_sync(source_dsn, raw_path, lookback=NO_LOOKBACK)

    banks = {s.stream: s for s in result.streams}["banks"]
    assert (banks.rows_read, banks.inserted, banks.updated) == (3, 1, 0)
    assert raw_rows(raw_path, "banks", ["id", "bank_name"]) == [
        (1, "first"),
        (2, "second"),
        (3, "third"),
    ]


def test_a_row_changed_without_a_new_cursor_is_replaced_and_identical_rows_are_kept(
    source_dsn: str, raw_path: Path
) -> None:
    _insert_banks(source_dsn, [(1, "first"), (2, "second")])
    run_sync(source_dsn, raw_path, lookback=NO_LOOKBACK)
    extracted = dict(raw_rows(raw_path, "banks", ["id", "_airbyte_extracted_at"]))

    # Re-read at the saved cursor: row 1 altered with updated_at left as it was, row 2 as it was.
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("update app.banks set bank_name = 'renamed' where id = 1")
    result = run_sync(source_dsn, raw_path, lookback=NO_LOOKBACK)

    banks = {s.stream: s for s in result.streams}["banks"]
    assert (banks.rows_read, banks.inserted, banks.updated) == (2, 0, 1)
    assert raw_rows(raw_path, "banks", ["id", "bank_name"]) == [(1, "renamed"), (2, "second")]
    after = dict(raw_rows(raw_path, "banks", ["id", "_airbyte_extracted_at"]))
    assert after[2] == extracted[2] and after[1] > extracted[1]


def test_late_rows_are_captured(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(300)  # includes rows whose created_at is backdated up to 72 hours
    run_sync(source_dsn, raw_path)
    cycle(300)
    run_sync(source_dsn, raw_path)
    assert_mirrors(source_dsn, raw_path)

    # A write transaction stamps updated_at when it starts but commits after the next sync has
    # read a newer row: the lookback window catches it on the sync after.
    t = datetime.now(UTC)
    late = psycopg.connect(source_dsn)
    late.execute(
        "insert into app.credit_cards (id, user_id, card_type, created_at, updated_at) "
        "values (900001, 1, 'visa', %s, %s)",
        (t - timedelta(days=3), t),
    )
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute(
            "update app.credit_cards set card_type = 'amex', updated_at = %s where id = 1",
            (t + timedelta(seconds=2),),
        )
    run_sync(source_dsn, raw_path, lookback=timedelta(minutes=1))
    late.commit()
    late.close()
    run_sync(source_dsn, raw_path, lookback=timedelta(minutes=1))

    assert raw_query(
        raw_path, "select card_type from postgres_airbyte.credit_cards where id = 900001"
    ) == [("visa",)]
    assert_mirrors(source_dsn, raw_path)


def test_without_lookback_a_late_commit_is_missed_and_reconciliation_says_so(
    source_dsn: str, raw_path: Path
) -> None:
    t = datetime.now(UTC)
    late = psycopg.connect(source_dsn)
    late.execute(
        "insert into app.credit_cards (id, user_id, created_at, updated_at) values (2, 1, %s, %s)",
        (t, t),
    )
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute(
            "insert into app.credit_cards (id, user_id, created_at, updated_at) "
            "values (1, 1, %s, %s)",
            (t, t + timedelta(seconds=2)),
        )
    run_sync(source_dsn, raw_path, lookback=NO_LOOKBACK)
    late.commit()
    late.close()

    with pytest.raises(ReconciliationFailed) as failure:
        run_sync(source_dsn, raw_path, lookback=NO_LOOKBACK)
    assert "credit_cards ids 0..16383: source 2 rows" in str(failure.value)
    assert "RAW is missing 1 row(s)" in str(failure.value)


def test_full_refresh_rewrites_and_increments_generation(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(200)
    run_sync(source_dsn, raw_path)
    result = run_sync(source_dsn, raw_path, stream_names=["payments"], full_refresh=True)

    payments = result.streams[0]
    assert payments.full_refresh and payments.generation_id == 1
    assert raw_query(
        raw_path, "select distinct _airbyte_generation_id from postgres_airbyte.payments"
    ) == [(1,)]
    assert raw_query(
        raw_path, "select distinct _airbyte_generation_id from postgres_airbyte.users"
    ) == [(0,)]
    assert_mirrors(source_dsn, raw_path)


def test_a_source_column_added_between_syncs_appears_in_raw(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(200)
    run_sync(source_dsn, raw_path)
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("alter table app.users add column loyalty_tier smallint")
        conn.execute(
            "update app.users set loyalty_tier = 2, updated_at = clock_timestamp() where id <= 4"
        )
    result = run_sync(source_dsn, raw_path)

    users = {s.stream: s for s in result.streams}["users"]
    assert users.columns_added == ["loyalty_tier"]
    tiers = raw_query(
        raw_path,
        "select count(*) filter (where loyalty_tier = 2), count(*) filter (where loyalty_tier "
        "is null), any_value(typeof(loyalty_tier)) from postgres_airbyte.users",
    )[0]
    assert tiers[0] == 4 and tiers[1] > 0 and tiers[2] == "SMALLINT"


def test_reconciliation_catches_a_corrupted_raw_table(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(300)
    run_sync(source_dsn, raw_path)
    cycle(300)
    run_sync(source_dsn, raw_path)
    # Rows older than the lookback window: the next sync does not re-read them, so only the
    # reconciliation can notice they were tampered with.
    old = "where updated_at < (select max(updated_at) - interval 1 hour from postgres_airbyte.{t})"
    (payment,) = raw_query(
        raw_path, f"select min(id) from postgres_airbyte.payments {old.format(t='payments')}"
    )[0]
    (user,) = raw_query(
        raw_path, f"select min(id) from postgres_airbyte.users {old.format(t='users')}"
    )[0]
    con = duckdb.connect(str(raw_path))
    con.execute("delete from postgres_airbyte.payments where id = ?", [payment])
    con.execute(
        "update postgres_airbyte.users set updated_at = updated_at - interval 1 hour where id = ?",
        [user],
    )
    con.close()

    with pytest.raises(ReconciliationFailed) as failure:
        run_sync(source_dsn, raw_path)
    message = str(failure.value)
    assert "2 stream(s)" in message
    assert "payments ids 0..16383: source" in message and "RAW is missing 1 row(s)" in message
    assert "users ids 0..16383: source" in message and "(id, updated_at) differ" in message
    assert "mdp sync --full-refresh" in message
    assert failure.value.streams == ["users", "payments"]


def test_a_raw_table_dropped_by_hand_is_reloaded_whole(
    source_dsn: str, raw_path: Path, cycle: Callable[..., None]
) -> None:
    cycle(200)
    run_sync(source_dsn, raw_path)
    cycle(200)
    run_sync(source_dsn, raw_path)
    con = duckdb.connect(str(raw_path))
    con.execute("drop table postgres_airbyte.banks")
    con.close()

    result = run_sync(source_dsn, raw_path)

    assert all(r.ok for r in result.reconciliations)
    assert_mirrors(source_dsn, raw_path)
