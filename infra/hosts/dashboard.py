"""The dashboard host of MWAA stacks: the EC2 Airflow host's dashboard unit on a host of its own."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pydantic import Field

from infra.cloud_init import DashboardHostBoot, render_dashboard
from infra.hosts import iam
from infra.hosts.airflow import DashboardArgs, dashboard_boot
from infra.hosts.instance import Host, HostArgs, HostSettings

DASHBOARD_COMPONENT = "mdp:hosts:DashboardHost"


class DashboardHostSettings(HostSettings):
    """The dashboard host, declared only when MWAA runs Airflow (the EC2 host serves it otherwise)."""

    # Read-only queries for a few readers a day: one small burstable host is enough.
    instance_type: str = Field("t3.micro", examples=["t3.small"])
    root_volume_gb: int = Field(20, ge=20, le=500, examples=[20])


@dataclass(frozen=True)
class DashboardHostArgs(HostArgs):
    """A private subnet (out through the NAT gateway, Snowflake's allowed egress address)."""

    settings: DashboardHostSettings
    dashboard: DashboardArgs


class DashboardHost(Host):
    """No inbound rule at all: readers reach 127.0.0.1:8501 through SSM port forwarding."""

    instance_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DashboardHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(DASHBOARD_COMPONENT, name, None, opts)
        self._args = args
        security_group = self._outbound_only(
            name,
            args.common.vpc_id,
            "mdp dashboard: no inbound; HTTPS out to Snowflake, AWS and PyPI",
            https_to="Snowflake, AWS APIs, PyPI",
        )
        instance = self._instance(name, args, security_group, public_ip=False)
        self.instance_id = instance.id
        self.register_outputs({"instanceId": self.instance_id})

    def _policy(self) -> pulumi.Output[str]:
        dashboard = self._args.dashboard
        return self._policy_of(
            self._args.common, iam.dashboard_policy, dashboard_key_arn=dashboard.key_secret_arn
        )

    def _user_data(self) -> pulumi.Output[str]:
        return self._boot(
            self._args.common,
            lambda **boot: render_dashboard(DashboardHostBoot(**boot)),
            dashboard=dashboard_boot(self._args.dashboard),
        )
