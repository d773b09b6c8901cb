"""The mocks harness itself: runs both stacks and rejects bad config before any resource."""

from __future__ import annotations

import pytest

from infra.config_errors import ConfigError
from infra.mockrun import DELETE, last_declared, resolve, run_program


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_program_runs_for_each_stack(stack: str) -> None:
    run = run_program(stack)
    assert run.stack == stack
    assert run.outputs and run.resources
    assert {r.type for r in run.resources if r.type.startswith("mdp:")} >= {
        "mdp:network:Network",
        "mdp:database:Database",
        "mdp:hosts:GeneratorHost",
        "mdp:hosts:AirflowHost" if stack == "dev" else "mdp:mwaa:Environment",
        "mdp:storage:Storage",
    }


def test_missing_key_fails_before_any_resource() -> None:
    with pytest.raises(ConfigError) as err:
        run_program("dev", overrides={"mdp:aws.airbyteCidrs": DELETE})
    assert "mdp:aws.airbyteCidrs[0]" in str(err.value)
    assert "pulumi config set --path 'aws.airbyteCidrs[0]'" in str(err.value)
    assert last_declared() == [], "a resource was declared before the config was validated"


def test_resolve_reports_value_and_secretness() -> None:
    import pulumi

    plain = resolve(pulumi.Output.from_input("a"))
    secret = resolve(pulumi.Output.secret("b"))
    assert (plain.value, plain.is_secret, plain.is_known) == ("a", False, True)
    assert (secret.value, secret.is_secret) == ("b", True)
