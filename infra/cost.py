"""Monthly cost estimate of a planned stack, from the dated price table in pricing.yaml, and its config section."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from infra.sections import Section

PRICING_FILE = Path(__file__).with_name("pricing.yaml")
DAYS_PER_MONTH = 30


class PricingError(ValueError):
    """The price table has no price for something the stack declares."""


class BudgetExceeded(RuntimeError):
    """The estimate is over the stack's monthly budget."""


@dataclass(frozen=True)
class PlannedResource:
    """One resource as the program declares it: its type token, name and inputs."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    component: str = ""
    id: str = ""


@dataclass(frozen=True)
class WarehouseUsage:
    """How often a workload wakes its warehouse, and for how long it works each time."""

    runs_per_day: float
    minutes_per_run: float


# The workloads that wake a Snowflake warehouse; a warehouse's name says which one it serves.
Workload = Literal["load", "transform", "report"]

DEFAULT_WAREHOUSE_USAGE: Mapping[Workload, WarehouseUsage] = {
    # A daily sync, a daily dbt build, and the dashboard opened a few times a day.
    "load": WarehouseUsage(runs_per_day=1, minutes_per_run=10),
    "transform": WarehouseUsage(runs_per_day=1, minutes_per_run=15),
    "report": WarehouseUsage(runs_per_day=6, minutes_per_run=2),
}


@dataclass(frozen=True)
class CostAssumptions:
    """What the price table cannot know: usage. Comes from the stack's `cost` config."""

    snowflake_credit_price_usd: float = 3.0
    s3_gb_per_bucket: float = 5.0
    log_gb_per_month: float = 1.0
    airbyte_monthly_usd: float | None = None
    # MWAA's metadata database grows with task history; MWAA bills it per GB-month.
    mwaa_metadata_gb: float = 10.0
    warehouse_usage: Mapping[Workload, WarehouseUsage] = field(
        default_factory=lambda: dict(DEFAULT_WAREHOUSE_USAGE)
    )


_DEFAULTS = CostAssumptions()


class WarehouseUsageSettings(Section):
    """How often a workload wakes its Snowflake warehouse, and how long it works each time."""

    runs_per_day: float = Field(1, ge=0, le=1440, examples=[1])
    minutes_per_run: float = Field(10, ge=0, le=1440, examples=[15])


class CostConfig(Section):
    """`mdp:cost`: the monthly budget `mdp plan` guards, and the usage the price table cannot know."""

    monthly_budget_usd: float = Field(150, gt=0, examples=[60])
    # Per contract: on-demand Standard edition is about $2, Enterprise about $3.
    snowflake_credit_price_usd: float = Field(
        _DEFAULTS.snowflake_credit_price_usd, gt=0, examples=[2.0]
    )
    # Airbyte Cloud bills by plan and volume: fill in what your plan costs.
    airbyte_monthly_usd: float | None = Field(_DEFAULTS.airbyte_monthly_usd, ge=0, examples=[10])
    s3_gb_per_bucket: float = Field(_DEFAULTS.s3_gb_per_bucket, ge=0, examples=[5])
    log_gb_per_month: float = Field(_DEFAULTS.log_gb_per_month, ge=0, examples=[1])
    mwaa_metadata_gb: float = Field(_DEFAULTS.mwaa_metadata_gb, ge=0, examples=[10])
    warehouse_usage: dict[Workload, WarehouseUsageSettings] = Field(
        default_factory=lambda: {
            k: WarehouseUsageSettings(
                runs_per_day=v.runs_per_day, minutes_per_run=v.minutes_per_run
            )
            for k, v in DEFAULT_WAREHOUSE_USAGE.items()
        }
    )

    def assumptions(self) -> CostAssumptions:
        return CostAssumptions(
            snowflake_credit_price_usd=self.snowflake_credit_price_usd,
            s3_gb_per_bucket=self.s3_gb_per_bucket,
            log_gb_per_month=self.log_gb_per_month,
            airbyte_monthly_usd=self.airbyte_monthly_usd,
            mwaa_metadata_gb=self.mwaa_metadata_gb,
            warehouse_usage={
                k: WarehouseUsage(v.runs_per_day, v.minutes_per_run)
                for k, v in self.warehouse_usage.items()
            },
        )


@dataclass(frozen=True)
class CostLine:
    cloud: str
    component: str
    resource: str
    item: str
    quantity: float
    unit: str
    unit_price: float

    @property
    def monthly_usd(self) -> float:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Estimate:
    lines: tuple[CostLine, ...]
    snowflake_credits_per_day: Mapping[str, float]
    pricing_as_of: str

    def total(self, cloud: str | None = None) -> float:
        return sum(line.monthly_usd for line in self.lines if cloud in (None, line.cloud))

    def top(self, n: int = 3) -> list[CostLine]:
        return sorted(self.lines, key=lambda line: line.monthly_usd, reverse=True)[:n]


@dataclass(frozen=True)
class Pricing:
    raw: Mapping[str, Any]

    @property
    def as_of(self) -> str:
        return str(self.raw["as_of"])

    @property
    def hours_per_month(self) -> float:
        return float(self.raw["hours_per_month"])

    def aws(self, table: str, key: str | None = None) -> float:
        value = self.raw["aws"][table]
        if key is None:
            return float(value)
        if key not in value:
            known = ", ".join(sorted(value))
            raise PricingError(
                f"no price for {key!r} in aws.{table} of {PRICING_FILE.name} (as of {self.as_of}); "
                f"known: {known}. Add the price from the AWS price page, or pick a listed size."
            )
        return float(value[key])

    def credits_per_hour(self, size: str) -> float:
        table = self.raw["snowflake"]["credits_per_hour"]
        key = size.upper().replace("-", "").replace("_", "")
        if key not in table:
            raise PricingError(
                f"unknown Snowflake warehouse size {size!r}; known: {', '.join(table)}"
            )
        return float(table[key])

    @property
    def minimum_billed_seconds(self) -> float:
        return float(self.raw["snowflake"]["minimum_billed_seconds_per_resume"])


def load_pricing(path: Path = PRICING_FILE) -> Pricing:
    return Pricing(yaml.safe_load(path.read_text()))


def _get(inputs: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Read an input by its Python or its wire name (`instance_type` or `instanceType`)."""
    wanted = name.replace("_", "").lower()
    for key, value in inputs.items():
        if key.replace("_", "").lower() == wanted:
            return value
    return default


def _volume_type(block: Mapping[str, Any] | None) -> str:
    return str(_get(block or {}, "volume_type") or "gp3")


def _workload(name: str) -> Workload | None:
    lowered = name.lower()
    for workload in DEFAULT_WAREHOUSE_USAGE:
        if workload in lowered:
            return workload
    return None


def warehouse_hours_per_day(
    usage: WarehouseUsage, auto_suspend_s: float, minimum_billed_s: float
) -> float:
    """Billed hours a day: each run works, then idles until auto-suspend; each resume bills at least a minute."""
    per_run_s = max(usage.minutes_per_run * 60 + auto_suspend_s, minimum_billed_s)
    return min(usage.runs_per_day * per_run_s / 3600, 24.0)


def estimate(
    resources: Iterable[PlannedResource],
    assumptions: CostAssumptions | None = None,
    pricing: Pricing | None = None,
) -> Estimate:
    """Price every billable resource; resources with no running cost are left out."""
    assumptions = assumptions or CostAssumptions()
    pricing = pricing or load_pricing()
    resources = list(resources)
    hours = pricing.hours_per_month
    lines: list[CostLine] = []
    credits: dict[str, float] = {}

    # Instances whose address is an Elastic IP, attached directly or by an association.
    eip_instances = {
        str(_get(r.inputs, "instance"))
        for r in resources
        if r.type == "aws:ec2/eip:Eip" and _get(r.inputs, "instance")
    } | {
        str(_get(r.inputs, "instance_id"))
        for r in resources
        if r.type == "aws:ec2/eipAssociation:EipAssociation" and _get(r.inputs, "instance_id")
    }

    def add(r: PlannedResource, cloud: str, item: str, qty: float, unit: str, price: float) -> None:
        lines.append(CostLine(cloud, r.component, r.name, item, qty, unit, price))

    for r in resources:
        if r.type == "aws:ec2/instance:Instance":
            itype = str(_get(r.inputs, "instance_type"))
            add(r, "aws", f"EC2 {itype}", hours, "h", pricing.aws("ec2_instance_hourly", itype))
            root = _get(r.inputs, "root_block_device") or {}
            gb = float(_get(root, "volume_size") or 8)
            vtype = _volume_type(root)
            add(r, "aws", f"EBS {vtype} root", gb, "GB-month", pricing.aws("ebs_gb_month", vtype))
            for block in _get(r.inputs, "ebs_block_devices") or []:
                vtype = _volume_type(block)
                add(
                    r,
                    "aws",
                    f"EBS {vtype}",
                    float(_get(block, "volume_size") or 8),
                    "GB-month",
                    pricing.aws("ebs_gb_month", vtype),
                )
            # An Elastic IP replaces the auto-assigned address; it is priced on its own line.
            if _get(r.inputs, "associate_public_ip_address") and r.id not in eip_instances:
                add(r, "aws", "public IPv4", hours, "h", pricing.aws("public_ipv4_hourly"))
        elif r.type == "aws:ec2/eip:Eip":
            add(r, "aws", "Elastic IP (public IPv4)", hours, "h", pricing.aws("public_ipv4_hourly"))
        elif r.type == "aws:ec2/natGateway:NatGateway":
            add(r, "aws", "NAT gateway", hours, "h", pricing.aws("nat_gateway_hourly"))
        elif r.type == "aws:rds/instance:Instance":
            klass = str(_get(r.inputs, "instance_class"))
            copies = 2 if _get(r.inputs, "multi_az") else 1
            suffix = " Multi-AZ" if copies == 2 else ""
            add(
                r,
                "aws",
                f"RDS {klass}{suffix}",
                hours * copies,
                "h",
                pricing.aws("rds_instance_hourly", klass),
            )
            storage = str(_get(r.inputs, "storage_type") or "gp3")
            gb = float(_get(r.inputs, "allocated_storage") or 20)
            add(
                r,
                "aws",
                f"RDS storage {storage}{suffix}",
                gb * copies,
                "GB-month",
                pricing.aws("rds_storage_gb_month", storage),
            )
        elif r.type == "aws:secretsmanager/secret:Secret":
            add(
                r,
                "aws",
                "Secrets Manager secret",
                1,
                "month",
                pricing.aws("secrets_manager_secret_month"),
            )
        elif r.type == "aws:kms/key:Key":
            add(r, "aws", "KMS key", 1, "month", pricing.aws("kms_key_month"))
        elif r.type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            add(
                r,
                "aws",
                "S3 Standard storage",
                assumptions.s3_gb_per_bucket,
                "GB-month",
                pricing.aws("s3_standard_gb_month"),
            )
        elif r.type == "aws:cloudwatch/logGroup:LogGroup":
            add(
                r,
                "aws",
                "CloudWatch Logs ingestion",
                assumptions.log_gb_per_month,
                "GB",
                pricing.aws("cloudwatch_logs_ingest_gb"),
            )
        elif r.type == "aws:cloudwatch/metricAlarm:MetricAlarm":
            add(r, "aws", "CloudWatch alarm", 1, "month", pricing.aws("cloudwatch_alarm_month"))
        elif r.type == "aws:mwaa/environment:Environment":
            klass = str(_get(r.inputs, "environment_class") or "mw1.small")
            # The environment's hourly price includes one worker and its base schedulers
            # (1 on mw1.micro, 2 on the others); more of either is billed per hour. Workers
            # are priced at minWorkers: autoscaling above it is billed only while it runs.
            add(
                r,
                "aws",
                f"MWAA {klass} environment",
                hours,
                "h",
                pricing.aws("mwaa_environment_hourly", klass),
            )
            workers = float(_get(r.inputs, "min_workers") or 1)
            if workers > 1:
                add(
                    r,
                    "aws",
                    f"MWAA {klass} extra workers (min)",
                    hours * (workers - 1),
                    "h",
                    pricing.aws("mwaa_worker_hourly", klass),
                )
            base = 1 if klass == "mw1.micro" else 2
            schedulers = float(_get(r.inputs, "schedulers") or base)
            if schedulers > base:
                add(
                    r,
                    "aws",
                    f"MWAA {klass} extra schedulers",
                    hours * (schedulers - base),
                    "h",
                    pricing.aws("mwaa_scheduler_hourly", klass),
                )
            add(
                r,
                "aws",
                "MWAA metadata database",
                assumptions.mwaa_metadata_gb,
                "GB-month",
                pricing.aws("mwaa_metadata_gb_month"),
            )
        elif r.type == "snowflake:index/warehouse:Warehouse":
            wh_name = str(_get(r.inputs, "name") or r.name)
            size = str(_get(r.inputs, "warehouse_size") or "XSMALL")
            workload = _workload(wh_name) or _workload(r.name)
            usage = (
                assumptions.warehouse_usage.get(workload) if workload is not None else None
            ) or WarehouseUsage(1, 10)
            auto_suspend = float(_get(r.inputs, "auto_suspend") or 600)
            per_day = warehouse_hours_per_day(usage, auto_suspend, pricing.minimum_billed_seconds)
            day_credits = per_day * pricing.credits_per_hour(size)
            credits[wh_name] = day_credits
            add(
                r,
                "snowflake",
                f"warehouse {size}, {usage.runs_per_day:g} runs/day",
                day_credits * DAYS_PER_MONTH,
                "credits",
                assumptions.snowflake_credit_price_usd,
            )

    airbyte = assumptions.airbyte_monthly_usd
    lines.append(
        CostLine(
            "airbyte",
            "airbyte",
            "Airbyte Cloud",
            "plan (fill in `mdp:cost.airbyteMonthlyUsd`)" if airbyte is None else "plan",
            1,
            "month",
            airbyte or 0.0,
        )
    )
    return Estimate(tuple(lines), credits, pricing.as_of)


def check_budget(est: Estimate, budget_usd: float, top: int = 3) -> None:
    """Fail, naming the biggest cost lines, when the estimate is over the budget."""
    total = est.total()
    if total <= budget_usd:
        return
    biggest = "; ".join(
        f"{line.resource} {line.item} ${line.monthly_usd:,.2f}" for line in est.top(top)
    )
    raise BudgetExceeded(
        f"estimated ${total:,.2f}/month is over the stack's budget of ${budget_usd:,.2f}. "
        f"Biggest lines: {biggest}. Shrink those, or raise the budget with "
        f"`pulumi config set mdp:cost.monthlyBudgetUsd <usd>` if the spend is intended."
    )
