"""`mdp plan`: a credential-free plan of a stack: resources, policy violations and monthly cost."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typer

from infra.config import STACKS, ConfigError
from infra.cost import BudgetExceeded, Estimate, PlannedResource, check_budget, estimate
from infra.policies.rules import Context, Resource, Violation, evaluate
from infra.policies.rules.aws import output_violations

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
    budget_usd: float | None
    budget_error: str | None

    @property
    def ok(self) -> bool:
        return not self.violations and self.budget_error is None


def _plain(value: Any) -> Any:
    """Recorded inputs may keep the engine's secret wrappers; a plan shows only that a value is secret."""
    if isinstance(value, Mapping):
        if value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
            return "[secret]"
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


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
    from infra.mockrun import run_program

    run = run_program(stack, overrides=overrides)
    config = run.stack_config
    by_urn = {r.urn: r for r in run.resources}
    components: dict[str, list[Any]] = defaultdict(list)
    planned: list[PlannedResource] = []
    for r in run.resources:
        if not r.custom:
            continue
        component = _component_of(r, by_urn)
        components[component].append(r)
        planned.append(PlannedResource(r.type, r.name, _plain(r.inputs), component, r.id))

    resources = [Resource(type=r.type, name=r.name, props=_plain(r.inputs)) for r in run.resources]
    violations = evaluate(resources, Context(production=config.is_prod))
    violations += output_violations(run.outputs, run.secret_outputs)

    est = estimate(planned, config.cost.assumptions())
    budget_error = None
    try:
        check_budget(est, config.cost.monthly_budget_usd)
    except BudgetExceeded as exc:
        budget_error = str(exc)
    return Plan(
        stack, dict(components), violations, est, config.cost.monthly_budget_usd, budget_error
    )


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))[:60]
    return str(value)


def _key_props(r: Any) -> str:
    inputs = _plain(r.inputs)
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
    budget = f"${plan.budget_usd:,.2f}" if plan.budget_usd is not None else "not set"
    out.append(f"{'- ' if md else '  '}total: ${plan.estimate.total():,.2f}/month; budget {budget}")
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
    stack: str = typer.Option("dev", "--stack", "-s", help="The stack to plan: dev or prod."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, or markdown for a PR comment."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the plan here."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config value for this plan only: mdp:aws.natGateway=true"
    ),
) -> None:
    """Plan a stack without credentials: resources by component, policy violations, monthly cost."""
    if stack not in STACKS:
        raise typer.BadParameter(f"unknown stack {stack!r}; choose one of {', '.join(STACKS)}")
    if fmt not in ("text", "markdown"):
        raise typer.BadParameter("--format is text or markdown")
    try:
        plan = build_plan(stack, dict(_parse_override(o) for o in overrides))
    except ConfigError as exc:
        typer.echo(f"mdp plan: the {stack} stack's config is invalid:\n{exc}", err=True)
        raise typer.Exit(2) from exc
    text = render(plan, fmt)  # type: ignore[arg-type]
    if output is not None:
        output.write_text(text)
    sys.stdout.write(text + "\n")
    if not plan.ok:
        typer.echo(
            f"mdp plan: {len(plan.violations)} policy violation(s)"
            + (", over budget" if plan.budget_error else "")
            + f" in stack {stack}.",
            err=True,
        )
        raise typer.Exit(1)


def violations_by_rule(violations: Sequence[Violation]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for v in violations:
        counts[v.rule] += 1
    return dict(counts)
