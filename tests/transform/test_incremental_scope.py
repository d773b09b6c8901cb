"""A daily run recomputes only what changed, and still equals a full rebuild.

The first sync here happened ten days ago and a second one, re-syncing a single subscription,
two days ago: the last run's lookback window (72 hours before the newest sync it had seen)
leaves the first sync out. The last (incremental) run sees the day's changes: a refund, an
upgrade, a soft-deleted user, new payments, a duplicate charge and a new price for a plan.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.transform import fixture, marts_checks
from tests.transform.conftest import LocalBuild
from tests.transform.test_local_build import assert_matches_contract
from transform import runner as transform


@dataclass
class Runs:
    home: Path
    first: fixture.Fixture
    later: fixture.Fixture
    incremental: transform.DbtOutcome
    full: Path  # the same warehouse rebuilt with --full-refresh


RESYNCED = 9  # a subscription synced again, unchanged, between the first and the last sync
# A plan whose annual price changes in the last sync; subscription 2 pays it, yearly and active.
REPRICED = "Gold"


def resync(fx: fixture.Fixture, table: str, row_id: int, when: datetime) -> fixture.Fixture:
    """The same rows, with one of them extracted again at `when`."""
    rows = {name: [dict(row) for row in table_rows] for name, table_rows in fx.rows.items()}
    next(row for row in rows[table] if row["id"] == row_id)["_airbyte_extracted_at"] = when
    return fixture.Fixture(now=fx.now, rows=rows)


def reprice(fx: fixture.Fixture, plan: str, annual_price: Decimal) -> fixture.Fixture:
    """The same rows, with `plan`'s annual price changed and synced again with the last sync."""
    rows = {name: [dict(row) for row in table_rows] for name, table_rows in fx.rows.items()}
    changed = next(row for row in rows["plans"] if row["name"] == plan)
    synced = max(row["_airbyte_extracted_at"] for row in rows["payments"])
    changed.update(
        annual_price=annual_price,
        updated_at=synced,
        _airbyte_extracted_at=synced,
        _airbyte_raw_id=str(uuid.uuid4()),
    )
    return fixture.Fixture(now=fx.now, rows=rows)


def warehouse(home: Path) -> Path:
    return home / "warehouse" / "analytics.duckdb"


def rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    home = tmp_path_factory.mktemp("mdp_home_scope")
    target_path = home / "dbt_target"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_HOME", str(home))
        first = fixture.build(synced_ago=timedelta(days=10))
        raw = home / "warehouse" / "raw.duckdb"
        fixture.write_duckdb(raw, first)
        outcome = transform.run_dbt(["run"], target="local", target_path=target_path)
        assert outcome.success, outcome.statuses
        resynced = resync(first, "subscriptions", RESYNCED, first.now - timedelta(days=2))
        fixture.write_duckdb(raw, resynced)
        outcome = transform.run_dbt(["run"], target="local", target_path=target_path)
        assert outcome.success, outcome.statuses
        later = reprice(fixture.advance(resynced), REPRICED, Decimal("480.00"))
        fixture.write_duckdb(raw, later)
        incremental = transform.run_dbt(["run"], target="local", target_path=target_path)
        assert incremental.success, incremental.statuses
        # Rebuild a copy from scratch, then put the incremental result back in place.
        kept = home / "analytics_incremental.duckdb"
        shutil.copy(warehouse(home), kept)
        rebuilt = transform.run_dbt(
            ["run", "--full-refresh"], target="local", target_path=target_path
        )
        assert rebuilt.success, rebuilt.statuses
        full = home / "analytics_full.duckdb"
        shutil.move(warehouse(home), full)
        shutil.move(kept, warehouse(home))
    yield Runs(home=home, first=first, later=later, incremental=incremental, full=full)


def test_incremental_result_equals_a_full_rebuild(runs: Runs) -> None:
    assert transform.differing_tables(runs.full, warehouse(runs.home)) == {}
    assert transform.differing_tables(warehouse(runs.home), runs.full) == {}


def test_incremental_result_matches_the_contract(runs: Runs) -> None:
    build = LocalBuild(runs.home, runs.later, runs.incremental, runs.home / "dbt_target")
    assert_matches_contract(build, runs.later)


def test_the_mrr_bridge_closes_after_upgrades_and_deletions(runs: Runs) -> None:
    breaks, nonzero = marts_checks.bridge_breaks(warehouse(runs.home))
    assert breaks == []
    # The last sync upgraded a subscription to another plan and soft-deleted a user.
    assert nonzero["expansion_mrr"] > 0 and nonzero["plan_change_mrr"] > 0, nonzero
    assert nonzero["churned_mrr"] > 0, nonzero


def test_only_changed_subscriptions_are_recomputed(runs: Runs) -> None:
    current = fixture.month_start(runs.later.now).isoformat()
    watermarks = dict(
        rows(
            warehouse(runs.home),
            "select subscription_id, _synced_until from intermediate.int_subscription_months_evaluated "
            f"where month = date '{current}'",
        )
    )
    # Subscription 1 was upgraded in the second sync: recomputed, with the new watermark.
    newest = max(watermarks.values())
    assert watermarks[1] == newest
    # Subscriptions nothing happened to since the first sync (nor to their user or plan) kept
    # the rows of an earlier run; the one re-synced two days ago is still in the lookback window
    # and was recomputed.
    untouched = [sub for sub, synced in watermarks.items() if synced < newest]
    assert len(untouched) >= 2, watermarks
    assert RESYNCED in watermarks
    assert RESYNCED not in untouched
    # The repriced plan's subscription was redone with the new price, though it did not change.
    ((annual_value,),) = rows(
        warehouse(runs.home),
        "select annual_value from intermediate.dim_subscriptions where subscription_id = 2",
    )
    assert annual_value == Decimal("480.00")
    assert watermarks[2] == newest
    # The soft-deleted user's active subscription left the current month.
    deleted_user_subscriptions = rows(
        warehouse(runs.home),
        "select subscription_id from intermediate.dim_subscriptions where user_id = 2 "
        "and status = 'active'",
    )
    assert deleted_user_subscriptions
    for (subscription_id,) in deleted_user_subscriptions:
        assert subscription_id not in watermarks
