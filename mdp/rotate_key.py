"""`mdp rotate-key`: rotate one Snowflake service user's key at the next deployment, without downtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from core.paths import REPO_ROOT

SECTION = "mdp:snowflake"
KEY = "keyRotations"


class RotateKeyError(ValueError):
    """The rotation was not recorded; the message says why and what to do."""


def stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def _section_block(lines: list[str]) -> tuple[int, int]:
    """The first and one-past-last line of the `mdp:snowflake` block under `config:`."""
    start = next(
        (i for i, line in enumerate(lines) if line.rstrip() == f"  {SECTION}:"),
        None,
    )
    if start is None:
        raise RotateKeyError(f"no `{SECTION}:` block mapping")
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and not line.startswith("   ") and not line.lstrip().startswith("#"):
            break
        end += 1
    return start, end


def _without_key(block: list[str]) -> list[str]:
    """The block's lines without its `keyRotations` entry (and that entry's nested lines)."""
    kept: list[str] = []
    skipping = False
    for line in block:
        if line.startswith(f"    {KEY}:"):
            skipping = True
            continue
        if skipping and (line.startswith("     ") or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    return kept


def record_rotation(path: Path, user: str) -> tuple[int, dict[str, Any]]:
    """Raise `user`'s rotation count in the stack file; returns the count and the new section.

    Only the `keyRotations` line changes: comments and the rest of the file stay as they are,
    and the edit is checked by reading the file back.
    """
    text = path.read_text()
    before = yaml.safe_load(text) or {}
    config = before.get("config") or {}
    section = config.get(SECTION)
    if not isinstance(section, dict):
        raise RotateKeyError(
            f"{path.name} has no `{SECTION}` section, so this stack has no Snowflake service "
            "users to rotate. Nothing was changed."
        )
    rotations = dict(section.get(KEY) or {})
    rotations[user] = int(rotations.get(user, 0)) + 1
    lines = text.splitlines(keepends=True)
    start, end = _section_block(lines)
    entries = ", ".join(f"{u}: {n}" for u, n in sorted(rotations.items()))
    new_line = f"    {KEY}: {{{entries}}}\n"
    block = [new_line, *_without_key(lines[start + 1 : end])]
    new_text = "".join([*lines[: start + 1], *block, *lines[end:]])
    expected = {**before, "config": {**config, SECTION: {**section, KEY: rotations}}}
    if yaml.safe_load(new_text) != expected:
        raise RotateKeyError(
            f"could not edit {path.name} safely (an unusual layout of `{SECTION}`). Nothing was "
            f"changed. Set it with `pulumi config set --path 'snowflake.{KEY}.{user}' "
            f"{rotations[user]} --stack <stack>`."
        )
    path.write_text(new_text)
    return rotations[user], {**section, KEY: rotations}


def rotate_key_command(
    stack: Annotated[str, typer.Option("--stack", help="The stack (Pulumi.<stack>.yaml).")],
    user: Annotated[str, typer.Option("--user", help="The service user, e.g. AIRBYTE.")],
    config_file: Annotated[
        Path | None,
        typer.Option(help="The stack's config file (default: Pulumi.<stack>.yaml)."),
    ] = None,
) -> None:
    """Rotate a Snowflake service user's key at the stack's next deployment, without downtime.

    Records one more rotation for the user in the stack's config. At the next `pulumi up` a new
    key goes into the user's free key slot, its secret and every consumer (Airflow's
    connection, the dashboard, Airbyte's destination) switch to it, and the key they used until
    then stays valid until the rotation after.
    """
    # Deferred for start-up speed: infra.snowflake loads the Pulumi Snowflake provider (about
    # 3 s), and every `mdp` command, on the hosts too, would pay for it. The hosts' release
    # carries no infra/ at all.
    from infra.sections import STACKS
    from infra.snowflake.naming import SERVICE_USERS
    from infra.snowflake.rotation import DEFAULT_ROTATION_DAYS, key_generation

    if stack not in STACKS:
        typer.echo(f"Unknown stack {stack!r}; the stacks are {', '.join(STACKS)}.", err=True)
        raise typer.Exit(2)
    name = user.upper()
    if name not in SERVICE_USERS:
        typer.echo(
            f"Unknown service user {user!r}; the service users are {', '.join(SERVICE_USERS)}.",
            err=True,
        )
        raise typer.Exit(2)
    path = config_file or stack_file(stack)
    try:
        count, section = record_rotation(path, name)
    except (RotateKeyError, OSError, yaml.YAMLError) as err:
        typer.echo(f"The rotation was not recorded: {err}", err=True)
        raise typer.Exit(1) from None
    generation = key_generation(int(section.get("keyRotationDays", DEFAULT_ROTATION_DAYS)), count)
    typer.echo(
        f"Recorded rotation {count} of {name}_SVC in {path.name} "
        f"(`{SECTION}.{KEY}.{name}: {count}`): its key becomes generation {generation}.\n"
        f"Commit the file and deploy (`pulumi up --stack {stack}`, or the deploy workflow). "
        "The new key goes into the free slot and every consumer switches to it; the key in "
        "use until now stays valid until the next rotation, so nothing signs out."
    )
