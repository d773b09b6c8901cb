"""Warehouse access: DuckDB read-only discovery, Snowflake over key-pair auth, clear configuration errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.warehouse import (
    CONTRACT_MARTS,
    DuckDBWarehouse,
    NoDataYet,
    SnowflakeWarehouse,
    WarehouseError,
    from_env,
    snowflake_settings,
)
from exports.sample import build_sample_warehouse


def test_marts_are_found_in_the_finance_schema_before_any_other(tmp_path: Path) -> None:
    db = build_sample_warehouse(tmp_path / "analytics.duckdb", payments=500, months=2)
    con = duckdb.connect(str(db))
    # A stale copy elsewhere must not shadow the finance mart.
    con.execute("create schema scratch")
    con.execute(
        "create table scratch.net_revenue_by_plan as select 'Nope' as plan_name, 1 as net_revenue"
    )
    con.close()
    with DuckDBWarehouse(db).session() as session:
        ref = session.find("NET_REVENUE_BY_PLAN")
        assert ref is not None and ref.schema == "finance"
        assert {t.name for t in session.marts()} >= set(CONTRACT_MARTS)
        fact = session.find("fct_payments")
        assert fact is not None and fact.schema == "intermediate"
        tables = session.read_required(CONTRACT_MARTS)
    assert "Nope" not in tables["net_revenue_by_plan"].column("plan_name").to_pylist()


def test_the_reader_never_writes(tmp_path: Path) -> None:
    db = build_sample_warehouse(tmp_path / "analytics.duckdb", payments=200, months=1)
    with DuckDBWarehouse(db).session() as session, pytest.raises(duckdb.Error, match="read-only"):
        session.run("create table finance.x as select 1")


def test_missing_marts_say_what_to_run(tmp_path: Path) -> None:
    db = tmp_path / "analytics.duckdb"
    duckdb.connect(str(db)).close()
    with DuckDBWarehouse(db).session() as session, pytest.raises(NoDataYet, match="make demo"):
        session.read_required(CONTRACT_MARTS)


def test_target_selection_and_snowflake_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MDP_TARGET", raising=False)
    assert isinstance(from_env(), DuckDBWarehouse)
    monkeypatch.setenv("MDP_TARGET", "mars")
    with pytest.raises(WarehouseError, match="not a target"):
        from_env()
    monkeypatch.setenv("MDP_TARGET", "cloud")
    for var in ("ACCOUNT", "USER", "PRIVATE_KEY_PATH", "WAREHOUSE"):
        monkeypatch.delenv(f"MDP_SNOWFLAKE_{var}", raising=False)
    with pytest.raises(WarehouseError, match="MDP_SNOWFLAKE_ACCOUNT, MDP_SNOWFLAKE_USER"):
        from_env()
    settings = snowflake_settings(
        {
            "MDP_SNOWFLAKE_ACCOUNT": "org-acct",
            "MDP_SNOWFLAKE_USER": "DASHBOARD",
            "MDP_SNOWFLAKE_PRIVATE_KEY_PATH": "/etc/mdp/reporter.p8",
            "MDP_SNOWFLAKE_WAREHOUSE": "REPORTING_WH",
        }
    )
    assert settings["role"] == "REPORTER" and settings["database"] == "ANALYTICS"
    assert "password" not in settings


def _rsa_key(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result")
def test_snowflake_marts_read_with_key_pair_auth(
    tmp_path: Path, start_fakesnow: Callable[..., Any]
) -> None:
    import snowflake.connector

    with start_fakesnow() as server:
        endpoint = {k: server[k] for k in ("host", "port", "protocol")}
        admin = snowflake.connector.connect(**server)
        cur = admin.cursor()
        # fakesnow keeps its in-memory databases for the whole process, across servers: start
        # from an empty one, whatever an earlier test in this process left.
        cur.execute("create database if not exists ANALYTICS")
        cur.execute("use database ANALYTICS")
        cur.execute("drop schema if exists FINANCE cascade")
        cur.execute("create schema FINANCE")
        cur.execute(
            "create table FINANCE.NET_REVENUE_BY_PLAN "
            "(PLAN_NAME varchar, NET_REVENUE number(14, 2), SUCCEEDED_PAYMENTS number)"
        )
        cur.execute(
            "insert into FINANCE.NET_REVENUE_BY_PLAN values ('Gold', 1234.50, 12), ('Basic', 0.00, 0)"
        )
        cur.execute(
            "create table FINANCE.MONTHLY_NET_REVENUE_BY_PLAN (REVENUE_MONTH date, PLAN_NAME varchar, NET_REVENUE number(14, 2))"
        )
        cur.execute(
            "insert into FINANCE.MONTHLY_NET_REVENUE_BY_PLAN values ('2026-01-01', 'Gold', 1234.50)"
        )
        cur.execute(
            "create table FINANCE.MRR_BY_PLAN (MONTH date, PLAN_NAME varchar, MRR number(14, 2), ACTIVE_SUBSCRIPTIONS number)"
        )
        cur.execute("insert into FINANCE.MRR_BY_PLAN values ('2026-01-01', 'Gold', 99.99, 1)")
        admin.close()

        warehouse = SnowflakeWarehouse(
            settings={
                **snowflake_settings(
                    {
                        "MDP_SNOWFLAKE_ACCOUNT": "fakesnow",
                        "MDP_SNOWFLAKE_USER": "DASHBOARD",
                        "MDP_SNOWFLAKE_PRIVATE_KEY_PATH": str(_rsa_key(tmp_path / "reporter.p8")),
                        "MDP_SNOWFLAKE_WAREHOUSE": "REPORTING_WH",
                    }
                ),
                **endpoint,
            }
        )
        assert "REPORTER" in warehouse.description
        with warehouse.session() as session:
            tables = session.read_required(CONTRACT_MARTS)
    revenue = dict(
        zip(
            tables["net_revenue_by_plan"].column("plan_name").to_pylist(),
            tables["net_revenue_by_plan"].column("net_revenue").to_pylist(),
            strict=True,
        )
    )
    assert revenue == {"Gold": Decimal("1234.50"), "Basic": Decimal("0.00")}
    assert tables["mrr_by_plan"].column_names == [
        "month",
        "plan_name",
        "mrr",
        "active_subscriptions",
    ]
