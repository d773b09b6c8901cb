"""What one component hands another: a PostgreSQL endpoint and login, an SSH tunnel, a Snowflake target."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where the source database listens (from the database component)."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    database: str


@dataclass(frozen=True)
class PostgresLogin:
    """A database user at an endpoint; the password is a secret Output."""

    endpoint: PostgresEndpoint
    username: str
    password: pulumi.Input[str]


@dataclass(frozen=True)
class DatabaseAccess:
    """What the host that migrates the database needs: its endpoint, security group and secrets."""

    endpoint: PostgresEndpoint
    security_group_id: pulumi.Input[str]
    master_secret_arn: pulumi.Input[str]
    replication_secret_arn: pulumi.Input[str]
    # CDC: the host creates the publication and the replication slot.
    logical_replication: bool


@dataclass(frozen=True)
class SshTunnel:
    """The bastion a client reaches the database through (from the generator host)."""

    host: pulumi.Input[str]
    user: str
    private_key: pulumi.Input[str]
    port: int = 22


@dataclass(frozen=True)
class SnowflakeTarget:
    """Where and as whom a loader writes into Snowflake, with key-pair sign-in (from the Snowflake component)."""

    host: pulumi.Input[str]
    database: pulumi.Input[str]
    schema: pulumi.Input[str]
    role: pulumi.Input[str]
    warehouse: pulumi.Input[str]
    user: pulumi.Input[str]
    private_key: pulumi.Input[str]
