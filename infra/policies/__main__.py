"""The mdp policy pack: every rule in infra/policies/rules as a mandatory Pulumi policy."""

from __future__ import annotations

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

# The pack runs from infra/policies in its own virtualenv; the rules import as `infra.policies.rules`.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra.policies.config import STACK_SUFFIX
from infra.policies.rules import Context, Rule, all_rules, from_policy_pack

# The prod stack runs with `--policy-pack-config infra/policies/production.json`, which sets
# production=true on every policy and so turns the prod-only rules on.
CONFIG_SCHEMA = PolicyConfigSchema(properties={"production": {"type": "boolean", "default": False}})


def _context(args: ResourceValidationArgs | StackValidationArgs) -> Context:
    config = args.get_config() or {}
    return Context(production=bool(config.get("production", False)))


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props, _context(args)):
            report(f"{message} ({', '.join(rule.sources)})")

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=CONFIG_SCHEMA,
        severity=Severity(rule.severity),
    )


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        # With each resource's protect option and provider role, for the rules that need them.
        resources = [from_policy_pack(r) for r in args.resources]
        for violation in rule.on_stack(resources, _context(args)):
            report(f"{violation.resource}: {violation.message} ({', '.join(rule.sources)})")

    return StackValidationPolicy(
        name=f"{rule.name}{STACK_SUFFIX}",
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=CONFIG_SCHEMA,
        severity=Severity(rule.severity),
    )


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    out: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for rule in all_rules():
        if rule.check is not None:
            out.append(_resource_policy(rule))
        if rule.stack_check is not None:
            out.append(_stack_policy(rule))
    return out


PolicyPack(name="mdp", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
