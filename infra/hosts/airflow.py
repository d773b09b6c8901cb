"""The Airflow host: no inbound rule, reached through SSM; its connections live in Secrets Manager."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import pulumi
from pydantic import Field

from infra.cloud_init import AirflowBoot, DashboardBoot, render_airflow
from infra.hosts import iam
from infra.hosts.iam import EXPORTS_PREFIX
from infra.hosts.instance import Host, HostArgs, HostSettings
from infra.mwaa.config import MwaaSettings
from infra.stored_secrets import stored_secret

# `ec2`: one host with the LocalExecutor (dev, for cost); `mwaa`: Amazon MWAA (prod).
Engine = Literal["ec2", "mwaa"]


class AirflowSettings(HostSettings):
    """Where Airflow runs: the EC2 host's settings, or MWAA's in `mwaa` when `engine` is `mwaa`."""

    engine: Engine = Field("ec2", examples=["mwaa"])
    mwaa: MwaaSettings = MwaaSettings.model_validate({})

    instance_type: str = Field("t3.medium", examples=["t3.large"])
    root_volume_gb: int = Field(30, ge=20, le=500, examples=[30])
    public_subnet: bool = Field(True, examples=[False])
    # A swap file lets a small dev host (t3.small, 2 GiB) absorb the peaks of the daily run.
    swap_gb: int = Field(0, ge=0, le=16, examples=[4])
    # The secrets backend and the DAG's SNS notifier; the version uv.lock holds (apache-airflow
    # 3.3.2, boto3 1.44.8), so the host runs what the tests ran.
    amazon_provider_version: str = Field("9.39.0", pattern=r"^\d+\.\d+\.\d+$", examples=["9.39.0"])


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
class AirflowHostArgs(HostArgs):
    """The Airflow host; the Snowflake and Airbyte values arrive from their components when configured.

    `connections` maps an Airflow connection id to its JSON (a secret Output), `variables` maps a
    variable key to its value; each becomes one Secrets Manager secret read by the secrets backend.
    """

    settings: AirflowSettings
    public_ip: bool
    exports_bucket_arn: pulumi.Input[str]
    # The Elastic IP (from the network) that gives a public Airflow host a stable egress address.
    eip_allocation_id: pulumi.Input[str] | None = None
    connections: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    variables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Serves the dashboard on 127.0.0.1:8501 when set (from the Snowflake component).
    dashboard: DashboardArgs | None = None
    # The Snowflake database Airbyte loads (stack-prefixed in a shared account): dbt's sources.
    raw_database: str = "RAW"
    # The stack's alert topic, when `mdp:alerts` is set: the DAG publishes its alerts there.
    alerts_topic_arn: pulumi.Input[str] | None = None


# The component type of the MWAA environment (infra/mwaa), which takes over the same secrets.
MWAA_COMPONENT = "mdp:mwaa:Environment"
EC2_COMPONENT = "mdp:hosts:AirflowHost"


def backend_prefixes(stack: str) -> tuple[str, str]:
    """The Secrets Manager prefixes of Airflow's connections and variables, for either engine."""
    return f"mdp/{stack}/airflow/connections", f"mdp/{stack}/airflow/variables"


@dataclass(frozen=True)
class BackendSecrets:
    """Airflow's connections (secret JSON) and variables, one Secrets Manager secret each."""

    stack: str
    kms_key_arn: pulumi.Input[str]
    protect: bool
    connections: Mapping[str, pulumi.Input[str]]
    variables: Mapping[str, pulumi.Input[str]]


def create_backend_secrets(
    owner: pulumi.Resource, name: str, args: BackendSecrets, moved_from: pulumi.Input[str]
) -> list[pulumi.Output[str]]:
    """One secret per connection and variable under `backend_prefixes`, children of `owner`.

    `moved_from` is the URN of the other engine's component of the same name: the secrets keep
    their identity when the engine changes (a deleted secret holds its name for days).
    """
    connections_prefix, variables_prefix = backend_prefixes(args.stack)
    entries = [(connections_prefix, k, v) for k, v in args.connections.items()]
    entries += [(variables_prefix, k, v) for k, v in args.variables.items()]
    child = pulumi.ResourceOptions(parent=owner, aliases=[pulumi.Alias(parent=moved_from)])
    arns: list[pulumi.Output[str]] = []
    for prefix, key, value in entries:
        kind = "connection" if prefix == connections_prefix else "variable"
        resource = f"{name}-{kind}-{key.replace('_', '-')}"
        secret = stored_secret(
            resource,
            name=f"{prefix}/{key}",
            description=f"Airflow {kind} {key}, read by the Secrets Manager secrets backend",
            value=pulumi.Output.secret(value)
            if kind == "connection"
            else pulumi.Output.from_input(value),
            kms_key_arn=args.kms_key_arn,
            protect=args.protect,
            opts=child,
        )
        arns.append(secret.arn)
    return arns


class AirflowHost(Host):
    """The Airflow host: no inbound rule at all, reached through SSM; reads its connections from Secrets Manager."""

    instance_id: pulumi.Output[str]
    connections_prefix: str
    variables_prefix: str
    secret_arns: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: AirflowHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(EC2_COMPONENT, name, None, opts)
        self._name = name
        self._args = args
        stack = args.common.stack
        self.connections_prefix, self.variables_prefix = backend_prefixes(stack)
        self.secret_arns = pulumi.Output.all(*self._create_backend_secrets())
        security_group = self._outbound_only(
            name,
            args.common.vpc_id,
            "mdp Airflow: no inbound; HTTPS out to Snowflake, Airbyte, AWS and PyPI",
            https_to="Snowflake, Airbyte API, AWS APIs, PyPI",
        )
        instance = self._instance(
            name,
            args,
            security_group,
            public_ip=args.public_ip,
            eip_allocation_id=args.eip_allocation_id,
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
        common = self._args.common
        return create_backend_secrets(
            self,
            self._name,
            BackendSecrets(
                stack=common.stack,
                kms_key_arn=common.kms_key_arn,
                protect=common.protect,
                connections=self._args.connections,
                variables=self._args.variables,
            ),
            # The same secrets serve MWAA: switching engine moves them, never re-creates them.
            moved_from=pulumi.create_urn(self._name, MWAA_COMPONENT),
        )

    def _user_data(self) -> pulumi.Output[str]:
        args = self._args

        def render(exports_bucket_arn: str, **boot: Any) -> str:
            bucket = exports_bucket_arn.rsplit(":", 1)[-1]
            return render_airflow(
                AirflowBoot(
                    exports_target=f"s3://{bucket}/{EXPORTS_PREFIX}",
                    connections_prefix=self.connections_prefix,
                    variables_prefix=self.variables_prefix,
                    amazon_provider_version=args.settings.amazon_provider_version,
                    connection_ids=tuple(args.connections),
                    variable_keys=tuple(args.variables),
                    swap_gb=args.settings.swap_gb,
                    raw_database=args.raw_database,
                    **boot,
                )
            )

        return self._boot(
            args.common,
            render,
            exports_bucket_arn=args.exports_bucket_arn,
            dashboard=dashboard_boot(args.dashboard),
        )

    def _policy(self) -> pulumi.Output[str]:
        args = self._args
        return self._policy_of(
            args.common,
            iam.airflow_policy,
            exports_bucket_arn=args.exports_bucket_arn,
            secret_arns=self.secret_arns,
            dashboard_key_arn=args.dashboard.key_secret_arn if args.dashboard is not None else "",
            alerts_topic_arn=args.alerts_topic_arn or "",
        )


def dashboard_boot(dashboard: DashboardArgs | None) -> pulumi.Output[DashboardBoot] | None:
    """The dashboard's boot values once its names and key ARN resolve; None without a dashboard."""
    if dashboard is None:
        return None
    # The boot values are the sign-in's fields, resolved.
    values = {f.name: getattr(dashboard, f.name) for f in fields(dashboard)}
    return pulumi.Output.all(**values).apply(lambda v: DashboardBoot(**v))
