"""The `mdp` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="mdp: a modern data platform as code.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """mdp: a modern data platform as code."""


from mdp.transform import app as transform_app  # noqa: E402

app.add_typer(transform_app, name="transform")
