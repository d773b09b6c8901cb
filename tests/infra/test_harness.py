"""The mocks harness itself: runs both stacks and rejects bad config before any resource."""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from tests.infra.conftest import DELETE, run_program


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_program_runs_for_each_stack(stack: str) -> None:
    run = run_program(stack)
    assert run.stack == stack


def test_missing_key_fails_before_any_resource() -> None:
    with pytest.raises(ConfigError) as err:
        run_program("dev", overrides={"mdp:aws.airbyteCidrs": DELETE})
    assert "mdp:aws.airbyteCidrs[0]" in str(err.value)
    assert "pulumi config set --path 'aws.airbyteCidrs[0]'" in str(err.value)
