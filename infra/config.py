"""The stack's config: every component's section in one validated model, read before any resource exists."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Network
from typing import Annotated, Any

import pulumi
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infra.airbyte.client import CONFIG_CLIENT_ID, CONFIG_CLIENT_SECRET, CONFIG_TOKEN
from infra.airbyte.config import AirbyteConfig
from infra.alerts import AlertsConfig
from infra.config_errors import ConfigError, ConfigIssue, ConfigReader, Fixes
from infra.cost import CostConfig
from infra.database import DatabaseSettings
from infra.hosts.airflow import AirflowSettings
from infra.hosts.dashboard import DashboardHostSettings
from infra.hosts.generator import GeneratorSettings
from infra.sections import PROJECT, STACKS, Section, StackName
from infra.snowflake.config import SnowflakeConfig

__all__ = ["PROJECT", "STACKS", "AwsConfig", "ConfigError", "ConfigIssue", "StackConfig"]


def _no_open_ingress(net: IPv4Network) -> IPv4Network:
    if net.prefixlen < 8:
        raise ValueError(
            f"{net} opens SSH to a large part of the internet; list the exact /32 addresses instead"
        )
    return net


# Anyone-on-the-internet CIDRs are refused at the config boundary, not only by the policy pack.
IngressCidr = Annotated[IPv4Network, AfterValidator(_no_open_ingress)]


class AwsConfig(Section):
    """Network, database, hosts and buckets in one AWS account and region."""

    region: str = Field(examples=["us-east-1"])
    availability_zones: tuple[str, str] = Field(examples=[["us-east-1a", "us-east-1b"]])
    vpc_cidr: IPv4Network = Field(IPv4Network("10.40.0.0/16"), examples=["10.40.0.0/16"])
    nat_gateway: bool = Field(False, examples=[True])
    airbyte_cidrs: tuple[IngressCidr, ...] = Field(min_length=1, examples=["34.106.109.131/32"])
    admin_cidrs: tuple[IngressCidr, ...] = Field((), examples=["198.51.100.7/32"])
    flow_log_retention_days: int = Field(30, examples=[365])
    log_retention_days: int = Field(30, examples=[365])
    force_destroy_buckets: bool = Field(False, examples=[False])
    protect: bool = Field(False, examples=[True])
    database: DatabaseSettings = DatabaseSettings.model_validate({})
    generator: GeneratorSettings = GeneratorSettings.model_validate({})
    airflow: AirflowSettings = AirflowSettings.model_validate({})
    # Declared with airflow.engine mwaa and a Snowflake dashboard user only.
    dashboard: DashboardHostSettings = DashboardHostSettings.model_validate({})

    @field_validator("flow_log_retention_days", "log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, v: int) -> int:
        allowed = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
        if v not in allowed:
            raise ValueError(f"CloudWatch accepts one of {', '.join(map(str, allowed))} days")
        return v

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, v: IPv4Network) -> IPv4Network:
        if not 16 <= v.prefixlen <= 22:
            raise ValueError(f"{v} must be between a /16 and a /22 to hold four /26+ subnets")
        if not v.is_private:
            raise ValueError(f"{v} is not a private (RFC 1918) range")
        return v

    @model_validator(mode="after")
    def _zones_in_region(self) -> AwsConfig:
        a, b = self.availability_zones
        if a == b:
            raise ValueError("availabilityZones must name two different zones")
        for zone in (a, b):
            if not zone.startswith(self.region):
                raise ValueError(f"availability zone {zone!r} is not in region {self.region!r}")
        if not self.airflow.public_subnet and not self.nat_gateway:
            raise ValueError(
                "airflow.publicSubnet=false needs natGateway=true: a private Airflow host "
                "has no other route to PyPI, Snowflake and Airbyte"
            )
        return self


class StackConfig(Section):
    """The whole program's configuration; each component reads only its own section."""

    stack: StackName
    project: str = PROJECT
    aws: AwsConfig
    airbyte: AirbyteConfig | None = None
    snowflake: SnowflakeConfig | None = None
    cost: CostConfig = CostConfig.model_validate({})
    alerts: AlertsConfig | None = None

    @property
    def is_prod(self) -> bool:
        return self.stack == "prod"


# Reliability floor for prod, checked after the types so each failure names its own key.
_PROD_REQUIREMENTS: tuple[tuple[tuple[str, ...], Any, str], ...] = (
    (("aws", "database", "multi_az"), True, "prod runs the source database Multi-AZ"),
    (("aws", "database", "deletion_protection"), True, "prod keeps RDS deletion protection on"),
    (("aws", "protect"), True, "prod resources carry protect=True"),
    (("aws", "generator", "detailed_monitoring"), True, "prod hosts have one-minute metrics"),
    (("aws", "airflow", "detailed_monitoring"), True, "prod hosts have one-minute metrics"),
    (("aws", "dashboard", "detailed_monitoring"), True, "prod hosts have one-minute metrics"),
)


def _fixes(stack: str) -> Fixes:
    # The region belongs to the AWS provider's own config key.
    return Fixes(StackConfig, stack, {("aws", "region"): ("aws:region", "us-east-1")})


def _get(obj: Any, path: Sequence[str]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _camel_path(path: Sequence[str]) -> tuple[str, ...]:
    return tuple(to_camel(p) for p in path)


def build_stack_config(
    stack: str, read: ConfigReader, is_secret: Callable[[str], bool] | None = None
) -> StackConfig:
    """Validate the raw config of `stack` read through `read`; raise ConfigError listing every bad key.

    With `is_secret` (whether a top-level key such as `mdp:alerts` is a secret), a value that
    must be a secret and is set in plain text is refused too.
    """
    if stack not in STACKS:
        raise ConfigError(
            stack,
            [
                ConfigIssue(
                    key="stack",
                    problem=f"this program knows the stacks {', '.join(STACKS)}",
                    fix=f"pulumi stack select {STACKS[0]}",
                )
            ],
        )
    fixes = _fixes(stack)
    raw: dict[str, Any] = {"stack": stack}
    issues: list[ConfigIssue] = []
    for name in StackConfig.model_fields:
        if name in ("stack", "project"):
            continue
        value = read(PROJECT, name)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            key, _ = fixes.key_and_fix((name,))
            issues.append(
                ConfigIssue(
                    key=key,
                    problem="must be an object of keys (structured config)",
                    fix=f"set its keys with `pulumi config set --path '{name}.<key>' <value> --stack {stack}`",
                )
            )
            continue
        raw[name] = dict(value)
    region = read("aws", "region")
    aws_section = raw.setdefault("aws", {})
    if "region" in aws_section:
        issues.append(
            ConfigIssue(
                key=f"{PROJECT}:aws.region",
                problem="the region is read from the AWS provider's aws:region only",
                fix=f"pulumi config rm --path 'aws.region' --stack {stack}",
            )
        )
    elif region is not None:
        aws_section["region"] = region
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(stack, issues + fixes.issues(e)) from None
    if issues:
        raise ConfigError(stack, issues)
    sf = config.snowflake
    if sf is not None and not config.is_prod and not sf.name_prefix and not sf.dedicated_account:
        raise ConfigError(
            stack,
            [
                ConfigIssue(
                    key=f"{PROJECT}:snowflake.namePrefix",
                    problem="is empty, so this stack would take prod's Snowflake names "
                    "in a shared account (with an account of its own, set "
                    "snowflake.dedicatedAccount to true instead)",
                    fix=f"pulumi config set --path 'snowflake.namePrefix' "
                    f"{stack.upper()}_ --stack {stack}",
                )
            ],
        )
    issues += _engine_issues(fixes, config)
    if is_secret is not None:
        issues += _plain_secret_issues(fixes, config, is_secret)
    if issues:
        raise ConfigError(stack, issues)
    if config.airbyte is not None:
        issues += _airbyte_issues(fixes, config, read)
        if issues:
            raise ConfigError(stack, issues)
    if config.is_prod:
        for path, wanted, why in _PROD_REQUIREMENTS:
            if _get(config, path) != wanted:
                shown = json.dumps(wanted)
                key, fix = fixes.key_and_fix(_camel_path(path), shown)
                issues.append(
                    ConfigIssue(
                        key=key, problem=f"{why} (got {json.dumps(_get(config, path))})", fix=fix
                    )
                )
        if issues:
            raise ConfigError(stack, issues)
    return config


def _plain_secret_issues(
    fixes: Fixes, config: StackConfig, is_secret: Callable[[str], bool]
) -> list[ConfigIssue]:
    """The webhook URL carries its token: in plain text it would sit in Pulumi.<stack>.yaml."""
    # The engine marks a whole structured key secret when any value under it is.
    if config.alerts is None or config.alerts.webhook_url is None or is_secret(f"{PROJECT}:alerts"):
        return []
    key, fix = fixes.key_and_fix(("alerts", "webhookUrl"), "<https-url>", secret=True)
    return [
        ConfigIssue(
            key=key,
            problem="is set in plain text, so the URL and its token sit readable in "
            f"Pulumi.{fixes.stack}.yaml; it must be a secret (the value is not repeated here)",
            fix=fix,
        )
    ]


def _engine_issues(fixes: Fixes, config: StackConfig) -> list[ConfigIssue]:
    """MWAA runs in the private subnets: its workers reach Snowflake and Airbyte through NAT."""
    aws_cfg = config.aws
    if aws_cfg.airflow.engine != "mwaa" or aws_cfg.nat_gateway:
        return []
    key, fix = fixes.key_and_fix(("aws", "natGateway"), "true")
    return [
        ConfigIssue(
            key=key,
            problem="airflow.engine is 'mwaa', whose workers live in the private subnets and "
            "reach Snowflake, Airbyte and PyPI only through a NAT gateway (or set "
            "airflow.engine back to ec2)",
            fix=fix,
        )
    ]


def _airbyte_issues(fixes: Fixes, config: StackConfig, read: ConfigReader) -> list[ConfigIssue]:
    """Airbyte needs API credentials, and CDC needs logical replication on the source."""
    stack = fixes.stack
    issues: list[ConfigIssue] = []

    def is_set(key: str) -> bool:
        namespace, _, name = key.partition(":")
        return read(namespace, name) is not None

    has_client = is_set(CONFIG_CLIENT_ID) and is_set(CONFIG_CLIENT_SECRET)
    if not has_client and not is_set(CONFIG_TOKEN):
        issues.append(
            ConfigIssue(
                key=f"{CONFIG_CLIENT_ID} / {CONFIG_CLIENT_SECRET}",
                problem="Airbyte API credentials are not set (an application's client id and secret, or a token)",
                fix=f"pulumi config set {CONFIG_CLIENT_ID} <id> --stack {stack} && "
                f"pulumi config set --secret {CONFIG_CLIENT_SECRET} <secret> --stack {stack}",
            )
        )
    if config.snowflake is None:
        issues.append(
            ConfigIssue(
                key=f"{PROJECT}:snowflake",
                problem="mdp:airbyte is set, but its destination, the Snowflake section, is not",
                fix="set the mdp:snowflake keys (see the README), or "
                f"`pulumi config rm {PROJECT}:airbyte --stack {stack}`",
            )
        )
    airbyte = config.airbyte
    if (
        airbyte is not None
        and airbyte.replication_method == "cdc"
        and not config.aws.database.logical_replication
    ):
        key, fix = fixes.key_and_fix(("aws", "database", "logicalReplication"), "true")
        issues.append(
            ConfigIssue(
                key=key,
                problem="airbyte.replicationMethod is 'cdc', which reads the WAL through logical replication",
                fix=fix,
            )
        )
    return issues


def _pulumi_reader(namespace: str, key: str) -> Any:
    cfg = pulumi.Config(namespace)
    raw = cfg.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def load_stack_config() -> StackConfig:
    """The validated config of the running stack, read from `pulumi.Config`."""
    return build_stack_config(pulumi.get_stack(), _pulumi_reader, pulumi.runtime.is_config_secret)
