"""The `mdp` command line."""

from __future__ import annotations

import typer

from mdp.backfill import backfill
from mdp.dashboard import dashboard_command
from mdp.demo import demo
from mdp.export import export_command
from mdp.generate import generate
from mdp.plan import plan_command
from mdp.rehearse import rehearse_command
from mdp.rotate_key import rotate_key_command
from mdp.status import status, stop
from mdp.sync import sync
from mdp.transform import app as transform_app

app = typer.Typer(
    help="mdp: a modern data platform as code.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help: the rich help shows every flag as `<bool>` and boxes that break when piped.
    rich_markup_mode=None,
)


@app.callback()
def main() -> None:
    """mdp: a modern data platform as code."""


# In pipeline order: source, load, transform, publish; then the local services and the cloud plan.
# Short help lines fit the 80-column command list, which cuts longer ones off.
app.command(short_help="Write dirty source data into the source PostgreSQL.")(generate)
app.command("sync", short_help="Load the source into RAW (DuckDB): incremental, reconciled.")(sync)
app.add_typer(
    transform_app, name="transform", short_help="Build the dbt project on the local warehouse."
)
app.command("export", short_help="Export fct_payments and the marts as Parquet.")(export_command)
app.command("dashboard", short_help="Serve the finance dashboard.")(dashboard_command)
app.command(short_help="Run the whole local pipeline through Airflow, day by day.")(demo)
app.command(short_help="Run the DAG locally for a range of days, or re-run a failed day.")(backfill)
app.command(short_help="Show the source and the local state; exit 1 if a part is damaged.")(status)
app.command(short_help="Stop the embedded PostgreSQL (its data stays).")(stop)
app.command("plan", short_help="Plan a stack without credentials: resources, policies, cost.")(
    plan_command
)
app.command("rehearse", short_help="Rehearse a stack on a local AWS emulator: boot its hosts.")(
    rehearse_command
)
app.command("rotate-key", short_help="Rotate a Snowflake service user's key at the next deploy.")(
    rotate_key_command
)
