"""The cloud target's services on 127.0.0.1: Airbyte's API faked, syncing into fakesnow, and the connections the stack writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.catalog import RAW_SCHEMA
from infra.snowflake.platform import airflow_connection
from rehearsal.daily_run import RUN_SETTINGS
from rehearsal.fake_airbyte import FakeAirbyte
from rehearsal.keys import throwaway_pem
from rehearsal.standins import SnowflakeSync, cloud_stand_ins, snowflake_query
from tests.contract_marts import ContractMarts

__all__ = ["RAW_SCHEMA", "SnowflakeSync", "snowflake_query"]

# The three marts the data contract checks, in the analytics database's FINANCE schema.
MARTS = ("net_revenue_by_plan", "monthly_net_revenue_by_plan", "mrr_by_plan")
# What a test run changes in the DAG's deployed settings, as the rehearsal's daily run does
# (rehearsal/daily_run.py says why); retries stay as each test sets them.
TEST_SETTINGS = {
    k: v
    for k, v in RUN_SETTINGS.items()
    if k in ("MDP_AIRBYTE_POLL_SECONDS", "DBT_EXCLUDE_RESOURCE_TYPES")
}


@dataclass
class CloudServices:
    """Airbyte's API and Snowflake on 127.0.0.1, and the settings that point the DAG at them."""

    source_dsn: str
    snowflake: dict[str, Any]
    airbyte: FakeAirbyte
    connection_id: str
    sync: SnowflakeSync
    # The DAG's connections and variable as the stack writes them to Secrets Manager, read by
    # Airflow from AIRFLOW_CONN_* / AIRFLOW_VAR_* in their place.
    connections: dict[str, str]


@contextmanager
def cloud_services(
    home: Path, source_dsn: str, raw_database: str, analytics_database: str
) -> Iterator[CloudServices]:
    """fakesnow and the fake Airbyte API, syncing `source_dsn` into `raw_database` of fakesnow.

    fakesnow keeps one in-memory catalog per process (it cannot drop a database): each caller
    names databases of its own, so they start empty.
    """
    with cloud_stand_ins(home) as cloud:
        connect, airbyte = cloud.snowflake, cloud.airbyte
        for database in (raw_database, analytics_database):
            cloud.empty_database(database)
        sync = SnowflakeSync(
            source_dsn, home / "airbyte-destination" / "raw.duckdb", connect, raw_database
        )
        airbyte.sync = sync
        connection_id = airbyte.add_connection()
        # The connection as the stack writes it (infra/snowflake/platform.py), plus where
        # fakesnow listens.
        snowflake_conn = json.loads(
            airflow_connection(
                "FAKESNOW", "DEV_DBT_SVC", analytics_database, "DEV_TRANSFORMING_WH",
                "DEV_DATA_ENGINEER", throwaway_pem(),
            )
        )  # fmt: skip
        snowflake_conn["extra"] |= {
            "host": connect["host"],
            "port": connect["port"],
            "protocol": connect["protocol"],
        }
        connections = {
            "AIRFLOW_CONN_AIRBYTE_CLOUD": json.dumps(
                {
                    "conn_type": "airbyte",
                    "host": f"{airbyte.url}/",
                    "login": airbyte.client_id,
                    "password": airbyte.client_secret,
                    "schema": f"{airbyte.url}/applications/token",
                }
            ),
            "AIRFLOW_VAR_MDP_AIRBYTE_CONNECTION_ID": connection_id,
            "AIRFLOW_CONN_SNOWFLAKE_DBT": json.dumps(snowflake_conn),
        }
        yield CloudServices(source_dsn, connect, airbyte, connection_id, sync, connections)


def generate_day(day: datetime) -> None:
    """The generator host's cycles for a day: the source the Airbyte connection reads."""
    from orchestration.include import local_steps
    from orchestration.include.settings import Settings

    assert local_steps.generate_day(day, Settings.from_env())["cycles_run"] > 0


def assert_marts_match_contract(
    connect: dict[str, Any], analytics_database: str, expected: ContractMarts
) -> None:
    """The three contract marts in Snowflake equal the oracle computed from the source."""
    finance = f"{analytics_database}.FINANCE"
    net = {p.lower(): (Decimal(r), n) for p, r, n in snowflake_query(
        connect, f"select plan_name, net_revenue, succeeded_payments from {finance}.net_revenue_by_plan"
    )}  # fmt: skip
    assert net == {p.lower(): v for p, v in expected.net_revenue_by_plan.items()}
    assert sum(n for _, n in net.values()) > 0

    monthly = {(m, p.lower()): Decimal(r) for m, p, r in snowflake_query(
        connect, f"select revenue_month, plan_name, net_revenue from {finance}.monthly_net_revenue_by_plan"
    )}  # fmt: skip
    want = {(m, p.lower()): v for (m, p), v in expected.monthly_net_revenue_by_plan.items()}
    for key, revenue in want.items():
        assert monthly.get(key) == revenue, key
    assert all(v == 0 for k, v in monthly.items() if k not in want)

    current = datetime.now(UTC).date().replace(day=1)
    mrr = {p.lower(): (Decimal(m), n) for p, m, n in snowflake_query(
        connect,
        f"select plan_name, mrr, active_subscriptions from {finance}.mrr_by_plan "
        f"where month = '{current}'::date",
    )}  # fmt: skip
    assert mrr == {p.lower(): v for p, v in expected.current_mrr_by_plan.items()}
    assert sum(n for _, n in mrr.values()) > 0


def mart_rows(connect: dict[str, Any], analytics_database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the contract marts, sorted, by mart."""
    return {
        name: sorted(
            snowflake_query(connect, f"select * from {analytics_database}.FINANCE.{name}"),
            key=repr,
        )
        for name in MARTS
    }
