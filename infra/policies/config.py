"""The policy config the prod stack runs the pack with: `production` on for every policy.

The preview and deploy workflows pass `infra/policies/production.json` for the prod stack
(`policyPackConfigs`), which turns the prod-only rules on. Regenerate it after adding a rule:

    .venv/bin/python -m infra.policies.config > infra/policies/production.json
"""

from __future__ import annotations

import json

from infra.policies.rules import all_rules

# A rule with a stack-wide check runs as a second policy, named with this suffix.
STACK_SUFFIX = "-stack"
PRODUCTION_FILE = "infra/policies/production.json"


def policy_names() -> list[str]:
    names: list[str] = []
    for rule in all_rules():
        if rule.check is not None:
            names.append(rule.name)
        if rule.stack_check is not None:
            names.append(f"{rule.name}{STACK_SUFFIX}")
    return sorted(names)


def production_config() -> dict[str, dict[str, bool]]:
    return {name: {"production": True} for name in policy_names()}


def render() -> str:
    return json.dumps(production_config(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
