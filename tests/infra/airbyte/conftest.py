"""Fixtures: a running fake Airbyte API, provider settings pointing at it, and resource inputs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from airbyte_api._hooks.clientcredentials import ClientCredentialsHook
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from infra.airbyte import ApiSettings, catalog_streams, quartz_with_timezone
from infra.airbyte.provider import (
    ConnectionProvider,
    PostgresSourceProvider,
    SnowflakeDestinationProvider,
)
from rehearsal.fake_airbyte import FakeAirbyte

# Recognisable secret values, searched for in every output, error and log line. PEM headers
# are split so that secret scanners do not mistake these fixtures for committed keys.
DB_PASSWORD = "pw-SECRET-db-7f3a9c1e5b"
SSH_KEY = (
    "-----" + "BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpSECRETsshKEYline1AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n"
    "SECRETsshKEYline2QCx9T5fq2pZ4mB8v0hK3JdR7wY6nU1sLkE\n"
    "-----END RSA PRIVATE KEY-----\n"
)
SNOWFLAKE_KEY = (
    "-----" + "BEGIN PRIVATE KEY-----\n"
    "MIIEvSECRETsnowflakeKEYline1ggSkAgEAAoIBAQDQ8u2xLm\n"
    "-----END PRIVATE KEY-----\n"
)
SECRETS = (DB_PASSWORD, SSH_KEY, SNOWFLAKE_KEY)
SECRET_FRAGMENTS = (
    DB_PASSWORD,
    "SECRETsshKEYline1",
    "SECRETsshKEYline2",
    "SECRETsnowflakeKEYline1",
)


@pytest.fixture(autouse=True)
def _fresh_oauth_sessions() -> None:
    # The SDK caches OAuth tokens per client id for the whole process; each fake issues its own.
    ClientCredentialsHook._sessions.clear()


@contextmanager
def raw_inputs() -> Iterator[dict[str, dict[str, Any]]]:
    """Each declared resource's inputs as sent, secret wrappers kept, keyed by resource name."""
    seen: dict[str, dict[str, Any]] = {}
    original = pulumi_mocks.MockMonitor.RegisterResource

    def record(self: Any, request: Any) -> Any:
        seen[request.name] = rpc.deserialize_properties(request.object)
        return original(self, request)

    pulumi_mocks.MockMonitor.RegisterResource = record  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        pulumi_mocks.MockMonitor.RegisterResource = original  # type: ignore[method-assign]


@pytest.fixture
def fake() -> Iterator[FakeAirbyte]:
    server = FakeAirbyte().start()
    yield server
    server.stop()


@pytest.fixture
def settings(fake: FakeAirbyte) -> ApiSettings:
    return ApiSettings(
        server_url=fake.url,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        timeout_s=2.0,
        max_attempts=4,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )


@pytest.fixture
def providers(
    settings: ApiSettings,
) -> tuple[PostgresSourceProvider, SnowflakeDestinationProvider, ConnectionProvider]:
    return (
        PostgresSourceProvider(settings),
        SnowflakeDestinationProvider(settings),
        ConnectionProvider(settings),
    )


def source_props(fake: FakeAirbyte, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "workspace_id": fake.workspace_id,
        "name": "mdp-dev-postgres",
        "host": "mdp-dev-db.abcdefghijkl.eu-west-3.rds.amazonaws.com",
        "port": 5432.0,  # Pulumi sends numbers as floats
        "database": "app",
        "username": "airbyte_reader",
        "password": DB_PASSWORD,
        "schemas": ["app"],
        "ssl_mode": "require",
        "replication_method": "cursor",
        "cdc_publication": None,
        "cdc_replication_slot": None,
        "tunnel_host": "198.51.100.10",
        "tunnel_port": 22.0,
        "tunnel_user": "airbyte",
        "ssh_key": SSH_KEY,
        "source_id": None,
        "secret_hashes": None,
    }
    return props | over


def destination_props(fake: FakeAirbyte, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "workspace_id": fake.workspace_id,
        "name": "mdp-dev-snowflake",
        "host": "xy12345.eu-west-3.aws.snowflakecomputing.com",
        "database": "DEV_RAW",
        "schema": "POSTGRES_AIRBYTE",
        "raw_data_schema": "POSTGRES_AIRBYTE",
        "role": "DEV_AIRBYTE_ROLE",
        "warehouse": "DEV_LOADING_WH",
        "username": "DEV_AIRBYTE_SVC",
        "private_key": SNOWFLAKE_KEY,
        "destination_id": None,
        "secret_hashes": None,
    }
    return props | over


def connection_props(
    fake: FakeAirbyte, source_id: str, destination_id: str, **over: Any
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "workspace_id": fake.workspace_id,
        "name": "mdp-dev-postgres-to-snowflake",
        "source_id": source_id,
        "destination_id": destination_id,
        "streams": [s.as_props() for s in catalog_streams()],
        "schedule_type": "cron",
        "cron_expression": quartz_with_timezone("0 0 17 * * ?", "UTC"),
        "namespace_definition": "custom_format",
        "namespace_format": "POSTGRES_AIRBYTE",
        "prefix": "",
        "non_breaking_schema_updates_behavior": "propagate_columns",
        "status": "active",
        "connection_id": None,
        "secret_hashes": None,
    }
    return props | over
