"""Alerts declared in the program: the encrypted topic, its subscriptions, the alarms and the budget."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from infra import outputs
from infra.alerts import default_max_connections
from infra.config import build_stack_config
from infra.config_errors import ConfigError
from infra.mockrun import ProgramRun, last_declared, run_program, stack_config, walk_strings
from infra.policies.rules import Context, Resource, all_rules, evaluate
from infra.policies.rules import aws as r
from tests.infra.snowflake.conftest import run_snowflake

WEBHOOK = "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"
EMAILS = ["oncall@example.com", "data-team@example.com"]
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUDGET = "aws:budgets/budget:Budget"
EC2 = "aws:ec2/instance:Instance"


def _with_alerts(stack: str, section: dict[str, Any] | None = None) -> ProgramRun:
    # As the engine hands it over after `pulumi config set --secret --path 'alerts.webhookUrl'`:
    # the whole `mdp:alerts` key is secret.
    value = section if section is not None else {"emails": EMAILS, "webhookUrl": WEBHOOK}
    secrets = {"mdp:alerts": json.dumps(value)}
    if stack == "prod":
        # With Snowflake's dashboard user, so prod (MWAA) declares its dashboard host too.
        return run_snowflake(stack, secrets=secrets).run
    return run_program(stack, secrets=secrets)


_RUNS: dict[str, ProgramRun] = {}


def alerted_run(stack: str) -> ProgramRun:
    """`stack` with emails and a secret webhook, run once per session (the policy pack's test
    reads it too)."""
    if stack not in _RUNS:
        _RUNS[stack] = _with_alerts(stack)
    return _RUNS[stack]


@pytest.fixture(params=["dev", "prod"], scope="module")
def alerted(request: pytest.FixtureRequest) -> ProgramRun:
    return alerted_run(request.param)


@pytest.fixture(scope="module")
def alerted_dev() -> ProgramRun:
    """Dev runs Airflow on the EC2 host."""
    return alerted_run("dev")


@pytest.fixture(scope="module")
def alerted_prod() -> ProgramRun:
    return alerted_run("prod")


def test_topic_is_encrypted_with_the_stacks_key(alerted: ProgramRun) -> None:
    topic = alerted.one(TOPIC)
    key = alerted.one("aws:kms/key:Key", "kms")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert topic.inputs["name"] == f"mdp-{alerted.stack}-alerts"
    component = alerted.one("mdp:alerts:Alerts")
    assert topic.parent == component.urn
    assert alerted.outputs[outputs.ALERTS_TOPIC_ARN] == topic.outputs["arn"]
    # The key lets alarms and budgets publish to the encrypted topic.
    policy = json.loads(key.inputs["policy"])
    grant = next(s for s in policy["Statement"] if s["Sid"].startswith("AlarmsAndBudgets"))
    assert set(grant["Principal"]["Service"]) == {
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
    }
    topic_policy = json.loads(alerted.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    assert any(
        "budgets.amazonaws.com" in _list(s["Principal"].get("Service"))
        for s in topic_policy["Statement"]
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def test_subscriptions_email_and_secret_https_webhook(alerted: ProgramRun) -> None:
    topic_arn = alerted.one(TOPIC).outputs["arn"]
    subs = alerted.of_type(SUBSCRIPTION)
    assert {s.inputs["topic"] for s in subs} == {topic_arn}
    emails = sorted(s.inputs["endpoint"] for s in subs if s.inputs["protocol"] == "email")
    assert emails == sorted(EMAILS)
    webhook = alerted.one(SUBSCRIPTION, "webhook")
    assert webhook.inputs["protocol"] == "https"
    assert "endpoint" in webhook.secret_inputs
    assert webhook.plain["endpoint"] == WEBHOOK


def test_webhook_url_never_reaches_plain_outputs_or_other_resources(alerted: ProgramRun) -> None:
    for name, value in alerted.outputs.items():
        if name not in alerted.secret_outputs:
            assert WEBHOOK not in json.dumps(value), name
    for res in alerted.resources:
        plain_inputs = {k: v for k, v in res.inputs.items() if k not in res.secret_inputs}
        assert WEBHOOK not in list(walk_strings(plain_inputs)), res.name


def test_alarms_watch_hosts_and_database_and_notify_the_topic(alerted: ProgramRun) -> None:
    topic_arn = alerted.one(TOPIC).outputs["arn"]
    alarms = {a.name.removeprefix("alerts-"): a.inputs for a in alerted.of_type(ALARM)}
    on_ec2 = alerted.outputs[outputs.AIRFLOW_ENGINE] == "ec2"
    airflow_alarms = (
        {"airflow-system-check", "airflow-instance-check", "airflow-root-disk"}
        if on_ec2
        else {"mwaa-scheduler-heartbeat", "dashboard-system-check", "dashboard-instance-check"}
    )
    assert set(alarms) == {
        "generator-system-check",
        "generator-instance-check",
        *airflow_alarms,
        "db-free-storage",
        "db-cpu",
        "db-connections",
    }
    for name, a in alarms.items():
        assert topic_arn in a["alarmActions"], name
    instances = {i.name.split("-")[0]: i.id for i in alerted.of_type(EC2)}
    for host in ("generator", "airflow") if on_ec2 else ("generator", "dashboard"):
        system = alarms[f"{host}-system-check"]
        assert system["metricName"] == "StatusCheckFailed_System"
        assert system["dimensions"] == {"InstanceId": instances[host]}
        assert "arn:aws:automate:us-east-1:ec2:recover" in system["alarmActions"]
        assert alarms[f"{host}-instance-check"]["metricName"] == "StatusCheckFailed_Instance"
    if on_ec2:
        disk = alarms["airflow-root-disk"]
        assert (disk["namespace"], disk["metricName"], disk["threshold"]) == (
            "CWAgent",
            "disk_used_percent",
            80,
        )
        assert disk["dimensions"]["InstanceId"] == instances["airflow"]
    else:
        # No heartbeat, or no data at all, is a stopped scheduler.
        beat = alarms["mwaa-scheduler-heartbeat"]
        environment = alerted.one("aws:mwaa/environment:Environment").inputs["name"]
        assert (beat["namespace"], beat["metricName"]) == ("AmazonMWAA", "SchedulerHeartbeat")
        assert beat["dimensions"] == {"Function": "Scheduler", "Environment": environment}
        assert (beat["comparisonOperator"], beat["threshold"]) == ("LessThanThreshold", 1)
        assert beat["treatMissingData"] == "breaching"

    settings = stack_config(alerted.stack)["mdp:aws"]["database"]
    rds = alerted.one("aws:rds/instance:Instance")
    for name in ("db-free-storage", "db-cpu", "db-connections"):
        assert alarms[name]["dimensions"] == {"DBInstanceIdentifier": rds.inputs["identifier"]}
    assert alarms["db-free-storage"]["threshold"] == pytest.approx(
        0.2 * settings["allocatedStorageGb"] * 1024**3
    )
    assert alarms["db-free-storage"]["comparisonOperator"] == "LessThanThreshold"
    cpu = alarms["db-cpu"]
    assert (cpu["threshold"], cpu["period"] * cpu["evaluationPeriods"]) == (80, 900)
    limit = default_max_connections(settings["instanceClass"])
    assert limit is not None
    assert alarms["db-connections"]["threshold"] == int(0.8 * limit)


def test_budget_equals_the_cost_budget_and_notifies_at_80_forecast_and_100_actual(
    alerted: ProgramRun,
) -> None:
    budget = alerted.one(BUDGET).inputs
    expected = stack_config(alerted.stack)["mdp:cost"]["monthlyBudgetUsd"]
    assert (budget["limitUnit"], budget["timeUnit"], budget["budgetType"]) == (
        "USD",
        "MONTHLY",
        "COST",
    )
    assert float(budget["limitAmount"]) == expected
    topic_arn = alerted.one(TOPIC).outputs["arn"]
    got = {
        (n["notificationType"], n["threshold"], n["thresholdType"]): n["subscriberSnsTopicArns"]
        for n in budget["notifications"]
    }
    assert got == {
        ("FORECASTED", 80, "PERCENTAGE"): [topic_arn],
        ("ACTUAL", 100, "PERCENTAGE"): [topic_arn],
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_alerts_config_declares_no_topic_alarm_or_budget(stack: str) -> None:
    run = run_program(stack)
    for type_ in (TOPIC, SUBSCRIPTION, ALARM, BUDGET, "mdp:alerts:Alerts"):
        assert run.of_type(type_) == [], type_
    assert outputs.ALERTS_TOPIC_ARN not in run.outputs


def test_emails_only_declares_no_webhook() -> None:
    # Set in plain text, as `pulumi config set --path 'alerts.emails[0]'` does: no secret needed.
    run = run_program("dev", overrides={"mdp:alerts": {"emails": ["ops@example.com"]}})
    assert [s.inputs["protocol"] for s in run.of_type(SUBSCRIPTION)] == ["email"]


def test_db_max_connections_from_config_overrides_the_class_formula() -> None:
    run = _with_alerts("dev", {"emails": ["ops@example.com"], "dbMaxConnections": 50})
    assert run.one(ALARM, "db-connections").inputs["threshold"] == 40


def test_default_max_connections_follows_rds_formula() -> None:
    # LEAST(DBInstanceClassMemory / 9531392, 5000): 1 GiB gives 112, 2 GiB 225.
    assert default_max_connections("db.t4g.micro") == 112
    assert default_max_connections("db.t4g.small") == 225
    assert default_max_connections("db.x9.huge") is None


def _config(alerts: dict[str, Any]) -> Callable[[str, str], Any]:
    raw = {**stack_config("dev"), "mdp:alerts": alerts}
    return lambda ns, key: raw.get(f"{ns}:{key}")


def test_bad_email_names_the_key_and_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        build_stack_config("dev", _config({"emails": ["ops@example.com", "not-an-address"]}))
    message = str(err.value)
    assert "mdp:alerts.emails[1]" in message
    assert "pulumi config set --path 'alerts.emails[1]'" in message


def test_plain_http_webhook_is_refused_without_repeating_the_url() -> None:
    url = "http://hooks.example.com/services/SECRET-TOKEN"
    with pytest.raises(ConfigError) as err:
        build_stack_config("dev", _config({"webhookUrl": url}))
    message = str(err.value)
    assert "mdp:alerts.webhookUrl" in message and "https" in message
    assert "pulumi config set --secret --path 'alerts.webhookUrl'" in message
    assert "SECRET-TOKEN" not in message


def test_a_webhook_url_in_plain_text_stops_the_program_before_any_resource() -> None:
    # `pulumi config set --path 'alerts.webhookUrl' <url>` without --secret: the URL and its
    # token would sit in clear in Pulumi.<stack>.yaml.
    with pytest.raises(ConfigError) as err:
        run_program("dev", overrides={"mdp:alerts": {"emails": EMAILS, "webhookUrl": WEBHOOK}})
    message = str(err.value)
    assert "mdp:alerts.webhookUrl: is set in plain text" in message
    assert "pulumi config set --secret --path 'alerts.webhookUrl' <https-url> --stack dev" in (
        message
    )
    assert WEBHOOK not in message and "XXXXSECRETXXXX" not in message
    assert last_declared() == []


def test_unknown_instance_class_without_a_limit_asks_for_db_max_connections() -> None:
    with pytest.raises(ConfigError) as err:
        run_program(
            "dev",
            overrides={
                "mdp:aws.database.instanceClass": "db.x2g.large",
                "mdp:alerts": {"emails": ["ops@example.com"]},
            },
        )
    assert "pulumi config set --path 'alerts.dbMaxConnections'" in str(err.value)


# Policy rules: the program's alert resources pass, and a bad one is caught.


def _rule(name: str) -> Any:
    return {x.name: x for x in all_rules()}[name]


@pytest.mark.parametrize(
    ("rule_name", "type_", "name", "mutate"),
    [
        ("sns-topic-encrypted-with-cmk", TOPIC, "topic", lambda p: p.pop("kmsMasterKeyId")),
        (
            "sns-topic-encrypted-with-cmk",
            TOPIC,
            "topic",
            lambda p: p.update(kmsMasterKeyId="alias/aws/sns"),
        ),
        ("cloudwatch-alarm-has-action", ALARM, "db-cpu", lambda p: p.update(alarmActions=[])),
        (
            "cloudwatch-alarm-has-action",
            ALARM,
            "db-cpu",
            lambda p: p.update(actionsEnabled=False),
        ),
        ("sns-subscription-https", SUBSCRIPTION, "webhook", lambda p: p.update(protocol="http")),
        (
            "sns-subscription-https",
            SUBSCRIPTION,
            "webhook",
            lambda p: p.update(endpoint="http://hooks.example.com/x"),
        ),
    ],
)
def test_alert_rule_catches_a_bad_resource(
    alerted_prod: ProgramRun,
    rule_name: str,
    type_: str,
    name: str,
    mutate: Callable[[dict[str, Any]], None],
) -> None:
    rule = _rule(rule_name)
    good = copy.deepcopy(alerted_prod.one(type_, name).plain)
    assert rule(type_, good, Context(production=True)) == []
    bad = copy.deepcopy(good)
    mutate(bad)
    assert rule(type_, bad, Context(production=True)), f"{rule_name} missed {bad}"


def test_alerted_stacks_pass_every_rule(alerted: ProgramRun) -> None:
    resources = alerted.policy_resources()
    violations = evaluate(resources, Context(production=alerted.stack == "prod"))
    assert violations == [], "\n".join(map(str, violations))


def test_prod_host_without_a_recovering_status_alarm_is_caught(alerted_prod: ProgramRun) -> None:
    rule = _rule("prod-host-status-alarms")
    resources = alerted_prod.policy_resources()
    assert rule.on_stack(resources, Context(production=True)) == []
    without = [x for x in resources if not x.name.endswith("generator-system-check")]
    found = rule.on_stack(without, Context(production=True))
    assert {v.resource for v in found} == {x.name for x in resources if x.type == EC2}
    # The recover action is what makes the alarm count.
    no_recover = [
        Resource(
            x.type,
            x.name,
            {
                **x.props,
                "alarmActions": [a for a in x.props["alarmActions"] if "automate" not in a],
            },
        )
        if x.type == ALARM
        else x
        for x in resources
    ]
    assert rule.on_stack(no_recover, Context(production=True))
    # Dev is not held to it.
    assert rule.on_stack(without, Context(production=False)) == []
    assert r.ALARM == ALARM


def test_the_dag_publishes_to_the_topic_named_in_an_airflow_variable(alerted: ProgramRun) -> None:
    """The Airflow host finds the topic through its variable, and may publish there and only there."""
    from core.connections import ALERTS_TOPIC_VARIABLE

    topic_arn = alerted.one(TOPIC).outputs["arn"]
    secret = next(
        r
        for r in alerted.of_type("aws:secretsmanager/secret:Secret")
        if r.inputs["name"].endswith(f"/airflow/variables/{ALERTS_TOPIC_VARIABLE}")
    )
    (version,) = [
        v
        for v in alerted.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if v.inputs["secretId"] == secret.id
    ]
    assert version.plain["secretString"] == topic_arn
    policies = [
        json.loads(p.inputs["policy"]) for p in alerted.of_type("aws:iam/rolePolicy:RolePolicy")
    ]
    publishers = [
        s for p in policies for s in p["Statement"] if "sns:Publish" in _list(s["Action"])
    ]
    assert [s["Resource"] for s in publishers] == [topic_arn]


def test_on_mwaa_the_dag_finds_the_topic_the_same_way_and_may_publish_there_only(
    alerted_prod: ProgramRun, prod: ProgramRun
) -> None:
    """MWAA's execution role signs the DAG's SNS notifier: the stack's topic, and its key via SNS."""
    from core.connections import ALERTS_TOPIC_VARIABLE

    run = alerted_prod
    assert run.outputs[outputs.AIRFLOW_ENGINE] == "mwaa"
    topic_arn = run.one(TOPIC).outputs["arn"]
    environment = run.one("aws:mwaa/environment:Environment")
    # The variable is a secret of the MWAA component, which its secrets backend looks up.
    secret = next(
        r
        for r in run.of_type("aws:secretsmanager/secret:Secret")
        if r.inputs["name"] == f"mdp/prod/airflow/variables/{ALERTS_TOPIC_VARIABLE}"
    )
    assert secret.parent == run.one("mdp:mwaa:Environment").urn
    kwargs = json.loads(environment.plain["airflowConfigurationOptions"]["secrets.backend_kwargs"])
    assert kwargs["variables_prefix"] == "mdp/prod/airflow/variables"
    assert re.fullmatch(kwargs["variables_lookup_pattern"], ALERTS_TOPIC_VARIABLE)
    doc = run.one("aws:iam/rolePolicy:RolePolicy", "mwaa-execution-policy").inputs["policy"]
    statements = json.loads(doc)["Statement"]
    publishers = [s for s in statements if any(a.startswith("sns:") for a in _list(s["Action"]))]
    assert publishers == [
        {
            "Sid": "PublishDagAlerts",
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": topic_arn,
        }
    ]
    (kms,) = [s for s in statements if s["Sid"] == "UseKeyThroughServices"]
    region = topic_arn.split(":")[3]
    assert f"sns.{region}.amazonaws.com" in kms["Condition"]["StringLike"]["kms:ViaService"]
    assert kms["Resource"] == run.one("aws:kms/key:Key").outputs["arn"]
    # Without `mdp:alerts` the role may publish nowhere and use the key through SNS for nothing.
    plain = json.loads(
        prod.one("aws:iam/rolePolicy:RolePolicy", "mwaa-execution-policy").inputs["policy"]
    )
    assert "sns:" not in json.dumps(plain)
    assert all("sns." not in json.dumps(s.get("Condition", {})) for s in plain["Statement"])


def test_no_alerts_config_gives_airflow_no_topic_variable() -> None:
    from core.connections import ALERTS_TOPIC_VARIABLE

    run = run_program("dev")
    names = [r.inputs["name"] for r in run.of_type("aws:secretsmanager/secret:Secret")]
    assert not any(n.endswith(ALERTS_TOPIC_VARIABLE) for n in names)


def test_the_airflow_host_publishes_the_metric_its_disk_alarm_watches(
    alerted_dev: ProgramRun,
) -> None:
    """The CloudWatch agent sends the root disk's used percent with the alarm's dimensions."""
    import yaml

    from infra.cloud_init import CLOUDWATCH_AGENT_CONFIG

    alerted = alerted_dev

    (airflow,) = [i for i in alerted.of_type(EC2) if i.name.startswith("airflow")]
    doc = yaml.safe_load(airflow.inputs["userData"])
    assert "amazon-cloudwatch-agent" in doc["packages"]
    (written,) = [f for f in doc["write_files"] if f["path"] == CLOUDWATCH_AGENT_CONFIG]
    agent = json.loads(written["content"])
    assert any(f"file:{CLOUDWATCH_AGENT_CONFIG}" in cmd for cmd in doc["runcmd"])
    alarm = alerted.one(ALARM, "airflow-root-disk").inputs
    metrics = agent["metrics"]
    assert metrics["namespace"] == alarm["namespace"] == "CWAgent"
    disk = metrics["metrics_collected"]["disk"]
    assert f"disk_{disk['measurement'][0]}" == alarm["metricName"]
    assert disk["resources"] == [alarm["dimensions"]["path"]]
    # The agent's dimensions are exactly the alarm's: no host name, no device.
    assert agent["agent"]["omit_hostname"] and disk["drop_device"]
    assert set(metrics["append_dimensions"]) | {"path", "fstype"} == set(alarm["dimensions"])
    policies = [
        json.loads(p.inputs["policy"]) for p in alerted.of_type("aws:iam/rolePolicy:RolePolicy")
    ]
    (put,) = [
        s for p in policies for s in p["Statement"] if s["Action"] == "cloudwatch:PutMetricData"
    ]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CWAgent"}}


# Stack rules: once a stack has an alert topic, the topic has subscribers, every alarm and the
# budget publish to it, and the hosts, RDS and MWAA are watched. Each is shown to catch a stack
# missing one of these, on the resources the program declares.

OTHER_TOPIC = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"


def _changed(
    resources: list[Resource], name_endswith: str, change: Callable[[dict[str, Any]], None]
) -> list[Resource]:
    """`resources` with `change` applied to a copy of the props of the ones named *name_endswith."""
    out = []
    for x in resources:
        if x.name.endswith(name_endswith):
            props = copy.deepcopy(dict(x.props))
            change(props)
            x = Resource(x.type, x.name, props, x.protect, x.provider_role)
        out.append(x)
    assert out != resources, f"nothing is named *{name_endswith}"
    return out


def _without(resources: list[Resource], name_endswith: str) -> list[Resource]:
    out = [x for x in resources if not x.name.endswith(name_endswith)]
    assert len(out) < len(resources), f"nothing is named *{name_endswith}"
    return out


def _caught(rule_name: str, resources: list[Resource], stack: str) -> list[str]:
    """What `rule_name` reports on `resources`, as `resource: message`."""
    found = _rule(rule_name).on_stack(resources, Context(production=stack == "prod"))
    return [f"{v.resource}: {v.message}" for v in found]


ALERT_STACK_RULES = (
    "alerts-topic-subscribed",
    "alerts-alarms-notify-the-topic",
    "alerts-database-alarms",
    "alerts-airflow-alarms",
    "alerts-monthly-budget",
)


def test_alert_stack_rules_hold_on_the_program_and_sleep_without_a_topic(
    alerted: ProgramRun,
) -> None:
    resources = alerted.policy_resources()
    for name in ALERT_STACK_RULES:
        assert _caught(name, resources, alerted.stack) == [], name
    # Without `mdp:alerts` the stack has no topic and nothing to tell: the rules do not apply.
    bare = [x for x in resources if x.type not in (TOPIC, SUBSCRIPTION, ALARM, BUDGET)]
    for name in ALERT_STACK_RULES:
        assert _caught(name, bare, alerted.stack) == [], name


def test_a_topic_without_subscriptions_is_caught(alerted: ProgramRun) -> None:
    resources = alerted.policy_resources()
    unsubscribed = [x for x in resources if x.type != SUBSCRIPTION]
    assert _caught("alerts-topic-subscribed", unsubscribed, alerted.stack) == [
        "alerts-topic: no subscription delivers from this topic: its alarms and budget would "
        "reach no one (set mdp:alerts.emails or mdp:alerts.webhookUrl)"
    ]
    # Subscriptions to some other topic do not count.
    elsewhere = resources
    for sub in alerted.of_type(SUBSCRIPTION):
        elsewhere = _changed(elsewhere, sub.name, lambda p: p.update(topic=OTHER_TOPIC))
    assert _caught("alerts-topic-subscribed", elsewhere, alerted.stack)


def test_an_alarm_that_does_not_notify_the_topic_is_caught(alerted: ProgramRun) -> None:
    resources = alerted.policy_resources()
    # The recover action alone still passes cloudwatch-alarm-has-action, but tells no one.
    recover_only = _changed(
        resources,
        "generator-system-check",
        lambda p: p.update(alarmActions=[a for a in p["alarmActions"] if "automate" in a]),
    )
    assert _caught("alerts-alarms-notify-the-topic", recover_only, alerted.stack) == [
        "alerts-generator-system-check: alarmActions do not include the stack's alert topic: "
        "it would fire unseen"
    ]
    assert _rule("cloudwatch-alarm-has-action").on_stack(recover_only) == []
    elsewhere = _changed(resources, "db-cpu", lambda p: p.update(alarmActions=[OTHER_TOPIC]))
    assert [
        v.split(":")[0] for v in _caught("alerts-alarms-notify-the-topic", elsewhere, alerted.stack)
    ] == ["alerts-db-cpu"]


@pytest.mark.parametrize(
    ("alarm", "change", "metric"),
    [
        ("db-free-storage", None, "FreeStorageSpace"),
        ("db-cpu", None, "CPUUtilization"),
        ("db-connections", None, "DatabaseConnections"),
        ("db-cpu", lambda p: p.update(threshold=95), "CPUUtilization"),
        # 5% free instead of 20%: the alarm fires too late.
        ("db-free-storage", lambda p: p.update(threshold=p["threshold"] / 4), "FreeStorageSpace"),
        # Watching another instance.
        (
            "db-connections",
            lambda p: p.update(dimensions={"DBInstanceIdentifier": "some-other-db"}),
            "DatabaseConnections",
        ),
    ],
    ids=[
        "no-free-storage",
        "no-cpu",
        "no-connections",
        "cpu-at-95",
        "storage-at-5-percent",
        "connections-on-another-db",
    ],
)
def test_rds_without_each_of_its_alarms_is_caught(
    alerted_dev: ProgramRun,
    alarm: str,
    change: Callable[[dict[str, Any]], None] | None,
    metric: str,
) -> None:
    resources = alerted_dev.policy_resources()
    bad = _without(resources, alarm) if change is None else _changed(resources, alarm, change)
    (found,) = _caught("alerts-database-alarms", bad, "dev")
    assert found.startswith(f"source-db-postgres: no {metric} alarm"), found


def test_the_airflow_hosts_disk_alarm_is_required(alerted_dev: ProgramRun) -> None:
    resources = alerted_dev.policy_resources()
    assert _caught("alerts-airflow-alarms", _without(resources, "airflow-root-disk"), "dev") == [
        "airflow-instance: the Airflow host has no root-disk alarm (CWAgent disk_used_percent on "
        "/ at 80% or less)"
    ]
    # At 95% the disk is all but full before anyone hears of it.
    late = _changed(resources, "airflow-root-disk", lambda p: p.update(threshold=95))
    assert _caught("alerts-airflow-alarms", late, "dev")


def test_mwaas_scheduler_heartbeat_alarm_is_required(alerted_prod: ProgramRun) -> None:
    resources = alerted_prod.policy_resources()
    environment = alerted_prod.one("aws:mwaa/environment:Environment").name
    without = _without(resources, "mwaa-scheduler-heartbeat")
    (found,) = _caught("alerts-airflow-alarms", without, "prod")
    assert found.startswith(f"{environment}: no SchedulerHeartbeat alarm"), found
    other = _changed(
        resources,
        "mwaa-scheduler-heartbeat",
        lambda p: p.update(dimensions={"Function": "Scheduler", "Environment": "other-env"}),
    )
    assert _caught("alerts-airflow-alarms", other, "prod")


def _notification(kind: str, change: Callable[[dict[str, Any]], None]) -> Any:
    def mutate(p: dict[str, Any]) -> None:
        for n in p["notifications"]:
            if n["notificationType"] == kind:
                change(n)

    return mutate


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p.update(timeUnit="ANNUALLY"),
            "is a ANNUALLY COST budget, not a MONTHLY COST one",
        ),
        (
            lambda p: p.update(budgetType="USAGE"),
            "is a MONTHLY USAGE budget, not a MONTHLY COST one",
        ),
        (
            lambda p: p.update(
                notifications=[n for n in p["notifications"] if n["notificationType"] != "ACTUAL"]
            ),
            "no ACTUAL notification at 100% (or less) sent to the alert topic",
        ),
        (
            _notification("FORECASTED", lambda n: n.update(threshold=95)),
            "no FORECASTED notification at 80% (or less) sent to the alert topic",
        ),
        (
            _notification("ACTUAL", lambda n: n.update(subscriberSnsTopicArns=[OTHER_TOPIC])),
            "no ACTUAL notification at 100% (or less) sent to the alert topic",
        ),
        (
            _notification("FORECASTED", lambda n: n.update(subscriberSnsTopicArns=[])),
            "no FORECASTED notification at 80% (or less) sent to the alert topic",
        ),
    ],
    ids=[
        "annual",
        "usage",
        "no-actual",
        "forecast-at-95",
        "actual-to-another-topic",
        "forecast-to-no-topic",
    ],
)
def test_a_budget_missing_its_notifications_is_caught(
    alerted_dev: ProgramRun, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    bad = _changed(alerted_dev.policy_resources(), "budget", change)
    assert _caught("alerts-monthly-budget", bad, "dev") == [f"alerts-budget: budget {expected}"]


def test_a_stack_with_a_topic_but_no_budget_is_caught(alerted: ProgramRun) -> None:
    without = _without(alerted.policy_resources(), "budget")
    assert _caught("alerts-monthly-budget", without, alerted.stack) == [
        "alerts-topic: the stack has an alert topic but no AWS budget"
    ]
