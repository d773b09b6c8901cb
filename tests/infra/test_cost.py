"""The cost model prices known resource sets by the table, and the budget guard fails clearly."""

from __future__ import annotations

import pytest

from infra.cost import (
    BudgetExceeded,
    CostAssumptions,
    PlannedResource,
    PricingError,
    WarehouseUsage,
    check_budget,
    estimate,
    load_pricing,
    warehouse_hours_per_day,
)

PRICING = load_pricing()
HOURS = PRICING.hours_per_month


def ec2(itype: str = "t3.small", gb: int = 20, public: bool = False, rid: str = "i-1"):
    return PlannedResource(
        "aws:ec2/instance:Instance",
        "host",
        {
            "instanceType": itype,
            "rootBlockDevice": {"volumeSize": gb, "volumeType": "gp3", "encrypted": True},
            "associatePublicIpAddress": public,
        },
        id=rid,
    )


def rds(klass: str = "db.t4g.micro", multi_az: bool = False, gb: int = 20):
    return PlannedResource(
        "aws:rds/instance:Instance",
        "source",
        {"instanceClass": klass, "multiAz": multi_az, "allocatedStorage": gb, "storageType": "gp3"},
    )


def test_pricing_table_is_dated_and_names_its_sources():
    assert PRICING.as_of >= "2026-01-01"
    assert PRICING.raw["sources"]["aws"] and PRICING.raw["sources"]["snowflake"]


def test_changing_instance_size_moves_the_total_by_the_table_price():
    small = estimate([ec2("t3.small")]).total("aws")
    medium = estimate([ec2("t3.medium")]).total("aws")
    expected = (
        PRICING.aws("ec2_instance_hourly", "t3.medium")
        - PRICING.aws("ec2_instance_hourly", "t3.small")
    ) * HOURS
    assert medium - small == pytest.approx(expected)
    assert expected > 0


def test_multi_az_doubles_the_rds_instance_and_storage():
    single = estimate([rds(multi_az=False)]).total("aws")
    multi = estimate([rds(multi_az=True)]).total("aws")
    instance = PRICING.aws("rds_instance_hourly", "db.t4g.micro") * HOURS
    storage = PRICING.aws("rds_storage_gb_month", "gp3") * 20
    assert single == pytest.approx(instance + storage)
    assert multi - single == pytest.approx(instance + storage)


def test_public_ipv4_counted_once_when_an_elastic_ip_is_attached():
    ip = PRICING.aws("public_ipv4_hourly") * HOURS
    alone = estimate([ec2(public=True)]).total("aws")
    bare = estimate([ec2(public=False)]).total("aws")
    assert alone - bare == pytest.approx(ip)
    eip = PlannedResource("aws:ec2/eip:Eip", "eip", {"instance": "i-1", "domain": "vpc"})
    with_eip = estimate([ec2(public=True), eip]).total("aws")
    assert with_eip - bare == pytest.approx(ip)
    free_eip = PlannedResource("aws:ec2/eip:Eip", "eip", {"domain": "vpc"})
    association = PlannedResource(
        "aws:ec2/eipAssociation:EipAssociation", "assoc", {"instanceId": "i-1"}
    )
    associated = estimate([ec2(public=True), free_eip, association]).total("aws")
    assert associated - bare == pytest.approx(ip)


def test_nat_gateway_secrets_and_buckets_are_priced():
    resources = [
        PlannedResource("aws:ec2/natGateway:NatGateway", "nat", {}),
        PlannedResource("aws:secretsmanager/secret:Secret", "s1", {}),
        PlannedResource("aws:secretsmanager/secret:Secret", "s2", {}),
        PlannedResource("aws:s3/bucket:Bucket", "b", {}),
    ]
    assumptions = CostAssumptions(s3_gb_per_bucket=10)
    total = estimate(resources, assumptions).total("aws")
    assert total == pytest.approx(
        PRICING.aws("nat_gateway_hourly") * HOURS
        + 2 * PRICING.aws("secrets_manager_secret_month")
        + 10 * PRICING.aws("s3_standard_gb_month")
    )


def test_resources_without_running_cost_are_free():
    free = [PlannedResource("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})]
    assert estimate(free).total("aws") == 0


def test_unknown_instance_type_names_the_table_and_the_fix():
    with pytest.raises(PricingError, match=r"t9\.huge.*pricing\.yaml"):
        estimate([ec2("t9.huge")])


def test_snowflake_credits_follow_size_runtime_and_auto_suspend():
    wh = PlannedResource(
        "snowflake:index/warehouse:Warehouse",
        "transforming",
        {"name": "MDP_DEV_TRANSFORMING_WH", "warehouseSize": "XSMALL", "autoSuspend": 60},
    )
    usage = {"transform": WarehouseUsage(runs_per_day=2, minutes_per_run=14)}
    est = estimate([wh], CostAssumptions(snowflake_credit_price_usd=2.0, warehouse_usage=usage))
    # Two runs of 14 minutes, each followed by 60 s until auto-suspend: 30 minutes a day.
    assert est.snowflake_credits_per_day["MDP_DEV_TRANSFORMING_WH"] == pytest.approx(0.5)
    assert est.total("snowflake") == pytest.approx(0.5 * 30 * 2.0)
    small = PlannedResource(
        "snowflake:index/warehouse:Warehouse",
        "transforming",
        {"name": "MDP_DEV_TRANSFORMING_WH", "warehouseSize": "SMALL", "autoSuspend": 60},
    )
    doubled = estimate(
        [small], CostAssumptions(snowflake_credit_price_usd=2.0, warehouse_usage=usage)
    )
    assert doubled.total("snowflake") == pytest.approx(2 * est.total("snowflake"))


def test_a_resume_bills_at_least_the_minimum():
    hours = warehouse_hours_per_day(WarehouseUsage(10, 0), auto_suspend_s=0, minimum_billed_s=60)
    assert hours == pytest.approx(10 / 60)


def test_airbyte_is_a_line_the_user_fills_in():
    est = estimate([], CostAssumptions(airbyte_monthly_usd=None))
    (line,) = [line for line in est.lines if line.cloud == "airbyte"]
    assert "fill in" in line.item and line.monthly_usd == 0
    assert estimate([], CostAssumptions(airbyte_monthly_usd=120)).total("airbyte") == 120


def test_budget_guard_names_the_top_lines():
    est = estimate([ec2("t3.xlarge"), rds("db.m7g.large", multi_az=True)])
    check_budget(est, budget_usd=est.total() + 1)
    with pytest.raises(BudgetExceeded) as err:
        check_budget(est, budget_usd=10)
    message = str(err.value)
    assert "over the stack's budget of $10.00" in message
    assert "RDS db.m7g.large Multi-AZ" in message and "EC2 t3.xlarge" in message
    assert "pulumi config set" in message


def mwaa(klass: str = "mw1.small", min_workers: int = 1, schedulers: int = 2):
    return PlannedResource(
        "aws:mwaa/environment:Environment",
        "airflow-mwaa",
        {"environmentClass": klass, "minWorkers": min_workers, "schedulers": schedulers},
    )


def test_mwaa_is_priced_by_class_workers_schedulers_and_metadata_storage():
    base = estimate([mwaa()], CostAssumptions(mwaa_metadata_gb=10))
    items = {line.item: line.monthly_usd for line in base.lines}
    assert items["MWAA mw1.small environment"] == pytest.approx(
        PRICING.aws("mwaa_environment_hourly", "mw1.small") * HOURS
    )
    assert items["MWAA metadata database"] == pytest.approx(
        10 * PRICING.aws("mwaa_metadata_gb_month")
    )
    # The base hour includes one worker and two schedulers: more of each is billed per hour.
    bigger = estimate([mwaa(min_workers=3, schedulers=3)], CostAssumptions(mwaa_metadata_gb=10))
    worker, scheduler = (
        PRICING.aws("mwaa_worker_hourly", "mw1.small"),
        PRICING.aws("mwaa_scheduler_hourly", "mw1.small"),
    )
    assert bigger.total() - base.total() == pytest.approx((2 * worker + scheduler) * HOURS)
    large = estimate([mwaa("mw1.large")], CostAssumptions(mwaa_metadata_gb=10)).total()
    assert large > base.total()
    with pytest.raises(PricingError, match="mwaa_environment_hourly"):
        estimate([mwaa("mw1.huge")])
