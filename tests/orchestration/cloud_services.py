"""The cloud target's services on 127.0.0.1: Airbyte's API faked, syncing into fakesnow, and the connections the stack writes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from infra.snowflake.platform import airflow_connection
from tests.fakes.airbyte_api import FakeAirbyte
from tests.fakes.keys import throwaway_pem

RAW_SCHEMA = "POSTGRES_AIRBYTE"
# The three marts the data contract checks, in the analytics database's FINANCE schema.
MARTS = ("net_revenue_by_plan", "monthly_net_revenue_by_plan", "mrr_by_plan")
# A sync that fails midway lands the tables in name order up to this one (banks, credit_cards,
# payments): new payments arrive in RAW without the subscriptions and users they belong to.
PARTIAL_LAST_TABLE = "payments"
# What a test run changes in the DAG's deployed settings.
TEST_SETTINGS = {
    # The sensor's trigger polls the job every second instead of every minute.
    "MDP_AIRBYTE_POLL_SECONDS": "1",
    # dbt-snowflake runs unit tests through CREATE TEMPORARY TABLE <db>.<schema>.<name>, which
    # fakesnow cannot emulate; the DuckDB build runs them (transform/README.md).
    "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
}

# DuckDB types of the loader's RAW tables, as Airbyte's Snowflake destination types them.
_SNOWFLAKE_TYPES = {
    "VARCHAR": "VARCHAR",
    "UUID": "VARCHAR",
    "JSON": "VARIANT",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "BIGINT": "NUMBER(38,0)",
    "INTEGER": "NUMBER(38,0)",
    "SMALLINT": "NUMBER(38,0)",
    "DOUBLE": "FLOAT",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP_TZ",
}


def _snowflake_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return duckdb_type.replace("DECIMAL", "NUMBER")
    return _SNOWFLAKE_TYPES[duckdb_type]


def _literal(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def snowflake_query(connect: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    import snowflake.connector

    con = snowflake.connector.connect(**connect)
    try:
        return list(con.cursor().execute(sql).fetchall())
    finally:
        con.close()


@dataclass
class SnowflakeSync:
    """What the fake's sync job does: the project's loader, then its tables into fakesnow.

    The loader (`ingestion`) already writes Airbyte's raw layout with Append + Deduped
    semantics, reconciled against the source, so its DuckDB tables are what Airbyte's
    Snowflake destination holds after the same sync: copying them whole into
    <raw_database>.POSTGRES_AIRBYTE is the faithful and simplest way to land a sync in fakesnow.
    """

    source_dsn: str
    raw_path: Path
    connect: dict[str, Any]
    raw_database: str
    synced: list[str] = field(default_factory=list)
    # Syncs that failed midway, after landing only the tables up to PARTIAL_LAST_TABLE.
    partial: list[str] = field(default_factory=list)

    def __call__(self, connection: dict[str, Any], partial: bool = False) -> int:
        import snowflake.connector

        from ingestion.raw import SCHEMA
        from ingestion.sync import run_sync

        result = run_sync(conninfo=self.source_dsn, raw_path=self.raw_path)
        rows = 0
        con = snowflake.connector.connect(**self.connect)
        try:
            cur = con.cursor()
            cur.execute(f"create database if not exists {self.raw_database}")
            cur.execute(f"create schema if not exists {self.raw_database}.{RAW_SCHEMA}")
            with duckdb.connect(str(self.raw_path), read_only=True) as raw:
                raw.execute("set timezone = 'UTC'")
                tables = [t for (t,) in raw.execute(
                    "select table_name from information_schema.tables where table_schema = ? "
                    "order by all", [SCHEMA],
                ).fetchall()]  # fmt: skip
                for table in tables:
                    cols = raw.execute(
                        "select column_name, data_type from information_schema.columns "
                        "where table_schema = ? and table_name = ? order by ordinal_position",
                        [SCHEMA, table],
                    ).fetchall()
                    data = raw.execute(f'select * from {SCHEMA}."{table}"').fetchall()
                    target = f"{self.raw_database}.{RAW_SCHEMA}.{table.upper()}"
                    ddl = ", ".join(f"{name} {_snowflake_type(t)}" for name, t in cols)
                    cur.execute(f"create or replace table {target} ({ddl})")
                    names = ", ".join(name for name, _ in cols)
                    marks = ", ".join(["%s"] * len(cols))
                    if data:
                        cur.executemany(
                            f"insert into {target} ({names}) values ({marks})",
                            [[_literal(v) for v in row] for row in data],
                        )
                    rows += len(data)
                    if partial and table == PARTIAL_LAST_TABLE:
                        self.partial.append(result.sync_id)
                        return rows
        finally:
            con.close()
        self.synced.append(result.sync_id)
        return rows


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
    home: Path,
    source_dsn: str,
    start_fakesnow: Callable[..., Any],
    raw_database: str,
    analytics_database: str,
) -> Iterator[CloudServices]:
    """fakesnow and the fake Airbyte API, syncing `source_dsn` into `raw_database` of fakesnow.

    fakesnow keeps one in-memory catalog per process (it cannot drop a database): each caller
    names databases of its own, so they start empty.
    """
    from airbyte_api._hooks.clientcredentials import ClientCredentialsHook

    with start_fakesnow(host="127.0.0.1") as connect:
        snowflake_query(connect, f"create database if not exists {analytics_database}")
        sync = SnowflakeSync(
            source_dsn, home / "airbyte-destination" / "raw.duckdb", connect, raw_database
        )
        airbyte = FakeAirbyte(sync=sync).start()
        try:
            connection_id = airbyte.add_connection()
            # The SDK caches OAuth tokens per client id for the whole process.
            ClientCredentialsHook._sessions.clear()
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
        finally:
            airbyte.stop()


def generate_day(day: datetime) -> None:
    """The generator host's cycles for a day: the source the Airbyte connection reads."""
    from orchestration.include import local_steps
    from orchestration.include.settings import Settings

    assert local_steps.generate_day(day, Settings.from_env())["cycles_run"] > 0


def mart_rows(connect: dict[str, Any], analytics_database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the contract marts, sorted, by mart."""
    return {
        name: sorted(
            snowflake_query(connect, f"select * from {analytics_database}.FINANCE.{name}"),
            key=repr,
        )
        for name in MARTS
    }
