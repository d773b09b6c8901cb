"""`mdp rehearse` refuses a stack or host it does not know, before starting anything; `--with-cloud`."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from infra import outputs
from infra.mockrun import ProgramRun
from mdp.cli import app
from rehearsal import run as run_module
from rehearsal.report import Report


def test_unknown_stack_and_host_are_refused_with_the_choices() -> None:
    runner = CliRunner()
    stack = runner.invoke(app, ["rehearse", "--stack", "staging"])
    assert stack.exit_code == 2 and "choose one of dev, prod" in stack.output
    host = runner.invoke(app, ["rehearse", "--stack", "dev", "--host", "bastion"])
    assert host.exit_code == 2 and "choose from generator, airflow, dashboard" in host.output


def test_with_cloud_rehearses_the_stack_with_example_snowflake_and_airbyte_sections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, ProgramRun] = {}

    def rehearse(stack: str, run: ProgramRun, hosts: list[str] | None = None) -> Report:
        seen[stack] = run
        return Report(stack)

    monkeypatch.setattr(run_module, "rehearse", rehearse)
    result = CliRunner().invoke(app, ["rehearse", "--stack", "dev", "--with-cloud"])
    assert result.exit_code == 0, result.output
    run = seen["dev"]
    # Airflow's daily run needs the Airbyte connection's id (a UUID, as Airbyte gives it).
    connection_id = str(run.outputs[outputs.AIRBYTE_CONNECTION_ID])
    assert str(uuid.UUID(connection_id)) == connection_id
    assert run.config["mdp:snowflake"] and run.config["mdp:airbyte"]
