"""The whole program under mocks with Airbyte configured: three resources fed by AWS and Snowflake."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from core.catalog import RAW_SCHEMA, STREAMS
from infra import mockrun as harness
from infra import outputs
from tests.infra.airbyte.conftest import raw_inputs
from tests.infra.snowflake.conftest import (
    cached_snowflake,
    current_key,
    recording,
    snowflake_config,
)

WORKSPACE = "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"
CLIENT_SECRET = "MOCK-airbyte-client-secret-9d2c"
SOURCE = "pulumi-python:dynamic/airbyte:PostgresSource"
DESTINATION = "pulumi-python:dynamic/airbyte:SnowflakeDestination"
CONNECTION = "pulumi-python:dynamic/airbyte:Connection"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"


def run(
    stack: str = "dev", secrets: Mapping[str, str] | None = None, **section: Any
) -> harness.ProgramRun:
    overrides = {
        "mdp:snowflake": snowflake_config(stack),
        "mdp:airbyte": {"workspaceId": WORKSPACE, **section},
        "airbyte:clientId": "mock-client-id",
    }
    with recording(), raw_inputs() as raw:
        result = harness.run_program(
            stack,
            overrides=overrides,
            secrets=dict({"airbyte:clientSecret": CLIENT_SECRET}, **(secrets or {})),
        )
    # Keep the secret wrappers on the inputs, to assert what is sent as a secret.
    result.resources = [dataclasses.replace(r, inputs=raw[r.name]) for r in result.resources]
    return result


def secret_value(value: Any) -> Any:
    assert isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG, f"not secret: {value!r}"
    return value["value"]


@pytest.fixture(scope="module")
def dev_run() -> harness.ProgramRun:
    return run("dev")


def test_declares_the_three_airbyte_resources(dev_run: harness.ProgramRun) -> None:
    component = dev_run.one("mdp:airbyte:AirbyteCloud")
    for typ in (SOURCE, DESTINATION, CONNECTION):
        assert dev_run.one(typ).parent == component.urn


def test_source_reads_rds_through_the_bastion_as_the_replication_user(
    dev_run: harness.ProgramRun,
) -> None:
    src = dev_run.one(SOURCE).inputs
    rds = dev_run.one("aws:rds/instance:Instance")
    eip = dev_run.one("aws:ec2/eip:Eip", "generator")
    assert src["host"] == rds.outputs["address"]
    assert src["port"] == rds.outputs["port"]
    assert src["database"] == "app" and src["username"] == "airbyte_reader"
    assert src["tunnel_host"] == eip.outputs["publicIp"]
    assert src["ssl_mode"] == "require" and src["replication_method"] == "cursor"
    # the replication user's generated password and the bastion's tunnel key, kept secret
    passwords = [
        r
        for r in dev_run.of_type("random:index/randomPassword:RandomPassword")
        if "replication" in r.name
    ]
    assert secret_value(src["password"]) == passwords[0].outputs["result"]
    tunnel_key = dev_run.one("tls:index/privateKey:PrivateKey", "tunnel")
    assert secret_value(src["ssh_key"]) == tunnel_key.outputs["privateKeyPem"]


def test_destination_is_the_snowflake_service_user_with_its_key(
    dev_run: harness.ProgramRun,
) -> None:
    dst = dev_run.one(DESTINATION).inputs
    assert dst["database"] == "DEV_RAW" and dst["schema"] == "POSTGRES_AIRBYTE"
    # Airbyte's internal tables stay in the schema its role may create in (no airbyte_internal).
    assert dst["raw_data_schema"] == dst["schema"] == RAW_SCHEMA
    assert dst["role"] == "DEV_AIRBYTE_ROLE"
    assert dst["host"] == dev_run.outputs[outputs.SNOWFLAKE_HOST]
    assert dst["warehouse"] == dev_run.outputs[outputs.SNOWFLAKE_LOADING_WAREHOUSE]
    assert dst["username"] == dev_run.outputs[outputs.SNOWFLAKE_AIRBYTE_USER]
    key = current_key(dev_run, "airbyte")
    assert secret_value(dst["private_key"]) == key.outputs["privateKeyPemPkcs8"]


def test_connection_syncs_the_shared_catalog_daily_at_17(dev_run: harness.ProgramRun) -> None:
    conn = dev_run.one(CONNECTION)
    assert [s["name"] for s in conn.inputs["streams"]] == [s.name for s in STREAMS]
    assert {s["sync_mode"] for s in conn.inputs["streams"]} == {"incremental_deduped_history"}
    assert conn.inputs["cron_expression"] == "0 0 17 * * ? UTC"
    assert conn.inputs["namespace_format"] == "POSTGRES_AIRBYTE"
    assert conn.inputs["source_id"] == dev_run.one(SOURCE).id
    assert conn.inputs["destination_id"] == dev_run.one(DESTINATION).id


def test_connection_id_is_exported_and_handed_to_airflow(dev_run: harness.ProgramRun) -> None:
    """The Airflow variable holds the id; the Airflow connection holds the API credentials."""
    conn_id = dev_run.one(CONNECTION).id
    assert dev_run.outputs[outputs.AIRBYTE_CONNECTION_ID] == conn_id
    assert not dev_run.is_secret(outputs.AIRBYTE_CONNECTION_ID)
    variable = dev_run.one(
        "aws:secretsmanager/secretVersion:SecretVersion", "mdp-airbyte-connection-id"
    )
    # (the AWS SDK marks every secretString secret, whatever it holds)
    assert secret_value(variable.inputs["secretString"]) == conn_id
    connection = dev_run.one(
        "aws:secretsmanager/secretVersion:SecretVersion", "connection-airbyte-cloud"
    )
    conn_json = json.loads(secret_value(connection.inputs["secretString"]))
    assert conn_json["conn_type"] == "airbyte" and conn_json["login"] == "mock-client-id"
    assert conn_json["password"] == CLIENT_SECRET


def test_no_secret_in_any_plain_output(dev_run: harness.ProgramRun) -> None:
    secrets = [CLIENT_SECRET]
    secrets += [
        r.outputs["result"] for r in dev_run.of_type("random:index/randomPassword:RandomPassword")
    ]
    secrets += [
        r.outputs["privateKeyPem"] for r in dev_run.of_type("tls:index/privateKey:PrivateKey")
    ]
    for name, value in dev_run.outputs.items():
        if dev_run.is_secret(name):
            continue
        for text in harness.walk_strings(value):
            assert all(s not in text for s in secrets), name


def test_configured_schedule_and_timezone_in_prod() -> None:
    # Manual mode is covered at the component level; one more program run is enough here.
    prod = run("prod", cron="0 30 6 ? * MON-FRI", timezone="Europe/Paris")
    conn = prod.one(CONNECTION).inputs
    assert conn["schedule_type"] == "cron"
    assert conn["cron_expression"] == "0 30 6 ? * MON-FRI Europe/Paris"
    assert prod.one(DESTINATION).inputs["database"] == "RAW"
    assert prod.one(DESTINATION).inputs["raw_data_schema"] == RAW_SCHEMA
    assert prod.one(SOURCE).inputs["username"] == "airbyte_reader"


def test_without_the_section_no_airbyte_resource_is_declared() -> None:
    plain = cached_snowflake("dev").run
    assert plain.of_type("mdp:snowflake:SnowflakePlatform")
    assert not [r for r in plain.resources if r.type.startswith("pulumi-python:dynamic/airbyte")]
    assert outputs.AIRBYTE_CONNECTION_ID not in plain.outputs
