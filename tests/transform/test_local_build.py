"""dbt build on DuckDB over the dirty fixture: tests pass, marts match the contract, nothing lost."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.transform import fixture
from tests.transform.conftest import LocalBuild
from transform import runner as transform

CHECKED_MARTS = ("net_revenue_by_plan", "monthly_net_revenue_by_plan", "mrr_by_plan")


def query(build: LocalBuild, sql: str) -> list[tuple]:
    con = duckdb.connect(str(build.home / "warehouse" / "analytics.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{build.home / 'warehouse' / 'raw.duckdb'}' as raw (read_only)")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def marts(build: LocalBuild) -> dict:
    net = {
        name: (value, count)
        for name, value, count in query(
            build,
            "select plan_name, net_revenue, succeeded_payments from finance.net_revenue_by_plan",
        )
    }
    monthly = {
        (month, name): value
        for month, name, value in query(
            build,
            "select revenue_month, plan_name, net_revenue from finance.monthly_net_revenue_by_plan",
        )
    }
    current = fixture.month_start(build.fixture.now)
    mrr = {
        name: (value, count)
        for name, value, count in query(
            build,
            "select plan_name, mrr, active_subscriptions from finance.mrr_by_plan "
            f"where month = date '{current.isoformat()}'",
        )
    }
    quarantine = dict(
        query(
            build,
            "select source_id, reason from staging.stg_postgres_airbyte__quarantined_rows "
            "where source_table = 'payments'",
        )
    )
    return {"net": net, "monthly": monthly, "mrr": mrr, "quarantine": quarantine}


def assert_matches_contract(build: LocalBuild, fx: fixture.Fixture) -> None:
    want = fixture.expected(fx)
    got = marts(build)
    assert got["quarantine"] == want["quarantine"]
    assert got["net"] == want["net_revenue_by_plan"]
    assert got["monthly"] == want["monthly_net_revenue_by_plan"]
    assert got["mrr"] == want["current_mrr_by_plan"]


def test_build_passes_with_unit_and_data_tests(local_build: LocalBuild) -> None:
    assert local_build.outcome.success, local_build.outcome.statuses
    kinds = {}
    for result in local_build.outcome.results:
        kinds.setdefault(result.node.resource_type, set()).add(str(result.status))
    assert kinds["unit_test"] == {"pass"}
    assert kinds["model"] == {"success"}
    assert kinds["test"] <= {"pass", "warn"}
    unit_tests = {
        r.node.name for r in local_build.outcome.results if r.node.resource_type == "unit_test"
    }
    for rule in range(1, 13):
        assert any(name.startswith(f"d{rule}_") for name in unit_tests), f"no unit test for D{rule}"
    assert {
        "mrr_movements_are_labelled",
        "mrr_downgrade_to_another_plan_is_contraction",
    } <= unit_tests


def test_build_writes_run_results_but_not_the_manifest(local_build: LocalBuild) -> None:
    import json

    written = json.loads((local_build.target_path / "run_results.json").read_text())
    assert {r["unique_id"] for r in written["results"]} == {
        r.node.unique_id for r in local_build.outcome.results
    }
    assert {r["status"] for r in written["results"]} <= {"success", "pass", "warn"}
    # manifest.json describes the project; `mdp transform manifest` writes it.
    assert not (local_build.target_path / "manifest.json").exists()


def test_checked_marts_match_hand_computed_expectations(local_build: LocalBuild) -> None:
    want = fixture.expected(local_build.fixture)
    # The fixture exercises every rejection reason, more than one plan and more than one month.
    assert set(want["quarantine"].values()) == {
        "unparseable_amount",
        "negative_amount",
        "duplicate_charge",
        "orphan_subscription",
    }
    assert len({month for month, _ in want["monthly_net_revenue_by_plan"]}) > 3
    assert_matches_contract(local_build, local_build.fixture)


def test_rows_are_reconciled_and_pii_stays_out(local_build: LocalBuild) -> None:
    for table in fixture.TABLES:
        raw = query(local_build, f"select count(*) from raw.POSTGRES_AIRBYTE.{table}")[0][0]
        staged = query(local_build, f"select count(*) from staging.stg_postgres_airbyte__{table}")[
            0
        ][0]
        held = query(
            local_build,
            "select count(*) from staging.stg_postgres_airbyte__quarantined_rows "
            f"where source_table = '{table}'",
        )[0][0]
        assert raw == staged + held, table
    columns = query(
        local_build,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = 'analytics'",
    )
    names = {c for _, _, c in columns}
    for pii in ("password", "social_insurance_number", "card_number", "account_number", "iban"):
        assert pii not in names
    secrets = [str(r["password"]) for r in local_build.fixture.rows["users"]]
    dumped = query(local_build, "select * from staging.stg_postgres_airbyte__users")
    assert not any(secret in str(row) for row in dumped for secret in secrets)
    assert {schema for schema, _, _ in columns} == {"staging", "intermediate", "finance"}


def test_contract_is_enforced_on_marts(local_build: LocalBuild) -> None:
    manifest = transform.write_manifest(local_build.home / "parsed")
    import json

    nodes = json.loads(manifest.read_text())["nodes"]
    marts_nodes = [
        n for n in nodes.values() if n["resource_type"] == "model" and n["schema"] == "finance"
    ]
    assert {n["name"] for n in marts_nodes} >= set(CHECKED_MARTS)
    assert all(n["config"]["contract"]["enforced"] for n in marts_nodes)


@pytest.mark.slow
def test_incremental_run_after_one_more_sync_matches_contract(
    local_build: LocalBuild, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The session's build stays as it is for the tests that read it after this one: the
    # incremental run works on a copy of its warehouse and dbt target.
    home = tmp_path / "home"
    shutil.copytree(local_build.home, home)
    target_path = home / local_build.target_path.relative_to(local_build.home)
    later = fixture.advance(local_build.fixture)
    # monkeypatch restores the session's MDP_HOME afterwards: later tests must not write to .local/.
    monkeypatch.setenv("MDP_HOME", str(home))
    fixture.write_duckdb(home / "warehouse" / "raw.duckdb", later)
    outcome = transform.run_dbt(
        ["build", "--exclude", "resource_type:unit_test"],
        target="local",
        target_path=target_path,
    )
    assert outcome.success, outcome.statuses
    # The second run merged the lookback window into fct_payments instead of rebuilding it.
    run_sql = next(target_path.glob("run/mdp/models/intermediate/core/fct_payments.sql"))
    assert "delete from" in run_sql.read_text().lower()
    build = LocalBuild(home, later, outcome, target_path)
    before = fixture.expected(local_build.fixture)["current_mrr_by_plan"]["Platinum"][1]
    assert fixture.expected(later)["current_mrr_by_plan"]["Platinum"][1] == before - 1
    assert_matches_contract(build, later)
    versions = query(
        build,
        "select count(*) from intermediate.int_subscription_versions_captured where subscription_id = 1",
    )[0][0]
    assert versions == 2
    refunded = query(
        build, "select status, net_revenue from intermediate.fct_payments where payment_id = 1"
    )
    assert refunded == [("refunded", Decimal("0.00"))]
