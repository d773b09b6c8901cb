"""Typed, validated stack configuration: a bad value stops the program before any resource exists."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from infra.cost import CostAssumptions

PROJECT = "mdp"
STACKS = ("dev", "prod")


class Section(BaseModel):
    """Base of every config section: immutable, camelCase keys as in `Pulumi.<stack>.yaml`, unknown keys rejected.

    A component adds its own section by subclassing `Section` and adding one optional field to
    `StackConfig` (for example `snowflake: SnowflakeConfig | None = None`); the loader reads it
    from the structured config key `mdp:<field name>` and reports errors with the fix command.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
    )


def _no_open_ingress(net: IPv4Network) -> IPv4Network:
    if net.prefixlen < 8:
        raise ValueError(
            f"{net} opens SSH to a large part of the internet; list the exact /32 addresses instead"
        )
    return net


# Anyone-on-the-internet CIDRs are refused at the config boundary, not only by the policy pack.
IngressCidr = Annotated[IPv4Network, AfterValidator(_no_open_ingress)]

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_DB_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9-]+\.[a-z0-9]+$")
_ON_CALENDAR = re.compile(r"^[0-9*/:,. -]+$")


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


class HostSettings(Section):
    """One EC2 host."""

    instance_type: str = Field("t3.small", examples=["t3.small"])
    root_volume_gb: int = Field(20, ge=8, le=500, examples=[30])
    # One-minute CloudWatch metrics cost about $2 per host a month: on in prod, off in dev.
    detailed_monitoring: bool = Field(False, examples=[True])

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, v: str) -> str:
        if not _INSTANCE_TYPE.match(v) or v.startswith("db."):
            raise ValueError(f"{v!r} is not an EC2 instance type such as t3.small")
        return v


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


class AirflowSettings(HostSettings):
    """The Airflow host."""

    instance_type: str = Field("t3.medium", examples=["t3.large"])
    root_volume_gb: int = Field(30, ge=20, le=500, examples=[30])
    public_subnet: bool = Field(True, examples=[False])
    # A swap file lets a small dev host (t3.small, 2 GiB) absorb the peaks of the daily run.
    swap_gb: int = Field(0, ge=0, le=16, examples=[4])
    # Not in uv.lock: the secrets backend provider, installed under the lock file's constraints;
    # 9.39.0 resolves with them (apache-airflow 3.3.2, boto3 1.44.8).
    amazon_provider_version: str = Field("9.39.0", pattern=r"^\d+\.\d+\.\d+$", examples=["9.39.0"])


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


_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
_QUARTZ_FIELD = re.compile(r"^[0-9A-Za-z*?,/#LW-]+$")


class AirbyteConfig(Section):
    """Airbyte Cloud (`mdp:airbyte`): the workspace, when the connection syncs, and how it reads."""

    workspace_id: str = Field(pattern=_UUID, examples=["5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"])
    # "manual" leaves the schedule to Airflow, which triggers each sync.
    schedule: Literal["cron", "manual"] = Field("cron", examples=["manual"])
    # Quartz (seconds first), as Airbyte reads it; the time zone is a separate key.
    cron: str = Field("0 0 17 * * ?", examples=["0 0 17 * * ?"])
    timezone: str = Field("UTC", examples=["Europe/Paris"])
    replication_method: Literal["cursor", "cdc"] = Field("cursor", examples=["cdc"])
    cdc_publication: str = Field(
        "airbyte_publication", pattern=_PG_IDENTIFIER, examples=["airbyte_publication"]
    )
    cdc_replication_slot: str = Field(
        "airbyte_slot", pattern=_PG_IDENTIFIER, examples=["airbyte_slot"]
    )
    schema_change_policy: Literal[
        "ignore", "disable_connection", "propagate_columns", "propagate_fully"
    ] = Field("propagate_columns", examples=["propagate_columns"])

    @field_validator("cron")
    @classmethod
    def _quartz(cls, v: str) -> str:
        parts = v.split()
        if len(parts) not in (6, 7) or not all(_QUARTZ_FIELD.match(p) for p in parts):
            raise ValueError(
                f"{v!r} is not a Quartz cron expression of 6 or 7 fields (seconds first), "
                "such as '0 0 17 * * ?' for daily at 17:00; set the zone in airbyte.timezone"
            )
        if "*" in parts[0] or "*" in parts[1]:
            raise ValueError(f"{v!r} runs more than once an hour, below Airbyte's minimum")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{v!r} is not an IANA time zone such as UTC or Europe/Paris"
            ) from None
        return v


# --- Snowflake (infra/snowflake) ----------------------------------------------------------

# Snowflake's default statement timeout is two days; four hours is the most a daily batch needs.
SNOWFLAKE_MAX_STATEMENT_TIMEOUT_SECONDS = 4 * 3600
_SNOWFLAKE_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*_)?$")


def _narrow_cidr(net: IPv4Network) -> IPv4Network:
    if net.prefixlen < 16:
        raise ValueError(f"{net} is broader than /16; list the exact egress addresses")
    return net


SignInCidr = Annotated[IPv4Network, AfterValidator(_narrow_cidr)]


class SnowflakeConfig(Section):
    """Snowflake account, names, cost guard and service-user networks (`mdp:snowflake`)."""

    organization_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", examples=["MYORG"])
    account_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", examples=["MDP"])
    # The key-pair user Pulumi signs in as (see the README's one-time bootstrap).
    admin_user: str = Field("PULUMI_MDP", min_length=1, examples=["PULUMI_MDP"])
    # Prefix of every account-level name, so dev and prod can share one account.
    name_prefix: str = Field("", examples=["DEV_"])
    # True when this stack has a Snowflake account of its own: then no prefix is needed and
    # the names match the data contract exactly (RAW, ANALYTICS, ...).
    dedicated_account: bool = Field(False, examples=[True])
    credit_quota: int = Field(gt=0, le=10_000, examples=[20])
    warehouse_size: Literal["XSMALL", "SMALL", "MEDIUM"] = Field("XSMALL", examples=["XSMALL"])
    statement_timeout_seconds: int = Field(
        3600, ge=60, le=SNOWFLAKE_MAX_STATEMENT_TIMEOUT_SECONDS, examples=[3600]
    )
    # Empty means Airbyte Cloud's IPs from `aws.airbyteCidrs`.
    airbyte_allowed_cidrs: tuple[SignInCidr, ...] = Field((), examples=["13.37.4.46/32"])
    # Added to the Airflow host's stable egress IP, where the dbt user signs in from.
    dbt_allowed_cidrs: tuple[SignInCidr, ...] = Field((), examples=["198.51.100.7/32"])
    notify_users: tuple[str, ...] = Field((), examples=["ADMIN_USER"])
    rsa_bits: int = Field(4096, ge=2048, le=8192, examples=[4096])

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _SNOWFLAKE_PREFIX.match(v):
            raise ValueError(
                "must be empty or upper-case letters, digits and underscores ending in '_'"
            )
        return v


class WarehouseUsageSettings(Section):
    """How often a workload wakes its Snowflake warehouse, and how long it works each time."""

    runs_per_day: float = Field(1, ge=0, le=1440, examples=[1])
    minutes_per_run: float = Field(10, ge=0, le=1440, examples=[15])


class CostConfig(Section):
    """`mdp:cost`: the monthly budget `mdp plan` guards, and the usage the price table cannot know."""

    monthly_budget_usd: float = Field(150, gt=0, examples=[60])
    # Per contract: on-demand Standard edition is about $2, Enterprise about $3.
    snowflake_credit_price_usd: float = Field(3.0, gt=0, examples=[2.0])
    # Airbyte Cloud bills by plan and volume: fill in what your plan costs.
    airbyte_monthly_usd: float | None = Field(None, ge=0, examples=[10])
    s3_gb_per_bucket: float = Field(5, ge=0, examples=[5])
    log_gb_per_month: float = Field(1, ge=0, examples=[1])
    warehouse_usage: dict[Literal["load", "transform", "report"], WarehouseUsageSettings] = {
        "load": WarehouseUsageSettings(runs_per_day=1, minutes_per_run=10),
        "transform": WarehouseUsageSettings(runs_per_day=1, minutes_per_run=15),
        "report": WarehouseUsageSettings(runs_per_day=6, minutes_per_run=2),
    }

    def assumptions(self) -> CostAssumptions:
        from infra.cost import CostAssumptions, WarehouseUsage

        return CostAssumptions(
            snowflake_credit_price_usd=self.snowflake_credit_price_usd,
            s3_gb_per_bucket=self.s3_gb_per_bucket,
            log_gb_per_month=self.log_gb_per_month,
            airbyte_monthly_usd=self.airbyte_monthly_usd,
            warehouse_usage={
                k: WarehouseUsage(v.runs_per_day, v.minutes_per_run)
                for k, v in self.warehouse_usage.items()
            },
        )


class StackConfig(Section):
    """The whole program's configuration; each component reads only its own section."""

    stack: Literal["dev", "prod"]
    project: str = PROJECT
    aws: AwsConfig
    airbyte: AirbyteConfig | None = None
    snowflake: SnowflakeConfig | None = None
    cost: CostConfig = CostConfig.model_validate({})

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
)


@dataclass(frozen=True)
class ConfigIssue:
    """One bad or missing key, and the command that fixes it."""

    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"  - {self.key}: {self.problem}\n    fix: {self.fix}"


class ConfigError(pulumi.RunError):
    """Stack config is invalid; raised before any resource is declared."""

    def __init__(self, stack: str, issues: Sequence[ConfigIssue]) -> None:
        self.stack = stack
        self.issues = tuple(issues)
        lines = "\n".join(str(i) for i in self.issues)
        super().__init__(
            f"Stack config for '{stack}' is invalid, so no resource was declared and nothing "
            f"in the cloud changed:\n{lines}\nFix the keys above, then run "
            f"`pulumi preview --stack {stack}` again."
        )


ConfigReader = Callable[[str, str], Any]
"""Reads `namespace`, `key` and returns the decoded value (objects as dicts) or None."""


def _path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _model_at(loc: Sequence[str | int]) -> tuple[type[BaseModel] | None, str | None]:
    """The model owning the last named field of `loc`, and that field's Python name."""
    model: type[BaseModel] | None = StackConfig
    owner: type[BaseModel] | None = None
    field: str | None = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        name = _python_name(model, part)
        if name is None:
            return model, None
        owner, field = model, name
        annotation = model.model_fields[name].annotation
        model = _submodel(annotation)
    return owner, field


def _model_for(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields live at `loc`."""
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        name = _python_name(model, part)
        model = _submodel(model.model_fields[name].annotation) if name else None
    return model


def _python_name(model: type[BaseModel], key: str) -> str | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name
    return None


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _example(loc: Sequence[str | int]) -> str:
    owner, field = _model_at(loc)
    if owner is None or field is None:
        return "<value>"
    examples = owner.model_fields[field].examples or []
    if not examples:
        return "<value>"
    value = examples[0]
    if isinstance(loc[-1], int) and isinstance(value, list):
        value = value[loc[-1]] if loc[-1] < len(value) else value[0]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, list) else str(value[0])


def _key_and_fix(
    stack: str, loc: Sequence[str | int], example: str | None = None
) -> tuple[str, str]:
    if tuple(loc) == ("aws", "region"):
        return (
            "aws:region",
            f"pulumi config set aws:region {example or 'us-east-1'} --stack {stack}",
        )
    owner, field = _model_at(loc)
    if field is not None and owner is not None:
        info = owner.model_fields[field]
        if isinstance(loc[-1], str) and _is_sequence(info.annotation):
            loc = (*loc, 0)
    path = _path(loc)
    value = example if example is not None else _example(loc)
    return f"{PROJECT}:{path}", f"pulumi config set --path '{path}' {value} --stack {stack}"


def _is_sequence(annotation: Any) -> bool:
    origin = getattr(annotation, "__origin__", None)
    return origin in (tuple, list)


def _issues_from(stack: str, error: ValidationError) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for err in error.errors():
        loc: tuple[str | int, ...] = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            model = _model_for(loc[:-1])
            known = (
                [info.alias or name for name, info in model.model_fields.items()] if model else []
            )
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            path = _path(loc)
            issues.append(
                ConfigIssue(
                    key=f"{PROJECT}:{path}",
                    problem=f"unknown key{hint}",
                    fix=f"pulumi config rm --path '{path}' --stack {stack}",
                )
            )
            continue
        key, fix = _key_and_fix(stack, loc)
        if err["type"] == "missing":
            problem = "is required but not set"
        else:
            got = err.get("input")
            shown = json.dumps(got) if isinstance(got, str | int | float | bool) else None
            problem = err["msg"].removeprefix("Value error, ") + (
                f" (got {shown})" if shown else ""
            )
        issues.append(ConfigIssue(key=key, problem=problem, fix=fix))
    return issues


def _get(obj: Any, path: Sequence[str]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _camel_path(path: Sequence[str]) -> tuple[str, ...]:
    return tuple(to_camel(p) for p in path)


def build_stack_config(stack: str, read: ConfigReader) -> StackConfig:
    """Validate the raw config of `stack` read through `read`; raise ConfigError listing every bad key."""
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
    raw: dict[str, Any] = {"stack": stack}
    issues: list[ConfigIssue] = []
    for name in StackConfig.model_fields:
        if name in ("stack", "project"):
            continue
        value = read(PROJECT, name)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            key, _ = _key_and_fix(stack, (name,))
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
        raise ConfigError(stack, issues + _issues_from(stack, e)) from None
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
    if config.airbyte is not None:
        issues += _airbyte_issues(stack, config, read)
        if issues:
            raise ConfigError(stack, issues)
    if config.is_prod:
        for path, wanted, why in _PROD_REQUIREMENTS:
            if _get(config, path) != wanted:
                shown = json.dumps(wanted)
                key, fix = _key_and_fix(stack, _camel_path(path), shown)
                issues.append(
                    ConfigIssue(
                        key=key, problem=f"{why} (got {json.dumps(_get(config, path))})", fix=fix
                    )
                )
        if issues:
            raise ConfigError(stack, issues)
    return config


def _airbyte_issues(stack: str, config: StackConfig, read: ConfigReader) -> list[ConfigIssue]:
    """Airbyte needs API credentials, and CDC needs logical replication on the source."""
    issues: list[ConfigIssue] = []
    has_client = (
        read("airbyte", "clientId") is not None and read("airbyte", "clientSecret") is not None
    )
    if not has_client and read("airbyte", "bearerAuth") is None:
        issues.append(
            ConfigIssue(
                key="airbyte:clientId / airbyte:clientSecret",
                problem="Airbyte API credentials are not set (an application's client id and secret, or a token)",
                fix=f"pulumi config set airbyte:clientId <id> --stack {stack} && "
                f"pulumi config set --secret airbyte:clientSecret <secret> --stack {stack}",
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
        key, fix = _key_and_fix(stack, ("aws", "database", "logicalReplication"), "true")
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
    return build_stack_config(pulumi.get_stack(), _pulumi_reader)


def require_secret(key: str, example: str = "<value>") -> pulumi.Output[str]:
    """A secret `mdp:<key>`; fails with the `pulumi config set --secret` command when absent."""
    value = pulumi.Config(PROJECT).get_secret(key)
    if value is None:
        stack = pulumi.get_stack()
        raise ConfigError(
            stack,
            [
                ConfigIssue(
                    key=f"{PROJECT}:{key}",
                    problem="secret is required but not set",
                    fix=f"pulumi config set --secret {key} {example} --stack {stack}",
                )
            ],
        )
    return value
