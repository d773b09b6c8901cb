"""`mdp rehearse` refuses a stack or host it does not know, before starting anything."""

from __future__ import annotations

from typer.testing import CliRunner

from mdp.cli import app


def test_unknown_stack_and_host_are_refused_with_the_choices() -> None:
    runner = CliRunner()
    stack = runner.invoke(app, ["rehearse", "--stack", "staging"])
    assert stack.exit_code == 2 and "choose one of dev, prod" in stack.output
    host = runner.invoke(app, ["rehearse", "--stack", "dev", "--host", "bastion"])
    assert host.exit_code == 2 and "choose from generator, airflow, dashboard" in host.output
