"""The `mdp` command line."""

from __future__ import annotations

import typer

from mdp.dashboard import dashboard_command
from mdp.demo import demo
from mdp.export import export_command
from mdp.generate import generate
from mdp.plan import plan_command
from mdp.status import status, stop
from mdp.sync import sync
from mdp.transform import app as transform_app

app = typer.Typer(
    help="mdp: a modern data platform as code.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """mdp: a modern data platform as code."""


# In pipeline order: source, load, transform, publish; then the local services and the cloud plan.
app.command()(generate)
app.command("sync")(sync)
app.add_typer(transform_app, name="transform")
app.command("export")(export_command)
app.command("dashboard")(dashboard_command)
app.command()(demo)
app.command()(status)
app.command()(stop)
app.command("plan")(plan_command)
