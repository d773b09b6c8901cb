"""dbt build on DuckDB over the dirty fixture: tests pass, marts match the contract, nothing lost."""

from __future__ import annotations

import shutil
from datetime import timedelta
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


def test_a_full_build_writes_the_mrr_models_in_month_order(local_build: LocalBuild) -> None:
    """An incremental run's month window then lies in the tables' last row groups: its reads
    skip the older ones, and its deletes rewrite only those (transform/README.md)."""
    for table in ("int_subscription_months_evaluated", "int_mrr_movements_classified"):
        months = [
            month
            for (month,) in query(
                local_build, f"select month from intermediate.{table} order by rowid"
            )
        ]
        assert len(set(months)) > 2, table
        assert months == sorted(months), f"{table} is not stored in month order"


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


def test_data_as_of_names_the_last_load_and_the_run_that_built_the_marts(
    local_build: LocalBuild,
) -> None:
    import json

    (row,) = query(
        local_build,
        "select last_loaded_at, last_paid_at, marts_built_at, current_month, last_complete_month "
        "from finance.data_as_of",
    )
    loaded, paid, built, current, complete = row
    accepted = "select payment_id from staging.stg_postgres_airbyte__payments"
    (synced, newest_paid) = query(
        local_build,
        "select max(_airbyte_extracted_at) at time zone 'UTC', max(paid_at at time zone 'UTC') "
        f"from raw.POSTGRES_AIRBYTE.payments where id in ({accepted})",
    )[0]
    assert loaded == synced and paid == newest_paid
    # dbt's start of the run, to the second, as run_results.json records it.
    started = json.loads((local_build.target_path / "run_results.json").read_text())["metadata"]
    assert f"{built:%Y-%m-%dT%H:%M:%S}" == started["invocation_started_at"][:19]
    assert current == loaded.date().replace(day=1)
    assert complete == (current - timedelta(days=1)).replace(day=1)


def test_revenue_and_mrr_by_billing_period_add_up_to_the_checked_marts(
    local_build: LocalBuild,
) -> None:
    by_period = "finance.revenue_and_mrr_by_billing_period"
    differences = query(
        local_build,
        f"""
        with periods as (
            select month, plan_name, sum(mrr) as mrr, sum(active_subscriptions) as active,
                   sum(net_revenue) as net_revenue, sum(succeeded_amount - discount_amount) as net
            from {by_period} group by all
        )
        select coalesce(p.month, m.month, r.revenue_month), coalesce(p.plan_name, m.plan_name),
               p.mrr, m.mrr, p.active, m.active_subscriptions, p.net_revenue, r.net_revenue, p.net
        from periods as p
        full join finance.mrr_by_plan as m on p.month = m.month and p.plan_name = m.plan_name
        full join finance.monthly_net_revenue_by_plan as r
            on p.month = r.revenue_month and p.plan_name = r.plan_name
        where coalesce(p.mrr, 0) <> coalesce(m.mrr, 0)
            or coalesce(p.active, 0) <> coalesce(m.active_subscriptions, 0)
            or coalesce(p.net_revenue, 0) <> coalesce(r.net_revenue, 0)
            or p.net <> p.net_revenue
        """,
    )
    assert differences == []
    # The two revenue marts are summed from this one; its payment figures are recomputed here
    # from the payments themselves (the contract checks recompute those marts from the source).
    recounted = query(
        local_build,
        f"""
        with paid as (
            select p.paid_month as month, pl.plan_name, s.billing_period, count(*) as payments,
                   count(*) filter (where p.is_succeeded) as succeeded_payments,
                   sum(p.net_revenue) as net_revenue
            from intermediate.fct_payments as p
            join intermediate.dim_subscriptions as s using (subscription_id)
            join intermediate.dim_plans as pl on s.plan_id = pl.plan_id
            group by all
        )
        select coalesce(b.month, paid.month), coalesce(b.plan_name, paid.plan_name),
               coalesce(b.billing_period, paid.billing_period), b.payments, paid.payments,
               b.succeeded_payments, paid.succeeded_payments, b.net_revenue, paid.net_revenue
        from {by_period} as b
        full join paid
            on b.month = paid.month and b.plan_name = paid.plan_name
            and b.billing_period = paid.billing_period
        where coalesce(b.payments, 0) <> coalesce(paid.payments, 0)
            or coalesce(b.succeeded_payments, 0) <> coalesce(paid.succeeded_payments, 0)
            or coalesce(b.net_revenue, 0) <> coalesce(paid.net_revenue, 0)
        """,
    )
    assert recounted == []
    (months_with_payments,) = query(
        local_build, f"select count(*) from {by_period} where payments > 0"
    )[0]
    assert months_with_payments > 0
    periods = query(
        local_build,
        f"select billing_period, sum(mrr), sum(net_revenue), sum(failed_amount), "
        f"sum(refunded_amount) from {by_period} group by all order by all",
    )
    # Both billing periods hold MRR and revenue, and the fixture fails and refunds payments.
    assert [p for p, *_ in periods] == ["annual", "monthly"]
    assert all(v > 0 for _, *values in periods for v in values[:2])
    assert sum(failed for *_, failed, _ in periods) > 0
    assert sum(refunded for *_, refunded in periods) > 0
