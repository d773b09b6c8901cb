"""The `mdp` command line."""

from __future__ import annotations

import typer

from dashboard.cli import dashboard_command, export_command

app = typer.Typer(
    help="mdp: a modern data platform as code.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """mdp: a modern data platform as code."""


app.command("dashboard")(dashboard_command)
app.command("export")(export_command)
