"""Cycles: stable keys, a cursor that moves forward, soft deletes, late rows, reproducible seeds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from source_generator import GeneratorConfig, generate_cycle
from source_generator.config import BillingRates, ChangeRates
from source_generator.simulation import GENERATED_TABLES

pytestmark = pytest.mark.postgres

START = datetime(2025, 6, 1, tzinfo=UTC)
TABLES = (*GENERATED_TABLES, "plans")


def snapshot(conn: psycopg.Connection) -> dict[str, dict[int, tuple[Any, ...]]]:
    """Every row of every source table, by table and id."""
    return {
        table: {row[0]: row for row in conn.execute(f"select * from app.{table} order by id")}
        for table in TABLES
    }


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    cur = conn.execute(f"select * from app.{table} limit 0")
    assert cur.description is not None
    return [c.name for c in cur.description]


def test_keys_are_stable_sequential_and_never_reused(source_dsn: str) -> None:
    config = GeneratorConfig(rows_per_cycle=3000, seed=5)
    with psycopg.connect(source_dsn) as conn:
        generate_cycle(conn, config, START)
        before = snapshot(conn)
        identity = {
            "users": conn.execute("select id, uid, created_at from app.users").fetchall(),
            "payments": conn.execute(
                "select id, charge_id, created_at from app.payments"
            ).fetchall(),
        }
        for k in range(1, 4):
            generate_cycle(conn, config, START + k * timedelta(hours=2))
        after = snapshot(conn)
        for table, rows in identity.items():
            key = "uid" if table == "users" else "charge_id"
            now = dict(
                (
                    (i, (k_, c))
                    for i, k_, c in conn.execute(f"select id, {key}, created_at from app.{table}")
                )
            )
            for row_id, ident, created in rows:
                assert now[row_id] == (ident, created), f"{table} {row_id} changed identity"
    for table in GENERATED_TABLES:
        old_ids, new_ids = set(before[table]), set(after[table])
        assert old_ids <= new_ids, f"{table} lost rows"
        assert min(new_ids - old_ids) == max(old_ids) + 1, f"{table} skipped or reused ids"
        # Surrogate keys are sequential, never random.
        assert sorted(new_ids) == list(range(1, len(new_ids) + 1)), table
    assert before["plans"] == after["plans"]


def test_every_changed_row_has_updated_at_at_or_after_the_cycle_start(source_dsn: str) -> None:
    config = GeneratorConfig(rows_per_cycle=4000, seed=6)
    with psycopg.connect(source_dsn) as conn:
        generate_cycle(conn, config)
        before = snapshot(conn)
        cycle_start = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        conn.commit()
        summary = generate_cycle(conn, config)
        after = snapshot(conn)
        layout = {table: _columns(conn, table) for table in TABLES}
    assert summary.clock >= cycle_start
    changed = inserted = 0
    for table in TABLES:
        updated_at = layout[table].index("updated_at")
        for row_id, row in after[table].items():
            old = before[table].get(row_id)
            if old is None:
                inserted += 1
                assert row[updated_at] == summary.clock
            elif old != row:
                changed += 1
                assert row[updated_at] == summary.clock >= cycle_start
                assert row[updated_at] > old[updated_at]
            else:
                assert row[updated_at] < cycle_start, f"{table} {row_id} untouched but re-stamped"
    assert inserted - summary.inserted["payments"] == 4000
    assert changed >= summary.rows_updated * 0.9 > 0


def test_the_clock_never_goes_backwards(source_dsn: str) -> None:
    config = GeneratorConfig(rows_per_cycle=500, seed=7)
    with psycopg.connect(source_dsn) as conn:
        first = generate_cycle(conn, config, START)
        second = generate_cycle(conn, config, START - timedelta(days=1))
        newest = conn.execute(
            "select max(updated_at) from app.payments where id > %s", (first.inserted["payments"],)
        ).fetchone()
    assert second.clock > first.clock
    assert newest == (second.clock,)


def test_updates_change_status_plan_refunds_emails_and_soft_delete(source_dsn: str) -> None:
    # No failed attempts, so every status change here is one of the cycle's own changes.
    config = GeneratorConfig(
        rows_per_cycle=6000,
        seed=8,
        changes=ChangeRates(subscription_changes=0.01),
        billing=BillingRates(failure=0.0),
    )
    with psycopg.connect(source_dsn) as conn:
        generate_cycle(conn, config, START)
        before_subs = {
            r[0]: r[1:]
            for r in conn.execute(
                "select id, lower(trim(plan)), lower(trim(status)) from app.subscriptions"
            )
        }
        before_pay = dict(
            conn.execute("select id, lower(trim(status)) from app.payments").fetchall()
        )
        before_email = dict(conn.execute("select id, email from app.users").fetchall())
        # A month later: refunds fall within 30 days of their payment.
        summary = generate_cycle(conn, config, START + timedelta(days=31))
        subs = conn.execute(
            "select id, lower(trim(plan)), lower(trim(status)), cancelled_at from app.subscriptions "
            "where updated_at = %s and id <= %s",
            (summary.clock, len(before_subs)),
        ).fetchall()
        refunded = conn.execute(
            "select id from app.payments where lower(trim(status)) = 'refunded'"
        ).fetchall()
        emails = conn.execute(
            "select id, email from app.users where updated_at = %s and id <= %s and deleted_at is null",
            (summary.clock, len(before_email)),
        ).fetchall()
        deleted = conn.execute(
            "select deleted_at, updated_at from app.users where deleted_at is not null"
        ).fetchall()
    kinds = {k.split(".")[1] for k in summary.updated if k.startswith("subscriptions.")}
    assert {"cancel", "upgrade", "downgrade", "idle"} <= kinds
    ladder = ["basic", "bronze", "standard", "gold", "platinum"]
    moves = set()
    for sub_id, plan, status, cancelled_at in subs:
        old_plan, old_status = before_subs[sub_id]
        status = "cancelled" if status == "canceled" else status
        assert (status == "cancelled") == (cancelled_at is not None)
        if plan != old_plan:
            moves.add("up" if ladder.index(plan) > ladder.index(old_plan) else "down")
        else:
            assert status != old_status or status == "cancelled"
    assert moves == {"up", "down"}
    assert refunded and all(before_pay[pid] == "succeeded" for (pid,) in refunded)
    assert len(refunded) == summary.updated["payments.refund"]
    assert emails and all(before_email[uid] != email for uid, email in emails)
    assert len(deleted) == summary.updated["users.soft_delete"] > 0
    assert all(deleted_at == updated_at == summary.clock for deleted_at, updated_at in deleted)


def test_reactivation_brings_cancelled_subscriptions_back(source_dsn: str) -> None:
    config = GeneratorConfig(
        rows_per_cycle=3000,
        seed=9,
        changes=ChangeRates(subscription_changes=1.0, reactivation=1.0),
    )
    with psycopg.connect(source_dsn) as conn:
        generate_cycle(conn, config, START)
        conn.execute(
            "update app.subscriptions set status = 'cancelled', cancelled_at = %s", (START,)
        )
        conn.commit()
        summary = generate_cycle(conn, config, START + timedelta(hours=2))
        back = conn.execute(
            "select lower(trim(status)), cancelled_at from app.subscriptions "
            "where updated_at = %s and id <= 750",
            (summary.clock,),
        ).fetchall()
    assert summary.updated["subscriptions.reactivate"] == len(back) > 0
    assert all(status == "active" and cancelled is None for status, cancelled in back)


def test_late_rows_are_backdated_up_to_72_hours(source_dsn: str) -> None:
    with psycopg.connect(source_dsn) as conn:
        summary = generate_cycle(conn, GeneratorConfig(rows_per_cycle=20_000, seed=10), START)
        late = 0
        # Payments are written at their due instant (created_at = paid_at), not backdated.
        assert conn.execute(
            "select count(*) from app.payments where created_at <> paid_at"
        ).fetchone() == (0,)
        for table in set(GENERATED_TABLES) - {"payments"}:
            rows = conn.execute(
                f"select created_at, updated_at from app.{table} where updated_at = %s",
                (summary.clock,),
            ).fetchall()
            for created_at, updated_at in rows:
                assert updated_at - timedelta(hours=72) <= created_at <= updated_at
                late += created_at < updated_at
    assert late == summary.late_rows
    assert 0.025 < late / 20_000 < 0.075


def test_the_same_seed_and_start_clock_reproduce_the_same_rows(
    source_db_factory: Callable[[], str],
) -> None:
    dumps = []
    for seed in (21, 21, 22):
        with psycopg.connect(source_db_factory()) as conn:
            for k in range(3):
                generate_cycle(
                    conn,
                    GeneratorConfig(rows_per_cycle=2000, seed=seed),
                    START + k * timedelta(hours=2),
                )
            dumps.append(snapshot(conn))
    assert dumps[0] == dumps[1]
    assert dumps[0]["payments"] != dumps[2]["payments"]
    assert dumps[0]["users"] != dumps[2]["users"]
