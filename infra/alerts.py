"""Alerts declared in the program: an encrypted SNS topic, CloudWatch alarms on hosts and RDS, and the monthly budget.

Also the `mdp:alerts` config section. With no `mdp:alerts` section the stack declares no topic,
no alarm and no budget: AWS Budgets needs a recipient, and the topic is it. `mdp plan` still
checks the estimate against `mdp:cost.monthlyBudgetUsd` either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
from pydantic import AfterValidator, Field, SecretStr, field_validator

from infra.component import Component
from infra.iam import account_root, policy_document
from infra.sections import Section, StackName

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

# RDS for PostgreSQL's default max_connections is LEAST(DBInstanceClassMemory / 9531392, 5000)
# (AWS RDS User Guide, "Maximum number of database connections"). The memory per class, in GiB,
# is from the RDS instance class table; set `mdp:alerts.dbMaxConnections` for any other class or
# when the parameter group overrides max_connections.
_CLASS_MEMORY_GIB: Mapping[str, float] = {
    "db.t3.micro": 1,
    "db.t3.small": 2,
    "db.t3.medium": 4,
    "db.t3.large": 8,
    "db.t4g.micro": 1,
    "db.t4g.small": 2,
    "db.t4g.medium": 4,
    "db.t4g.large": 8,
    "db.m7g.large": 8,
    "db.m7g.xlarge": 16,
    "db.r7g.large": 16,
}
_BYTES_PER_CONNECTION = 9_531_392


def topic_name(stack: str) -> str:
    return f"mdp-{stack}-alerts"


def topic_arn(stack: str, region: str) -> pulumi.Output[str]:
    """The topic's ARN before the topic exists: the Airflow host needs it, and the alarms need
    the host, so the host reads it from the name rather than from the component."""
    account_id = aws.get_caller_identity_output().account_id
    return pulumi.Output.concat("arn:aws:sns:", region, ":", account_id, ":", topic_name(stack))


def default_max_connections(instance_class: str) -> int | None:
    """RDS PostgreSQL's default connection limit for `instance_class`, or None if unknown."""
    gib = _CLASS_MEMORY_GIB.get(instance_class)
    if gib is None:
        return None
    return min(int(gib * 1024**3 // _BYTES_PER_CONNECTION), 5000)


def _email(address: str) -> str:
    if not _EMAIL.match(address):
        raise ValueError("is not an email address such as ops@example.com")
    return address


# Checked one by one, so an error names the bad entry's index.
EmailAddress = Annotated[str, AfterValidator(_email)]


class AlertsConfig(Section):
    """`mdp:alerts`: who is told when an alarm fires or the budget runs over."""

    emails: tuple[EmailAddress, ...] = Field((), examples=["oncall@example.com"])
    # Set with `pulumi config set --secret --path 'alerts.webhookUrl' https://...`.
    webhook_url: SecretStr | None = Field(None, examples=["https://hooks.example.com/mdp"])
    # RDS connection limit; unset, it follows the instance class (see default_max_connections).
    db_max_connections: int | None = Field(None, ge=1, le=262143, examples=[100])

    @field_validator("emails")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("lists an address more than once")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, v: SecretStr | None) -> SecretStr | None:
        # The message never repeats the URL: it is a secret.
        if v is not None and not re.match(r"^https://[^\s/]+", v.get_secret_value()):
            raise ValueError("must be an https:// URL (SNS would send alerts in clear text)")
        return v

    @property
    def configured(self) -> bool:
        return bool(self.emails) or self.webhook_url is not None


@dataclass(frozen=True)
class WatchedHost:
    """An EC2 host to watch; `root_disk` adds the CloudWatch agent's disk_used_percent alarm."""

    name: str
    instance_id: pulumi.Input[str]
    root_disk: bool = False


@dataclass(frozen=True)
class WatchedDatabase:
    identifier: pulumi.Input[str]
    allocated_storage_gb: int
    max_connections: int


@dataclass(frozen=True)
class AlertsArgs:
    stack: StackName
    region: str
    kms_key_arn: pulumi.Input[str]
    emails: Sequence[str]
    monthly_budget_usd: float
    hosts: Sequence[WatchedHost]
    database: WatchedDatabase
    # An Output marked secret: it never appears in plain state or outputs.
    webhook_url: pulumi.Input[str] | None = None
    # The MWAA environment's name when Airflow runs there: its schedulers' heartbeat is watched.
    mwaa_environment: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


DISK_THRESHOLD_PERCENT = 80
CPU_THRESHOLD_PERCENT = 80
FREE_STORAGE_FRACTION = 0.2
CONNECTIONS_FRACTION = 0.8
BUDGET_FORECAST_PERCENT = 80
BUDGET_ACTUAL_PERCENT = 100


class Alerts(Component[AlertsArgs]):
    """The stack's alert topic, its subscriptions, the alarms that publish to it, and the budget."""

    TYPE = "mdp:alerts:Alerts"

    topic_arn: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def _declare(self, name: str, args: AlertsArgs) -> Mapping[str, Any]:
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=topic_name(args.stack),
            kms_master_key_id=args.kms_key_arn,
            opts=child,
        )
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic_arn=topic.arn, account_id=account_id).apply(
                lambda a: _topic_policy(**a)
            ),
            opts=child,
        )
        for i, address in enumerate(args.emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{i}",
                topic=topic.arn,
                protocol="email",
                endpoint=address,
                opts=child,
            )
        if args.webhook_url is not None:
            aws.sns.TopicSubscription(
                f"{name}-webhook",
                topic=topic.arn,
                protocol="https",
                # Secret again here, whatever the caller passed: the URL carries a token.
                endpoint=pulumi.Output.secret(args.webhook_url),
                endpoint_auto_confirms=False,
                opts=child,
            )
        self.topic_arn = topic.arn
        self.alarm_names = []
        for host in args.hosts:
            self._host_alarms(host)
        self._database_alarms(args.database)
        if args.mwaa_environment is not None:
            self._mwaa_alarms(args.mwaa_environment)
        aws.budgets.Budget(
            f"{name}-budget",
            name=f"mdp-{args.stack}-monthly",
            budget_type="COST",
            limit_amount=f"{args.monthly_budget_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            notifications=[
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    threshold=BUDGET_FORECAST_PERCENT,
                    threshold_type="PERCENTAGE",
                    notification_type="FORECASTED",
                    subscriber_sns_topic_arns=[topic.arn],
                ),
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    threshold=BUDGET_ACTUAL_PERCENT,
                    threshold_type="PERCENTAGE",
                    notification_type="ACTUAL",
                    subscriber_sns_topic_arns=[topic.arn],
                ),
            ],
            opts=child,
        )
        return {"topicArn": self.topic_arn}

    def _alarm(self, suffix: str, description: str, **kwargs: object) -> None:
        actions = [self.topic_arn, *kwargs.pop("extra_actions", [])]  # type: ignore[misc]
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{suffix}",
            name=f"mdp-{self._args.stack}-{suffix}",
            alarm_description=description,
            alarm_actions=actions,
            ok_actions=[self.topic_arn],
            tags=dict(self._args.tags),
            opts=pulumi.ResourceOptions(parent=self),
            **kwargs,
        )
        self.alarm_names.append(alarm.name)

    def _host_alarms(self, host: WatchedHost) -> None:
        region = self._args.region
        dims = {"InstanceId": host.instance_id}
        self._alarm(
            f"{host.name}-system-check",
            f"{host.name}: the EC2 system status check failed (AWS hardware or network); "
            "EC2 recovers the instance onto healthy hardware.",
            namespace="AWS/EC2",
            metric_name="StatusCheckFailed_System",
            dimensions=dims,
            statistic="Maximum",
            period=60,
            evaluation_periods=2,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            extra_actions=[f"arn:aws:automate:{region}:ec2:recover"],
        )
        self._alarm(
            f"{host.name}-instance-check",
            f"{host.name}: the EC2 instance status check failed (the OS is unreachable).",
            namespace="AWS/EC2",
            metric_name="StatusCheckFailed_Instance",
            dimensions=dims,
            statistic="Maximum",
            period=60,
            evaluation_periods=3,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
        )
        if host.root_disk:
            self._alarm(
                f"{host.name}-root-disk",
                f"{host.name}: the root file system is over {DISK_THRESHOLD_PERCENT}% full "
                "(published by the CloudWatch agent).",
                namespace="CWAgent",
                metric_name="disk_used_percent",
                dimensions={**dims, "path": "/", "fstype": "xfs"},
                statistic="Maximum",
                period=300,
                evaluation_periods=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=DISK_THRESHOLD_PERCENT,
            )

    def _mwaa_alarms(self, environment: str) -> None:
        # MWAA's schedulers publish a heartbeat every few seconds; none for five minutes means
        # no task is scheduled. Missing data is what a dead scheduler looks like.
        self._alarm(
            "mwaa-scheduler-heartbeat",
            f"MWAA {environment}: no scheduler heartbeat for 5 minutes; no task is being "
            "scheduled. Check the Scheduler log group and the environment's health in the console.",
            namespace="AmazonMWAA",
            metric_name="SchedulerHeartbeat",
            dimensions={"Function": "Scheduler", "Environment": environment},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
        )

    def _database_alarms(self, db: WatchedDatabase) -> None:
        dims = {"DBInstanceIdentifier": db.identifier}
        free_bytes = db.allocated_storage_gb * 1024**3 * FREE_STORAGE_FRACTION
        self._alarm(
            "db-free-storage",
            f"RDS: free storage under {FREE_STORAGE_FRACTION:.0%} of the "
            f"{db.allocated_storage_gb} GB allocated.",
            namespace="AWS/RDS",
            metric_name="FreeStorageSpace",
            dimensions=dims,
            statistic="Minimum",
            period=300,
            evaluation_periods=1,
            comparison_operator="LessThanThreshold",
            threshold=free_bytes,
        )
        self._alarm(
            "db-cpu",
            f"RDS: CPU over {CPU_THRESHOLD_PERCENT}% for 15 minutes.",
            namespace="AWS/RDS",
            metric_name="CPUUtilization",
            dimensions=dims,
            statistic="Average",
            period=300,
            evaluation_periods=3,
            comparison_operator="GreaterThanThreshold",
            threshold=CPU_THRESHOLD_PERCENT,
        )
        limit = db.max_connections
        self._alarm(
            "db-connections",
            f"RDS: connections over {CONNECTIONS_FRACTION:.0%} of the limit of {limit}.",
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            dimensions=dims,
            statistic="Maximum",
            period=300,
            evaluation_periods=2,
            comparison_operator="GreaterThanThreshold",
            threshold=int(limit * CONNECTIONS_FRACTION),
        )


def _topic_policy(topic_arn: str, account_id: str) -> str:
    # The account keeps its default rights; CloudWatch and Budgets may publish alerts.
    return policy_document(
        {
            "Sid": "AccountManagesTopic",
            "Effect": "Allow",
            "Principal": account_root(account_id),
            "Action": [
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:ListSubscriptionsByTopic",
                "sns:Publish",
            ],
            "Resource": topic_arn,
        },
        {
            "Sid": "AlarmsAndBudgetsPublish",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    )
