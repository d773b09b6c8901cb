"""The Airbyte Cloud component: PostgreSQL source, Snowflake destination, and their connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from core.catalog import RAW_SCHEMA, SOURCE_SCHEMA, STREAMS, Stream
from infra.airbyte.resources import (
    Connection,
    ConnectionArgs,
    PostgresSource,
    PostgresSourceArgs,
    SnowflakeDestination,
    SnowflakeDestinationArgs,
    StreamSpec,
)

DEFAULT_CRON = "0 0 17 * * ?"  # Quartz: daily at 17:00
DEFAULT_TIMEZONE = "UTC"


def catalog_streams(streams: Sequence[Stream] = STREAMS) -> list[StreamSpec]:
    """The shared stream catalog in the shape the Airbyte connection takes."""
    return [StreamSpec(s.name, s.sync_mode, (s.cursor_field,), s.primary_key) for s in streams]


def quartz_with_timezone(cron: str, timezone: str) -> str:
    """Airbyte reads a trailing time-zone id on a Quartz expression and echoes it back."""
    return f"{cron.strip()} {timezone}"


@dataclass(frozen=True)
class AirbyteCloudArgs:
    """Everything the three Airbyte resources need, from the AWS and Snowflake components."""

    workspace_id: pulumi.Input[str]
    name_prefix: str
    # Source: RDS through the bastion
    db_host: pulumi.Input[str]
    db_name: pulumi.Input[str]
    db_username: pulumi.Input[str]
    db_password: pulumi.Input[str]
    tunnel_host: pulumi.Input[str]
    tunnel_user: pulumi.Input[str]
    tunnel_private_key: pulumi.Input[str]
    # Destination: Snowflake
    snowflake_host: pulumi.Input[str]
    snowflake_database: pulumi.Input[str]
    snowflake_role: pulumi.Input[str]
    snowflake_warehouse: pulumi.Input[str]
    snowflake_username: pulumi.Input[str]
    snowflake_private_key: pulumi.Input[str]
    snowflake_schema: pulumi.Input[str] = RAW_SCHEMA
    db_port: pulumi.Input[int] = 5432
    tunnel_port: pulumi.Input[int] = 22
    replication_method: str = "cursor"
    cdc_publication: str | None = None
    cdc_replication_slot: str | None = None
    # Connection
    schedule_mode: str = "cron"
    cron: str = DEFAULT_CRON
    timezone: str = DEFAULT_TIMEZONE
    schema_change_policy: str = "propagate_columns"
    streams: Sequence[Stream] = field(default=STREAMS)


class AirbyteCloud(pulumi.ComponentResource):
    """Airbyte Cloud syncing the PostgreSQL source into Snowflake RAW."""

    source: PostgresSource
    destination: SnowflakeDestination
    connection: Connection

    def __init__(
        self, name: str, args: AirbyteCloudArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mdp:airbyte:AirbyteCloud", name, None, opts)
        self.source = self._create_source(name, args)
        self.destination = self._create_destination(name, args)
        self.connection = self._create_connection(name, args)
        self.source_id = self.source.source_id
        self.destination_id = self.destination.destination_id
        self.connection_id = self.connection.connection_id
        self.register_outputs(
            {
                "source_id": self.source_id,
                "destination_id": self.destination_id,
                "connection_id": self.connection_id,
            }
        )

    def _create_source(self, name: str, args: AirbyteCloudArgs) -> PostgresSource:
        return PostgresSource(
            f"{name}-source",
            PostgresSourceArgs(
                workspace_id=args.workspace_id,
                name=f"{args.name_prefix}-postgres",
                host=args.db_host,
                port=args.db_port,
                database=args.db_name,
                username=args.db_username,
                password=args.db_password,
                schemas=(SOURCE_SCHEMA,),
                replication_method=args.replication_method,
                cdc_publication=args.cdc_publication,
                cdc_replication_slot=args.cdc_replication_slot,
                tunnel_host=args.tunnel_host,
                tunnel_port=args.tunnel_port,
                tunnel_user=args.tunnel_user,
                ssh_key=args.tunnel_private_key,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _create_destination(self, name: str, args: AirbyteCloudArgs) -> SnowflakeDestination:
        return SnowflakeDestination(
            f"{name}-destination",
            SnowflakeDestinationArgs(
                workspace_id=args.workspace_id,
                name=f"{args.name_prefix}-snowflake",
                host=args.snowflake_host,
                database=args.snowflake_database,
                schema=args.snowflake_schema,
                role=args.snowflake_role,
                warehouse=args.snowflake_warehouse,
                username=args.snowflake_username,
                private_key=args.snowflake_private_key,
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
                namespace_format=args.snowflake_schema,
                schedule_type=args.schedule_mode,
                cron_expression=quartz_with_timezone(args.cron, args.timezone)
                if args.schedule_mode == "cron"
                else None,
                non_breaking_schema_updates_behavior=args.schema_change_policy,
            ),
            pulumi.ResourceOptions(parent=self),
        )
