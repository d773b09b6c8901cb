"""The policy pack as `pulumi preview --policy-pack infra/policies` runs it, in its own environment.

The pack (infra/policies/__main__.py) runs in .venv-policy (`make policy-pack-env`), started
and spoken to over gRPC the way the Pulumi CLI does it (tests/infra/policy_pack_driver.py),
over the resources the program declares under Pulumi's mocks.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.mockrun import ProgramRun, Recorded
from infra.policies.config import PRODUCTION_FILE, render
from infra.policies.rules import all_rules
from tests.infra.snowflake.conftest import cached_snowflake
from tests.infra.test_alerts import alerted_run

REPO = Path(__file__).resolve().parents[2]
POLICY_PYTHON = REPO / ".venv-policy" / "bin" / "python"
DRIVER = Path(__file__).with_name("policy_pack_driver.py")
PACK = REPO / "infra" / "policies"
RDS = "aws:rds/instance:Instance"
WAREHOUSE = "snowflake:index/warehouse:Warehouse"

Mutate = Callable[[dict[str, Any]], None]


def _resource(r: Recorded, props: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": r.type,
        "name": r.name,
        "urn": r.urn,
        "parent": r.parent,
        "protect": r.protect,
        # As the engine sends them: secret inputs stay wrapped as secrets.
        "properties": json.loads(json.dumps(r.inputs if props is None else props, default=str)),
    }


def analyze(
    run: ProgramRun,
    production: bool | None,
    mutate: dict[str, Mutate] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The pack's answer for the stack's resources, with `mutate[urn]` applied to their inputs."""
    if not POLICY_PYTHON.exists():
        pytest.fail(f"{POLICY_PYTHON} is missing: run `make policy-pack-env` first.")
    resources = []
    for r in run.resources:
        if not r.custom:
            continue
        props = None
        if mutate and r.urn in mutate:
            props = copy.deepcopy(r.inputs)
            mutate[r.urn](props)
        resources.append(_resource(r, props))
    request = {
        "pack": str(PACK),
        "production": production,
        "config": config,
        "resources": resources,
    }
    done = subprocess.run(
        [str(POLICY_PYTHON), str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


# Both stacks with the Snowflake section a user sets (as `mdp plan` plans them): AWS and
# Snowflake resources in one run.
@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return cached_snowflake("dev").run


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return cached_snowflake("prod").run


@pytest.fixture(scope="module")
def dev_clean(dev: ProgramRun) -> dict[str, Any]:
    return analyze(dev, production=False)


def test_the_pack_holds_every_rule_as_a_mandatory_policy(dev_clean: dict[str, Any]) -> None:
    assert dev_clean["name"] == "mdp"
    policies = dev_clean["policies"]
    for rule in all_rules():
        names = {n for n in policies if n == rule.name or n.startswith(f"{rule.name}-")}
        assert names, f"rule {rule.name} is not in the pack"
    assert set(policies.values()) == {"mandatory"}, policies
    # The `production` setting is declared, so the CLI accepts it in a policy config.
    assert all("production" in json.dumps(s) for s in dev_clean["config_schemas"].values())


def test_the_dev_stack_passes_the_pack(dev_clean: dict[str, Any]) -> None:
    assert dev_clean["diagnostics"] == []


def _production_file() -> dict[str, Any]:
    """The policy config the workflows pass for the prod stack."""
    config: dict[str, Any] = json.loads((REPO / PRODUCTION_FILE).read_text())
    return config


def test_the_prod_stack_passes_the_pack_with_its_workflow_config(prod: ProgramRun) -> None:
    assert analyze(prod, production=None, config=_production_file())["diagnostics"] == []


def test_the_production_file_sets_production_on_every_policy_of_the_pack(
    dev_clean: dict[str, Any],
) -> None:
    assert (REPO / PRODUCTION_FILE).read_text() == render(), (
        f"{PRODUCTION_FILE} is stale: regenerate it with "
        f"`.venv/bin/python -m infra.policies.config > {PRODUCTION_FILE}`"
    )
    assert set(_production_file()) == set(dev_clean["policies"])


def _one(run: ProgramRun, type_: str) -> Recorded:
    found = [r for r in run.resources if r.type == type_]
    assert found, f"the stack declares no {type_}"
    return found[0]


def test_a_planted_aws_violation_is_reported_as_mandatory(dev: ProgramRun) -> None:
    rds = _one(dev, RDS)

    def public(props: dict[str, Any]) -> None:
        props["publiclyAccessible"] = True

    found = analyze(dev, production=False, mutate={rds.urn: public})["diagnostics"]
    assert found, "a publicly accessible database passed the pack"
    assert {d["level"] for d in found} == {"mandatory"}
    assert {d["pack"] for d in found} == {"mdp"}
    assert any("public" in d["message"].lower() for d in found), found


def test_a_planted_snowflake_violation_is_reported_as_mandatory(dev: ProgramRun) -> None:
    warehouse = _one(dev, WAREHOUSE)

    def never_suspends(props: dict[str, Any]) -> None:
        props["autoSuspend"] = 3600

    found = analyze(dev, production=False, mutate={warehouse.urn: never_suspends})["diagnostics"]
    assert found, "a warehouse that runs an hour idle passed the pack"
    assert {d["level"] for d in found} == {"mandatory"}
    assert any("suspend" in d["message"].lower() for d in found), found


def test_production_true_turns_the_prod_rules_on(dev: ProgramRun) -> None:
    # The dev stack runs without Multi-AZ or deletion protection: fine in dev, not in prod.
    rds = _one(dev, RDS)
    assert not rds.plain.get("multiAz") or not rds.plain.get("deletionProtection")
    found = analyze(dev, production=None, config=_production_file())["diagnostics"]
    assert found, "the prod policy config reported nothing on a dev-sized database"
    assert {d["level"] for d in found} == {"mandatory"}
    prod_only = {d["policy"] for d in found}
    assert any("prod" in name for name in prod_only), prod_only
    # Without the setting the same resources pass (test_the_dev_stack_passes_the_pack).


def test_the_alert_rules_run_in_the_pack_on_a_stack_with_alerts() -> None:
    # Prod with `mdp:alerts`: every rule passes but the one a budget without its 100% actual
    # notification breaks, reported as a stack policy.
    run = alerted_run("prod")
    budget = _one(run, "aws:budgets/budget:Budget")

    def forecast_only(props: dict[str, Any]) -> None:
        props["notifications"] = [
            n for n in props["notifications"] if n["notificationType"] != "ACTUAL"
        ]

    found = analyze(
        run, production=None, config=_production_file(), mutate={budget.urn: forecast_only}
    )
    assert [(d["policy"], d["level"]) for d in found["diagnostics"]] == [
        ("alerts-monthly-budget-stack", "mandatory")
    ], found["diagnostics"]
    assert "no ACTUAL notification at 100%" in found["diagnostics"][0]["message"]
