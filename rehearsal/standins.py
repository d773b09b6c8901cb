"""Snowflake and Airbyte Cloud on 127.0.0.1: fakesnow, and the fake Airbyte API syncing into it.

fakesnow speaks the Snowflake dialect over the connector's own protocol, so dbt-snowflake and
the Snowflake provider reach it unchanged. The fake Airbyte API answers what Airflow's Airbyte
provider and the Pulumi provider call; its sync jobs move data with the project's loader, which
already writes Airbyte's raw layout (Append + Deduped), then land those tables in fakesnow as
Airbyte's Snowflake destination does.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import fakesnow

from core.catalog import RAW_SCHEMA
from rehearsal.fake_airbyte import FakeAirbyte

# fakesnow.server() imports its submodule `fakesnow.server`, which replaces the function on the
# package: keep the function, so that a process can start more than one server.
_FAKESNOW_SERVER: Callable[..., Any] = fakesnow.server
# A sync that fails midway lands the tables in name order up to this one (banks, credit_cards,
# payments): new payments arrive in RAW without the subscriptions and users they belong to.
PARTIAL_LAST_TABLE = "payments"

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


def fakesnow_server(**kwargs: Any) -> Any:
    """fakesnow's `server()` context manager: a Snowflake-dialect server on 127.0.0.1."""
    return _FAKESNOW_SERVER(**kwargs)


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
    """Every row of one statement, on a connection of its own."""
    import snowflake.connector

    con = snowflake.connector.connect(**connect)
    try:
        cur = con.cursor().execute(sql)
        assert cur is not None
        return list(cur.fetchall())
    finally:
        con.close()


@dataclass
class SnowflakeSync:
    """What the fake's sync job does: the project's loader, then its tables into fakesnow.

    The loader (`ingestion`) writes Airbyte's raw layout with Append + Deduped semantics,
    reconciled against the source, so its DuckDB tables are what Airbyte's Snowflake destination
    holds after the same sync: copying them whole into <raw_database>.POSTGRES_AIRBYTE lands
    a sync in fakesnow.
    """

    source_dsn: str
    raw_path: Path
    connect: dict[str, Any]
    raw_database: str
    synced: list[int] = field(default_factory=list)
    # Syncs that failed midway, after landing only the tables up to PARTIAL_LAST_TABLE.
    partial: list[int] = field(default_factory=list)

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
                    rows += self._land(cur, raw, SCHEMA, table)
                    if partial and table == PARTIAL_LAST_TABLE:
                        self.partial.append(result.sync_id)
                        return rows
        finally:
            con.close()
        self.synced.append(result.sync_id)
        return rows

    def _land(self, cur: Any, raw: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
        cols = raw.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
        data = raw.execute(f'select * from {schema}."{table}"').fetchall()
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
        return len(data)


@dataclass
class CloudStandIns:
    """fakesnow and the fake Airbyte API, running; `home` keeps what the fake's syncs write."""

    snowflake: dict[str, Any]
    airbyte: FakeAirbyte
    home: Path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return snowflake_query(self.snowflake, sql)

    def empty_database(self, name: str) -> int:
        """`name` as a new account has it: created if missing, without any schema; how many
        schemas were dropped. fakesnow keeps one catalog per process and cannot drop a
        database, so an earlier run in the same process would otherwise leave its tables."""
        self.query(f"create database if not exists {name}")
        schemas = [
            s
            for (s,) in self.query(f"select schema_name from {name}.information_schema.schemata")
            if s.upper() != "INFORMATION_SCHEMA"
        ]
        for schema in schemas:
            self.query(f"drop schema if exists {name}.{schema} cascade")
        return len(schemas)


def _quiet_fakesnow() -> None:
    """fakesnow logs each request, and sqlglot each statement it only passes through: only
    their warnings (fakesnow's) and errors (sqlglot's) reach the rehearsal's output."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fakesnow", "fakesnow.server"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)


@contextmanager
def cloud_stand_ins(home: Path | None = None) -> Iterator[CloudStandIns]:
    """Start fakesnow and the fake Airbyte API on 127.0.0.1; stop both on exit.

    fakesnow keeps one in-memory catalog per process and cannot drop a database: callers that
    share a process name databases of their own.
    """
    from airbyte_api._hooks.clientcredentials import ClientCredentialsHook

    with ExitStack() as stack:
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mdp-cloud-")))
        connect = stack.enter_context(fakesnow_server(host="127.0.0.1"))
        _quiet_fakesnow()
        airbyte = FakeAirbyte().start()
        stack.callback(airbyte.stop)
        # The SDK caches OAuth tokens per client id for the whole process.
        ClientCredentialsHook._sessions.clear()
        yield CloudStandIns(connect, airbyte, home)
