"""The `mdp` command line."""

from __future__ import annotations

import typer

from dashboard.cli import dashboard_command, export_command
from mdp.demo import demo
from mdp.status import status, stop
from source_generator.cli import generate

app = typer.Typer(
    help="mdp: a modern data platform as code.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """mdp: a modern data platform as code."""


app.command()(generate)
app.command()(status)
app.command()(stop)
app.command()(demo)

# `mdp demo` runs the sync as a task of the Airflow DAG, so only the command and the status
# section of the loader are registered here.
from ingestion.cli import sync as _sync  # noqa: E402
from ingestion.status import raw_status  # noqa: E402
from mdp import status as _status  # noqa: E402

app.command("sync")(_sync)
_status.PROVIDERS["raw"] = raw_status

app.command("dashboard")(dashboard_command)
app.command("export")(export_command)

from mdp.transform import app as transform_app  # noqa: E402

app.add_typer(transform_app, name="transform")
