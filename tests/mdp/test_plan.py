"""`mdp plan`: every component, the policy rules and the budget guard, without credentials."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from infra.mockrun import run_program
from mdp.cli import app
from mdp.plan import PLAN_EXAMPLES, PLAN_SECRETS

runner = CliRunner()
STACK_TYPE = "pulumi:pulumi:Stack"


def top_level_components(stack: str) -> set[str]:
    """`type name` of each component the program declares directly under the stack."""
    run = run_program(stack, overrides=PLAN_EXAMPLES[stack], secrets=PLAN_SECRETS)
    stack_urns = {r.urn for r in run.resources if r.type == STACK_TYPE}
    by_urn = {r.urn: r for r in run.resources}
    return {
        f"{r.type} {r.name}"
        for r in run.resources
        if not r.custom and (r.parent in stack_urns or r.parent not in by_urn)
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_lists_every_component_with_cost_and_no_violation(stack: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.md"
    result = runner.invoke(
        app, ["plan", "--stack", stack, "--format", "markdown", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    components = top_level_components(stack)
    assert {c.split()[0] for c in components} == {
        "mdp:encryption:EncryptionKey",
        "mdp:network:Network",
        "mdp:storage:Storage",
        "mdp:database:Database",
        "mdp:hosts:GeneratorHost",
        *(
            ["mdp:hosts:AirflowHost"]
            if stack == "dev"
            # MWAA serves no dashboard: prod's has a host of its own.
            else ["mdp:mwaa:Environment", "mdp:hosts:DashboardHost"]
        ),
        "mdp:snowflake:SnowflakePlatform",
        "mdp:airbyte:AirbyteCloud",
    }
    for component in components:
        assert f"<code>{component}</code>" in text, f"{component} missing from the plan"
    assert "No violations." in text
    total = re.search(r"total: \$([\d,.]+)/month", text)
    assert total and float(total.group(1).replace(",", "")) > 0
    assert "credits/day" in text and "Airbyte Cloud" in text
    # Prod runs Airflow on MWAA (priced from the table) and stays within its budget.
    assert ("MWAA mw1.small environment" in text) is (stack == "prod")
    assert ("MWAA metadata database" in text) is (stack == "prod")
    # With MWAA, the dashboard host is priced as a host of its own.
    assert ("| `dashboard-instance` | EC2 t3.micro |" in text) is (stack == "prod")


def plan_with(stack: str, setting: str) -> Result:
    """`mdp plan` of `stack` with one config value set on the command line."""
    return runner.invoke(app, ["plan", "--stack", stack, "--set", setting])


def test_a_violation_planted_through_config_fails_the_plan() -> None:
    result = plan_with("dev", "mdp:aws.database.backupRetentionDays=1")
    assert result.exit_code == 1
    assert "FAIL [rds-backup-retention]" in result.stdout
    assert "1 policy violation(s)" in result.output


def test_over_budget_fails_naming_the_biggest_lines() -> None:
    result = plan_with("prod", "mdp:cost.monthlyBudgetUsd=50")
    assert result.exit_code == 1
    assert "over the stack's budget of $50.00" in result.stdout
    assert "Biggest lines: airflow-mwaa MWAA mw1.small environment" in result.stdout
    assert "the estimate is over budget" in result.output


def test_bad_config_is_reported_with_the_fix() -> None:
    result = plan_with("dev", "mdp:aws.database.backupRetentionDays=0")
    assert result.exit_code == 2
    assert "backupRetentionDays" in result.output and "pulumi config set" in result.output


def test_plan_says_when_alerts_are_not_configured_and_counts_them_when_they_are() -> None:
    result = runner.invoke(app, ["plan", "--stack", "dev"])
    assert result.exit_code == 0, result.output
    assert "alerts: not configured" in result.output
    assert "mdp:alerts.emails" in result.output
    result = plan_with("prod", 'mdp:alerts={"emails": ["ops@example.com"]}')
    assert result.exit_code == 0, result.output
    # Generator (2), dashboard host (2), database (3), MWAA's scheduler heartbeat (1).
    assert "alerts: 8 alarms and 1 budget publish to one topic with 1 subscriptions" in (
        result.output
    )
    assert "CloudWatch alarm" in result.output
