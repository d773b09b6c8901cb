"""The Airbyte Cloud component: PostgreSQL source, Snowflake destination, and their connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from core.catalog import SOURCE_SCHEMA, STREAMS, Stream
from core.connections import AIRBYTE_CONN_ID, AIRBYTE_CONNECTION_ID_VARIABLE
from infra.airbyte.client import DEFAULT_SERVER_URL
from infra.airbyte.config import (
    DEFAULT_CRON,
    DEFAULT_TIMEZONE,
    ReplicationMethod,
    SchemaChangePolicy,
)
from infra.airbyte.kinds import ScheduleType
from infra.airbyte.resources import (
    Connection,
    ConnectionArgs,
    PostgresSource,
    PostgresSourceArgs,
    SnowflakeDestination,
    SnowflakeDestinationArgs,
    StreamSpec,
)
from infra.component import Component
from infra.endpoints import PostgresLogin, SnowflakeTarget, SshTunnel


def catalog_streams(streams: Sequence[Stream] = STREAMS) -> list[StreamSpec]:
    """The shared stream catalog in the shape the Airbyte connection takes."""
    return [StreamSpec(s.name, s.sync_mode, (s.cursor_field,), s.primary_key) for s in streams]


def quartz_with_timezone(cron: str, timezone: str) -> str:
    """Airbyte reads a trailing time-zone id on a Quartz expression and echoes it back."""
    return f"{cron.strip()} {timezone}"


@dataclass(frozen=True)
class ApiApplication:
    """The Airbyte application Airflow's Airbyte hook signs in as, to trigger syncs."""

    client_id: str
    client_secret: pulumi.Input[str]
    server_url: str = DEFAULT_SERVER_URL


@dataclass(frozen=True)
class AirbyteCloudArgs:
    """The source, tunnel and destination handed over by the AWS and Snowflake components."""

    workspace_id: pulumi.Input[str]
    name_prefix: str
    # Source: RDS through the bastion, as the read-only replication user
    source: PostgresLogin
    tunnel: SshTunnel
    destination: SnowflakeTarget
    replication_method: ReplicationMethod = "cursor"
    cdc_publication: str | None = None
    cdc_replication_slot: str | None = None
    # Connection
    schedule_type: ScheduleType = "cron"
    cron: str = DEFAULT_CRON
    timezone: str = DEFAULT_TIMEZONE
    schema_change_policy: SchemaChangePolicy = "propagate_columns"
    streams: Sequence[Stream] = field(default=STREAMS)
    # Without it, Airflow gets no Airbyte connection and cannot trigger syncs.
    airflow_application: ApiApplication | None = None


class AirbyteCloud(Component[AirbyteCloudArgs]):
    """Airbyte Cloud syncing the PostgreSQL source into Snowflake RAW."""

    TYPE = "mdp:airbyte:AirbyteCloud"

    source: PostgresSource
    destination: SnowflakeDestination
    connection: Connection
    # What Airflow reads from Secrets Manager: the API connection and the id of the connection
    # it syncs.
    airflow_connections: dict[str, pulumi.Output[str]]
    airflow_variables: dict[str, pulumi.Output[str]]

    def _declare(self, name: str, args: AirbyteCloudArgs) -> Mapping[str, Any]:
        self.source = self._create_source(name, args)
        self.destination = self._create_destination(name, args)
        self.connection = self._create_connection(name, args)
        self.source_id = self.source.source_id
        self.destination_id = self.destination.destination_id
        self.connection_id = self.connection.connection_id
        self.airflow_variables = {AIRBYTE_CONNECTION_ID_VARIABLE: self.connection_id}
        app = args.airflow_application
        self.airflow_connections = {AIRBYTE_CONN_ID: _airflow_connection(app)} if app else {}
        return {
            "sourceId": self.source_id,
            "destinationId": self.destination_id,
            "connectionId": self.connection_id,
        }

    def _create_source(self, name: str, args: AirbyteCloudArgs) -> PostgresSource:
        return PostgresSource(
            f"{name}-source",
            PostgresSourceArgs(
                workspace_id=args.workspace_id,
                name=f"{args.name_prefix}-postgres",
                host=args.source.endpoint.host,
                port=args.source.endpoint.port,
                database=args.source.endpoint.database,
                username=args.source.username,
                password=args.source.password,
                schemas=(SOURCE_SCHEMA,),
                replication_method=args.replication_method,
                cdc_publication=args.cdc_publication,
                cdc_replication_slot=args.cdc_replication_slot,
                tunnel_host=args.tunnel.host,
                tunnel_port=args.tunnel.port,
                tunnel_user=args.tunnel.user,
                ssh_key=args.tunnel.private_key,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _create_destination(self, name: str, args: AirbyteCloudArgs) -> SnowflakeDestination:
        return SnowflakeDestination(
            f"{name}-destination",
            SnowflakeDestinationArgs(
                workspace_id=args.workspace_id,
                name=f"{args.name_prefix}-snowflake",
                host=args.destination.host,
                database=args.destination.database,
                schema=args.destination.schema,
                # Internal and staging tables go where the raw tables go: the one schema the
                # role may create in, whose future grants also cover a table swapped in.
                raw_data_schema=args.destination.schema,
                role=args.destination.role,
                warehouse=args.destination.warehouse,
                username=args.destination.user,
                private_key=args.destination.private_key,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _create_connection(self, name: str, args: AirbyteCloudArgs) -> Connection:
        return Connection(
            f"{name}-connection",
            ConnectionArgs(
                workspace_id=args.workspace_id,
                name=f"{args.name_prefix}-postgres-to-snowflake",
                # The ids stay known during a preview that only updates the source or
                # destination, so the connection is not shown as replaced.
                source_id=self.source.id,
                destination_id=self.destination.id,
                streams=catalog_streams(args.streams),
                namespace_format=args.destination.schema,
                schedule_type=args.schedule_type,
                cron_expression=quartz_with_timezone(args.cron, args.timezone)
                if args.schedule_type == "cron"
                else None,
                non_breaking_schema_updates_behavior=args.schema_change_policy,
            ),
            pulumi.ResourceOptions(parent=self),
        )


def _airflow_connection(app: ApiApplication) -> pulumi.Output[str]:
    """The `airbyte` connection of Airflow's Airbyte provider, as Secrets Manager JSON."""
    server_url = app.server_url.rstrip("/")
    out: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.json_dumps(
            {
                "conn_type": "airbyte",
                "host": f"{server_url}/",
                "login": app.client_id,
                "password": app.client_secret,
                # An absolute token URL: the hook's relative default assumes a bare host.
                "schema": f"{server_url}/applications/token",
            }
        )
    )
    return out
