"""The AirbyteCloud component under Pulumi mocks: three resources wired from the shared catalog."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import dill
import pulumi
import pytest
from pulumi.runtime import settings as pulumi_settings

from core.catalog import STREAMS
from infra.airbyte import AirbyteCloud, AirbyteCloudArgs
from infra.airbyte.provider import AirbyteProvider
from infra.endpoints import PostgresEndpoint, PostgresLogin, SnowflakeTarget, SshTunnel
from infra.mockrun import Recorded, RecordingMocks, RecordingMonitor, sync_run
from tests.infra.airbyte.conftest import raw_inputs

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
PASSWORD = "MOCK-db-password-0b1c"
TUNNEL_KEY = "MOCK-tunnel-key-77aa"
SNOWFLAKE_KEY = "MOCK-snowflake-key-31ee"
SOURCE = "pulumi-python:dynamic/airbyte:PostgresSource"
DESTINATION = "pulumi-python:dynamic/airbyte:SnowflakeDestination"
CONNECTION = "pulumi-python:dynamic/airbyte:Connection"


def run_component(make: Callable[[], Any]) -> list[Recorded]:
    """Declare the component under mocks; inputs keep their secret wrappers."""
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="mdp", stack="dev", preview=False, monitor=monitor)

    async def program() -> None:
        make()

    pulumi_settings.SETTINGS.rpc_manager.clear()
    with raw_inputs() as raw:
        sync_run(program)
    return [dataclasses.replace(r, inputs=raw[r.name]) for r in monitor.recorded]


def args(**over: Any) -> AirbyteCloudArgs:
    endpoint = PostgresEndpoint(
        host="mdp-dev-db.abcdefghijkl.eu-west-3.rds.amazonaws.com", port=5432, database="app"
    )
    base: dict[str, Any] = dict(
        workspace_id="5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6",
        name_prefix="mdp-dev",
        source=PostgresLogin(endpoint, "airbyte_reader", pulumi.Output.secret(PASSWORD)),
        tunnel=SshTunnel("198.51.100.10", "airbyte", pulumi.Output.secret(TUNNEL_KEY)),
        destination=SnowflakeTarget(
            host="org-acct.snowflakecomputing.com",
            database="DEV_RAW",
            schema="POSTGRES_AIRBYTE",
            role="DEV_AIRBYTE_ROLE",
            warehouse="DEV_LOADING",
            user="DEV_AIRBYTE",
            private_key=pulumi.Output.secret(SNOWFLAKE_KEY),
        ),
    )
    return AirbyteCloudArgs(**(base | over))


def by_type(recorded: list[Recorded], typ: str) -> Recorded:
    found = [r for r in recorded if r.type == typ]
    assert len(found) == 1, [r.type for r in recorded]
    return found[0]


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret(value) else value


@pytest.fixture
def default_run() -> list[Recorded]:
    return run_component(lambda: AirbyteCloud("airbyte", args()))


def test_declares_the_three_resources_under_the_component(default_run: list[Recorded]) -> None:
    component = by_type(default_run, "mdp:airbyte:AirbyteCloud")
    for typ in (SOURCE, DESTINATION, CONNECTION):
        assert by_type(default_run, typ).parent == component.urn


def test_source_tunnels_through_the_bastion_with_ssl(default_run: list[Recorded]) -> None:
    src = by_type(default_run, SOURCE).inputs
    assert src["tunnel_host"] == "198.51.100.10" and src["tunnel_user"] == "airbyte"
    assert src["ssl_mode"] == "require" and src["replication_method"] == "cursor"
    assert src["schemas"] == ["app"] and src["username"] == "airbyte_reader"


def test_connection_uses_the_shared_catalog_and_schedule(default_run: list[Recorded]) -> None:
    conn = by_type(default_run, CONNECTION).inputs
    assert [s["name"] for s in conn["streams"]] == [s.name for s in STREAMS]
    for s in conn["streams"]:
        assert s["sync_mode"] == "incremental_deduped_history"
        assert s["cursor_field"] == ["updated_at"] and s["primary_key"] == [["id"]]
    assert conn["schedule_type"] == "cron"
    assert conn["cron_expression"] == "0 0 17 * * ? UTC"
    assert conn["namespace_definition"] == "custom_format"
    assert conn["namespace_format"] == "POSTGRES_AIRBYTE"
    assert conn["non_breaking_schema_updates_behavior"] == "propagate_columns"
    src, dst = by_type(default_run, SOURCE), by_type(default_run, DESTINATION)
    assert conn["source_id"] == src.outputs["source_id"] == src.id
    assert conn["destination_id"] == dst.outputs["destination_id"] == dst.id
    # Raw and internal tables in the connection's namespace, from the one schema argument.
    assert dst.inputs["raw_data_schema"] == dst.inputs["schema"] == conn["namespace_format"]


def test_secret_inputs_are_secret_and_the_provider_carries_none(
    default_run: list[Recorded],
) -> None:
    src, dst = by_type(default_run, SOURCE), by_type(default_run, DESTINATION)
    assert is_secret(src.inputs["password"]) and unwrap(src.inputs["password"]) == PASSWORD
    assert is_secret(src.inputs["ssh_key"]) and is_secret(dst.inputs["private_key"])
    for r in (src, dst, by_type(default_run, CONNECTION)):
        assert "secret_hashes" in r.additional_secret_outputs
        for key, value in r.inputs.items():
            if key in ("password", "ssh_key", "private_key", "__provider"):
                continue
            assert not is_secret(value), key
            assert all(s not in str(value) for s in (PASSWORD, TUNNEL_KEY, SNOWFLAKE_KEY))
        provider = unwrap(r.inputs["__provider"])
        assert is_secret(r.inputs["__provider"])
        decoded = dill.loads(base64.b64decode(provider))
        assert isinstance(decoded, AirbyteProvider)
        # Credentials come from stack config at run time, never from the pickled provider.
        assert decoded._settings is None


def test_manual_mode_and_timezone_and_cdc() -> None:
    recorded = run_component(
        lambda: AirbyteCloud(
            "airbyte",
            args(
                schedule_type="manual",
                replication_method="cdc",
                cdc_publication="airbyte_publication",
                cdc_replication_slot="airbyte_slot",
            ),
        )
    )
    conn = by_type(recorded, CONNECTION).inputs
    assert conn["schedule_type"] == "manual" and conn.get("cron_expression") is None
    src = by_type(recorded, SOURCE).inputs
    assert (src["replication_method"], src["cdc_publication"]) == ("cdc", "airbyte_publication")
    recorded = run_component(
        lambda: AirbyteCloud("airbyte", args(cron="0 30 6 ? * MON-FRI", timezone="Europe/Paris"))
    )
    assert (
        by_type(recorded, CONNECTION).inputs["cron_expression"] == "0 30 6 ? * MON-FRI Europe/Paris"
    )
