"""The dashboard host of MWAA stacks: the EC2 Airflow host's dashboard unit on a host of its own."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pydantic import Field

from infra.cloud_init import DashboardHostBoot, render_dashboard
from infra.hosts import iam
from infra.hosts.airflow import DashboardArgs, dashboard_boot
from infra.hosts.instance import Host, HostCommon, HostSettings

DASHBOARD_COMPONENT = "mdp:hosts:DashboardHost"


class DashboardHostSettings(HostSettings):
    """The dashboard host, declared only when MWAA runs Airflow (the EC2 host serves it otherwise)."""

    # Read-only queries for a few readers a day: one small burstable host is enough.
    instance_type: str = Field("t3.micro", examples=["t3.small"])
    root_volume_gb: int = Field(20, ge=20, le=500, examples=[20])


@dataclass(frozen=True)
class DashboardHostArgs:
    """A private subnet (out through the NAT gateway, Snowflake's allowed egress address)."""

    common: HostCommon
    subnet_id: pulumi.Input[str]
    settings: DashboardHostSettings
    dashboard: DashboardArgs


class DashboardHost(Host):
    """No inbound rule at all: readers reach 127.0.0.1:8501 through SSM port forwarding."""

    instance_id: pulumi.Output[str]
    user_data: pulumi.Output[str]

    def __init__(
        self, name: str, args: DashboardHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(DASHBOARD_COMPONENT, name, None, opts)
        common = args.common
        security_group = self._outbound_only(
            name,
            common.vpc_id,
            "mdp dashboard: no inbound; HTTPS out to Snowflake, AWS and PyPI",
            https_to="Snowflake, AWS APIs, PyPI",
        )
        policy = pulumi.Output.all(
            key_arn=common.kms_key_arn,
            artifact_bucket_arn=common.artifact_bucket_arn,
            parameter_arn=common.artifact_parameter_arn,
            dashboard_key_arn=args.dashboard.key_secret_arn,
        ).apply(lambda v: iam.dashboard_policy(common.region, **v))
        self.user_data = pulumi.Output.all(
            artifact_bucket=common.artifact_bucket, dashboard=dashboard_boot(args.dashboard)
        ).apply(
            lambda v: render_dashboard(
                DashboardHostBoot(
                    stack=common.stack,
                    region=common.region,
                    artifact_bucket=v["artifact_bucket"],
                    artifact_parameter=common.artifact_parameter_name,
                    dashboard=v["dashboard"],
                )
            )
        )
        instance = self._instance(
            name, args, security_group, policy, self.user_data, public_ip=False
        )
        self.instance_id = instance.id
        self.register_outputs({"instanceId": self.instance_id})
