"""Typed Pulumi resources for the Airbyte source, destination and connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar

import pulumi
from pulumi import dynamic

from infra.airbyte.kinds import SECRET_HASHES, ScheduleType
from infra.airbyte.provider import (
    AirbyteProvider,
    ConnectionProvider,
    PostgresSourceProvider,
    SnowflakeDestinationProvider,
)

ArgsT = TypeVar("ArgsT")


class _AirbyteResource(dynamic.Resource, Generic[ArgsT]):
    """A resource of the Airbyte API, which the dynamic provider of its kind manages."""

    PROVIDER: ClassVar[type[AirbyteProvider]]

    def __init__(
        self,
        name: str,
        args: ArgsT,
        opts: pulumi.ResourceOptions | None = None,
        provider: AirbyteProvider | None = None,
    ) -> None:
        kind = self.PROVIDER.kind
        # Every field of `args` as it is, but for `_inputs`; its id and digests are outputs.
        props = {f.name: getattr(args, f.name) for f in fields(args)}  # type: ignore[arg-type]
        props |= {**self._inputs(args), kind.id_key: None, SECRET_HASHES: None}
        # The digests and any secret-named property stay encrypted in the state file.
        extra = pulumi.ResourceOptions(
            additional_secret_outputs=[SECRET_HASHES, *kind.secret_fields]
        )
        super().__init__(
            provider or self.PROVIDER(), name, props, pulumi.ResourceOptions.merge(opts, extra)
        )

    def _inputs(self, args: ArgsT) -> dict[str, Any]:
        """The inputs that differ from the fields of `args`, or are not among them."""
        return {}


@dataclass(frozen=True)
class PostgresSourceArgs:
    """An Airbyte PostgreSQL source reached through an SSH key tunnel, with SSL required."""

    workspace_id: pulumi.Input[str]
    name: pulumi.Input[str]
    host: pulumi.Input[str]
    database: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]
    tunnel_host: pulumi.Input[str]
    tunnel_user: pulumi.Input[str]
    ssh_key: pulumi.Input[str]
    port: pulumi.Input[int] = 5432
    tunnel_port: pulumi.Input[int] = 22
    schemas: Sequence[str] = ("app",)
    replication_method: str = "cursor"
    cdc_publication: str | None = None
    cdc_replication_slot: str | None = None


class PostgresSource(_AirbyteResource[PostgresSourceArgs], module="airbyte", name="PostgresSource"):
    PROVIDER = PostgresSourceProvider
    source_id: pulumi.Output[str]

    def _inputs(self, args: PostgresSourceArgs) -> dict[str, Any]:
        return {
            "password": pulumi.Output.secret(args.password),
            "ssh_key": pulumi.Output.secret(args.ssh_key),
            "schemas": list(args.schemas),
            "ssl_mode": "require",
        }


@dataclass(frozen=True)
class SnowflakeDestinationArgs:
    """An Airbyte Snowflake destination with key-pair auth as a service user."""

    workspace_id: pulumi.Input[str]
    name: pulumi.Input[str]
    host: pulumi.Input[str]
    database: pulumi.Input[str]
    schema: pulumi.Input[str]
    # Airbyte's internal tables; the component sets it to `schema`, the one schema Airbyte
    # may create tables in.
    raw_data_schema: pulumi.Input[str]
    role: pulumi.Input[str]
    warehouse: pulumi.Input[str]
    username: pulumi.Input[str]
    private_key: pulumi.Input[str]


class SnowflakeDestination(
    _AirbyteResource[SnowflakeDestinationArgs], module="airbyte", name="SnowflakeDestination"
):
    PROVIDER = SnowflakeDestinationProvider
    destination_id: pulumi.Output[str]

    def _inputs(self, args: SnowflakeDestinationArgs) -> dict[str, Any]:
        return {"private_key": pulumi.Output.secret(args.private_key)}


@dataclass(frozen=True)
class StreamSpec:
    """One synced stream, as the Airbyte API configures it."""

    name: str
    sync_mode: str
    cursor_field: tuple[str, ...]
    primary_key: tuple[str, ...]

    def as_props(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sync_mode": self.sync_mode,
            "cursor_field": list(self.cursor_field),
            "primary_key": [[k] for k in self.primary_key],
        }


@dataclass(frozen=True)
class ConnectionArgs:
    """A connection: which streams, when, into which namespace, and how schema changes apply."""

    workspace_id: pulumi.Input[str]
    name: pulumi.Input[str]
    source_id: pulumi.Input[str]
    destination_id: pulumi.Input[str]
    streams: Sequence[StreamSpec]
    namespace_format: pulumi.Input[str]
    schedule_type: ScheduleType = "cron"
    cron_expression: str | None = None
    non_breaking_schema_updates_behavior: str = "propagate_columns"
    status: str = "active"


class Connection(_AirbyteResource[ConnectionArgs], module="airbyte", name="Connection"):
    PROVIDER = ConnectionProvider
    connection_id: pulumi.Output[str]

    def _inputs(self, args: ConnectionArgs) -> dict[str, Any]:
        return {
            "streams": [s.as_props() for s in args.streams],
            "cron_expression": args.cron_expression if args.schedule_type == "cron" else None,
            "namespace_definition": "custom_format",
            "prefix": "",
        }
