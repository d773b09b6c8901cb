"""`mdp rehearse`: the stack's AWS resources in a local emulator, its hosts booted from their user data."""

from __future__ import annotations

from typing import Annotated

import typer


def rehearse_command(
    stack: Annotated[str, typer.Option("--stack", "-s", help="dev or prod.")] = "dev",
    hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Rehearse only this host (generator, airflow, dashboard, or mwaa: the MWAA environment); repeatable.",
        ),
    ] = None,
    with_cloud: Annotated[
        bool,
        typer.Option(
            "--with-cloud",
            help="Add example Snowflake and Airbyte Cloud sections (no account is reached), so "
            "that the Airflow host runs a day of the cloud DAG against local stand-ins.",
        ),
    ] = False,
) -> None:
    """Rehearse a stack: apply it to a local AWS emulator, boot each host, print a table per host.

    Exits 1 when a step fails, naming the broken wire and the resource or output behind it.
    """
    # Deferred for start-up speed: the Pulumi SDK, its providers and moto take seconds to import,
    # and every other command would pay for them.
    from infra.sections import STACKS
    from rehearsal.run import ENGINE, HOSTS, program_run, rehearse

    if stack not in STACKS:
        raise typer.BadParameter(f"unknown stack {stack!r}; choose one of {', '.join(STACKS)}")
    choices = (*HOSTS, ENGINE)
    unknown = [h for h in hosts or [] if h not in choices]
    if unknown:
        raise typer.BadParameter(f"unknown host {unknown[0]!r}; choose from {', '.join(choices)}")
    # Without --host: every host the stack declares (prod on MWAA has no Airflow host).
    report = rehearse(stack, run=program_run(stack, with_cloud), hosts=hosts or None)
    typer.echo(report.render())
    if not report.passed:
        raise typer.Exit(1)
