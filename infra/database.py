"""The RDS PostgreSQL 16 source: private, encrypted, TLS-only, with a read-only replication user."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pydantic import Field, field_validator, model_validator

from infra.component import Component
from infra.endpoints import DatabaseAccess, PostgresEndpoint, PostgresLogin
from infra.iam import assume_role_policy
from infra.sections import Section, StackName
from infra.stored_secrets import stored_secret

PORT = 5432
_DB_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9-]+\.[a-z0-9]+$")


class DatabaseSettings(Section):
    """RDS PostgreSQL: the source database the generator writes and Airbyte reads."""

    instance_class: str = Field("db.t4g.micro", examples=["db.t4g.small"])
    engine_version: str = Field("16", examples=["16"])
    allocated_storage_gb: int = Field(20, ge=20, le=1000, examples=[20])
    max_allocated_storage_gb: int = Field(50, ge=20, le=2000, examples=[100])
    db_name: str = Field("app", pattern=r"^[a-z][a-z0-9_]{0,62}$", examples=["app"])
    master_username: str = Field(
        "mdp_admin", pattern=r"^[a-z][a-z0-9_]{0,15}$", examples=["mdp_admin"]
    )
    replication_username: str = Field(
        "airbyte_reader", pattern=r"^[a-z][a-z0-9_]{0,62}$", examples=["airbyte_reader"]
    )
    multi_az: bool = Field(False, examples=[True])
    deletion_protection: bool = Field(False, examples=[True])
    backup_retention_days: int = Field(7, ge=1, le=35, examples=[7])
    logical_replication: bool = Field(False, examples=[True])
    log_min_duration_ms: int = Field(500, ge=-1, examples=[500])

    @field_validator("instance_class")
    @classmethod
    def _instance_class(cls, v: str) -> str:
        if not _DB_INSTANCE_CLASS.match(v):
            raise ValueError(f"{v!r} is not an RDS instance class such as db.t4g.micro")
        return v

    @field_validator("engine_version")
    @classmethod
    def _postgres_16(cls, v: str) -> str:
        if v.split(".")[0] != "16":
            raise ValueError(f"the source is PostgreSQL 16; got engine version {v!r}")
        return v

    @model_validator(mode="after")
    def _storage_bounds(self) -> DatabaseSettings:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError(
                "maxAllocatedStorageGb must be at least allocatedStorageGb "
                f"({self.max_allocated_storage_gb} < {self.allocated_storage_gb})"
            )
        return self


@dataclass(frozen=True)
class DatabaseArgs:
    stack: StackName
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    settings: DatabaseSettings
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool


class Database(Component[DatabaseArgs]):
    """RDS PostgreSQL with a managed master secret and a replication-user secret for Airbyte."""

    TYPE = "mdp:database:Database"

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    db_name: str
    instance_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]
    replication_username: str
    replication_password: pulumi.Output[str]
    replication_secret_arn: pulumi.Output[str]
    replication_connection_uri: pulumi.Output[str]
    endpoint: PostgresEndpoint
    # How Airbyte signs in; and what the host that migrates the database needs.
    replication_login: PostgresLogin
    access: DatabaseAccess

    def _declare(self, name: str, args: DatabaseArgs) -> Mapping[str, Any]:
        self.db_name = args.settings.db_name
        self.replication_username = args.settings.replication_username
        self._create_network()
        self._create_parameter_group()
        self._create_instance()
        self._create_replication_secret()
        self.endpoint = PostgresEndpoint(self.address, self.port, self.db_name)
        self.replication_login = PostgresLogin(
            self.endpoint, self.replication_username, self.replication_password
        )
        self.access = DatabaseAccess(
            endpoint=self.endpoint,
            security_group_id=self.security_group_id,
            master_secret_arn=self.master_secret_arn,
            replication_secret_arn=self.replication_secret_arn,
            logical_replication=args.settings.logical_replication,
        )
        # Embeds a password: secret wherever it flows.
        self.replication_connection_uri = pulumi.Output.secret(
            pulumi.Output.format(
                "postgresql://{user}:{password}@{host}:{port}/{database}?sslmode=require",
                user=self.replication_username,
                password=self.replication_password,
                host=self.address,
                port=self.port,
                database=self.db_name,
            )
        )
        return {
            "address": self.address,
            "port": self.port,
            "dbName": self.db_name,
            "masterSecretArn": self.master_secret_arn,
            "replicationSecretArn": self.replication_secret_arn,
        }

    def _create_network(self) -> None:
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        self.subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=args.private_subnet_ids,
            description=f"mdp {args.stack}: private subnets of the source database",
            opts=child,
        )
        # Ingress is added by the host that needs it (the generator), from its security group only.
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="mdp source database: PostgreSQL from the generator host only",
            ingress=[],
            egress=[],
            opts=child,
        )
        self.security_group_id = self.security_group.id

    def _create_parameter_group(self) -> None:
        s = self._args.settings
        parameters = [
            ("rds.force_ssl", "1", "pending-reboot"),
            ("log_statement", "ddl", "immediate"),
            ("log_min_duration_statement", str(s.log_min_duration_ms), "immediate"),
            ("log_connections", "1", "immediate"),
            ("log_disconnections", "1", "immediate"),
        ]
        if s.logical_replication:
            # CDC for Airbyte: a static parameter, applied at the next reboot.
            parameters.append(("rds.logical_replication", "1", "pending-reboot"))
        self.parameter_group = aws.rds.ParameterGroup(
            f"{self._name}-params",
            family="postgres16",
            description=f"mdp {self._args.stack}: TLS only, statement logging",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name=n, value=v, apply_method=m)
                for n, v, m in parameters
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_instance(self) -> None:
        name, args, s = self._name, self._args, self._args.settings
        monitoring_role = aws.iam.Role(
            f"{name}-monitoring-role",
            assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-monitoring-policy",
            role=monitoring_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            opts=pulumi.ResourceOptions(parent=self),
        )
        identifier = f"mdp-{args.stack}-source"
        # A new suffix per instance, so a second teardown never collides with an old snapshot.
        snapshot_suffix = random.RandomId(
            f"{name}-final-snapshot-suffix", byte_length=4, opts=pulumi.ResourceOptions(parent=self)
        )
        # Declared before the instance so RDS exports into encrypted groups with a retention,
        # instead of creating its own that keep logs forever.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-logs",
                name=f"/aws/rds/instance/{identifier}/{log}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for log in ("postgresql", "upgrade")
        ]
        self.instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=identifier,
            engine="postgres",
            engine_version=s.engine_version,
            instance_class=s.instance_class,
            allocated_storage=s.allocated_storage_gb,
            max_allocated_storage=s.max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=s.db_name,
            username=s.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.kms_key_arn,
            port=PORT,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameter_group.name,
            publicly_accessible=False,
            multi_az=s.multi_az,
            backup_retention_period=s.backup_retention_days,
            backup_window="02:00-03:00",
            maintenance_window="sun:03:30-sun:04:30",
            copy_tags_to_snapshot=True,
            delete_automated_backups=False,
            deletion_protection=s.deletion_protection,
            skip_final_snapshot=False,
            final_snapshot_identifier=pulumi.Output.concat(
                identifier, "-final-", snapshot_suffix.hex
            ),
            auto_minor_version_upgrade=True,
            iam_database_authentication_enabled=True,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            monitoring_interval=60,
            monitoring_role_arn=monitoring_role.arn,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            apply_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=log_groups),
        )
        self.address = self.instance.address
        self.port = self.instance.port
        self.instance_id = self.instance.id
        self.identifier = self.instance.identifier
        self.master_secret_arn = self.instance.master_user_secrets.apply(
            lambda secrets: (secrets[0].secret_arn or "") if secrets else ""
        )

    def _create_replication_secret(self) -> None:
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        # Alphanumeric only, so the password is safe inside a connection URI unescaped.
        password = random.RandomPassword(
            f"{name}-replication-password", length=40, special=False, opts=child
        )
        self.replication_password = pulumi.Output.secret(password.result)
        secret = stored_secret(
            f"{name}-replication-secret",
            name=f"mdp/{args.stack}/db/replication-user",
            description="Read-only replication user Airbyte connects as; created by the generator host's migration",
            # Secret because it embeds the password output.
            value=pulumi.Output.json_dumps(
                {
                    "engine": "postgres",
                    "username": self.replication_username,
                    "password": password.result,
                    "host": self.address,
                    "port": self.port,
                    "dbname": self.db_name,
                }
            ),
            kms_key_arn=args.kms_key_arn,
            protect=args.protect,
            opts=child,
        )
        self.replication_secret_arn = secret.arn
