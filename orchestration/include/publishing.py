"""The publish step: check the marts, then refresh the Parquet exports the dashboard and readers use."""

from __future__ import annotations

import logging
import os
from typing import Any

from core.warehouse import CONTRACT_MARTS, DuckDBWarehouse, SnowflakeWarehouse, WarehouseError
from exports import export_marts
from orchestration.include.dbt import DATABASE_OVERRIDE_ENV
from orchestration.include.settings import SNOWFLAKE_CONN_ID, Settings
from transform.runner import release_duckdb

log = logging.getLogger(__name__)


class MartsNotPublishable(RuntimeError):
    """The marts are missing or empty after dbt: nothing was exported, the last export is kept."""


def check_marts(warehouse: Any) -> dict[str, int]:
    """Row counts of the contract marts; fails when one is missing or empty."""
    try:
        with warehouse.session() as session:
            tables = session.read_required(CONTRACT_MARTS)
    except WarehouseError as err:
        raise MartsNotPublishable(
            f"{err} The previous exports were left untouched; look at the transform tasks' logs."
        ) from err
    counts = {name: table.num_rows for name, table in tables.items()}
    empty = [name for name, rows in counts.items() if rows == 0]
    if empty:
        raise MartsNotPublishable(
            f"the marts {', '.join(empty)} in {warehouse.description} are empty after dbt. The "
            "previous exports were left untouched; check that the sync loaded rows into RAW."
        )
    return counts


def _private_key_der(content: str, passphrase: str | None) -> bytes:
    """The PKCS#8 key of a Snowflake connection (PEM, or base64 of the PEM) as DER bytes."""
    import base64
    import binascii

    from cryptography.hazmat.primitives import serialization

    try:
        pem = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        pem = content.encode()
    key = serialization.load_pem_private_key(
        pem, password=passphrase.encode() if passphrase else None
    )
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def snowflake_warehouse(conn_id: str = SNOWFLAKE_CONN_ID) -> Any:
    """The database dbt built, read over dbt's own Airflow connection (key-pair auth).

    The Airflow host has no reporting credentials in its environment (those belong to the
    dashboard's unit): the connection dbt used to build the marts is the one that can read them.
    """
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0 (MWAA's) keeps it where Airflow 2 had it
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

    conn = BaseHook.get_connection(conn_id)
    # Older connections spell their extras `extra__snowflake__<name>`.
    extra = {k.removeprefix("extra__snowflake__"): v for k, v in conn.extra_dejson.items()}
    settings: dict[str, Any] = {
        "account": extra.get("account"),
        "user": conn.login,
        "role": extra.get("role"),
        "warehouse": extra.get("warehouse"),
        "database": os.environ.get(DATABASE_OVERRIDE_ENV) or extra.get("database"),
    }
    missing = [k for k in ("account", "user", "warehouse", "database") if not settings[k]]
    if not extra.get("private_key_content"):
        missing.append("private_key_content")
    if missing:
        raise MartsNotPublishable(
            f"the Airflow connection {conn_id} has no {', '.join(missing)}, so the marts cannot "
            "be read. Nothing was exported and the previous exports were left untouched; fix the "
            "connection (the stack writes it to Secrets Manager) and clear this task."
        )
    try:
        settings["private_key"] = _private_key_der(extra["private_key_content"], conn.password)
    except (ValueError, TypeError) as err:
        raise MartsNotPublishable(
            f"the private key of the Airflow connection {conn_id} cannot be loaded ({type(err).__name__}). "
            "Nothing was exported and the previous exports were left untouched; store an "
            "unencrypted PKCS#8 PEM key (or its passphrase as the password) and clear this task."
        ) from None
    # An endpoint other than the account's own (a proxy, PrivateLink, an emulator).
    for key in ("host", "port", "protocol"):
        if extra.get(key):
            settings[key] = extra[key]
    return SnowflakeWarehouse(settings={k: v for k, v in settings.items() if v is not None})


def publish(settings: Settings) -> dict[str, Any]:
    """Check the marts, then replace the Parquet exports partition by partition."""
    warehouse: Any
    if settings.target == "local":
        release_duckdb()
        warehouse = DuckDBWarehouse()
    else:
        warehouse = snowflake_warehouse()
    counts = check_marts(warehouse)
    log.info("marts checked in %s: %s", warehouse.description, counts)
    result = export_marts(warehouse=warehouse)
    log.info("exported %d rows to %s", result.rows, result.target)
    # The dashboard reads the warehouse directly, so fresh marts are all it needs.
    return {
        "target": settings.target,
        "marts": counts,
        "exports": str(result.target),
        "rows_exported": result.rows,
    }
