"""EC2 hosts: the generator/bastion with its Elastic IP, and the Airflow host; both deployed by cloud-init."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from infra.cloud_init import (
    AirflowBoot,
    DashboardBoot,
    GeneratorBoot,
    render_airflow,
    render_generator,
)
from infra.config import AirflowSettings, GeneratorSettings

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
# What the SSM agent needs for Session Manager. AmazonSSMManagedInstanceCore would also grant
# ssm:GetParameter(s) on every parameter in the account, so the hosts get only these.
SSM_AGENT_ACTIONS = (
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)
TUNNEL_USER = "airbyte"
# The only prefix of the exports bucket the Airflow role may write.
EXPORTS_PREFIX = "exports"


@dataclass(frozen=True)
class HostCommon:
    """What both hosts share: where they live and where their code comes from."""

    stack: str
    region: str
    vpc_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    artifact_bucket: pulumi.Input[str]
    artifact_bucket_arn: pulumi.Input[str]
    artifact_parameter_name: str
    artifact_parameter_arn: pulumi.Input[str]
    protect: bool


@dataclass(frozen=True)
class GeneratorHostArgs:
    common: HostCommon
    subnet_id: pulumi.Input[str]
    settings: GeneratorSettings
    ssh_cidrs: Sequence[IPv4Network]
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: str
    db_security_group_id: pulumi.Input[str]
    db_master_secret_arn: pulumi.Input[str]
    db_replication_secret_arn: pulumi.Input[str]
    logical_replication: bool


@dataclass(frozen=True)
class DashboardArgs:
    """The dashboard's Snowflake sign-in: names and the ARN of the secret holding its key."""

    account: pulumi.Input[str]
    user: pulumi.Input[str]
    role: pulumi.Input[str]
    warehouse: pulumi.Input[str]
    database: pulumi.Input[str]
    key_secret_arn: pulumi.Input[str]


@dataclass(frozen=True)
class AirflowHostArgs:
    """The Airflow host; the Snowflake and Airbyte values arrive from their components when configured.

    `connections` maps an Airflow connection id to its JSON (a secret Output), `variables` maps a
    variable key to its value; each becomes one Secrets Manager secret read by the secrets backend.
    """

    common: HostCommon
    subnet_id: pulumi.Input[str]
    public_ip: bool
    settings: AirflowSettings
    exports_bucket_arn: pulumi.Input[str]
    # The Elastic IP (from the network) that gives a public Airflow host a stable egress address.
    eip_allocation_id: pulumi.Input[str] | None = None
    connections: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    variables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Serves the dashboard on 127.0.0.1:8501 when set (from the Snowflake component).
    dashboard: DashboardArgs | None = None
    # The Snowflake database Airbyte loads (stack-prefixed in a shared account): dbt's sources.
    raw_database: str = "RAW"


def _assume_ec2() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _ssm_agent_policy() -> str:
    # These actions take no resource ARNs; none of them reads data.
    return _policy(
        [
            {
                "Sid": "SessionManagerAgent",
                "Effect": "Allow",
                "Action": list(SSM_AGENT_ACTIONS),
                "Resource": "*",
            }
        ]
    )


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _kms_via(
    region: str, key_arn: str, services: Sequence[str], write: bool = False
) -> dict[str, Any]:
    # The key works only on behalf of the named services, never for direct kms:Decrypt calls.
    return {
        "Sid": "UseKeyThroughServices",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if write else "kms:Decrypt",
        "Resource": key_arn,
        "Condition": {
            "StringEquals": {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]}
        },
    }


def _artifact_read(bucket_arn: str, parameter_arn: str) -> list[dict[str, Any]]:
    return [
        {
            "Sid": "ReadArtifacts",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/artifacts/*",
        },
        {
            "Sid": "ReadArtifactPointer",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": parameter_arn,
        },
    ]


class _Host(pulumi.ComponentResource):
    """Shared pieces: role with SSM, instance profile, and a hardened instance."""

    def _role(self, name: str, policy: pulumi.Input[str]) -> aws.iam.InstanceProfile:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(f"{name}-role", assume_role_policy=_assume_ec2(), opts=child)
        aws.iam.RolePolicy(
            f"{name}-ssm-agent", role=role.id, policy=_ssm_agent_policy(), opts=child
        )
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=child)
        self.role_arn = role.arn
        return aws.iam.InstanceProfile(f"{name}-profile", role=role.name, opts=child)

    def _instance(
        self,
        name: str,
        common: HostCommon,
        instance_type: str,
        root_volume_gb: int,
        subnet_id: pulumi.Input[str],
        security_group: aws.ec2.SecurityGroup,
        profile: aws.iam.InstanceProfile,
        user_data: pulumi.Input[str],
        public_ip: bool,
        detailed_monitoring: bool,
    ) -> aws.ec2.Instance:
        ami = aws.ssm.get_parameter_output(
            name=AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        return aws.ec2.Instance(
            f"{name}-instance",
            ami=ami,
            instance_type=instance_type,
            subnet_id=subnet_id,
            vpc_security_group_ids=[security_group.id],
            iam_instance_profile=profile.name,
            associate_public_ip_address=public_ip,
            ebs_optimized=True,
            monitoring=detailed_monitoring,
            disable_api_termination=common.protect,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True,
                kms_key_id=common.kms_key_arn,
                volume_size=root_volume_gb,
                volume_type="gp3",
                delete_on_termination=True,
            ),
            user_data=user_data,
            tags={"Name": f"mdp-{common.stack}-{name}"},
            # A newer AMI is picked up by replacing the host deliberately, not on every preview.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )


class GeneratorHost(_Host):
    """The generator/bastion: writes to RDS every 2 hours and is Airbyte's SSH tunnel to it."""

    public_ip: pulumi.Output[str]
    public_dns: pulumi.Output[str]
    instance_id: pulumi.Output[str]
    tunnel_user: str
    tunnel_private_key: pulumi.Output[str]
    tunnel_key_secret_arn: pulumi.Output[str]
    user_data: pulumi.Output[str]

    def __init__(
        self, name: str, args: GeneratorHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mdp:hosts:GeneratorHost", name, None, opts)
        self._name = name
        self._args = args
        self.tunnel_user = TUNNEL_USER
        self._create_tunnel_key()
        security_group = self._create_security_group()
        profile = self._role(name, self._policy())
        self.user_data = self._user_data()
        instance = self._instance(
            name,
            args.common,
            args.settings.instance_type,
            args.settings.root_volume_gb,
            args.subnet_id,
            security_group,
            profile,
            self.user_data,
            # A public address from the first boot, so cloud-init can reach the package
            # repositories before the Elastic IP is associated (which then replaces it).
            public_ip=True,
            detailed_monitoring=args.settings.detailed_monitoring,
        )
        eip = aws.ec2.Eip(
            f"{name}-eip",
            domain="vpc",
            tags={"Name": f"mdp-{args.common.stack}-bastion"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.common.protect),
        )
        aws.ec2.EipAssociation(
            f"{name}-eip-association",
            allocation_id=eip.id,
            instance_id=instance.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.public_ip = eip.public_ip
        self.public_dns = eip.public_dns
        self.instance_id = instance.id
        self.register_outputs(
            {
                "publicIp": self.public_ip,
                "publicDns": self.public_dns,
                "instanceId": self.instance_id,
                "tunnelKeySecretArn": self.tunnel_key_secret_arn,
            }
        )

    def _create_tunnel_key(self) -> None:
        name, common = self._name, self._args.common
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{name}-tunnel-key", algorithm="RSA", rsa_bits=4096, opts=child)
        self._tunnel_public_key = key.public_key_openssh
        self.tunnel_private_key = pulumi.Output.secret(key.private_key_pem)
        secret = aws.secretsmanager.Secret(
            f"{name}-tunnel-key-secret",
            name=f"mdp/{common.stack}/bastion/tunnel-private-key",
            description="Private key Airbyte Cloud uses for its SSH tunnel to the source database",
            kms_key_id=common.kms_key_arn,
            recovery_window_in_days=30 if common.protect else 7,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-tunnel-key-secret-value",
            secret_id=secret.id,
            secret_string=key.private_key_pem,
            opts=child,
        )
        self.tunnel_key_secret_arn = secret.arn

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.common.vpc_id,
            description="mdp generator/bastion: SSH from Airbyte Cloud and admin CIDRs only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=22,
                    to_port=22,
                    cidr_blocks=[str(cidr)],
                    description=f"SSH tunnel/admin from {cidr}",
                )
                for cidr in args.ssh_cidrs
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                    description="HTTPS: AWS APIs, package repositories, PyPI",
                ),
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=5432,
                    to_port=5432,
                    security_groups=[args.db_security_group_id],
                    description="PostgreSQL to the source database",
                ),
            ],
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-ingress",
            security_group_id=args.db_security_group_id,
            referenced_security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            description="PostgreSQL from the generator/bastion host",
            opts=child,
        )
        return sg

    def _policy(self) -> pulumi.Output[str]:
        args, common = self._args, self._args.common
        return pulumi.Output.all(
            args.db_master_secret_arn,
            args.db_replication_secret_arn,
            common.kms_key_arn,
            common.artifact_bucket_arn,
            common.artifact_parameter_arn,
        ).apply(
            lambda v: _policy(
                [
                    {
                        "Sid": "ReadDatabaseSecrets",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": [v[0], v[1]],
                    },
                    _kms_via(common.region, v[2], ["secretsmanager", "s3"]),
                    *_artifact_read(v[3], v[4]),
                ]
            )
        )

    def _user_data(self) -> pulumi.Output[str]:
        args, common = self._args, self._args.common
        return pulumi.Output.all(
            args.db_host,
            args.db_port,
            args.db_master_secret_arn,
            args.db_replication_secret_arn,
            common.artifact_bucket,
            self._tunnel_public_key,
        ).apply(
            lambda v: render_generator(
                GeneratorBoot(
                    stack=common.stack,
                    region=common.region,
                    db_host=v[0],
                    db_port=int(v[1]),
                    db_name=args.db_name,
                    db_secret_arn=v[2],
                    replication_secret_arn=v[3],
                    logical_replication=args.logical_replication,
                    artifact_bucket=v[4],
                    artifact_parameter=common.artifact_parameter_name,
                    on_calendar=args.settings.on_calendar,
                    tunnel_user=TUNNEL_USER,
                    tunnel_public_key=v[5],
                    rows_per_cycle=args.settings.rows_per_cycle,
                )
            )
        )


class AirflowHost(_Host):
    """The Airflow host: no inbound rule at all, reached through SSM; reads its connections from Secrets Manager."""

    instance_id: pulumi.Output[str]
    connections_prefix: str
    variables_prefix: str
    secret_arns: pulumi.Output[list[str]]
    user_data: pulumi.Output[str]

    def __init__(
        self, name: str, args: AirflowHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mdp:hosts:AirflowHost", name, None, opts)
        self._name = name
        self._args = args
        stack = args.common.stack
        self.connections_prefix = f"mdp/{stack}/airflow/connections"
        self.variables_prefix = f"mdp/{stack}/airflow/variables"
        arns = self._create_backend_secrets()
        self.secret_arns = pulumi.Output.all(*arns)
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.common.vpc_id,
            description="mdp Airflow: no inbound; HTTPS out to Snowflake, Airbyte, AWS and PyPI",
            ingress=[],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                    description="HTTPS: Snowflake, Airbyte API, AWS APIs, PyPI",
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        profile = self._role(name, self._policy(arns))
        dashboard = args.dashboard
        dashboard_values = (
            [
                dashboard.account,
                dashboard.user,
                dashboard.role,
                dashboard.warehouse,
                dashboard.database,
                dashboard.key_secret_arn,
            ]
            if dashboard is not None
            else []
        )
        self.user_data = pulumi.Output.all(
            args.common.artifact_bucket, args.exports_bucket_arn, *dashboard_values
        ).apply(
            lambda v: render_airflow(
                AirflowBoot(
                    stack=stack,
                    region=args.common.region,
                    artifact_bucket=v[0],
                    exports_target=f"s3://{v[1].rsplit(':', 1)[-1]}/{EXPORTS_PREFIX}",
                    artifact_parameter=args.common.artifact_parameter_name,
                    connections_prefix=self.connections_prefix,
                    variables_prefix=self.variables_prefix,
                    amazon_provider_version=args.settings.amazon_provider_version,
                    connection_ids=tuple(args.connections),
                    variable_keys=tuple(args.variables),
                    swap_gb=args.settings.swap_gb,
                    dashboard=_dashboard_boot(v[2:]),
                    raw_database=args.raw_database,
                )
            )
        )
        instance = self._instance(
            name,
            args.common,
            args.settings.instance_type,
            args.settings.root_volume_gb,
            args.subnet_id,
            security_group,
            profile,
            self.user_data,
            public_ip=args.public_ip,
            detailed_monitoring=args.settings.detailed_monitoring,
        )
        if args.eip_allocation_id is not None:
            aws.ec2.EipAssociation(
                f"{name}-eip-association",
                allocation_id=args.eip_allocation_id,
                instance_id=instance.id,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.instance_id = instance.id
        self.register_outputs(
            {
                "instanceId": self.instance_id,
                "connectionsPrefix": self.connections_prefix,
                "variablesPrefix": self.variables_prefix,
                "secretArns": self.secret_arns,
            }
        )

    def _create_backend_secrets(self) -> list[pulumi.Output[str]]:
        entries = [(self.connections_prefix, k, v) for k, v in self._args.connections.items()]
        entries += [(self.variables_prefix, k, v) for k, v in self._args.variables.items()]
        common = self._args.common
        child = pulumi.ResourceOptions(parent=self)
        arns: list[pulumi.Output[str]] = []
        for prefix, key, value in entries:
            kind = "connection" if prefix == self.connections_prefix else "variable"
            resource = f"{self._name}-{kind}-{key.replace('_', '-')}"
            secret = aws.secretsmanager.Secret(
                resource,
                name=f"{prefix}/{key}",
                description=f"Airflow {kind} {key}, read by the Secrets Manager secrets backend",
                kms_key_id=common.kms_key_arn,
                recovery_window_in_days=30 if common.protect else 7,
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{resource}-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(value)
                if kind == "connection"
                else pulumi.Output.from_input(value),
                opts=child,
            )
            arns.append(secret.arn)
        return arns

    def _policy(self, secret_arns: list[pulumi.Output[str]]) -> pulumi.Output[str]:
        args, common = self._args, self._args.common
        return pulumi.Output.all(
            common.kms_key_arn,
            common.artifact_bucket_arn,
            common.artifact_parameter_arn,
            args.exports_bucket_arn,
            args.dashboard.key_secret_arn if args.dashboard is not None else "",
            *secret_arns,
        ).apply(
            lambda v: _airflow_policy(
                common.region, v[0], v[1], v[2], v[3], list(v[5:]), dashboard_key_arn=v[4]
            )
        )


def _dashboard_boot(values: Sequence[str]) -> DashboardBoot | None:
    if not values:
        return None
    account, user, role, warehouse, database, key_secret_arn = values
    return DashboardBoot(
        account=account,
        user=user,
        role=role,
        warehouse=warehouse,
        database=database,
        key_secret_arn=key_secret_arn,
    )


def _airflow_policy(
    region: str,
    key_arn: str,
    artifact_bucket_arn: str,
    parameter_arn: str,
    exports_bucket_arn: str,
    secret_arns: list[str],
    dashboard_key_arn: str = "",
) -> str:
    statements: list[dict[str, Any]] = [
        # Writing exports to the KMS-encrypted bucket needs data keys too.
        _kms_via(region, key_arn, ["secretsmanager", "s3"], write=True),
        *_artifact_read(artifact_bucket_arn, parameter_arn),
        {
            "Sid": "WriteParquetExports",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            "Resource": f"{exports_bucket_arn}/{EXPORTS_PREFIX}/*",
        },
        {
            "Sid": "ListParquetExports",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": exports_bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{EXPORTS_PREFIX}/*"]}},
        },
    ]
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadAirflowSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arns,
            }
        )
    if dashboard_key_arn:
        # The dashboard's Snowflake key, fetched into /run at each start of its unit.
        statements.append(
            {
                "Sid": "ReadDashboardKey",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": dashboard_key_arn,
            }
        )
    return _policy(statements)
