"""`mdp plan`: a credential-free plan of a stack: resources, policy violations and monthly cost."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

if TYPE_CHECKING:
    from infra.cost import Estimate
    from infra.policies.rules import Violation

# Account-specific sections a user sets with `pulumi config set` (README): a plan without them
# uses these examples, so that reviewers still see every component, and says so.
PLAN_EXAMPLES: Mapping[str, Mapping[str, Any]] = {
    "dev": {
        "mdp:snowflake": {
            "organizationName": "EXAMPLEORG",
            "accountName": "MDP",
            "namePrefix": "DEV_",
            "creditQuota": 20,
        },
        "mdp:airbyte": {"workspaceId": "00000000-0000-4000-8000-000000000000"},
        "airbyte:clientId": "example-client-id",
    },
    "prod": {
        "mdp:snowflake": {
            "organizationName": "EXAMPLEORG",
            "accountName": "MDP",
            "creditQuota": 60,
        },
        "mdp:airbyte": {"workspaceId": "00000000-0000-4000-8000-000000000000"},
        "airbyte:clientId": "example-client-id",
    },
}
# Stand-ins for secret config, only ever seen by the mocks.
PLAN_SECRETS = {"airbyte:clientSecret": "example-client-secret"}

STACK_TYPE = "pulumi:pulumi:Stack"

# The properties a reviewer looks at first, per resource type (wire names).
KEY_PROPERTIES: Mapping[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:ec2/natGateway:NatGateway": ("connectivityType",),
    "aws:ec2/instance:Instance": ("instanceType", "associatePublicIpAddress", "monitoring"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "fromPort",
        "toPort",
        "cidrIpv4",
        "referencedSecurityGroupId",
    ),
    "aws:rds/instance:Instance": (
        "instanceClass",
        "engineVersion",
        "multiAz",
        "allocatedStorage",
        "storageEncrypted",
        "publiclyAccessible",
        "deletionProtection",
    ),
    "aws:s3/bucket:Bucket": ("bucket", "forceDestroy"),
    "snowflake:index/database:Database": ("name",),
    "snowflake:index/schema:Schema": ("database", "name"),
    "snowflake:index/accountRole:AccountRole": ("name",),
    "snowflake:index/warehouse:Warehouse": ("name", "warehouseSize", "autoSuspend"),
    "snowflake:index/resourceMonitor:ResourceMonitor": ("name", "creditQuota"),
    "snowflake:index/serviceUser:ServiceUser": ("name", "defaultRole"),
}


@dataclass(frozen=True)
class Plan:
    stack: str
    components: Mapping[str, list[Any]]
    violations: list[Violation]
    estimate: Estimate
    budget_usd: float
    budget_error: str | None
    examples_used: list[str] = field(default_factory=list)
    alerts: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations and self.budget_error is None


def _component_of(resource: Any, by_urn: Mapping[str, Any]) -> str:
    """The top-level component a resource belongs to, as `type name`."""
    node, top = resource, None
    while node is not None and node.parent in by_urn:
        node = by_urn[node.parent]
        if node.type != STACK_TYPE:
            top = node
    if top is None:
        return "stack" if resource.custom else f"{resource.type} {resource.name}"
    return f"{top.type} {top.name}"


def build_plan(stack: str, overrides: Mapping[str, Any] | None = None) -> Plan:
    """Run the program for `stack` under mocks and evaluate the rules and the cost model."""
    # Deferred for start-up speed: the Pulumi SDK and providers take seconds to import, and
    # every other `mdp` command would pay for them.
    from infra.config import build_stack_config
    from infra.cost import BudgetExceeded, PlannedResource, check_budget, estimate
    from infra.mockrun import run_program, stack_config
    from infra.policies.rules import Context, evaluate
    from infra.policies.rules.aws import output_violations

    committed = stack_config(stack)
    settings: dict[str, Any] = {}
    examples_used = []
    for key, value in PLAN_EXAMPLES[stack].items():
        if key not in committed:
            settings[key] = value
            examples_used.append(key)
    settings.update(overrides or {})
    run = run_program(stack, overrides=settings, secrets=PLAN_SECRETS)
    decoded = {k: _decode(v) for k, v in run.config.items()}
    config = build_stack_config(stack, lambda ns, key: decoded.get(f"{ns}:{key}"))

    by_urn = {r.urn: r for r in run.resources}
    components: dict[str, list[Any]] = defaultdict(list)
    planned = []
    for r in run.resources:
        if r.custom:
            component = _component_of(r, by_urn)
            components[component].append(r)
            planned.append(PlannedResource(r.type, r.name, r.plain, component, r.id))

    # Rules see plain values, protect and provider roles, as the policy pack does in a preview.
    violations = evaluate(run.policy_resources(), Context(production=config.is_prod))
    violations += output_violations(run.outputs, run.secret_outputs)

    est = estimate(planned, config.cost.assumptions())
    budget_error = None
    try:
        check_budget(est, config.cost.monthly_budget_usd)
    except BudgetExceeded as exc:
        budget_error = str(exc)
    return Plan(
        stack,
        dict(components),
        violations,
        est,
        config.cost.monthly_budget_usd,
        budget_error,
        examples_used,
        _alerts_line(run.resources, config.alerts is not None and config.alerts.configured),
    )


def _alerts_line(resources: list[Any], configured: bool) -> str:
    """What the stack alerts on and whom it tells, or how to turn alerts on."""
    if not configured:
        return (
            "alerts: not configured, so no alert topic, alarms or budget "
            "(set mdp:alerts.emails, e.g. `pulumi config set --path 'alerts.emails[0]' "
            "ops@example.com`)"
        )
    alarms = sum(1 for r in resources if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm")
    subscriptions = sum(
        1 for r in resources if r.type == "aws:sns/topicSubscription:TopicSubscription"
    )
    budgets = sum(1 for r in resources if r.type == "aws:budgets/budget:Budget")
    return (
        f"alerts: {alarms} alarms and {budgets} budget publish to one topic "
        f"with {subscriptions} subscriptions"
    )


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _fmt_value(value: Any) -> str:
    # Deferred for start-up speed, as in `build_plan`.
    from infra.mockrun import is_secret

    if is_secret(value):
        return "[secret]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))[:60]
    return str(value)


def _key_props(r: Any) -> str:
    inputs = r.inputs
    keys = KEY_PROPERTIES.get(r.type, ())
    parts = [f"{k}={_fmt_value(inputs[k])}" for k in keys if inputs.get(k) not in (None, "")]
    return ", ".join(parts)


def _short_type(t: str) -> str:
    provider, _, rest = t.partition(":")
    return f"{provider}:{rest.rsplit(':', 1)[-1]}"


def render(plan: Plan, fmt: Literal["text", "markdown"]) -> str:
    md = fmt == "markdown"
    out: list[str] = []
    total_resources = sum(len(v) for v in plan.components.values())
    title = f"mdp plan — stack `{plan.stack}`" if md else f"mdp plan: stack {plan.stack}"
    out += [f"## {title}" if md else title, ""]
    out.append(
        f"{total_resources} resources in {len(plan.components)} components; "
        f"{len(plan.violations)} policy violations; estimated "
        f"${plan.estimate.total():,.2f}/month "
        f"(prices as of {plan.estimate.pricing_as_of})."
    )
    if plan.alerts:
        out.append(plan.alerts + ".")
    if plan.examples_used:
        out.append(
            f"Not set in Pulumi.{plan.stack}.yaml, planned with example values: "
            + ", ".join(plan.examples_used)
            + "."
        )
    out.append("")

    out.append("### Resources" if md else "RESOURCES")
    for component in sorted(plan.components):
        members = plan.components[component]
        if md:
            out += [
                "",
                f"<details><summary><code>{component}</code> ({len(members)})</summary>",
                "",
                "| type | name | key properties |",
                "|---|---|---|",
            ]
            out += [f"| `{_short_type(r.type)}` | `{r.name}` | {_key_props(r)} |" for r in members]
            out += ["", "</details>"]
        else:
            out.append(f"  {component} ({len(members)})")
            out += [f"    {_short_type(r.type):<40} {r.name:<42} {_key_props(r)}" for r in members]
    out.append("")

    out.append("### Policy" if md else "POLICY")
    if not plan.violations:
        out.append("No violations." if md else "  no violations")
    for v in plan.violations:
        out.append(f"- ❌ `{v.rule}` {v.resource}: {v.message}" if md else f"  FAIL {v}")
    out.append("")

    out.append("### Estimated monthly cost" if md else "ESTIMATED MONTHLY COST")
    lines = sorted(plan.estimate.lines, key=lambda line: -line.monthly_usd)
    if md:
        out += [
            "",
            "| cloud | resource | item | quantity | unit price | $/month |",
            "|---|---|---|--:|--:|--:|",
        ]
        out += [
            f"| {line.cloud} | `{line.resource}` | {line.item} | {line.quantity:,.1f} {line.unit} "
            f"| ${line.unit_price:,.4f} | ${line.monthly_usd:,.2f} |"
            for line in lines
        ]
        out.append("")
    else:
        out += [
            f"  {line.cloud:<9} {line.resource[:40]:<40} {line.item[:40]:<40} ${line.monthly_usd:>10,.2f}"
            for line in lines
        ]
    for cloud in ("aws", "snowflake", "airbyte"):
        out.append(f"{'- ' if md else '  '}{cloud}: ${plan.estimate.total(cloud):,.2f}/month")
    for wh, credits in sorted(plan.estimate.snowflake_credits_per_day.items()):
        out.append(f"{'- ' if md else '  '}Snowflake {wh}: {credits:.2f} credits/day")
    out.append(
        f"{'- ' if md else '  '}total: ${plan.estimate.total():,.2f}/month; "
        f"budget ${plan.budget_usd:,.2f} (mdp:cost.monthlyBudgetUsd)"
    )
    if plan.budget_error:
        out += ["", f"❌ {plan.budget_error}" if md else f"BUDGET EXCEEDED: {plan.budget_error}"]
    out.append("")
    return "\n".join(out)


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise typer.BadParameter(f"{text!r}: expected KEY=VALUE, e.g. mdp:aws.natGateway=true")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def plan_command(
    stack: Annotated[str, typer.Option("--stack", "-s", help="dev or prod.")] = "dev",
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="text, or markdown for a PR comment.")
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the plan to this file.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config for this plan only, e.g. mdp:aws.natGateway=true."),
    ] = None,
) -> None:
    """Plan a stack without credentials: resources by component, policy violations, monthly cost."""
    # Deferred for start-up speed, as in `build_plan`.
    from infra.config_errors import ConfigError
    from infra.sections import STACKS

    if stack not in STACKS:
        raise typer.BadParameter(f"unknown stack {stack!r}; choose one of {', '.join(STACKS)}")
    if fmt not in ("text", "markdown"):
        raise typer.BadParameter(f"unknown format {fmt!r}; choose text or markdown")
    try:
        plan = build_plan(stack, dict(_parse_override(o) for o in overrides or []))
    except ConfigError as exc:
        typer.echo(f"mdp plan: the {stack} stack's config is invalid.\n{exc}", err=True)
        raise typer.Exit(2) from exc
    text = render(plan, "markdown" if fmt == "markdown" else "text")
    if output is not None:
        output.write_text(text)
    sys.stdout.write(text + "\n")
    if not plan.ok:
        problems = [f"{len(plan.violations)} policy violation(s)"] if plan.violations else []
        problems += ["the estimate is over budget"] if plan.budget_error else []
        typer.echo(f"mdp plan: stack {stack} fails: {' and '.join(problems)}.", err=True)
        raise typer.Exit(1)
