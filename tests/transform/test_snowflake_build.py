"""dbt build with dbt-snowflake against a fakesnow server on 127.0.0.1: the Snowflake SQL path."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.transform import fixture, pii
from transform import runner as transform

# fakesnow copies every result to Arrow and says so on each query.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result")


@dataclass
class SnowflakeBuild:
    connect: dict[str, Any]
    profiles_dir: Path
    target_path: Path


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def load_raw(connect: dict[str, Any], fx: fixture.Fixture) -> None:
    """Write the raw layer the way Airbyte's Snowflake destination lays it out."""
    import snowflake.connector

    con = snowflake.connector.connect(**connect)
    try:
        cur = con.cursor()
        cur.execute("create database if not exists RAW")
        cur.execute("create schema if not exists RAW.POSTGRES_AIRBYTE")
        cur.execute("create database if not exists ANALYTICS")
        for table, rows in fx.rows.items():
            cols = fixture.columns(table, "snowflake")
            ddl = ", ".join(f"{name} {type_}" for name, type_ in cols)
            cur.execute(f"create or replace table RAW.POSTGRES_AIRBYTE.{table} ({ddl})")
            names = [name for name, _ in cols]
            marks = ", ".join(["%s"] * len(names))
            cur.executemany(
                f"insert into RAW.POSTGRES_AIRBYTE.{table} ({', '.join(names)}) values ({marks})",
                [[_value(row[n]) for n in names] for row in rows],
            )
    finally:
        con.close()


def query(connect: dict[str, Any], sql: str) -> list[tuple]:
    import snowflake.connector

    con = snowflake.connector.connect(**connect)
    try:
        return list(con.cursor().execute(sql).fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def fakesnow_server(
    tmp_path_factory: pytest.TempPathFactory, start_fakesnow: Callable[..., Any]
) -> Iterator[SnowflakeBuild]:
    home = tmp_path_factory.mktemp("mdp_home_snowflake")
    saved = os.environ.get("MDP_HOME")
    os.environ["MDP_HOME"] = str(home)
    try:
        with start_fakesnow(host="127.0.0.1") as connect:
            profiles_dir = home / "profiles"
            profiles_dir.mkdir()
            # Same shape as the prod target, but password auth: fakesnow has no key-pair login.
            (profiles_dir / "profiles.yml").write_text(
                f"""
mdp:
  target: fakesnow
  outputs:
    fakesnow:
      type: snowflake
      account: fakesnow
      user: fake
      password: snow
      host: 127.0.0.1
      port: {connect["port"]}
      protocol: http
      database: ANALYTICS
      schema: staging
      warehouse: TRANSFORMING
      role: TRANSFORMER
      threads: 1
"""
            )
            yield SnowflakeBuild(connect, profiles_dir, home / "dbt_target")
    finally:
        if saved is None:
            os.environ.pop("MDP_HOME", None)
        else:
            os.environ["MDP_HOME"] = saved


def contract_view(connect: dict[str, Any], fx: fixture.Fixture) -> dict[str, Any]:
    current = fixture.month_start(fx.now).isoformat()
    return {
        "quarantine": dict(
            query(
                connect,
                "select source_id, reason from ANALYTICS.STAGING.STG_POSTGRES_AIRBYTE__QUARANTINED_ROWS",
            )
        ),
        "net_revenue_by_plan": {
            name: (value, count)
            for name, value, count in query(
                connect,
                "select plan_name, net_revenue, succeeded_payments from ANALYTICS.FINANCE.NET_REVENUE_BY_PLAN",
            )
        },
        "monthly_net_revenue_by_plan": {
            (month, name): value
            for month, name, value in query(
                connect,
                "select revenue_month, plan_name, net_revenue "
                "from ANALYTICS.FINANCE.MONTHLY_NET_REVENUE_BY_PLAN",
            )
        },
        "current_mrr_by_plan": {
            name: (value, count)
            for name, value, count in query(
                connect,
                "select plan_name, mrr, active_subscriptions from ANALYTICS.FINANCE.MRR_BY_PLAN "
                f"where month = '{current}'::date",
            )
        },
    }


def assert_matches(connect: dict[str, Any], fx: fixture.Fixture) -> None:
    want = fixture.expected(fx)
    got = contract_view(connect, fx)
    for key, value in got.items():
        assert value == want[key], key


def load_and_build(server: SnowflakeBuild, fx: fixture.Fixture) -> transform.DbtOutcome:
    """Load `fx` as the raw layer, then `dbt build` on the fakesnow target; it must succeed."""
    load_raw(server.connect, fx)
    # Unit tests are left to the DuckDB build: dbt-snowflake runs each one through
    # CREATE TEMPORARY TABLE <database>.<schema>.<name>, which fakesnow 0.12 cannot emulate
    # (DuckDB keeps temporary tables in its own catalog). See transform/README.md.
    outcome = transform.run_dbt(
        ["build", "--exclude", "resource_type:unit_test"],
        target="fakesnow",
        profiles_dir=server.profiles_dir,
        target_path=server.target_path,
    )
    assert outcome.success, outcome.statuses
    return outcome


@pytest.mark.slow
def test_build_on_snowflake_dialect_matches_contract(fakesnow_server: SnowflakeBuild) -> None:
    fx = fixture.build()
    outcome = load_and_build(fakesnow_server, fx)
    kinds = {r.node.resource_type for r in outcome.results}
    assert {"model", "test"} <= kinds
    assert all(str(r.status) in ("success", "pass", "warn") for r in outcome.results)
    assert_matches(fakesnow_server.connect, fx)

    # A second sync, then an incremental run: delete+insert with transient temp tables.
    later = fixture.advance(fx)
    load_and_build(fakesnow_server, later)
    assert_matches(fakesnow_server.connect, later)
    versions = query(
        fakesnow_server.connect,
        "select count(*) from ANALYTICS.INTERMEDIATE.INT_SUBSCRIPTION_VERSIONS_CAPTURED "
        "where subscription_id = 1",
    )
    assert versions == [(2,)]
    assert_no_pii_in_analytics(fakesnow_server.connect, later)
    assert_the_dashboard_reads_how_current_the_marts_are(fakesnow_server.connect)


def assert_the_dashboard_reads_how_current_the_marts_are(connect: dict[str, Any]) -> None:
    """The dashboard's reader finds DATA_AS_OF beside the marts, in the FINANCE schema."""
    from core.warehouse import SnowflakeWarehouse
    from dashboard import metrics

    with SnowflakeWarehouse(settings={**connect, "database": "ANALYTICS"}).session() as session:
        ref = session.find(metrics.AS_OF_MART)
        as_of = metrics.read_as_of(session)
    assert ref is not None and ref.schema.upper() == "FINANCE"
    ((synced,),) = query(
        connect,
        "select max(_airbyte_extracted_at) from RAW.POSTGRES_AIRBYTE.PAYMENTS "
        "where id in (select payment_id from ANALYTICS.STAGING.STG_POSTGRES_AIRBYTE__PAYMENTS)",
    )
    assert as_of.found and as_of.last_load == metrics.utc(synced)
    assert as_of.last_run is not None and as_of.last_run >= as_of.last_load


def assert_no_pii_in_analytics(connect: dict[str, Any], fx: fixture.Fixture) -> None:
    """No full PII value of the source in any text column of any ANALYTICS table or view."""
    types = ", ".join(f"'{t.upper()}'" for t in pii.TEXT_TYPES)
    columns = [
        (f"ANALYTICS.{schema}", table, column)
        for schema, table, column in query(
            connect,
            "select table_schema, table_name, column_name from ANALYTICS.information_schema.columns "
            f"where upper(data_type) in ({types}) and table_schema <> 'INFORMATION_SCHEMA'",
        )
    ]
    assert {c[0].upper() for c in columns} >= {
        "ANALYTICS.STAGING",
        "ANALYTICS.INTERMEDIATE",
        "ANALYTICS.FINANCE",
    }
    assert pii.leaks(columns, lambda sql: query(connect, sql), pii.pii_values(fx)) == []
