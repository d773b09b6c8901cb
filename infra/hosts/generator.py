"""The generator/bastion host: writes to RDS on a timer and is Airbyte's SSH tunnel to it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls
from pydantic import Field, field_validator

from infra.cloud_init import GeneratorBoot, render_generator
from infra.endpoints import DatabaseAccess, SshTunnel
from infra.hosts import iam
from infra.hosts.instance import Host, HostArgs, HostSettings
from infra.network import https_egress
from infra.stored_secrets import stored_secret

TUNNEL_USER = "airbyte"
_ON_CALENDAR = re.compile(r"^[0-9*/:,. -]+$")


class GeneratorSettings(HostSettings):
    """The generator/bastion host and its systemd timer."""

    on_calendar: str = Field("*-*-* 00/2:00:00", examples=["*-*-* 00/2:00:00"])
    rows_per_cycle: int = Field(500, ge=1, le=1_000_000, examples=[500])

    @field_validator("on_calendar")
    @classmethod
    def _calendar(cls, v: str) -> str:
        if not _ON_CALENDAR.match(v):
            raise ValueError(
                f"{v!r} is not a systemd OnCalendar expression such as *-*-* 00/2:00:00"
            )
        return v


@dataclass(frozen=True)
class GeneratorHostArgs(HostArgs):
    settings: GeneratorSettings
    ssh_cidrs: Sequence[IPv4Network]
    database: DatabaseAccess


class GeneratorHost(Host):
    """The generator/bastion: writes to RDS every 2 hours and is Airbyte's SSH tunnel to it."""

    public_ip: pulumi.Output[str]
    public_dns: pulumi.Output[str]
    instance_id: pulumi.Output[str]
    tunnel_user: str
    tunnel_private_key: pulumi.Output[str]
    tunnel_key_secret_arn: pulumi.Output[str]
    # Airbyte's way to the database: this host's Elastic IP, the tunnel user and its key.
    tunnel: SshTunnel

    def __init__(
        self, name: str, args: GeneratorHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mdp:hosts:GeneratorHost", name, None, opts)
        self._name = name
        self._args = args
        self.tunnel_user = TUNNEL_USER
        self._create_tunnel_key()
        security_group = self._create_security_group()
        eip = aws.ec2.Eip(
            f"{name}-eip",
            domain="vpc",
            tags={"Name": f"mdp-{args.common.stack}-bastion"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.common.protect),
        )
        instance = self._instance(
            name,
            args,
            security_group,
            # A public address from the first boot, so cloud-init can reach the package
            # repositories before the Elastic IP is associated (which then replaces it).
            public_ip=True,
            eip_allocation_id=eip.id,
        )
        self.public_ip = eip.public_ip
        self.public_dns = eip.public_dns
        self.instance_id = instance.id
        self.tunnel = SshTunnel(
            host=self.public_ip, user=self.tunnel_user, private_key=self.tunnel_private_key
        )
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
        secret = stored_secret(
            f"{name}-tunnel-key-secret",
            name=f"mdp/{common.stack}/bastion/tunnel-private-key",
            description="Private key Airbyte Cloud uses for its SSH tunnel to the source database",
            value=key.private_key_pem,
            kms_key_arn=common.kms_key_arn,
            protect=common.protect,
            opts=child,
        )
        self.tunnel_key_secret_arn = secret.arn

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        name, args = self._name, self._args
        db_security_group = args.database.security_group_id
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
                https_egress("AWS APIs, package repositories, PyPI"),
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=5432,
                    to_port=5432,
                    security_groups=[db_security_group],
                    description="PostgreSQL to the source database",
                ),
            ],
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-ingress",
            security_group_id=db_security_group,
            referenced_security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            description="PostgreSQL from the generator/bastion host",
            opts=child,
        )
        return sg

    def _policy(self) -> pulumi.Output[str]:
        db = self._args.database
        return self._policy_of(
            self._args.common,
            iam.generator_policy,
            master_secret_arn=db.master_secret_arn,
            replication_secret_arn=db.replication_secret_arn,
        )

    def _user_data(self) -> pulumi.Output[str]:
        settings, db = self._args.settings, self._args.database

        def render(db_port: int | str, **boot: Any) -> str:
            return render_generator(
                GeneratorBoot(
                    db_port=int(db_port),
                    db_name=db.endpoint.database,
                    logical_replication=db.logical_replication,
                    on_calendar=settings.on_calendar,
                    tunnel_user=TUNNEL_USER,
                    rows_per_cycle=settings.rows_per_cycle,
                    **boot,
                )
            )

        return self._boot(
            self._args.common,
            render,
            db_host=db.endpoint.host,
            db_port=db.endpoint.port,
            db_secret_arn=db.master_secret_arn,
            replication_secret_arn=db.replication_secret_arn,
            tunnel_public_key=self._tunnel_public_key,
        )
