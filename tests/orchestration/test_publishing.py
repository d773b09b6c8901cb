"""Publish on the cloud target reads Snowflake over dbt's own Airflow connection."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from infra.snowflake.platform import airflow_connection
from rehearsal.keys import throwaway_pem


def _connection(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> dict[str, Any]:
    conn = json.loads(
        airflow_connection(
            "AB12345", "DBT_SVC", "DEV_ANALYTICS", "WH", "DATA_ENGINEER", throwaway_pem()
        )
    )
    conn["extra"] |= extra
    conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DBT", json.dumps(conn))
    monkeypatch.delenv("MDP_DBT_DATABASE", raising=False)
    return conn


def test_the_stacks_connection_gives_a_key_pair_session_on_the_built_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.hazmat.primitives import serialization

    from orchestration.include.publishing import snowflake_warehouse

    conn = _connection(monkeypatch, host="127.0.0.1", port=8123, protocol="http")
    warehouse = snowflake_warehouse()
    settings = warehouse.settings
    assert {k: settings[k] for k in ("account", "user", "database", "warehouse", "role")} == {
        "account": "AB12345",
        "user": "DBT_SVC",
        "database": "DEV_ANALYTICS",
        "warehouse": "WH",
        "role": "DATA_ENGINEER",
    }
    assert (settings["host"], settings["port"], settings["protocol"]) == ("127.0.0.1", 8123, "http")
    # The connector takes the key as DER bytes: the same key the stack stored, base64 PEM.
    pem = base64.b64decode(conn["extra"]["private_key_content"])
    stored = serialization.load_pem_private_key(pem, password=None)
    assert settings["private_key"] == stored.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert "PRIVATE KEY" not in warehouse.description

    monkeypatch.setenv("MDP_DBT_DATABASE", "DBT_DEV")
    assert snowflake_warehouse().settings["database"] == "DBT_DEV"


def test_a_connection_without_a_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.include.publishing import MartsNotPublishable, snowflake_warehouse

    _connection(monkeypatch, private_key_content=None)
    with pytest.raises(MartsNotPublishable, match="has no private_key_content") as raised:
        snowflake_warehouse()
    assert "previous exports were left untouched" in str(raised.value)


def test_a_key_that_does_not_load_is_a_clear_error_without_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestration.include.publishing import MartsNotPublishable, snowflake_warehouse

    # A fresh key's PEM armour around a body that is not a key: no key text lives in the repo.
    lines = throwaway_pem().strip().splitlines()
    garbage = f"{lines[0]}\nNOTAKEYatALL0123456789\n{lines[-1]}\n"
    _connection(monkeypatch, private_key_content=base64.b64encode(garbage.encode()).decode())
    with pytest.raises(MartsNotPublishable, match="cannot be loaded") as raised:
        snowflake_warehouse()
    assert "NOTAKEY" not in str(raised.value)
